# SPDX-License-Identifier: GPL-2.0-only
"""The DataFrame columns of :mod:`dissect.ftrace.frame` from per-event-type pieces
``(rows, values)``: typed integer columns, Arrow-backed string columns (cut from a shared
buffer in row order by :func:`_spans_column`), categoricals, object columns otherwise.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dissect.ftrace.frame_arrow import _Spans

_TAKE_ROWS = 1 << 16


def _categorical(labels: list, codes: np.ndarray) -> pd.Categorical:
    """A categorical from per-row indices into ``labels`` (None labels become missing)."""
    cats: list = []
    index: dict = {}
    remap = np.empty(len(labels), dtype=np.int64)
    for i, lab in enumerate(labels):
        if lab is None:
            remap[i] = -1
            continue
        if lab not in index:
            index[lab] = len(cats)
            cats.append(lab)
        remap[i] = index[lab]
    return categorical_from_codes(remap[codes] if len(labels) else codes, cats)


# a small trace's frame spends much of its time in pandas checking a categorical's categories;
# the few short category sets (comms, systems, events, instances) recur from frame to frame
_DTYPE_CACHE_MAX_CATS = 256
_DTYPE_CACHE_MAX_CHARS = 8192


def categorical_from_codes(codes: np.ndarray, cats: Any) -> pd.Categorical:
    """``pd.Categorical.from_codes(codes, categories=cats)``; the dtype of a short list of
    strings is made once and reused (a ``CategoricalDtype`` is immutable)."""
    if (len(cats) <= _DTYPE_CACHE_MAX_CATS and all(type(c) is str for c in cats)
            and sum(map(len, cats)) <= _DTYPE_CACHE_MAX_CHARS):
        return pd.Categorical.from_codes(codes, dtype=_str_dtype(tuple(cats)))
    return pd.Categorical.from_codes(codes, categories=cats)


@lru_cache(maxsize=256)
def _str_dtype(cats: tuple[str, ...]) -> pd.CategoricalDtype:
    return pd.Categorical.from_codes(np.empty(0, np.int64), categories=list(cats)).dtype


_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def _pylist(v: Any) -> list:
    if isinstance(v, _Spans):
        return v.arrow().to_pylist()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (pa.Array, pa.ChunkedArray)):
        return v.to_pylist()
    return v


def _column(pieces: list[tuple[np.ndarray, Any]], n: int, strings: bool = False):
    """One column from per-type pieces ``(rows, values)``; rows without a piece are missing.

    Strings become an Arrow-backed string column (pandas' ``str``); integers
    from NumPy pieces a typed column (nullable when some rows lack the
    field); anything else an object column with None where absent.
    """
    covered = sum(len(d) for d, _ in pieces)
    if any(isinstance(v, _Spans) for _, v in pieces):
        if 2 * covered >= n:
            col = _spans_column(pieces, n)
            if col is not None:
                return col
        pieces = [(d, v.arrow() if isinstance(v, _Spans) else v) for d, v in pieces]
    if (strings or any(isinstance(v, pa.Array) for _, v in pieces)) and 2 * covered >= n:
        col = _arrow_column(pieces, n)
        if col is not None:
            return col
    pieces = [(d, _int_array(v)) for d, v in pieces]
    dt = None
    if pieces and all(isinstance(v, np.ndarray) and v.dtype.kind in "iu" for _, v in pieces):
        dt = _int_dtype([v for _, v in pieces])
    if dt is not None:
        vals = np.zeros(n, dtype=dt)
        mask = np.ones(n, dtype=bool)
        for dst, v in pieces:
            vals[dst] = v
            mask[dst] = False
        if not mask.any():
            return vals
        return pd.arrays.IntegerArray(vals, mask)
    out = np.full(n, None, dtype=object)
    for dst, vals in pieces:
        _put(out, dst, _pylist(vals))
    return pd.Series(out, dtype=object, copy=False)  # ``out`` is ours: no copy of n object pointers


def _int_dtype(arrays: list[np.ndarray]) -> np.dtype | None:
    """One integer dtype holding every value of ``arrays`` exactly, or None.

    NumPy promotes int64 with uint64 to float64 (precision lost); that mix
    happens when one stream's pieces come from the bulk path (uint64 gathers)
    and another's from the per-record decoder (int64): pick int64 or uint64
    by the actual values instead.
    """
    dt = np.result_type(*[a.dtype for a in arrays])
    if dt.kind in "iu":
        return dt
    nonempty = [a for a in arrays if len(a)]
    if all(a.dtype.kind == "i" or int(a.max()) <= np.iinfo(np.int64).max for a in nonempty):
        return np.dtype(np.int64)
    if all(a.dtype.kind == "u" or int(a.min()) >= 0 for a in nonempty):
        return np.dtype(np.uint64)
    return None


def _kind(v: Any) -> str:
    if isinstance(v, (pa.Array, _Spans)):
        return "str"
    if isinstance(v, np.ndarray):
        return "int" if v.dtype.kind in "iu" else "other"
    first = next((x for x in v if x is not None), None)
    return {str: "str", bytes: "bytes", int: "int", list: "list"}.get(type(first), "other")


def _add(cols: dict, kinds: dict, name: str, event: str | None, dst: np.ndarray, vals: Any) -> None:
    """Add a piece to the field column ``name``; a piece of another kind (raw_data's bytes ``buf``
    next to print's text ``buf``) goes to ``<event>_<name>`` so each column holds one kind."""
    k = _kind(vals)
    if name in kinds and kinds[name] != k and event is not None:
        name = f"{event}_{name}"
    kinds.setdefault(name, k)
    cols.setdefault(name, []).append((dst, vals))


def _int_array(v: Any) -> Any:
    """A list of Python ints (no None) as an int64 array, so the column can be typed."""
    if isinstance(v, list) and v and all(type(x) is int for x in v):
        try:
            return np.array(v, dtype=np.int64)
        except OverflowError:
            return np.array(v, dtype=np.uint64) if min(v) >= 0 and max(v) < 2**64 else v
    return v


def _arrow_column(pieces: list[tuple[np.ndarray, Any]], n: int):
    arrays, positions = [], []
    for dst, vals in pieces:
        if isinstance(vals, np.ndarray):
            return None
        if not isinstance(vals, pa.Array):
            if not all(x is None or type(x) is str for x in vals):
                return None  # e.g. raw_data's bytes: an object column keeps them as bytes
            try:
                vals = pa.array(vals, type=pa.large_string())
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                return None
        if not (pa.types.is_string(vals.type) or pa.types.is_large_string(vals.type)):
            return None
        arrays.append(vals)
        positions.append(dst)
    arrays = [a if a.type == pa.large_string() else a.cast(pa.large_string()) for a in arrays]
    typ = pa.large_string()
    pos = np.concatenate(positions) if positions else np.zeros(0, np.int64)
    if len(arrays) == 1 and len(pos) == n and (np.diff(pos) > 0).all():
        return pd.array(arrays[0], dtype=_STR)  # already in row order: no copy
    cat = pa.concat_arrays(arrays + [pa.nulls(1, type=typ)])
    idx = np.full(n, len(pos), dtype=np.int64)
    idx[pos] = np.arange(len(pos), dtype=np.int64)
    return pd.array(cat.take(pa.array(idx)), dtype=_STR)


def _spans_column(pieces: list[tuple[np.ndarray, Any]], n: int):
    """A string column from :class:`_Spans` pieces of one shared buffer (a text column may
    also hold other pieces: string lists or Arrow strings), built in row order by one
    Arrow take over the buffer; None when the pieces do not allow it (the caller then
    builds the column from their copies, with the same values).

    Text rows are ``prefix + span``: per chunk of rows the spans are taken, the
    prefixes (and the other pieces' texts, for rows without a span, whose span is
    then the empty value) taken from a small array, and the two joined; a row without
    any text, or with a None one, is null in either and so in the join.
    """
    spans = sorted(((d, v) for d, v in pieces if isinstance(v, _Spans)), key=lambda p: int(p[1].starts[0]))
    others = [(d, v) for d, v in pieces if not isinstance(v, _Spans)]
    buf = spans[0][1].buf
    text = spans[0][1].prefixes is not None
    if any(v.buf is not buf or (v.prefixes is not None) != text for _, v in spans) or (others and not text):
        return None
    # the spans in buffer order: pieces sorted by their first span, then checked disjoint
    st = np.concatenate([v.starts for _, v in spans])
    en = np.concatenate([v.ends for _, v in spans])
    if (st[1:] < en[:-1]).any():
        return None
    pref = None
    if text:
        srcs, at = [], 0
        pidx = np.zeros(n, dtype=np.int64)
        pmask = np.ones(n, dtype=bool)
        for d, v in spans:
            pidx[d] = at if v.codes is None else v.codes + at
            pmask[d] = False
            srcs.append(v.prefixes)
            at += len(v.prefixes)
        for d, v in others:
            if not isinstance(v, pa.Array):
                if not all(x is None or type(x) is str for x in v):
                    return None
                try:
                    v = pa.array(v, type=pa.large_string())
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                    return None
            if not (pa.types.is_string(v.type) or pa.types.is_large_string(v.type)):
                return None
            srcs.append(v.cast(pa.large_string()) if v.type != pa.large_string() else v)
            pidx[d] = np.arange(len(v), dtype=np.int64) + at
            pmask[d] = False
            at += len(v)
        pref = pa.concat_arrays(srcs)
    m = len(st)
    lo = int(st[0])
    region = np.frombuffer(buf, dtype=np.uint8)[lo:int(en[-1])]
    # ``region`` as 2m binary values without a copy (spans, the gaps between them, and
    # an empty one at the end); row r takes value 2k for its span k, the empty value
    # when another piece holds its text, or a null
    bounds = np.empty(2 * m + 1, dtype=np.int64)
    bounds[0:2 * m:2] = st - lo
    bounds[1::2] = en - lo
    bounds[2 * m] = bounds[2 * m - 1]
    del st, en
    whole = pa.Array.from_buffers(pa.large_binary(), 2 * m, [None, pa.py_buffer(bounds), pa.py_buffer(region)])
    idx = np.full(n, 2 * m - 1, dtype=np.int64)
    k = 0
    for d, v in spans:
        idx[d] = np.arange(2 * k, 2 * (k + len(v)), 2, dtype=np.int64)
        k += len(v)
    if pref is not None:
        mask = pmask if pmask.any() else None  # rows without any text
    else:
        mask = None
        if m < n:
            mask = np.ones(n, dtype=bool)
            for d, _ in spans:
                mask[d] = False
    # _TAKE_ROWS rows at a time, the chunks kept as one chunked column: a text chunk's
    # spans and prefixes are joined and dropped at once (never a full-size copy of
    # either), and Arrow's take, which sizes its output from the mean value length
    # (halved here by the gaps) and grows it, wastes at most a chunk's worth of pages.
    empty = pa.scalar("", type=pa.large_string())
    chunks = []
    for i in range(0, n, _TAKE_ROWS):
        j = min(n, i + _TAKE_ROWS)
        col = pc.take(whole, pa.array(idx[i:j], mask=None if mask is None else mask[i:j])).view(pa.large_string())
        if pref is not None:
            col = pc.binary_join_element_wise(pc.take(pref, pa.array(pidx[i:j])), col, empty)
        chunks.append(col)
    return pd.array(pa.chunked_array(chunks, type=pa.large_string()), dtype=_STR)


def _put(arr: np.ndarray, dst: np.ndarray, values: list) -> None:
    tmp = np.empty(len(values), dtype=object)
    tmp[:] = values
    arr[dst] = tmp
