# SPDX-License-Identifier: GPL-2.0-only
"""NumPy and Arrow views of a trace.dat record buffer, for the columnar DataFrame
(:mod:`dissect.ftrace.frame`): aligned integer reads at record offsets, byte slices as
Arrow binary/string arrays without a Python object per row, and :class:`_Spans` (text
slices of a shared buffer not copied yet).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class _Words:
    """Reads of aligned little/big-endian integers at record offsets of one buffer."""

    def __init__(self, buf, big: bool):
        self.e = ">" if big else "<"
        self.u8 = np.frombuffer(buf, dtype=np.uint8) if len(buf) else np.zeros(0, np.uint8)
        self.u32 = np.frombuffer(buf, dtype=self.e + "u4", count=len(buf) // 4) if len(buf) >= 4 else None

    def read(self, offs: np.ndarray, width: int, signed: bool = False) -> np.ndarray:
        kind = ("i" if signed else "u") + str(width)
        if len(offs) == 0:
            return np.zeros(0, dtype=np.int64)
        if self.u32 is not None and width in (4, 8) and not (offs & 3).any():
            w = offs >> 2
            if width == 4:
                v = self.u32[w]
                return v.view(self.e + kind) if signed else v
            lo, hi = self.u32[w].astype(np.uint64), self.u32[w + 1].astype(np.uint64)
            if self.e == ">":
                lo, hi = hi, lo
            v = lo | (hi << np.uint64(32))
            return v.view(np.int64) if signed else v
        idx = offs[:, None] + np.arange(width, dtype=np.int64)[None, :]
        return np.ascontiguousarray(self.u8[idx]).view(self.e + kind).reshape(-1)


def _arrow_slices(region: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """A large_binary Arrow array of ``region[starts[i]:ends[i]]``, without a Python object per row.

    ``starts`` must be increasing with ``starts[i] <= ends[i] <= starts[i+1]``
    and ``ends[-1] <= len(region)``.
    """
    n = len(starts)
    if n == 0:
        return pa.array([], type=pa.large_binary())
    # ``region`` seen as 2n-1 binary values without a copy (the slices and the gaps
    # between them); one Arrow take of the even ones copies just the slices.
    bounds = np.empty(2 * n, dtype=np.int64)
    bounds[0::2] = starts
    bounds[1::2] = ends
    whole = pa.Array.from_buffers(pa.large_binary(), 2 * n - 1, [None, pa.py_buffer(bounds), pa.py_buffer(region)])
    return whole.take(pa.array(np.arange(0, 2 * n, 2, dtype=np.int64)))


def _arrow_strings(region: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """:func:`_arrow_slices` as strings; None when a slice is not valid UTF-8 (the caller then
    decodes bytes that are not UTF-8 as ``\\xNN``, as the per-record decoder does)."""
    # large_string (64-bit offsets) is what pandas' str columns store: no conversion later
    arr = _arrow_slices(region, starts, ends).view(pa.large_string())
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return arr


def _values(arr) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (from 0) and the data bytes of a large string/binary array."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr) + 1, offset=8 * arr.offset)
    data = arr.buffers()[2]
    u8 = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], u8[offsets[0]:offsets[-1]]


def _has_nul(arr) -> bool:
    """Whether any value of a large string/binary array holds a NUL byte."""
    return not _values(arr)[1].all()


class _Spans:
    """Strings ``buf[starts[i]:ends[i]]`` of one record buffer, not copied yet (``starts``
    increasing, spans disjoint, already checked to be UTF-8 without NUL).  A text piece
    also has ``prefixes`` (an Arrow string array) and per-row ``codes`` into it (None: one
    prefix for every row): its rows read ``prefixes[codes[i]] + buf[starts[i]:ends[i]]``.

    The ``print`` pieces of all CPUs are kept like this so that each column can be
    cut from the shared buffer in final row order by one Arrow take
    (:func:`_spans_column`) instead of per-CPU copies concatenated and re-taken.
    """

    __slots__ = ("buf", "starts", "ends", "prefixes", "codes")

    def __init__(self, buf, starts: np.ndarray, ends: np.ndarray, prefixes=None, codes: np.ndarray | None = None):
        self.buf, self.starts, self.ends, self.prefixes, self.codes = buf, starts, ends, prefixes, codes

    def __len__(self) -> int:
        return len(self.starts)

    def arrow(self):
        """The values as a large_string Arrow array (what the per-CPU path builds)."""
        lo = int(self.starts[0])
        region = np.frombuffer(self.buf, dtype=np.uint8)[lo:int(self.ends[-1])]
        strs = _arrow_slices(region, self.starts - lo, self.ends - lo).view(pa.large_string())
        if self.prefixes is None:
            return strs
        pref = self.prefixes[0] if self.codes is None else self.prefixes.take(pa.array(self.codes))
        return pc.binary_join_element_wise(pref, strs, pa.scalar("", type=pa.large_string()))


_CHECK_ROWS = 1 << 16


def _utf8_without_nul(region: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> bool:
    """Whether every ``region[starts[i]:ends[i]]`` is UTF-8 without a NUL byte, checked
    ``_CHECK_ROWS`` rows at a time (a small copy reused, never one of the whole column)."""
    for i in range(0, len(starts), _CHECK_ROWS):
        strs = _arrow_strings(region, starts[i:i + _CHECK_ROWS], ends[i:i + _CHECK_ROWS])
        if strs is None or _has_nul(strs):
            return False
    return True
