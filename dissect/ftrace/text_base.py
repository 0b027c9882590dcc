# SPDX-License-Identifier: GPL-2.0-only
"""The base of the text trace readers: chunked line input, the scanner hand-off, findings.

Spec: trace-dat.md §8 (text forms); the forms are in ``text_tracefs``,
``text_report`` and ``text_qemu``, the entry points and the decisions on
what text keeps in :mod:`dissect.ftrace.text`.
"""
from __future__ import annotations

import bisect
import gc
import os
import re
from itertools import chain
from typing import Any, BinaryIO, Iterator

import numpy as np

from dissect.common.findings import Finding
from dissect.ftrace import text_bulk as _bulk
from dissect.ftrace import text_scan as _scan
from dissect.ftrace.event import Event

__all__ = ["TextTrace", "CHUNK", "BULK_MIN", "MAX_LINE_FINDINGS", "RAW_MAX"]

#: Bytes read per chunk.
CHUNK = 1 << 22
#: Smallest piece the bulk path halves a non-fitting chunk down to.
BULK_MIN = 1 << 16
#: Unreadable lines reported one by one; the rest are counted in one finding.
MAX_LINE_FINDINGS = 100
#: Lines up to this many bytes keep their raw bytes (hex) in their ``text_invalid_utf8`` finding.
RAW_MAX = 4096

_KV_RE = re.compile(r"(\w+)=(\S*)")
_FTRACE_SYSTEM = {"print": "ftrace", "raw_data": "ftrace", "bprint": "ftrace", "bputs": "ftrace",
                  "function": "ftrace", "funcgraph_entry": "ftrace", "funcgraph_exit": "ftrace"}
_SCALE = {n: 10 ** (9 - n) for n in range(1, 10)}
_STATES = "SDTtZXxW"
_CACHE_MAX = 1 << 16


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

    Speed: chunks whose lines all fit the per-line fast path go through the
    form's byte scanner (:mod:`dissect.ftrace.text_scan`) and come out as the
    same events; the rest go line by line, where lines are split with ``str``
    methods, the per-thread prefix (comm, pid, cpu) is parsed once and cached,
    and only lines that do not fit the common shape go through the full
    regular expression (docs/trace-events.md, "Speed").
    """

    source = "ftrace-text"

    def __init__(self, path: str | os.PathLike | BinaryIO):
        self.path = path
        self._chunk: tuple[list[int], int] = ([0], 1)
        self._n_unparsed = 0
        self._first_suppressed: int | None = None
        self._n_invalid = 0
        self._first_invalid: int | None = None
        self._pending: list[Finding] = []  # text_invalid_utf8 findings of the chunk being read
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

        ``bulk=True`` (on a reader not yet iterated) turns scanned chunks
        straight into columns (:mod:`dissect.ftrace.text_bulk`, no ``Event``
        per line) and the rest line by line; ``bulk=False`` builds the frame
        from events read line by line (the reference). Both give the same
        frame and findings.
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

        out: dict[str, Any] = {k: int_array(v) if k in ("ts_ns", "cpu", "pid") else
                               category_of(v) if k in ("comm", "system", "event", "instance") else text_of(v)
                               for k, v in cols.items()}
        if fields == "dict":
            out["fields"] = flds
            return pd.DataFrame(out)
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
                out[col] = int_array(vals)
            else:
                out[col] = pd.Series(vals, dtype=object)
        # one constructor call: a column set at a time costs pandas an index insert and a block each
        return pd.DataFrame(out)

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
                    # every text form ends each line with a newline: a last line without one
                    # may be cut (a truncated file); what it holds is still read
                    self._pending.append(Finding("warning", "text_truncated_line",
                                                 f"the file ends without a newline: line {first} may be cut",
                                                 base, {"line": first}))
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
                    ascii_ = piece.isascii()
                    # byte lengths: the str lines' when all ASCII, else the bytes lines'
                    blines: Any = piece.decode("ascii").split("\n") if ascii_ else piece.split(b"\n")
                    lens = np.fromiter(map(len, blines), np.int64, len(blines)) + 1
                    ends = np.cumsum(lens)
                    starts = (ends - lens + base).tolist()
                    self._chunk = (starts, first)
                    lines = blines if ascii_ else self._decode_lines(piece, blines, starts)
                    self.lines += len(lines)
                    yield lines, starts
                    base += int(ends[-1])
                    first += len(lines)
                if last:
                    break
        finally:
            if fh is not self.path:
                fh.close()

    def _decode_lines(self, piece: bytes, blines: list[bytes], starts: list[int]) -> list[str]:
        """The lines of a non-ASCII piece as text.  Bytes that are not UTF-8 are rendered
        ``\\xNN`` (Python's ``backslashreplace``), the same text on every path (events, frame,
        JSON, Parquet); each such line gets a ``text_invalid_utf8`` finding (``_invalid_utf8``)."""
        try:
            return piece.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            pass
        out = []
        for bl, here in zip(blines, starts):
            try:
                out.append(bl.decode("utf-8"))
            except UnicodeDecodeError as e:
                out.append(bl.decode("utf-8", "backslashreplace"))
                self._invalid_utf8(bl, here, e.start)
        return out

    def _invalid_utf8(self, raw: bytes, off: int, column: int) -> None:
        """A line holding bytes that are not UTF-8: a finding with the line's raw bytes (hex, up to
        RAW_MAX bytes), so the ``\\xNN`` rendering, which a literal backslash in the same line
        could imitate, is never the only record; past MAX_LINE_FINDINGS such lines are counted
        and summed up in one finding at the end."""
        self._n_invalid += 1
        if self._n_invalid > MAX_LINE_FINDINGS:
            if self._first_invalid is None:
                self._first_invalid = off
            return
        bad = sum(1 for ch in raw.decode("utf-8", "surrogateescape") if "\udc80" <= ch <= "\udcff")
        line = self._lineno(off)
        self._pending.append(Finding("warning", "text_invalid_utf8",
                                     f"line {line}: {bad} byte(s) not UTF-8 (first at byte {column} of the "
                                     "line), shown as \\xNN", off,
                                     {"line": line, "column": column, "count": bad,
                                      "raw": raw.hex() if len(raw) <= RAW_MAX else None}))

    def _take_pending(self, upto: int | None) -> list[Finding]:
        """The pending findings at offsets <= ``upto`` (all of them for None), now in ``findings``."""
        if upto is None:
            out, self._pending = self._pending, []
        else:
            out = [f for f in self._pending if f.offset <= upto]  # type: ignore[operator]
            if not out:
                return out
            self._pending = [f for f in self._pending if f.offset > upto]  # type: ignore[operator]
        self.findings.extend(out)
        return out

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
        # a piece the scanner refused, or one holding non-ASCII bytes (the scanner reads ASCII
        # only): halved, so only the odd lines' small pieces go to the per-line code
        if len(piece) > BULK_MIN:
            mid = piece.find(b"\n", len(piece) // 2)
            if mid < 0:
                mid = piece.rfind(b"\n")
            if mid > 0:
                yield from self._bulk_pieces(piece[:mid])
                yield from self._bulk_pieces(piece[mid + 1:])
                return
        yield piece

    def _scanned(self, block: Any, base: int) -> Any:
        """What ``_run`` yields for a scanned Block: the Block itself (for the frame) or its events."""
        if self._blocks_out:
            return block
        return _Rows(_bulk.block_events(block, base, self.source))

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
        # text_invalid_utf8 / text_truncated_line findings are made when a piece is decoded; they
        # go out (and into ``findings``) just before the first item at or after their line, so
        # every path (per line, scanned pieces of any size) gives the same order
        for x in self._run():
            if self._pending:
                off = getattr(x, "offset", -1) if isinstance(x, (Event, Finding)) else None
                if off is None or off >= 0:
                    yield from self._take_pending(off)
            yield x
        yield from self._take_pending(None)
        if self._first_invalid is not None:
            more = self._n_invalid - MAX_LINE_FINDINGS
            f = Finding("warning", "text_invalid_utf8_lines",
                        f"{more} more lines holding bytes that are not UTF-8 (the first {MAX_LINE_FINDINGS} "
                        "are reported one by one)", self._first_invalid, {"count": more})
            self.findings.append(f)
            yield f
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
