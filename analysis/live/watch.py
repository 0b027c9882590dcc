# SPDX-License-Identifier: GPL-2.0-only
"""The live view of one migration (``migtrace watch``): pre-copy passes and the switchover
as the capture's units arrive.

A pass is a segment of :class:`analysis.live.passes.LivePasses` — the definition
``summary`` uses for ``precopy_iterations`` (method ``stream``): a page sent again starts a
new pass.  Only segments that start before the end of the last RAM PART section are pre-copy
passes (``precopy_sends``), so a pass is reported once that is certain: when the next pass
started and a PART section ended after this one's start, or at the switchover.

The switchover starts at the first main-channel record after the last PART section (a
section, or a command such as 10.x's SWITCHOVER_START), as ``summary``'s wire downtime
does (analysis/metrics/switchover.py); it is reported as soon as the return path's SHUT
arrives (or, without a return path, at the stream's EOF marker), with the wire downtime.

Objects (docs/json-lines.md, "migtrace watch"): ``watch_pass`` and ``watch_switchover``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from analysis.live.passes import LivePasses


@dataclass
class _Pass:
    index: int  # 1-based
    first_send: int  # tracker send index of its first page
    ts_ns: int | None
    pages: int = 0
    bytes: int = 0
    vfio: dict[str, dict[str, int]] = field(default_factory=dict)


def _ms(a: int | None, b: int | None) -> float | None:
    return None if a is None or b is None else round((b - a) / 1e6, 3)


def _vfio_add(vfio: dict[str, dict[str, int]], dev: str, key: str, n: int) -> None:
    d = vfio.get(dev)
    if d is None:
        d = vfio[dev] = {"chunks": 0, "bytes": 0, "records": 0}
    d[key] += n


class Watch:
    """Hand ``page_log`` to the decoder (the page tap) and feed it the contract objects
    (``unit``) in arrival order; it calls ``emit`` with ``watch_pass`` and
    ``watch_switchover`` objects."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], sizes: Any = None) -> None:
        self.emit = emit
        self.sizes = sizes  # analysis.live.qemulog.QemuLogSizes, or None
        self.devices: set[str] = set()
        self.tracker = LivePasses(self._sent, self._report_certain)
        self.page_log = self.tracker
        self.passes: list[_Pass] = []  # started, not yet reported
        self.reported = 0
        self.current: _Pass | None = None
        self.main_flow: int | None = None
        self.return_path = False
        self.candidate_ns: int | None = None  # first non-PART record after the latest PART
        self.seen_part = False
        self.switchover_ns: int | None = None
        self.stopcopy = {"bytes": 0, "pages": 0}
        self.stop_vfio: dict[str, dict[str, int]] = {}
        self.switchover_done = False
        self.eof_ns: int | None = None
        self.page_size = 4096  # multifd page data; the target page size of x86 and most hosts

    # -- inputs ---------------------------------------------------------------

    def _sent(self, started: bool) -> None:
        """A page was sent (``started``: it began a new segment)."""
        t = self.tracker
        if started and self.switchover_ns is None:
            self.current = _Pass(len(self.passes) + 1, t.sends - 1, t.ts_ns)
            self.passes.append(self.current)
            self._report_certain()
        if self.switchover_ns is None and self.current is not None:
            self.current.pages += 1
        else:
            self.stopcopy["pages"] += 1

    def unit(self, o: dict[str, Any]) -> None:
        kind = o["kind"]
        ts = o.get("ts_ns")
        if kind == "header":
            self.main_flow = o.get("flow") if self.main_flow is None else self.main_flow
        elif kind == "command":
            if o.get("cmd_name") == "OPEN_RETURN_PATH":
                self.return_path = True
            elif self.seen_part and self.candidate_ns is None and o.get("flow") == self.main_flow:
                self.candidate_ns = ts
        elif kind == "section" and o.get("flow") == self.main_flow:
            self._section(o, ts)
        elif kind == "multifd_packet":
            # the page data of a RAM packet (its header and offsets are not counted)
            self._bytes((o.get("normal_pages") or 0) * self.page_size)
        elif kind == "vfio_chunk" and o.get("phase") in ("precopy", "stopcopy", "config"):
            self.devices.add(o["device"])
            vfio = self._vfio_target(o.get("phase"))
            if vfio is not None:
                _vfio_add(vfio, o["device"], "chunks", 1)
                _vfio_add(vfio, o["device"], "bytes", o.get("size") or 0)
        elif kind == "vfio_record":
            vfio = self._vfio_target(o.get("phase"))
            if vfio is not None:
                _vfio_add(vfio, o["device"], "records", 1)
        elif kind == "rp_message" and o.get("type_name") == "SHUT":
            self._switchover(ts, "return-path SHUT")
        elif kind == "eof" and o.get("flow") == self.main_flow:
            self.eof_ns = ts
            if not self.return_path:
                self._switchover(ts, "end of stream")

    def finish(self) -> None:
        """The input ended: report what is left (a switchover without SHUT or EOF marker
        is reported with its start only)."""
        if self.switchover_ns is not None and not self.switchover_done:
            self._switchover(self.eof_ns, "end of stream" if self.eof_ns is not None else None)
        elif self.switchover_ns is None:
            self._report_certain()

    # -- internals ------------------------------------------------------------

    def _section(self, o: dict[str, Any], ts: int | None) -> None:
        typ = o.get("type")
        if typ == "PART":
            self.seen_part = True
            self.candidate_ns = None
            self._bytes(o.get("length") or 0)
            return
        if self.switchover_ns is None and (typ in ("END", "FULL") and (self.seen_part or typ == "END")):
            start = ts if self.candidate_ns is None or ts is None else min(ts, self.candidate_ns)
            self.switchover_ns = start if start is not None else self.candidate_ns
            self._report_precopy()
        elif self.seen_part and self.candidate_ns is None and typ != "START":
            self.candidate_ns = ts
        self._bytes(o.get("length") or 0)

    def _bytes(self, n: int) -> None:
        if self.switchover_ns is not None:
            self.stopcopy["bytes"] += n
        elif self.current is not None:
            self.current.bytes += n

    def _vfio_target(self, phase: str | None) -> dict[str, dict[str, int]] | None:
        if phase == "precopy" and self.switchover_ns is None:
            return self.current.vfio if self.current is not None else None
        return self.stop_vfio

    def _report_certain(self) -> None:
        """Report the passes known to be pre-copy and already followed by the next one."""
        pre = self.tracker.precopy_sends
        while self.reported < len(self.passes) - 1 and pre is not None \
                and self.passes[self.reported + 1].first_send < pre:
            p, nxt = self.passes[self.reported], self.passes[self.reported + 1]
            self._emit_pass(p, nxt.ts_ns)

    def _report_precopy(self) -> None:
        """At the switchover: every pass that started before the last PART ended."""
        pre = self.tracker.precopy_sends
        pre_passes = [p for p in self.passes if pre is not None and p.first_send < pre]
        while self.reported < len(pre_passes):
            p = pre_passes[self.reported]
            end = pre_passes[self.reported + 1].ts_ns if self.reported + 1 < len(pre_passes) else self.switchover_ns
            self._emit_pass(p, end)
        # pages of segments that began in the stop-copy belong to it
        for p in self.passes[len(pre_passes):]:
            self.stopcopy["pages"] += p.pages
            self.stopcopy["bytes"] += p.bytes
        self.passes = pre_passes
        self.current = None

    def _emit_pass(self, p: _Pass, end_ns: int | None) -> None:
        self.reported += 1
        dur = _ms(p.ts_ns, end_ns)
        self.emit({"kind": "watch_pass", "pass": p.index, "ts_ns": p.ts_ns, "end_ts_ns": end_ns,
                   "ts": None if p.ts_ns is None else p.ts_ns / 1e9, "duration_ms": dur,
                   "pages": p.pages, "bytes": p.bytes,
                   "rate_bytes_per_s": round(p.bytes / (dur / 1e3), 1) if dur else None,
                   "vfio": p.vfio,
                   "device_precopy_bytes": self.sizes.upto(end_ns, self.devices) if self.sizes is not None else None})

    def _switchover(self, end_ns: int | None, method: str | None) -> None:
        if self.switchover_done:
            return
        if self.switchover_ns is None:  # SHUT/EOF without an END section seen (cut capture)
            self.switchover_ns = self.candidate_ns
            self._report_precopy()
        self.switchover_done = True
        self.emit({"kind": "watch_switchover", "ts_ns": self.switchover_ns, "end_ts_ns": end_ns,
                   "ts": None if self.switchover_ns is None else self.switchover_ns / 1e9,
                   "downtime_wire_ms": _ms(self.switchover_ns, end_ns), "method": method,
                   "precopy_passes": self.reported, "stopcopy_bytes": self.stopcopy["bytes"],
                   "stopcopy_pages": self.stopcopy["pages"], "vfio": self.stop_vfio})
