# SPDX-License-Identifier: GPL-2.0-only
"""One migration as a Chrome trace-event JSON file, the JSON format ui.perfetto.dev opens.

The format is the documented Trace Event Format (``traceEvents`` of ``X`` complete
slices, ``i`` instants and ``M`` metadata naming processes and threads); written with
:mod:`json`, no hand-made binary.  Times are microseconds since the migration's first
timestamp (``otherData.t0_ns`` gives it back in epoch/trace nanoseconds) with three
decimals, so nanoseconds survive (an absolute epoch time in float µs would not).

Tracks (a process per kind, a thread per track):

- ``migration``: the wire downtime window; pre-copy iterations (args: bytes, pages);
  one track per VFIO device with its phases (setup … resume, args: bytes, source);
  counters of the cumulative bytes sent (RAM, each device's VFIO data);
- ``device records``: a track per device, one instant per record (args: size, phase,
  tag, parts, trailer);
- ``admin commands``: a slice per command from request to completion (its latency;
  args: tag, status, group member, parts bytes), per PF, in as many lanes as commands
  overlap;
- ``return path``: instants per message; ``stream commands``: QEMU's main-channel commands;
- one process per trace capture (host and guest, aligned on one clock by ``analysis.load``):
  its events as instants on their thread (comm/pid), QEMU events named by the QEMU event.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

PID_MIGRATION, PID_RECORDS, PID_ADMIN, PID_RP, PID_COMMANDS, PID_TRACE0 = 1, 2, 3, 4, 5, 10


def _clean(v: Any) -> Any:
    """A JSON-safe value (numpy scalars, NA, bytes, nested containers)."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [_clean(x) for x in v]
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


class _Writer:
    def __init__(self, t0: int):
        self.t0 = t0
        self.events: list[dict[str, Any]] = []
        self._named: set[tuple[int, int | None]] = set()

    def us(self, ns: Any) -> float:
        return round((int(ns) - self.t0) / 1000, 3)

    def process(self, pid: int, name: str, sort: int | None = None) -> None:
        if (pid, None) not in self._named:
            self._named.add((pid, None))
            self.events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})
            self.events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                                "args": {"sort_index": pid if sort is None else sort}})

    def thread(self, pid: int, tid: int, name: str) -> None:
        if (pid, tid) not in self._named:
            self._named.add((pid, tid))
            self.events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})

    def slice(self, pid: int, tid: int, name: str, start_ns: Any, end_ns: Any, cat: str,
              args: dict[str, Any] | None = None) -> None:
        ts = self.us(start_ns)
        self.events.append({"ph": "X", "name": name, "cat": cat, "pid": pid, "tid": tid, "ts": ts,
                            "dur": round(max(self.us(end_ns) - ts, 0.0), 3), "args": _clean(args or {})})

    def instant(self, pid: int, tid: int, name: str, ns: Any, cat: str, args: dict[str, Any] | None = None) -> None:
        self.events.append({"ph": "i", "s": "t", "name": name, "cat": cat, "pid": pid, "tid": tid,
                            "ts": self.us(ns), "args": _clean(args or {})})


def _valid(v: Any) -> bool:
    return v is not None and v is not pd.NA and not (isinstance(v, float) and math.isnan(v))


def lanes(spans: Iterable[tuple[int, int]]) -> list[int]:
    """Lane per span (in the given order) so that spans in one lane never overlap: complete
    slices on one thread must nest, and two admin commands may be outstanding at once."""
    ends: list[int] = []
    out = []
    for start, end in spans:
        for i, e in enumerate(ends):
            if e <= start:
                ends[i] = end
                out.append(i)
                break
        else:
            ends.append(end)
            out.append(len(ends) - 1)
    return out


def _phases(w: _Writer, m: "Migration") -> None:
    ph = m.phases
    if not len(ph):
        return
    ph = ph[ph["start_ns"].notna() & ph["end_ns"].notna()].sort_values(["device", "start_ns"], kind="stable")
    for d_i, dev in enumerate(dict.fromkeys(ph["device"].fillna(""))):
        d = ph[ph["device"].fillna("") == dev]
        spans = [(int(s), int(e)) for s, e in zip(d["start_ns"], d["end_ns"])]
        for (s, e), lane, (_, r) in zip(spans, lanes(spans), d.iterrows()):
            tid = 100 + 10 * d_i + lane
            w.thread(PID_MIGRATION, tid, f"phases {dev or 'migration'}" + (f" ({lane + 1})" if lane else ""))
            w.slice(PID_MIGRATION, tid, str(r["phase"]), s, e, "phase",
                    {"device": r["device"], "bytes": r["bytes"], "source": r["source"]})


def _iterations(w: _Writer, m: "Migration") -> None:
    it = m.iterations
    if not len(it):
        return
    first = it.drop_duplicates("iteration").dropna(subset=["ts_ns", "end_ns"])
    w.thread(PID_MIGRATION, 2, "pre-copy iterations")
    cols = [c for c in ("ram_bytes", "ram_normal_pages", "ram_dirty_pages", "precopy_pass", "source") if c in it]
    for _, r in first.iterrows():
        w.slice(PID_MIGRATION, 2, f"iteration {int(r['iteration'])}", r["ts_ns"], r["end_ns"], "iteration",
                {c: r[c] for c in cols})


def _downtime(w: _Writer, m: "Migration") -> None:
    from analysis import metrics as M

    win = M.downtime_window(m)
    if win.get("start_ns") is None or win.get("end_ns") is None:
        return
    w.thread(PID_MIGRATION, 1, "downtime (wire)")
    d = M.downtime(m)
    w.slice(PID_MIGRATION, 1, "downtime (wire)", win["start_ns"], win["end_ns"], "downtime",
            {"downtime_wire_ms": d.get("downtime_wire_ms"), "downtime_qemu_ms": d.get("downtime_qemu_ms"),
             "breakdown_ms": d.get("downtime_breakdown_ms"), "method": d.get("downtime_wire_method")})


def _bytes_counters(w: _Writer, m: "Migration") -> None:
    """Cumulative bytes on the wire as counter tracks: RAM sections, each device's VFIO chunks."""
    from analysis.report.figures import cumulative_bytes

    for label, ts, cum in cumulative_bytes(m):
        for t, v in zip(ts.tolist(), cum.tolist()):
            w.events.append({"ph": "C", "name": f"{label} sent", "pid": PID_MIGRATION, "tid": 0, "ts": w.us(t),
                             "args": {"bytes": int(v)}})


def _records(w: _Writer, m: "Migration") -> None:
    r = m.records
    if not len(r):
        return
    r = r[r["ts_ns"].notna()]
    for i, dev in enumerate(dict.fromkeys(r["device"].fillna(""))):
        w.thread(PID_RECORDS, i + 1, f"records {dev}")
        d = r[r["device"].fillna("") == dev]
        for _, x in d.iterrows():
            w.instant(PID_RECORDS, i + 1, f"record {int(x['index'])}", x["ts_ns"], "record",
                      {"record_size_bytes": x["record_size_bytes"], "phase": x["phase"], "tag": x["tag_name"],
                       "parts": x["n_parts"], "trailer_bytes": x["trailer_bytes"], "offset": x["offset"]})


def _admin(w: _Writer, m: "Migration") -> None:
    a = m.admin
    if not len(a):
        return
    a = a[a["request_ts_ns"].notna() & a["completion_ts_ns"].notna()].sort_values("request_ts_ns", kind="stable")
    for o_i, owner in enumerate(dict.fromkeys(a["owner"].fillna(""))):
        d = a[a["owner"].fillna("") == owner]
        spans = [(int(s), int(e)) for s, e in zip(d["request_ts_ns"], d["completion_ts_ns"])]
        for (s, e), lane, (_, x) in zip(spans, lanes(spans), d.iterrows()):
            tid = 10 * (o_i + 1) + lane
            w.thread(PID_ADMIN, tid, f"PF {owner}" + (f" ({lane + 1})" if lane else ""))
            w.slice(PID_ADMIN, tid, str(x["opcode_name"] or x["opcode"]), s, e, "admin",
                    {"tag": x["tag"], "status": x["status_name"], "group_member_id": x["group_member_id"],
                     "latency_ns": x["latency_ns"], "parts_bytes": x["parts_bytes"]})


def _messages(w: _Writer, m: "Migration") -> None:
    rp = m.rp_messages
    if len(rp) and rp["ts_ns"].notna().any():
        w.thread(PID_RP, 1, "return-path messages")
        for _, x in rp[rp["ts_ns"].notna()].iterrows():
            w.instant(PID_RP, 1, str(x.get("type_name")), x["ts_ns"], "rp_message",
                      {k: x.get(k) for k in ("flow", "offset", "value") if k in x})
    cm = m.commands
    if len(cm) and "ts_ns" in cm and cm["ts_ns"].notna().any():
        w.thread(PID_COMMANDS, 1, "main-channel commands")
        for _, x in cm[cm["ts_ns"].notna()].iterrows():
            w.instant(PID_COMMANDS, 1, str(x.get("cmd_name")), x["ts_ns"], "command",
                      {k: x.get(k) for k in ("flow", "offset", "value") if k in x})


def _trace_events(w: _Writer, m: "Migration") -> None:
    ev = m.events
    if not len(ev):
        return
    ev = ev[ev["ts_ns"].notna()]
    for i, cap in enumerate(sorted(ev["capture"].dropna().unique())):
        pid = PID_TRACE0 + i
        c = m.captures[int(cap)] if int(cap) < len(m.captures) else None
        side = f" ({c.side})" if c is not None and c.side else ""
        w.process(pid, f"trace events: {c.path.name if c is not None else cap}{side}")
        d = ev[ev["capture"] == cap]
        for _, x in d.iterrows():
            tid = int(x["pid"]) if _valid(x["pid"]) else 0
            w.thread(pid, tid, f"{x['comm'] if _valid(x['comm']) else 'thread'} {tid}")
            name = x["qemu_event"] if _valid(x["qemu_event"]) else f"{x['system']}:{x['event']}"
            w.instant(pid, tid, str(name), x["ts_ns"], "qemu" if _valid(x["qemu_event"]) else "kernel",
                      {"args": x["args"] if isinstance(x["args"], dict) and x["args"] else None,
                       "device": x["device"], "cpu": x["cpu"]})


def trace_events(m: "Migration") -> dict[str, Any]:
    """The trace as a JSON-ready dict (``traceEvents`` + ``otherData``)."""
    t0 = m.t0_ns or 0
    w = _Writer(t0)
    for pid, name in ((PID_MIGRATION, "migration"), (PID_RECORDS, "device records"), (PID_ADMIN, "admin commands"),
                      (PID_RP, "return path"), (PID_COMMANDS, "stream commands")):
        w.process(pid, name)
    _downtime(w, m)
    _iterations(w, m)
    _phases(w, m)
    _bytes_counters(w, m)
    _records(w, m)
    _admin(w, m)
    _messages(w, m)
    _trace_events(w, m)
    from analysis import __version__

    return {"traceEvents": w.events, "displayTimeUnit": "ms",
            "otherData": {"generator": f"migtrace {__version__}", "run_id": m.run_id, "t0_ns": t0,
                          "captures": [str(c.path) for c in m.captures]}}


def write_perfetto(m: "Migration", path: Path | str) -> Path:
    """Write the trace JSON to ``path``; returns it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        json.dump(trace_events(m), f, separators=(",", ":"), allow_nan=False)
    return p
