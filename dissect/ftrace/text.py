# SPDX-License-Identifier: GPL-2.0-only
"""Readers of text traces: tracefs ``trace``/``trace_pipe``, ``trace-cmd report``, QEMU's log backend.

Spec: trace-dat.md §7 (print/raw_data), §8 (text forms), §9 (clocks);
qemu-trace-events.md §1.2 (log backend).  Each reader yields the same
:class:`~dissect.ftrace.event.Event` objects as the trace.dat reader, with
the precision the text carries, plus :class:`Finding` s for lines it cannot
read (with line number and byte offset) and for lost events.

What text keeps and what it loses (decisions, docs/trace-events.md):

- Timestamps: tracefs and default ``trace-cmd report`` print microseconds,
  rounded to nearest (the kernel and trace-cmd add 500 ns before dividing);
  ``report -t`` prints nanoseconds.  ``ts_ns`` is the printed value scaled
  to ns; ``precision_ns`` on the reader says how fine it is.
- ``print``: ``fields = {ip, buf}`` where ``ip`` is None (text prints the
  symbol, not the address; the symbol stays in ``text``) and ``buf`` the
  marker text plus the ``"\\n"`` the kernel always stores; ``text`` is what
  trace-cmd renders after ``print:``: ``"tracing_mark_write: <text>"``.
  A marker holding a newline continues on the following, unprefixed line
  (tracefs prints it that way); it is joined back.
- ``raw_data``: ``fields = {id, buf}`` (buf bytes, padded to 4 as stored);
  ``text`` in trace-cmd's form ``"# <id> <hex bytes>"``.
- Other events: ``fields`` from ``key=value`` pairs (decimal integers as
  ints); a payload that is not ``key=value`` is kept in ``text``;
  ``system`` is known only for ftrace's own events and ``sched_*``.
- QEMU log lines: ``system "qemu"``, ``event`` = the QEMU event name,
  ``pid`` = the thread id, ``text`` = ``"<event> <args>"`` (the same text
  the ftrace backend would have written), ``ts_ns`` wall clock (None for
  lines without a timestamp prefix).
"""
from __future__ import annotations

import bisect
import calendar
import gc
import os
import re
from datetime import datetime
from itertools import chain
from typing import Any, BinaryIO, Iterator

import numpy as np

from dissect.common.findings import Finding
from dissect.ftrace import text_bulk as _bulk
from dissect.ftrace import text_scan as _scan
from dissect.ftrace.event import Event

__all__ = ["read_ftrace_text", "read_report_text", "read_qemu_log", "read_text", "TextTrace",
           "FtraceText", "ReportText", "QemuLog", "sniff_text_kind", "events_for_writer"]

CHUNK = 1 << 22
#: Smallest piece the bulk path halves a non-fitting chunk down to.
BULK_MIN = 1 << 16
#: Unreadable lines reported one by one; the rest are counted in one finding.
MAX_LINE_FINDINGS = 100

# tracefs trace / trace_pipe:
#   <comm>-<pid> [(<tgid>)] [<cpu>] [<flags>] <secs>.<usecs>: <payload>
_FTRACE_RE = re.compile(
    r"^(?:[ \t]*(.+?)-(\d+)[ \t]+(?:\([ \t]*([\d-]+)\)[ \t]+)?\[(\d+)\][ \t]+(?:(\S{4,5})[ \t]+)?"
    r"(\d+)(?:\.(\d+))?:[ \t]([^\n]*)|([^\n]*))$", re.M)
# trace-cmd report:
#   [<instance>:] <comm>-<pid> [<cpu>] [<flags>] <secs>.<frac>: <event>: <payload>
_REPORT_RE = re.compile(
    r"^(?:(?:([^\s:]+):)?[ \t]*(.+?)-(\d+)[ \t]+(?:\([ \t]*([\d-]+)\)[ \t]+)?\[(\d+)\][ \t]+"
    r"(?:(\S{4,5})[ \t]+)?(\d+)(?:\.(\d+))?:[ \t]+([^\s:]+):[ \t]*([^\n]*)|([^\n]*))$", re.M)
# QEMU log backend: "tid@sec.usec:event args", "<ISO-8601> event args", "event args"
_QEMU_RE = re.compile(
    r"^(?:(?:(\d+)@(\d+)\.(\d+):|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z? )([A-Za-z_][A-Za-z0-9_]*)"
    r"(?: ([^\n]*))?|([a-z][A-Za-z0-9_]*)(?: ([^\n]*))?|([^\n]*))$", re.M)

_LOST_RE = re.compile(r"^CPU:(\d+) \[LOST (\d+) EVENTS\]\s*$")
_DROPPED_RE = re.compile(r"^CPU:(\d+) \[(?:(\d+) )?EVENTS DROPPED\]\s*$")
_RAW_TRACE_RE = re.compile(r"^# ([0-9a-fA-F]+) buf:((?: [0-9a-fA-F]{2})*) ?$")
_RAW_REPORT_RE = re.compile(r"^# ([0-9a-fA-F]+)((?: [0-9a-fA-F]{2})*) ?$")
# trace-cmd report -l (latency format): "<comm8>-<pid> <cpu><flags> <ts>: <event>: <payload>"
_REPORT_LAT_RE = re.compile(
    r"^(?:([^\s:]+):)?[ \t]*(.+?)-(\d+)[ \t]+(\d+)([^\s\d]\S{3,4})[ \t]+(\d+)\.(\d+):[ \t]+([^\s:]+):[ \t]*(.*)$")
_RAW_R_RE = re.compile(r"^id=([0-9a-fA-F]+) buf=")
_KV_RE = re.compile(r"(\w+)=(\S*)")
_SWITCH_TRACE_RE = re.compile(
    r"^prev_comm=(.*) prev_pid=(-?\d+) prev_prio=(-?\d+) prev_state=(\S+) ==> "
    r"next_comm=(.*) next_pid=(-?\d+) next_prio=(-?\d+)$")
_SWITCH_REPORT_RE = re.compile(r"^(.*):(-?\d+) \[(-?\d+)\] (\S+) ==> (.*):(-?\d+) \[(-?\d+)\]$")
_ENTRIES_RE = re.compile(r"^# entries-in-buffer/entries-written: (\d+)/(\d+)\s+#P:(\d+)")
_FTRACE_SYSTEM = {"print": "ftrace", "raw_data": "ftrace", "bprint": "ftrace", "bputs": "ftrace",
                  "function": "ftrace", "funcgraph_entry": "ftrace", "funcgraph_exit": "ftrace"}
_SCALE = {n: 10 ** (9 - n) for n in range(1, 10)}
_STATES = "SDTtZXxW"


def _system_of(event: str) -> str | None:
    s = _FTRACE_SYSTEM.get(event)
    if s is None and event.startswith("sched_"):
        return "sched"
    return s


def _kv_fields(payload: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in _KV_RE.findall(payload):
        if v.isdigit() or (v[:1] == "-" and v[1:].isdigit()):
            out[k] = int(v)
        else:
            out[k] = v
    return out


def _state_value(s: str) -> int:
    """sched_switch prev_state letters (``S``, ``D|W``, ``R``, ``R+``) → the bit value."""
    v = 0
    for ch in s.split("|"):
        i = _STATES.find(ch[:1])
        if i >= 0:
            v |= 1 << i
    return v


def _switch_fields(g: tuple[str, ...]) -> dict[str, Any]:
    return {"prev_comm": g[0], "prev_pid": int(g[1]), "prev_prio": int(g[2]),
            "prev_state": _state_value(g[3]), "next_comm": g[4], "next_pid": int(g[5]),
            "next_prio": int(g[6])}


def _raw_event_fields(ident: str, hexbytes: str) -> dict[str, Any]:
    return {"id": int(ident, 16), "buf": bytes.fromhex(hexbytes.replace(" ", ""))}


def _raw_text(f: dict[str, Any]) -> str:
    return f"# {f['id']:x}" + "".join(f" {b:02x}" for b in f["buf"])


class _Rows:
    """A scanned Block's events, passed up from ``_run`` whole (see ``TextTrace.__iter__``)."""

    __slots__ = ("rows",)

    def __init__(self, rows: Iterator[Event]):
        self.rows = rows


class TextTrace:
    """Base of the text readers: an iterator of :class:`Event` | :class:`Finding`.

    After (or during) iteration: ``findings`` (all findings so far),
    ``lost_events`` (cpu → count), ``lines`` (lines read), ``header``
    (what the header block said), ``precision_ns`` (1000 for µs text, 1 for
    ns text; None until the first timestamp).

    Speed: lines are split with ``str`` methods and the per-thread prefix
    (comm, pid, cpu) is parsed once and cached; only lines that do not fit
    the common shape go through the full regular expression.
    """

    source = "ftrace-text"

    def __init__(self, path: str | os.PathLike | BinaryIO):
        self.path = path
        self._chunk: tuple[list[int], int] = ([0], 1)
        self._n_unparsed = 0
        self._first_suppressed: int | None = None
        self.findings: list[Finding] = []
        self.lost_events: dict[int, int] = {}
        self.header: dict[str, Any] = {}
        self.lines = 0
        self.precision_ns: int | None = None
        self._it: Iterator[Event | Finding] | None = None
        self._bulk: Any = None  # the form's scanner (text_scan), when chunks go through it
        self._blocks_out = False  # dataframe(bulk=True): scanned Blocks are yielded as they are
        self._per_line = False  # dataframe(bulk=False): the reference path, every line by the per-line code
        # digits after the point the per-line fast path expects (adopted from the last line the slow
        # path read); the scanner takes only chunks of that width, as the fast path would
        self._flen = 6

    def __iter__(self) -> Iterator[Event | Finding]:
        # a C iterator (chain) over scanned rows and per-line items: a scanned row costs no
        # Python frame of ours, only its Event; the same object each time
        if self._it is None:
            if not self._per_line:
                self._bulk = self._bulk_parser
            self._it = chain.from_iterable(self._runs())
        return self._it

    def _runs(self) -> Iterator[Any]:
        for x in self._all():
            yield x.rows if type(x) is _Rows else (x,)

    def __next__(self) -> Event | Finding:
        return next(iter(self))

    def events(self) -> Iterator[Event]:
        """Only the events (findings still collect in ``findings``)."""
        for x in self:
            if isinstance(x, Event):
                yield x

    def dataframe(self, fields: str = "columns", bulk: bool = True):
        """The events as a pandas DataFrame, in the layout of ``TraceDat.dataframe``.

        Columns ``ts_ns``, ``cpu``, ``pid``, ``comm``, ``system``, ``event``,
        ``text``, ``instance`` (repeated strings as categoricals), then one
        column per field name (``fields="columns"``; a clash with a fixed
        column gets a ``field_`` prefix) or one ``fields`` column of dicts
        (``fields="dict"``). Findings stay in ``findings``.

        ``bulk=True`` (on a reader not yet iterated) parses chunks of common
        lines in bulk (:mod:`dissect.ftrace.text_bulk`, no ``Event`` per
        line) and the rest line by line; ``bulk=False`` builds the frame from
        the per-line events. Both give the same frame and findings.
        """
        import pandas as pd

        if bulk and self._it is None:
            from dissect.ftrace import text_bulk

            self._blocks_out = True
            # millions of short-lived tuples and strings: the cyclic GC has nothing to find
            gc_was = gc.isenabled()
            gc.disable()
            try:
                return text_bulk.frame(list(self), fields)
            finally:
                self._blocks_out = False
                if gc_was:
                    gc.enable()
        if self._it is None:
            self._per_line = True

        fixed = ("ts_ns", "cpu", "pid", "comm", "system", "event", "text", "instance")
        cols: dict[str, list[Any]] = {k: [] for k in fixed}
        flds: list[dict[str, Any]] = []
        for ev in self.events():
            for k in fixed:
                cols[k].append(getattr(ev, k))
            flds.append(ev.fields)
        from dissect.ftrace.text_bulk import category_of, int_array, text_of

        df = pd.DataFrame({k: int_array(v) if k in ("ts_ns", "cpu", "pid") else
                           category_of(v) if k in ("comm", "system", "event", "instance") else text_of(v)
                           for k, v in cols.items()})
        if fields == "dict":
            df["fields"] = flds
            return df
        # raw_data's bytes buf gets its own column next to print's text buf (as TraceDat's frame)
        events = cols["event"]
        rows = [{("raw_data_buf" if k == "buf" and e == "raw_data" else k): v for k, v in f.items()}
                for f, e in zip(flds, events)]
        names: dict[str, None] = {}
        for f in rows:
            for k in f:
                names.setdefault(k, None)
        for k in names:
            vals = [f.get(k) for f in rows]
            col = ("field_" + k) if k in fixed else k
            if all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in vals):
                df[col] = int_array(vals)
            else:
                df[col] = pd.Series(vals, dtype=object)
        return df

    # -- chunked line input -------------------------------------------------
    def _line_chunks(self) -> Iterator[tuple[list[str], list[int]]]:
        """(lines, byte offset of each line), whole lines only.

        Offsets come from the bytes (exact for any encoding), summed by
        NumPy; ``_lineno`` maps an offset of the current chunk back to its
        line number for findings.
        """
        fh = open(self.path, "rb") if not hasattr(self.path, "read") else self.path  # type: ignore[arg-type]
        try:
            carry = b""
            base = 0
            first = 1
            while True:
                data = fh.read(CHUNK)
                last = not data
                if last:
                    if not carry:
                        break
                    piece, carry = carry, b""
                else:
                    data = carry + data if carry else data
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        carry = data
                        continue
                    piece, carry = data[:cut], data[cut + 1:]
                for sub in (self._bulk_pieces(piece) if self._bulk is not None else (piece,)):
                    if not isinstance(sub, bytes):
                        block, used = sub
                        self.lines += block.n
                        yield None, (block, base)  # type: ignore[misc]
                        base += used
                        first += block.n
                        continue
                    piece = sub
                    lines = piece.decode("utf-8", "surrogateescape").split("\n")
                    # byte lengths: the str lines' when all ASCII, else the bytes lines'
                    blines = lines if piece.isascii() else piece.split(b"\n")
                    lens = np.fromiter(map(len, blines), np.int64, len(blines)) + 1
                    ends = np.cumsum(lens)
                    starts = (ends - lens + base).tolist()
                    self._chunk = (starts, first)
                    self.lines += len(lines)
                    yield lines, starts
                    base += int(ends[-1])
                    first += len(lines)
                if last:
                    break
        finally:
            if fh is not self.path:
                fh.close()

    def _bulk_pieces(self, piece: bytes) -> Iterator[bytes | tuple[Any, int]]:
        """``piece`` as (bulk Block, bytes it covers) and plain pieces for the per-line code.

        A Block covers every line but the last of a piece whose lines the form's scanner
        (:mod:`dissect.ftrace.text_scan`) all reads as events; a piece that does not fit is halved
        (down to BULK_MIN bytes), so a header, a ``[LOST n EVENTS]`` line or an odd line
        costs the bulk path one small piece.
        """
        if piece.isascii():
            cut = piece.rfind(b"\n")
            # the last line is scanned too (it must not be a continuation of the one before)
            # but read by the per-line code, so a continuation in the next piece joins it
            block = self._bulk(self, _scan.Chunk(piece)) if cut > 0 else None
            if block is not None:
                yield block.head(block.n - 1), cut + 1
                yield piece[cut + 1:]
                return
            if len(piece) > BULK_MIN:
                mid = piece.find(b"\n", len(piece) // 2)
                if mid < 0:
                    mid = piece.rfind(b"\n")
                if mid > 0:
                    yield from self._bulk_pieces(piece[:mid])
                    yield from self._bulk_pieces(piece[mid + 1:])
                    return
        yield piece

    def _lineno(self, off: int) -> int:
        starts, first = self._chunk
        return first + bisect.bisect_left(starts, off)

    def _finding(self, sev: str, code: str, msg: str, off: int, **ctx: Any) -> Finding:
        f = Finding(sev, code, msg, off, {"line": self._lineno(off), **ctx})  # type: ignore[arg-type]
        self.findings.append(f)
        return f

    def _lost(self, cpu: int, count: int | None, off: int) -> Finding:
        if count is not None:
            self.lost_events[cpu] = self.lost_events.get(cpu, 0) + count
        what = f"{count} events" if count is not None else "events (count not recorded)"
        return self._finding("warning", "lost_events", f"CPU {cpu}: the kernel lost {what} here",
                             off, cpu=cpu, count=count)

    def _raw_clock(self, off: int) -> Finding | None:
        """The first timestamp without a decimal point: a counter clock, not ns (once per file)."""
        if self.header.get("raw_clock"):
            return None
        self.header["raw_clock"] = True
        return self._finding("info", "text_raw_clock",
                             "timestamps without a decimal point: a counter trace clock (counter, "
                             "x86-tsc, ...); ts_ns holds the raw counts, not nanoseconds", off)

    def _unparsed(self, line: str, off: int, what: str, severity: str = "warning") -> Finding | None:
        """A finding for an unreadable line; past MAX_LINE_FINDINGS they are counted instead
        and summed up in one finding at the end (no flood, no silent loss)."""
        self._n_unparsed += 1
        if self._n_unparsed > MAX_LINE_FINDINGS:
            if self._first_suppressed is None:
                self._first_suppressed = off
            return None
        return self._finding(severity, "text_line_unparsed",
                             f"line {self._lineno(off)}: not {what}: {line[:80]!r}", off)

    def _all(self) -> Iterator[Event | Finding]:
        head = self._peek()
        if b"\0" in head:
            at = head.index(b"\0")
            f = Finding("error", "text_binary_input",
                        f"NUL bytes in the first {len(head)} bytes: not a {self.source} text trace; "
                        "nothing decoded", at, {"line": head.count(b"\n", 0, at) + 1})
            self.findings.append(f)
            yield f
            return
        yield from self._run()
        if self._first_suppressed is not None:
            more = self._n_unparsed - MAX_LINE_FINDINGS
            f = Finding("warning", "text_lines_unparsed",
                        f"{more} more unreadable lines (the first {MAX_LINE_FINDINGS} are reported "
                        "one by one)", self._first_suppressed, {"count": more})
            self.findings.append(f)
            yield f

    def _peek(self) -> bytes:
        if not hasattr(self.path, "read"):
            with open(self.path, "rb") as f:  # type: ignore[arg-type]
                return f.read(8192)
        fh = self.path
        if hasattr(fh, "seekable") and fh.seekable():  # type: ignore[union-attr]
            pos = fh.tell()  # type: ignore[union-attr]
            head = fh.read(8192)  # type: ignore[union-attr]
            fh.seek(pos)  # type: ignore[union-attr]
            return head
        return b""

    def _run(self) -> Iterator[Event | Finding]:  # pragma: no cover - abstract
        raise NotImplementedError


_HEAD_TRACE = re.compile(r"^[ \t]*(.+?)-(\d+)[ \t]+(?:\([ \t]*([\d-]+)\)[ \t]+)?\[(\d+)$")
_HEAD_REPORT = re.compile(r"^(?:([^\s:]+):)?[ \t]*(.+?)-(\d+)[ \t]+(?:\([ \t]*([\d-]+)\)[ \t]+)?\[(\d+)$")
_CACHE_MAX = 1 << 16


class FtraceText(TextTrace):
    """tracefs ``trace`` / ``trace_pipe`` text (trace-dat.md §8.1)."""

    source = "ftrace-text"
    _head_re = _HEAD_TRACE
    _bulk_parser = staticmethod(_scan.trace_block)

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
                if self._blocks_out:
                    yield starts[0]  # type: ignore[index]
                else:
                    yield _Rows(_bulk.block_events(*starts, src))  # type: ignore[misc]
                continue
            for line, here in zip(lines, starts):
                i = line.find("] ")
                k = line.find(": ", i) if i > 0 else -1
                if k > 0:
                    key = line[:i]
                    hc = heads_get(key)
                    if hc is None:
                        hm = _HEAD_TRACE.match(key)
                        hc = (hm.group(1), int(hm.group(2)), int(hm.group(4))) if hm else False
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
                                comm, pid, cpu = hc
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


class ReportText(TextTrace):
    """``trace-cmd report`` text, default (µs) or ``-t`` (ns) timestamps (trace-dat.md §8.2)."""

    source = "trace-cmd-report"
    _head_re = _HEAD_REPORT
    _bulk_parser = staticmethod(_scan.report_block)

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
                if self._blocks_out:
                    yield starts[0]  # type: ignore[index]
                else:
                    yield _Rows(_bulk.block_events(*starts, src))  # type: ignore[misc]
                continue
            for line, here in zip(lines, starts):
                i = line.find("] ")
                k = line.find(": ", i) if i > 0 else -1
                e = line.find(":", k + 2) if k > 0 else -1
                if e > 0:
                    key = line[:i]
                    hc = heads_get(key)
                    if hc is None:
                        hm = _HEAD_REPORT.match(key)
                        hc = (hm.group(2), int(hm.group(3)), int(hm.group(5)), hm.group(1)) if hm else False
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


class QemuLog(TextTrace):
    """QEMU ``log`` backend text (qemu-trace-events.md §1.2)."""

    source = "qemu-log"
    _head_re = None
    _bulk_parser = staticmethod(_scan.qemu_block)

    def _run(self) -> Iterator[Event | Finding]:
        src = self.source
        iso_cache: dict[str, int] = {}
        scale_of = _SCALE
        for lines, starts in self._line_chunks():
            if lines is None:  # a scanned Block: as it is (dataframe) or as events
                if self._blocks_out:
                    yield starts[0]  # type: ignore[index]
                else:
                    yield _Rows(_bulk.block_events(*starts, src))  # type: ignore[misc]
                continue
            for line, here in zip(lines, starts):
                at = line.find("@", 1, 12)
                if at > 0:
                    colon = line.find(":", at)
                    dot = line.find(".", at, colon)
                    name, sp, args = line[colon + 1:].partition(" ")
                    scale = scale_of.get(colon - dot - 1) if dot > 0 else None
                    if scale is not None and name.isidentifier():
                        try:
                            tid = int(line[:at])
                            ts = int(line[at + 1:dot] + line[dot + 1:colon]) * scale
                        except ValueError:
                            tid = -1
                        if tid >= 0:
                            if self.precision_ns is None:
                                self.precision_ns = scale
                            yield Event(src, ts, None, tid, None, "qemu", name, {},
                                        line[colon + 1:], here)
                            continue
                if not line:
                    continue
                m = _QEMU_RE.match(line)
                tid, sec, usec, iso, isofrac, name, args, bname, bargs, other = m.groups()  # type: ignore[union-attr]
                if name is not None and iso is not None:
                    secs = iso_cache.get(iso)
                    if secs is None:
                        try:
                            secs = calendar.timegm(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S").timetuple())
                        except ValueError:
                            f = self._unparsed(line, here, "a QEMU trace line (bad date)")
                            if f is not None:
                                yield f
                            continue
                        iso_cache[iso] = secs
                    scale = scale_of.get(len(isofrac), 1) if isofrac else 1_000_000_000
                    ts = secs * 1_000_000_000 + (int(isofrac) * scale if isofrac else 0)
                    if self.precision_ns is None or scale > self.precision_ns:
                        self.precision_ns = scale
                    yield Event(src, ts, None, None, None, "qemu", name, {},
                                name + " " + args if args is not None else name, here)
                elif name is not None:
                    scale = scale_of.get(len(usec), 1)
                    if self.precision_ns is None:
                        self.precision_ns = scale
                    yield Event(src, int(sec + usec) * scale, None, int(tid), None, "qemu", name, {},
                                name + " " + args if args is not None else name, here)
                elif bname is not None:
                    yield Event(src, None, None, None, None, "qemu", bname, {},  # type: ignore[arg-type]
                                bname + " " + bargs if bargs is not None else bname, here)
                else:
                    f = self._unparsed(line, here, "a QEMU trace line", "info")
                    if f is not None:
                        yield f


def read_ftrace_text(path: str | os.PathLike | BinaryIO) -> FtraceText:
    """Events and findings of a tracefs ``trace`` / ``trace_pipe`` capture."""
    return FtraceText(path)


def read_report_text(path: str | os.PathLike | BinaryIO) -> ReportText:
    """Events and findings of ``trace-cmd report`` text (``-t`` or not)."""
    return ReportText(path)


def read_qemu_log(path: str | os.PathLike | BinaryIO) -> QemuLog:
    """Events and findings of a QEMU log-backend file."""
    return QemuLog(path)


_READERS = {"ftrace-text": FtraceText, "trace-cmd-report": ReportText, "qemu-log": QemuLog}


def sniff_text_kind(head: bytes) -> str | None:
    """Which text form ``head`` (the first KB of a file) is, or None."""
    text = head.decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines()[:64] if ln.strip()]
    if not lines:
        return None
    first = lines[0].strip()
    if re.match(r"^cpus=\d+$", first) or first.startswith("version ="):
        return "trace-cmd-report"
    if first.startswith("# tracer:"):
        return "ftrace-text"
    body = [ln for ln in lines if not ln.startswith("#")]
    votes = {k: 0 for k in _READERS}
    for ln in body:
        m = _FTRACE_RE.match(ln)
        if m and m.group(1) is not None:
            votes["ftrace-text"] += 1
        m = _REPORT_RE.match(ln)
        if m and m.group(2) is not None and not ln.lstrip().startswith(("tracing_mark_write", "#")):
            votes["trace-cmd-report"] += 1
        m = _QEMU_RE.match(ln)
        if m and (m.group(6) or m.group(8)):
            votes["qemu-log"] += 1
    best = max(votes, key=lambda k: votes[k])
    return best if votes[best] * 2 > len(body) else None


def read_text(path: str | os.PathLike, kind: str | None = None) -> TextTrace:
    """The reader for ``kind`` (detected from the content when None)."""
    if kind is None:
        with open(path, "rb") as f:
            kind = sniff_text_kind(f.read(8192))
        if kind is None:
            raise ValueError(f"{path}: not a known text trace form")
    return _READERS[kind](path)


def events_for_writer(events: Iterator[Event | Finding] | list[Event | Finding],
                      long_size: int = 8) -> Iterator[Event]:
    """Text-read events made ready for :func:`dissect.ftrace.writer.write_trace_dat`.

    Text has the symbol of a print's ``ip``, the binary format an address: a
    marker's ``tracing_mark_write`` becomes the writer's address for it (its
    written kallsyms resolves it back, so ``trace-cmd report`` and
    KernelShark show the same text); findings are dropped.
    """
    from dissect.ftrace.writer import tracing_mark_write_ip

    ip = tracing_mark_write_ip(long_size)
    for ev in events:
        if not isinstance(ev, Event):
            continue
        if ev.event == "print" and not isinstance(ev.fields.get("ip"), int):
            ev = Event(ev.source, ev.ts_ns, ev.cpu, ev.pid, ev.comm, ev.system, ev.event,
                       dict(ev.fields, ip=ip), ev.text, ev.offset, ev.instance)
        yield ev
