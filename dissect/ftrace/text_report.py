# SPDX-License-Identifier: GPL-2.0-only
"""``trace-cmd report`` text, default (µs) or ``-t`` (ns) timestamps (trace-dat.md §8.2)."""
from __future__ import annotations

import re
from typing import Any, Iterator

from dissect.common.findings import Finding
from dissect.ftrace import text_scan as _scan
from dissect.ftrace.event import Event
from dissect.ftrace.text_base import (_CACHE_MAX, _SCALE, TextTrace, _kv_fields, _raw_event_fields, _raw_text,
                                      _switch_fields, _system_of)

__all__ = ["ReportText"]

# trace-cmd report:
#   [<instance>:] <comm>-<pid> [<cpu>] [<flags>] <secs>.<frac>: <event>: <payload>
_REPORT_RE = re.compile(
    r"^(?:(?:([^\s:]+):)?[ \t]*(.+?)-(\d+)[ \t]+(?:\([ \t]*([\d-]+)\)[ \t]+)?\[(\d+)\][ \t]+"
    r"(?:(\S{4,5})[ \t]+)?(\d+)(?:\.(\d+))?:[ \t]+([^\s:]+):[ \t]*([^\n]*)|([^\n]*))$", re.M)
_HEAD_REPORT = re.compile(r"^(?:([^\s:]+):)?[ \t]*(.+?)-(\d+)[ \t]+(?:\([ \t]*([\d-]+)\)[ \t]+)?\[(\d+)$")
_DROPPED_RE = re.compile(r"^CPU:(\d+) \[(?:(\d+) )?EVENTS DROPPED\]\s*$")
_EMPTY_CPU_RE = re.compile(r"^CPU (\d+) is empty$")
_RAW_REPORT_RE = re.compile(r"^# ([0-9a-fA-F]+)((?: [0-9a-fA-F]{2})*) ?$")
# trace-cmd report -l (latency format): "<comm8>-<pid> <cpu><flags> <ts>: <event>: <payload>"
_REPORT_LAT_RE = re.compile(
    r"^(?:([^\s:]+):)?[ \t]*(.+?)-(\d+)[ \t]+(\d+)([^\s\d]\S{3,4})[ \t]+(\d+)\.(\d+):[ \t]+([^\s:]+):[ \t]*(.*)$")
_RAW_R_RE = re.compile(r"^id=([0-9a-fA-F]+) buf=")
_SWITCH_REPORT_RE = re.compile(r"^(.*):(-?\d+) \[(-?\d+)\] (\S+) ==> (.*):(-?\d+) \[(-?\d+)\]$")


class ReportText(TextTrace):
    """``trace-cmd report`` text, default (µs) or ``-t`` (ns) timestamps (trace-dat.md §8.2)."""

    source = "trace-cmd-report"
    _bulk_parser = staticmethod(_scan.report_block)

    @staticmethod
    def _head(key: str) -> tuple[str, int, int, str | None] | None:
        """(comm, pid, cpu, instance) of a thread prefix ``[<instance>:] <comm>-<pid> [(<tgid>)] [<cpu>``."""
        hm = _HEAD_REPORT.match(key)
        return (hm.group(2), int(hm.group(3)), int(hm.group(5)), hm.group(1)) if hm else None

    def _run(self) -> Iterator[Event | Finding]:
        src = self.source
        heads: dict[str, Any] = {}
        heads_get = heads.get
        Ev = Event
        prev: Event | None = None
        flen = self._flen   # timestamp digits after the point: 6, or 9 with -t (adopted)
        scale = _SCALE[flen]
        for lines, starts in self._line_chunks():
            if lines is None:  # a scanned Block: as it is (dataframe) or as events
                if prev is not None:
                    yield prev
                    prev = None
                yield self._scanned(*starts)  # type: ignore[misc]
                continue
            for line, here in zip(lines, starts):
                # The thread-prefix cache and timestamp parse below stand in text_tracefs.py too (inline on
                # purpose: per-line loop); each reader's lines are held equal to its bulk twin (text_scan)
                # by tests/test_ftrace_text_bulk.py::test_every_layout_same_frame_both_paths.
                i = line.find("] ")
                k = line.find(": ", i) if i > 0 else -1
                e = line.find(":", k + 2) if k > 0 else -1
                if e > 0:
                    key = line[:i]
                    hc = heads_get(key)
                    if hc is None:
                        hc = self._head(key) or False
                        if len(heads) > _CACHE_MAX:
                            heads.clear()
                        heads[key] = hc
                    if hc:
                        tsx = line[line.rfind(" ", i, k) + 1:k]
                        dot = len(tsx) - flen - 1
                        if dot > 0 and tsx[dot] == ".":
                            try:
                                ts = int(tsx.replace(".", "", 1)) * scale
                            except ValueError:
                                ts = -1
                            if ts >= 0:
                                if e - k == 7 and line.startswith("print", k + 2):
                                    rest = line[e + 1:].lstrip(" ")
                                    if rest[:3] == "ip=":  # -R: "ip=<sym> buf=<text>"
                                        sym, _, body = rest[3:].partition(" buf=")
                                    else:
                                        sym, _, body = rest.partition(": ")
                                    comm, pid, cpu, inst = hc
                                    ev = Ev(src, ts, cpu, pid, comm, "ftrace", "print",
                                            {"ip": None, "buf": body + "\n"}, sym + ": " + body, here, inst)
                                else:
                                    ev = self._event(ts, hc, line[k + 2:e], line[e + 1:].lstrip(" "), here)
                                if ev is not None:
                                    if prev is not None:
                                        yield prev
                                    elif self.precision_ns is None:
                                        self.precision_ns = scale
                                    prev = ev
                                    continue
                if not line:
                    continue
                o = line.strip()
                if o.startswith("cpus="):
                    if o[5:].isdigit():
                        self.header["cpus"] = int(o[5:])
                    continue
                if o.startswith("version ="):
                    v = o.split("=", 1)[1].strip()
                    self.header["version"] = int(v) if v.isdigit() else v
                    continue
                em = _EMPTY_CPU_RE.match(o)
                if em:  # older trace-cmd prints these before ``cpus=``: a CPU without data
                    self.header.setdefault("empty_cpus", []).append(int(em.group(1)))
                    continue
                dm = _DROPPED_RE.match(o)
                if dm:
                    if prev is not None:
                        yield prev
                        prev = None
                    cnt = int(dm.group(2)) if dm.group(2) else None
                    yield self._lost(int(dm.group(1)), cnt, here)
                    continue
                m = _REPORT_RE.match(line)
                if m is not None and m.group(2) is not None and m.group(10) is not None:
                    inst, comm, pid, _tgid, cpu, _flags, sec, frac, event, rest = m.groups()[:10]
                else:
                    m = _REPORT_LAT_RE.match(line)
                    if m is not None:
                        inst, comm, pid, cpu, _flags, sec, frac, event, rest = m.groups()
                if m is not None:
                    sc = _SCALE.get(len(frac)) if frac is not None else 1
                    if sc is not None:
                        ev = self._event(int(sec + (frac or "")) * sc, (comm, int(pid), int(cpu), inst),
                                         event, rest, here)
                        if ev is not None:
                            if frac is not None:
                                flen, scale = len(frac), sc
                                self._flen = flen
                            if self.precision_ns is None or sc > self.precision_ns:
                                self.precision_ns = sc
                            if prev is not None:
                                yield prev
                            if frac is None:
                                f = self._raw_clock(here)
                                if f is not None:
                                    yield f
                            prev = ev
                            continue
                if prev is not None and prev.event == "print" and isinstance(prev.fields.get("buf"), str):
                    prev.fields["buf"] = prev.fields["buf"][:-1] + "\n" + line + "\n"
                    prev.text = prev.text + "\n" + line  # type: ignore[operator]
                    continue
                if prev is not None and prev.event == "raw_data" and "buf" not in prev.fields:
                    continue  # -R printed the binary payload as a string, newline bytes included
                if prev is not None:
                    yield prev
                    prev = None
                f = self._unparsed(line, here, "a trace-cmd report line")
                if f is not None:
                    yield f
        if prev is not None:
            yield prev

    def _event(self, ts: int, hc: tuple[str, int, int, str | None], event: str, rest: str,
               off: int) -> Event | None:
        comm, pid, cpu, inst = hc
        src = self.source
        if event[:1] in (" ", "("):
            # --ts-diff puts "(+<delta>)" and padding between the timestamp and the event
            event = event.rpartition(")")[2].strip() if event.lstrip()[:1] == "(" else event.strip()
        if event == "print":
            if rest[:3] == "ip=":  # -R: "ip=<sym> buf=<text>"
                sym, _, body = rest[3:].partition(" buf=")
            else:
                sym, _, body = rest.partition(": ")
            return Event(src, ts, cpu, pid, comm, "ftrace", "print", {"ip": None, "buf": body + "\n"},
                         sym + ": " + body, off, inst)
        if event == "raw_data":
            rm = _RAW_REPORT_RE.match(rest)
            if rm is None:
                im = _RAW_R_RE.match(rest)
                if im is None:
                    return None
                # -R prints the binary payload as a C string: only the id survives
                return Event(src, ts, cpu, pid, comm, "ftrace", "raw_data", {"id": int(im.group(1), 16)},
                             None, off, inst)
            f = _raw_event_fields(rm.group(1), rm.group(2))
            return Event(src, ts, cpu, pid, comm, "ftrace", "raw_data", f, _raw_text(f), off, inst)
        if event in ("bprint", "bputs"):
            sym, _, body = rest.partition(": ")
            return Event(src, ts, cpu, pid, comm, "ftrace", event, {"ip": None}, f"{sym}: {body}", off, inst)
        if event == "sched_switch":
            sm = _SWITCH_REPORT_RE.match(rest)
            if sm:
                return Event(src, ts, cpu, pid, comm, "sched", event, _switch_fields(sm.groups()), None, off, inst)
        return Event(src, ts, cpu, pid, comm, _system_of(event), event, _kv_fields(rest), None, off, inst)
