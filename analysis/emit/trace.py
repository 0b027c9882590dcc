# SPDX-License-Identifier: GPL-2.0-only
"""Trace captures → contract ``event`` objects (json-lines.md "Traces").

``emit_trace_dat`` reads trace.dat with :mod:`dissect.ftrace.tracedat`;
``emit_text`` reads tracefs ``trace``/``trace_pipe`` text, ``trace-cmd
report`` text and QEMU log-backend text with :mod:`dissect.ftrace.text`.
Both give every event ``qemu = {event, args, …}`` when its text is a QEMU
trace event of the catalogue (the built-in one, or ``--trace-events FILE``),
turn admin-capture records carried in ``raw_data`` events (admin-capture.md,
container 2) into ``admin_cmd``/``admin_result`` objects, and report lost
events and unreadable input as findings in stream order.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable, Iterator

from dissect.common.findings import Finding
from dissect.ftrace.event import Event
from dissect.qemu.trace_events import Catalogue, QemuEvent

_TEXT_KINDS = ("ftrace-text", "trace-cmd-report", "qemu-log")


def catalogue_for(args: argparse.Namespace | None) -> tuple[Catalogue, list[Finding]]:
    """The catalogue ``--trace-events FILE`` names, else the built-in one."""
    path = getattr(args, "trace_events", None) if args is not None else None
    if not path:
        return Catalogue.default(), []
    try:
        cat = Catalogue.from_file(path)
    except OSError as e:
        return Catalogue.default(), [Finding(
            "error", "trace_events_unreadable",
            f"{path}: {e.strerror or e}; using the built-in catalogue", None)]
    found = list(cat.findings)
    if len(cat) == 0:
        found.append(Finding("error", "trace_events_empty",
                             f"{path}: no trace-event declarations; using the built-in catalogue", None))
        return Catalogue.default(), found
    return cat, found


def qemu_text(ev: Event) -> str | None:
    """The QEMU trace line an event carries, if any.

    ftrace ``print`` events hold it in ``buf`` (the marker text; QEMU's
    ftrace backend writes one line per event); QEMU log lines in ``text``.
    """
    if ev.system == "ftrace" and ev.event == "print":
        buf = ev.fields.get("buf")
        if isinstance(buf, str):
            return buf[:-1] if buf.endswith("\n") else buf
        return None
    if ev.system == "qemu":
        return ev.text
    return None


class TraceEmitter:
    """Turns a stream of :class:`Event` | :class:`Finding` into contract objects."""

    def __init__(self, catalogue: Catalogue, precision_ns: int | None = None, kallsyms: Any = None):
        self.catalogue = catalogue
        self.precision_ns = precision_ns
        self.kallsyms = kallsyms  # a trace.dat's Kallsyms: names the ``ip`` of print events (extra ip_symbol)
        self._admin: Any = None
        self._admin_failed = False
        self._unmatched_reported: set[str] = set()
        self._raw_without_payload = False

    def _admin_decoder(self) -> Any:
        if self._admin is None and not self._admin_failed:
            try:
                from analysis.emit.admin import AdminTraceDecoder
            except ImportError:  # pragma: no cover - engineer A's module is part of the tree
                self._admin_failed = True
                return None
            self._admin = AdminTraceDecoder()
        return self._admin

    def objects(self, ev: Event) -> Iterator[dict[str, Any]]:
        obj = ev.to_json()
        if self.kallsyms is not None and isinstance(ev.fields.get("ip"), int):
            sym = self.kallsyms.lookup(ev.fields["ip"])
            if sym is not None:
                obj["ip_symbol"] = sym
        obj["qemu"] = None
        if self.precision_ns is not None:
            obj["ts_precision_ns"] = self.precision_ns
        text = qemu_text(ev)
        q: QemuEvent | None = self.catalogue.parse(text) if text else None
        if q is not None:
            obj["qemu"] = q.to_json()
        yield obj
        if q is not None:
            if not q.matched and q.event not in self._unmatched_reported:
                # once per event name: a QEMU build whose format differs from every known variant
                self._unmatched_reported.add(q.event)
                yield Finding("warning", "qemu_event_unmatched",
                              f"{q.event}: arguments match none of the {len(self.catalogue.declarations(q.event))} "
                              f"known format(s); kept as raw text (load that QEMU's trace-events-all "
                              f"with --trace-events)", ev.offset,
                              {"event": q.event, "ts_ns": ev.ts_ns, "text": text}).to_json()
            if q.truncated:
                yield Finding("info", "qemu_event_truncated",
                              f"{q.event}: line at the ftrace backend's 511-byte limit; "
                              f"the last arguments may be cut", ev.offset,
                              {"event": q.event, "ts_ns": ev.ts_ns, "args_parsed": sorted(q.args)}).to_json()
        elif ev.event == "raw_data" and ev.system == "ftrace":
            if "buf" not in ev.fields:
                if not self._raw_without_payload:
                    self._raw_without_payload = True
                    yield Finding("warning", "raw_data_payload_missing",
                                  "raw_data events without their payload (trace-cmd report -R prints it as "
                                  "a C string); admin records carried in them cannot be decoded", ev.offset,
                                  {"ts_ns": ev.ts_ns}).to_json()
                return
            dec = self._admin_decoder()
            if dec is not None:
                buf = ev.fields.get("buf") or b""
                yield from dec.raw_data(ev.pid if ev.pid is not None else -1, ev.ts_ns or 0,
                                        int(ev.fields.get("id") or 0), bytes(buf))

    def close(self) -> Iterator[dict[str, Any]]:
        if self._admin is not None:
            yield from self._admin.close()

    def run(self, items: Iterable[Event | Finding]) -> Iterator[dict[str, Any]]:
        for x in items:
            if isinstance(x, Finding):
                yield x.to_json()
            else:
                yield from self.objects(x)
        yield from self.close()


def emit_trace_dat(path: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """trace.dat (v6/v7) → events, admin objects, findings (E's reader)."""
    from dissect.ftrace.tracedat import read_trace_dat

    cat, found = catalogue_for(args)
    for f in found:
        yield f.to_json()
    td = read_trace_dat(path)
    try:
        em = TraceEmitter(cat, kallsyms=td.kallsyms)
        done = 0

        def fresh() -> Iterator[dict[str, Any]]:
            nonlocal done
            new = td.findings[done:]
            done += len(new)
            return (f.to_json() for f in new)

        yield from fresh()
        for ev in td.events():
            if len(td.findings) != done:
                yield from fresh()
            yield from em.objects(ev)
        yield from fresh()
        yield from em.close()
    finally:
        td.close()


def text_kind(path: Path, args: argparse.Namespace | None) -> str:
    """``--as`` when it names a text kind, else what ``decode`` detected (cli.md), else a sniff."""
    kind = getattr(args, "as_kind", None) if args is not None else None
    if kind in _TEXT_KINDS:
        return kind
    try:
        from analysis.cli.detect import UnknownFormat, detect

        detected: str | None = detect(path)
    except (ImportError, OSError, UnknownFormat):
        detected = None
    if detected in _TEXT_KINDS:
        return detected  # type: ignore[return-value]
    from dissect.ftrace.text import sniff_text_kind

    with open(path, "rb") as f:
        sniffed = sniff_text_kind(f.read(8192))
    return sniffed if sniffed in _TEXT_KINDS else "ftrace-text"


def emit_text(path: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """ftrace ``trace`` text, ``trace-cmd report`` text or QEMU log text → events and findings."""
    from dissect.ftrace.text import read_text

    cat, found = catalogue_for(args)
    for f in found:
        yield f.to_json()
    reader = read_text(path, text_kind(path, args))
    em = TraceEmitter(cat)
    for x in reader:
        if isinstance(x, Finding):
            yield x.to_json()
            continue
        em.precision_ns = reader.precision_ns
        yield from em.objects(x)
    yield from em.close()
