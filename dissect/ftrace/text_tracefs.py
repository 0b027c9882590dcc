# SPDX-License-Identifier: GPL-2.0-only
"""tracefs ``trace`` / ``trace_pipe`` text (trace-dat.md §8.1)."""
from __future__ import annotations

import re
from typing import Any, Iterator

from dissect.common.findings import Finding
from dissect.ftrace import text_scan as _scan
from dissect.ftrace.event import Event
from dissect.ftrace.text_base import (_CACHE_MAX, _KV_RE, _SCALE, TextTrace, _kv_fields, _raw_event_fields,
                                      _raw_text, _switch_fields, _system_of)

__all__ = ["FtraceText"]

# tracefs trace / trace_pipe:
#   <comm>-<pid> [(<tgid>)] [<cpu>] [<flags>] <secs>.<usecs>: <payload>
_FTRACE_RE = re.compile(
    r"^(?:[ \t]*(.+?)-(\d+)[ \t]+(?:\([ \t]*([\d-]+)\)[ \t]+)?\[(\d+)\][ \t]+(?:(\S{4,5})[ \t]+)?"
    r"(\d+)(?:\.(\d+))?:[ \t]([^\n]*)|([^\n]*))$", re.M)
_HEAD_TRACE = re.compile(r"^[ \t]*(.+?)-(\d+)[ \t]+(?:\([ \t]*([\d-]+)\)[ \t]+)?\[(\d+)$")
_LOST_RE = re.compile(r"^CPU:(\d+) \[LOST (\d+) EVENTS\]\s*$")
_RAW_TRACE_RE = re.compile(r"^# ([0-9a-fA-F]+) buf:((?: [0-9a-fA-F]{2})*) ?$")
_SWITCH_TRACE_RE = re.compile(
    r"^prev_comm=(.*) prev_pid=(-?\d+) prev_prio=(-?\d+) prev_state=(\S+) ==> "
    r"next_comm=(.*) next_pid=(-?\d+) next_prio=(-?\d+)$")
_ENTRIES_RE = re.compile(r"^# entries-in-buffer/entries-written: (\d+)/(\d+)\s+#P:(\d+)")


class FtraceText(TextTrace):
    """tracefs ``trace`` / ``trace_pipe`` text (trace-dat.md §8.1)."""

    source = "ftrace-text"
    _bulk_parser = staticmethod(_scan.trace_block)

    @staticmethod
    def _head(key: str) -> tuple[str, int, int, None] | None:
        """(comm, pid, cpu, instance) of a thread prefix ``<comm>-<pid> [(<tgid>)] [<cpu>``."""
        hm = _HEAD_TRACE.match(key)
        return (hm.group(1), int(hm.group(2)), int(hm.group(4)), None) if hm else None

    def _run(self) -> Iterator[Event | Finding]:
        src = self.source
        heads: dict[str, Any] = {}
        heads_get = heads.get
        Ev = Event
        prev: Event | None = None   # held back: the next line may continue a marker's text
        header_done = False
        # digits after the decimal point of this file's timestamps: 6 in tracefs text; a line
        # with another width takes the slow path, which adopts its width for the next lines
        flen = self._flen
        scale = _SCALE[flen]
        for lines, starts in self._line_chunks():
            if lines is None:  # a scanned Block: as it is (dataframe) or as events
                if prev is not None:
                    yield prev
                    prev = None
                header_done = True
                yield self._scanned(*starts)  # type: ignore[misc]
                continue
            for line, here in zip(lines, starts):
                # The thread-prefix cache and timestamp parse below stand in text_report.py too (inline on
                # purpose: per-line loop); each reader's lines are held equal to its bulk twin (text_scan)
                # by tests/test_ftrace_text_bulk.py::test_every_layout_same_frame_both_paths.
                i = line.find("] ")
                k = line.find(": ", i) if i > 0 else -1
                if k > 0:
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
                                comm, pid, cpu, _ = hc
                                if line.startswith("tracing_mark_write: ", k + 2):
                                    body = line[k + 22:]
                                    ev = Ev(src, ts, cpu, pid, comm, "ftrace", "print",
                                            {"ip": None, "buf": body + "\n"},
                                            "tracing_mark_write: " + body, here)
                                else:
                                    ev = self._other_event(ts, cpu, pid, comm, line[k + 2:], here)
                                if prev is not None:
                                    yield prev
                                elif not header_done and self.precision_ns is None:
                                    self.precision_ns = scale
                                prev = ev
                                header_done = True
                                continue
                # everything else: header, lost events, continuation, garbage
                if not line:
                    continue
                if line[0] == "#":
                    if not header_done:
                        self._header_line(line)
                    continue
                lm = _LOST_RE.match(line)
                if lm:
                    if prev is not None:
                        yield prev
                        prev = None
                    yield self._lost(int(lm.group(1)), int(lm.group(2)), here)
                    continue
                m = _FTRACE_RE.match(line)
                if m is not None and m.group(1) is not None and m.group(8) is not None:
                    ev = self._slow_event(m, here)
                    if ev is not None:
                        if m.group(7) is not None:
                            flen = self._flen = len(m.group(7))
                            scale = _SCALE[flen]
                        header_done = True
                        if prev is not None:
                            yield prev
                        if m.group(7) is None:
                            f = self._raw_clock(here)
                            if f is not None:
                                yield f
                        prev = ev
                        continue
                if (prev is not None and prev.event == "print" and isinstance(prev.fields.get("buf"), str)
                        and not (k > 0 and heads_get(line[:i]))):
                    # a marker with an embedded newline continues on an unprefixed line
                    prev.fields["buf"] = prev.fields["buf"][:-1] + "\n" + line + "\n"
                    prev.text = prev.text + "\n" + line  # type: ignore[operator]
                    continue
                if prev is not None:
                    yield prev
                    prev = None
                f = self._unparsed(line, here, "an ftrace text line")
                if f is not None:
                    yield f
        if prev is not None:
            yield prev

    def _slow_event(self, m: re.Match, off: int) -> Event | None:
        comm, pid, _tgid, cpu, _flags, sec, frac, rest = m.groups()[:8]
        scale = _SCALE.get(len(frac)) if frac is not None else 1
        if scale is None:
            return None
        ts = int(sec + (frac or "")) * scale
        if self.precision_ns is None or scale > self.precision_ns:
            self.precision_ns = scale
        if rest.startswith("tracing_mark_write: "):
            body = rest[20:]
            return Event(self.source, ts, int(cpu), int(pid), comm, "ftrace", "print",
                         {"ip": None, "buf": body + "\n"}, "tracing_mark_write: " + body, off)
        return self._other_event(ts, int(cpu), int(pid), comm, rest, off)

    def _other_event(self, ts: int, cpu: int, pid: int, comm: str, rest: str, off: int) -> Event:
        if rest[:2] == "# ":
            rm = _RAW_TRACE_RE.match(rest)
            if rm:
                f = _raw_event_fields(rm.group(1), rm.group(2))
                return Event(self.source, ts, cpu, pid, comm, "ftrace", "raw_data", f, _raw_text(f), off)
        name, sep, payload = rest.partition(": ")
        if name.startswith("tracing_mark_write+"):  # options/sym-offset: "tracing_mark_write+0x3a/0x2a0"
            return Event(self.source, ts, cpu, pid, comm, "ftrace", "print",
                         {"ip": None, "buf": payload + "\n"}, "tracing_mark_write: " + payload, off)
        if not sep or " " in name:
            fm = re.match(r"^(\S+) <-(\S+)$", rest)
            if fm:  # function tracer
                return Event(self.source, ts, cpu, pid, comm, "ftrace", "function",
                             {"ip": None, "parent_ip": None}, rest, off)
            name, payload = rest.rstrip(":"), ""
        if name == "sched_switch":
            sm = _SWITCH_TRACE_RE.match(payload)
            if sm:
                # text stays None: the contract's text is for print-like events (as E's reader)
                return Event(self.source, ts, cpu, pid, comm, "sched", name, _switch_fields(sm.groups()),
                             None, off)
        if payload and _KV_RE.search(payload) is None:
            # an event whose print format is not key=value, or trace_printk output
            # ("<function>: <text>", indistinguishable here): keep the rendered text
            return Event(self.source, ts, cpu, pid, comm, _system_of(name), name, {}, payload, off)
        return Event(self.source, ts, cpu, pid, comm, _system_of(name), name, _kv_fields(payload), None, off)

    def _header_line(self, line: str) -> None:
        if line.startswith("# tracer:"):
            self.header["tracer"] = line.split(":", 1)[1].strip()
            return
        em = _ENTRIES_RE.match(line)
        if em:
            self.header["entries_in_buffer"] = int(em.group(1))
            self.header["entries_written"] = int(em.group(2))
            self.header["cpus"] = int(em.group(3))
        elif "TGID" in line:
            self.header["tgid_column"] = True
        elif "|||||" in line:
            self.header["flags_width"] = 5
        elif "||||" in line and "flags_width" not in self.header:
            self.header["flags_width"] = 4
