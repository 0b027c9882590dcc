# SPDX-License-Identifier: GPL-2.0-only
"""Byte-level scanner of text trace chunks: NumPy and Arrow, no Python object per line.

Spec: trace-dat.md §8 (tracefs and ``trace-cmd report`` text), qemu-trace-events.md
§1.2 (log backend).  The bulk path of the text readers
(:mod:`dissect.ftrace.text_bulk`) hands a chunk of ASCII lines to one of the
three form scanners here.  A scanner answers with the chunk's columns, or None
when any line of it is not one the per-line fast path of the reader
(``FtraceText._run`` and its siblings, ``text_tracefs`` / ``text_report`` / ``text_qemu``) reads as
an event: the checks below are the per-line code's own ``find`` searches,
done for every line at once, so a chunk the scanner takes gives exactly the
per-line events (``tests/test_ftrace_text_scan.py`` and ``test_ftrace_text_bulk.py``
hold both equal).

How: the chunk is one ``uint8`` array.  Each line's delimiters (``"] "``,
``": "``, ``":"``, ``"@"``) come from a short window near their usual column
or, for lines without one there, from one chunk-wide search and
``searchsorted``; short fixed-width windows (``as_strided`` views, one copy
per line) give timestamps and numbers digit by digit; thread prefixes and
event names are told apart by a hash of their bytes and checked byte for
byte, then parsed in Python once per distinct value; ``text`` and ``buf``
become Arrow ``large_string`` arrays cut straight from the chunk buffer.
Lines whose payload is not a marker (kernel events, raw data) go through the
reader's per-line payload decoder once per distinct payload.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dissect.ftrace.event import Event

__all__ = ["Block", "Cat", "Chunk", "trace_block", "report_block", "qemu_block"]

#: NUL bytes around the chunk, so every window of up to PAD bytes stays inside the array.
PAD = 128
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)
_I64 = 1 << 63
#: Arrow's default pool (mimalloc) was 40 % slower here for columns that all stay alive until the
#: frame is built (fresh memory per chunk); the C library's allocator reuses it well.
_POOL = pa.system_memory_pool()
#: Largest seconds value whose ns timestamp fits int64 (QEMU's wall clock has 10 digits).
_SEC_MAX = 9_223_372_035


class Chunk:
    """ASCII lines (separated by ``"\\n"``, no trailing newline) as one byte array.

    Positions are indices into ``a``; line ``j`` is ``a[start[j]:end[j]]``
    (``end`` is its newline), ``start[j] - PAD`` its offset in ``piece``.
    """

    def __init__(self, piece: bytes):
        self.piece = piece
        self.a = np.frombuffer(bytes(PAD) + piece + b"\n" + bytes(PAD), np.uint8)
        self.end = np.flatnonzero(self.a == 10)
        self.n = len(self.end)
        self.start = np.empty(self.n, np.int64)
        self.start[0] = PAD
        self.start[1:] = self.end[:-1] + 1
        self._pos: dict[bytes, np.ndarray] = {}

    def positions(self, pat: bytes) -> np.ndarray:
        """Where ``pat`` (1 or 2 bytes) starts in the chunk, ascending, then a sentinel past its end."""
        got = self._pos.get(pat)
        if got is None:
            a = self.a
            got = np.flatnonzero(a == pat[0])
            if len(pat) == 2:
                got = got[a[got + 1] == pat[1]]
            got = np.append(got, len(a))
            self._pos[pat] = got
        return got

    def first(self, pat: bytes, frm: np.ndarray, near: int = 0) -> np.ndarray:
        """Per line, the first position >= ``frm`` where ``pat`` starts (``str.find``).

        ``near``: look in the ``near`` bytes from ``frm`` first (cheaper than finding every
        occurrence in the chunk when the delimiter is close); rows without a hit there fall
        back to the chunk-wide search.
        """
        if near:
            w = self.window(frm, near)
            hit = w[:, :near - len(pat) + 1] == pat[0]
            if len(pat) == 2:
                hit &= w[:, 1:] == pat[1]
            col = np.argmax(hit, axis=1)
            found = hit[np.arange(len(col)), col]  # (cheaper than any(axis=1) on short rows)
            at = frm + col
            if not found.all():
                miss = ~found
                p = self.positions(pat)
                at[miss] = p[np.searchsorted(p, frm[miss])]
            return at
        p = self.positions(pat)
        return p[np.searchsorted(p, frm)]

    def non_space(self, frm: np.ndarray, near: int = 32) -> np.ndarray:
        """Per line, the first position >= ``frm`` that is not a space (``str.lstrip(" ")``)."""
        w = self.window(frm, near) != 32
        col = np.argmax(w, axis=1)
        found = w[np.arange(len(col)), col]
        at = frm + col
        if not found.all():
            miss = ~found
            a = self.a
            word = self.positions(b" ")[:-1]
            word = word[a[word + 1] != 32] + 1  # a non-space after a space
            at[miss] = np.append(word, len(a))[np.searchsorted(word, frm[miss])]
        return at

    def window(self, at: np.ndarray, width: int) -> np.ndarray:
        """Rows ``a[at[j]:at[j] + width]`` (a copy), for 0 <= at <= len(a) - width."""
        view = np.lib.stride_tricks.as_strided(self.a, (len(self.a) - width + 1, width), (1, 1),
                                               writeable=False)
        return view[at]

    def starts_with(self, at: np.ndarray, pat: bytes) -> np.ndarray:
        """Per row, whether ``a[at:at + len(pat)] == pat`` (``str.startswith``), eight bytes at a time."""
        width = -(-len(pat) // 8) * 8
        words = self.window(at, width).view(np.uint64)
        want = np.frombuffer(pat.ljust(width, b"\0"), np.uint64)
        keep = np.frombuffer((b"\xff" * len(pat)).ljust(width, b"\0"), np.uint64)
        ok = (words[:, 0] & keep[0]) == want[0]
        for j in range(1, width // 8):
            ok &= (words[:, j] & keep[j]) == want[j]
        return ok

    def digits(self, lo: np.ndarray, hi: np.ndarray, maxd: int) -> np.ndarray | None:
        """int64 values of the decimal digit runs ``a[lo:hi]`` (1..maxd digits), else None."""
        n = hi - lo
        if len(n) == 0:
            return np.zeros(0, np.int64)
        if n.min() < 1 or n.max() > maxd:
            return None
        d = self.window(hi - maxd, maxd) - np.uint8(48)  # a non-digit wraps to > 9
        unused = np.arange(maxd)[None, :] < (maxd - n)[:, None]
        d[unused] = 0
        if (d > 9).any():
            return None
        return d @ (10 ** np.arange(maxd - 1, -1, -1, dtype=np.int64))

    def factorize(self, lo: np.ndarray, hi: np.ndarray, maxw: int = 256) -> tuple[np.ndarray, list[bytes]] | None:
        """Codes and distinct values of the byte spans ``a[lo:hi]`` (each checked byte for byte)."""
        import pandas as pd

        n = hi - lo
        if len(n) == 0:
            return np.zeros(0, np.int64), []
        width = max(8, -(-int(n.max()) // 8) * 8)
        if width > min(maxw, PAD) or n.min() < 0:
            return None
        w = self.window(lo, width)
        w[np.arange(width)[None, :] >= n[:, None]] = 0
        words = w.view(np.uint64)
        h = n.astype(np.uint64)
        for c in range(words.shape[1]):
            h = h * _HASH_MUL ^ words[:, c]
        codes, uniq = pd.factorize(h)
        # codes number values in order of first appearance: the running maximum finds each first
        first = np.searchsorted(np.maximum.accumulate(codes), np.arange(len(uniq)))
        rep = first[codes]
        if not ((w == w[rep]).all() and (n == n[rep]).all()):
            return None  # a hash collision: let the per-line code decide
        return codes, [self.a[lo[j]:hi[j]].tobytes() for j in first.tolist()]

    def strings(self, lo: np.ndarray, hi: np.ndarray, rows: np.ndarray | None = None,
                extra_rows: np.ndarray | None = None, extra: list[str | None] | None = None,
                extra_codes: np.ndarray | None = None) -> pa.Array:
        """``large_string`` array of the spans ``a[lo:hi]``; where ``rows`` is False, null, or
        at ``extra_rows`` the strings ``extra[extra_codes]`` (None: null).

        The spans must be ordered and disjoint (``lo <= hi <= next lo``): the
        chunk buffer (with ``extra`` appended) is cut at them, an array of gaps
        and spans, and the spans are taken out in one Arrow ``take``.
        """
        n = len(lo)
        data = self.a
        off = np.empty(2 * n + 1, np.int64)
        off[0] = 0
        off[1::2] = lo
        off[2::2] = hi
        if n and not (np.diff(off) >= 0).all():
            raise ValueError("spans out of order")  # never reached: callers cut inside lines
        idx = np.arange(1, 2 * n, 2)
        mask = None if rows is None else ~rows
        if extra:
            if mask is None:
                mask = np.zeros(n, bool)
            enc = [(x or "").encode("utf-8", "surrogateescape") for x in extra]
            data = np.concatenate([data, np.frombuffer(b"".join(enc), np.uint8)])
            ends = np.cumsum(np.fromiter(map(len, enc), np.int64, len(enc))) + len(self.a)
            # after the last span: a gap up to the appended strings, then one entry per string
            off = np.concatenate([off, [len(self.a)], ends])
            idx[extra_rows] = 2 * n + 1 + extra_codes
            mask[extra_rows] = np.array([x is None for x in extra], bool)[extra_codes]  # type: ignore[index]
        cut = pa.Array.from_buffers(pa.large_string(), len(off) - 1, [None, pa.py_buffer(off), pa.py_buffer(data)])
        return pc.take(cut, pa.array(idx, mask=mask), memory_pool=_POOL)

    def text(self, lo: int, hi: int) -> str:
        """``piece[lo:hi]`` (positions in the piece, not in ``a``) as a string."""
        return self.piece[lo:hi].decode("ascii")




class Cat:
    """A column of repeated strings: ``values[codes[j]]`` (code -1: None)."""

    __slots__ = ("codes", "values")

    def __init__(self, codes: np.ndarray, values: list[Any]):
        self.codes, self.values = codes, values

    @classmethod
    def full(cls, n: int, value: Any) -> Cat:
        return cls(np.full(n, -1 if value is None else 0, np.int64), [] if value is None else [value])

    @classmethod
    def of(cls, values: Any) -> Cat:
        import pandas as pd

        codes, uniq = pd.factorize(np.asarray(values, object))
        return cls(codes.astype(np.int64), list(uniq))

    def set(self, rows: list[int], vals: list[Any]) -> None:
        index = {v: i for i, v in enumerate(self.values)}
        for j, v in zip(rows, vals):
            if v is None:
                self.codes[j] = -1
                continue
            c = index.get(v)
            if c is None:
                c = index[v] = len(self.values)
                self.values.append(v)
            self.codes[j] = c

    def __getitem__(self, j: int) -> Any:
        c = self.codes[j]
        return None if c < 0 else self.values[c]

    def head(self, m: int) -> Cat:
        return Cat(self.codes[:m], self.values)


@dataclass
class Block:
    """Columns of ``n`` consecutive events of one chunk.

    ``start``: each line's byte offset in its piece.  ``cpu`` None: None in
    every row.  ``text``: Arrow ``large_string`` (null = None).  ``buf``: the
    print buffer of marker rows (``fields = {ip: None, buf}``), null in the
    other rows, whose fields are in ``other``.
    """

    n: int
    start: np.ndarray
    ts: np.ndarray
    cpu: np.ndarray | None
    pid: np.ndarray
    comm: Cat
    system: Cat
    event: Cat
    text: pa.Array
    instance: Cat
    is_print: np.ndarray
    buf: pa.Array | None
    other: dict[int, dict[str, Any]] = field(default_factory=dict)

    def head(self, m: int) -> Block:
        """The first ``m`` rows."""
        return Block(m, self.start[:m], self.ts[:m], None if self.cpu is None else self.cpu[:m], self.pid[:m],
                     self.comm.head(m), self.system.head(m), self.event.head(m), self.text.slice(0, m),
                     self.instance.head(m), self.is_print[:m], None if self.buf is None else self.buf.slice(0, m),
                     {i: f for i, f in self.other.items() if i < m})


def _timestamps(c: Chunk, i: np.ndarray, k: np.ndarray, d: int) -> np.ndarray | None:
    """ns timestamps of the tokens ``<sec>.<frac>`` ending at ``k`` that start after the last
    space in ``[i, k)`` (``line.rfind(" ", i, k)``), with ``d`` digits after the point: the
    width the per-line fast path expects (a line of another width goes to its slow path)."""
    width = 10 + 1 + d + 1
    sp = c.window(k - width, width)[:, ::-1] == 32
    col = np.argmax(sp, axis=1)
    if not sp[np.arange(len(col)), col].all():
        return None  # a token longer than 10 + 1 + d digits
    s = k - 1 - col
    if (s < i).any() or not (c.a[k - d - 1] == 46).all():
        return None
    sec = c.digits(s + 1, k - d - 1, 10)
    frac = c.digits(k - d, k, d)
    if sec is None or frac is None or sec.max() > _SEC_MAX:
        return None
    return (sec * 10 ** d + frac) * 10 ** (9 - d)


def _precision(reader: Any, d: int) -> int:
    """``reader.precision_ns`` after a run of ``d``-digit stamps read by the fast path: set by
    the first event, then unchanged."""
    return 10 ** (9 - d) if reader.precision_ns is None else reader.precision_ns


def _heads(reader: Any, c: Chunk, lo: np.ndarray, hi: np.ndarray):
    """comm, pid, cpu, instance columns from the thread prefixes ``a[lo:hi]`` (the per-line
    code's ``_head`` once per distinct prefix), or None when one does not parse."""
    got = c.factorize(lo, hi)
    if got is None:
        return None
    codes, uniq = got
    comm, pid, cpu, inst = [], [], [], []
    for key in uniq:
        h = reader._head(key.decode("ascii"))
        if h is None:
            return None
        if h[1] >= _I64 or h[2] >= _I64:
            return None  # the per-line code keeps Python ints
        comm.append(h[0])
        pid.append(h[1])
        cpu.append(h[2])
        inst.append(h[3])
    icodes = np.array([-1 if x is None else j for j, x in enumerate(inst)], np.int64)[codes]
    return (Cat(codes, comm), np.array(pid, np.int64)[codes], np.array(cpu, np.int64)[codes], Cat(icodes, inst))


def _payloads(c: Chunk, lo: np.ndarray, hi: np.ndarray, decode: Any) -> tuple[list[Event], np.ndarray] | None:
    """The per-line payload decoder's events for the payloads ``a[lo:hi]``, once per distinct
    payload (kernel events repeat: the same tasks, files and states), and each row's index into
    them; None when the decoder refuses one.  ``decode(payload)`` sees only the payload: the
    decoders' fields, names and texts depend on nothing else."""
    seen: dict[str, int] = {}
    uniq: list[Event] = []
    codes = np.empty(len(lo), np.int64)
    text = c.text
    for j, (x, y) in enumerate(zip((lo - PAD).tolist(), (hi - PAD).tolist())):
        payload = text(x, y)
        u = seen.get(payload)
        if u is None:
            ev = decode(payload)
            if ev is None:
                return None
            u = seen[payload] = len(uniq)
            uniq.append(ev)
        codes[j] = u
    return uniq, codes


def _block(c: Chunk, ts: np.ndarray, cpu: np.ndarray, pid: np.ndarray, comm: Cat, inst: Cat, mark: np.ndarray,
           text_lo: np.ndarray, buf_lo: np.ndarray, evs: list[Event], ecodes: np.ndarray) -> Block:
    """A tracefs / report Block: marker rows from the chunk, the other rows from ``evs[ecodes]``."""
    n, end = c.n, c.end
    rows = np.flatnonzero(~mark)
    system, event = Cat.full(n, "ftrace"), Cat.full(n, "print")
    other: dict[int, dict[str, Any]] = {}
    extra: list[str | None] = []
    if len(rows):
        for col, vals in ((system, [e.system for e in evs]), (event, [e.event for e in evs])):
            probe = Cat(np.zeros(len(evs), np.int64), col.values)
            probe.set(list(range(len(evs))), vals)
            col.codes[rows] = probe.codes[ecodes]
        fields = [e.fields for e in evs]
        other = dict(zip(rows.tolist(), map(fields.__getitem__, ecodes.tolist())))
        extra = [e.text for e in evs]
    text = c.strings(np.where(mark, text_lo, end), end, mark, rows, extra, ecodes)
    buf = c.strings(np.where(mark, buf_lo, end + 1), end + 1, mark)
    return Block(n, c.start - PAD, ts, cpu, pid, comm, system, event, text, inst, mark, buf, other)


def trace_block(reader: Any, c: Chunk) -> Block | None:
    """tracefs ``trace`` lines: ``<head>] ... <sec>.<usec>: <payload>`` (``FtraceText._run``)."""
    st, end = c.start, c.end
    i = c.first(b"] ", st, 64)
    if not ((i > st) & (i + 1 < end)).all():
        return None
    k = c.first(b": ", i, 48)
    if not (k + 1 < end).all():
        return None
    got = _timestamps(c, i, k, reader._flen)
    heads = _heads(reader, c, st, i) if got is not None else None
    if heads is None:
        return None
    ts, prec = got, _precision(reader, reader._flen)
    comm, pid, cpu, inst = heads
    mark = c.starts_with(k + 2, b"tracing_mark_write: ")
    rows = np.flatnonzero(~mark)
    evs, ecodes = _payloads(c, k[rows] + 2, end[rows],
                            lambda rest: reader._other_event(0, 0, 0, None, rest, 0))  # type: ignore[misc]
    reader.precision_ns = prec
    return _block(c, ts, cpu, pid, comm, inst, mark, k + 2, k + 22, evs, ecodes)


def _report_payload(reader: Any, s: str) -> Event | None:
    """``"<event>:<rest>"`` through ``ReportText._event`` (the event ends at the first colon)."""
    j = s.index(":")
    return reader._event(0, (None, 0, 0, None), s[:j], s[j + 1:].lstrip(" "), 0)


def report_block(reader: Any, c: Chunk) -> Block | None:
    """``trace-cmd report`` lines: ``<head>] ... <sec>.<frac>: <event>: <rest>`` (``ReportText._run``)."""
    st, end = c.start, c.end
    i = c.first(b"] ", st, 64)
    if not ((i > st) & (i + 1 < end)).all():
        return None
    k = c.first(b": ", i, 48)
    if not (k + 1 < end).all():
        return None
    e = c.first(b":", k + 2, 48)
    if not (e < end).all():
        return None
    got = _timestamps(c, i, k, reader._flen)
    heads = _heads(reader, c, st, i) if got is not None else None
    if heads is None:
        return None
    ts, prec = got, _precision(reader, reader._flen)
    comm, pid, cpu, inst = heads
    r = c.non_space(e + 1)  # rest = line[e + 1:].lstrip(" ")
    body = c.first(b": ", r, 48)
    mark = (e - k == 7) & c.starts_with(k + 2, b"print") & ~c.starts_with(r, b"ip=") & (body + 1 < end)
    rows = np.flatnonzero(~mark)
    got2 = _payloads(c, k[rows] + 2, end[rows], lambda s: _report_payload(reader, s))
    if got2 is None:
        return None
    reader.precision_ns = prec
    return _block(c, ts, cpu, pid, comm, inst, mark, r, body + 2, *got2)


def qemu_block(reader: Any, c: Chunk) -> Block | None:
    """QEMU log lines ``<tid>@<sec>.<frac>:<name>[ <args>]`` (``QemuLog._run``)."""
    st, end = c.start, c.end
    at = c.first(b"@", st + 1)
    if not ((at < st + 12) & (at < end)).all():
        return None
    colon = c.first(b":", at, 32)
    dot = c.first(b".", at, 32)
    if not ((colon < end) & (dot < colon)).all():
        return None
    d = int(colon[0] - dot[0] - 1)
    if not 1 <= d <= 9 or not (colon - dot - 1 == d).all():
        return None
    tid = c.digits(st, at, 11)
    sec = c.digits(at + 1, dot, 10)
    frac = c.digits(dot + 1, colon, d)
    if tid is None or sec is None or frac is None or sec.max() > _SEC_MAX:
        return None
    got = c.factorize(colon + 1, np.minimum(c.first(b" ", colon + 1, 64), end))
    if got is None:
        return None
    codes, uniq = got
    names = [u.decode("ascii") for u in uniq]
    if not all(x.isidentifier() for x in names):
        return None
    if reader.precision_ns is None:
        reader.precision_ns = 10 ** (9 - d)
    n = c.n
    return Block(n, st - PAD, (sec * 10 ** d + frac) * 10 ** (9 - d), None, tid, Cat.full(n, None),
                 Cat.full(n, "qemu"), Cat(codes, names), c.strings(colon + 1, end), Cat.full(n, None),
                 np.zeros(n, bool), None)
