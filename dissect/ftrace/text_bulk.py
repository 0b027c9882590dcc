# SPDX-License-Identifier: GPL-2.0-only
"""Bulk DataFrame path of the text readers: scanned chunks into one frame, no ``Event`` per line.

Spec: trace-dat.md §8 (text forms), qemu-trace-events.md §1.2 (log backend).
Used by :meth:`dissect.ftrace.text.TextTrace.dataframe` (``bulk=True``, the
default).  The reader hands each 4 MiB chunk of ASCII lines to its form's
scanner (:mod:`dissect.ftrace.text_scan`), which answers with a
:class:`~dissect.ftrace.text_scan.Block` of columns when every line of the
chunk is one the per-line fast path reads as an event; any other chunk
(header, ``[LOST n EVENTS]``, continuation lines, odd layouts, non-ASCII) is
halved down to ``BULK_MIN`` bytes and what still does not fit goes through
the per-line code unchanged.  The last line of a bulk chunk is handed to the
per-line code too, so a continuation line at the start of the next chunk
joins it as before.  :func:`frame` joins Blocks and runs of per-line events
into the frame of ``TextTrace.dataframe``; ``tests/test_ftrace_text_*``
hold both paths equal frame for frame.
"""
from __future__ import annotations

from itertools import repeat
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from dissect.ftrace.event import Event
from dissect.ftrace.text_scan import Block, Cat

_I64 = 1 << 63


def int_array(vals: list[Any]) -> Any:
    """Nullable ``Int64`` of Python ints and None; an object array when one does not fit int64
    (a 20-digit pid or a timestamp past 2**63 stays exact instead of failing the frame)."""
    import pandas as pd

    # range checked first: pandas casts a list holding a value in [2**63, 2**64) through float64,
    # warns "invalid value encountered in cast" and then refuses it (TypeError); no value was
    # ever stored wrong, but the warning hid whether one was
    if all(v is None or -_I64 <= v < _I64 for v in vals):
        try:
            return pd.array(vals, dtype="Int64")
        except (OverflowError, TypeError):
            pass
    out = np.empty(len(vals), object)
    out[:] = vals
    return out


def _ints(blocks: list[Block], name: str, n: int) -> Any:
    import pandas as pd

    vals = np.zeros(n, np.int64)
    mask = np.zeros(n, bool)
    off = 0
    for b in blocks:
        col = getattr(b, name)
        if col is None:
            mask[off:off + b.n] = True
        elif isinstance(col, np.ndarray) and col.dtype == np.int64:
            vals[off:off + b.n] = col
        else:
            mk = np.fromiter((v is None for v in col), bool, b.n)
            mask[off:off + b.n] = mk
            try:
                vals[off:off + b.n] = [0 if v is None else v for v in col]
            except OverflowError:
                every: list[Any] = []
                for c in blocks:
                    x = getattr(c, name)
                    every.extend([None] * c.n if x is None else x.tolist() if isinstance(x, np.ndarray) else x)
                return int_array(every)
        off += b.n
    return pd.arrays.IntegerArray(vals, mask)


def category_of(values: Any) -> Any:
    """``values`` (strings and None) as the frame's categorical column."""
    return _category([Cat.of(values)], len(values))


def _category(cats: list[Cat], n: int):
    """``Series(values).astype("category")`` of the blocks' ``Cat`` columns: sorted categories of
    pandas' ``str`` dtype, from the codes (no object array when every value is a string)."""
    import pandas as pd

    from dissect.ftrace.frame_columns import categorical_from_codes  # pandas only when a frame is made

    gid: dict[Any, int] = {}
    for c in cats:
        # only values some row has: a Cat may keep a value all its rows were moved off
        used = np.bincount(c.codes[c.codes >= 0], minlength=len(c.values)) > 0
        for v, u in zip(c.values, used.tolist()):
            if u and v is not None:
                gid.setdefault(v, len(gid))
    if not gid:
        # no value at all: still a categorical of strings, as every other such column
        return pd.Categorical.from_codes(np.full(n, -1, np.int64),
                                         dtype=pd.CategoricalDtype(pd.Index([], dtype="str")))
    if not all(isinstance(v, str) for v in gid):
        vals = np.full(n, None, object)
        off = 0
        for c in cats:
            if c.values:
                vals[off:off + len(c.codes)] = np.array(c.values + [None], object)[c.codes]
            off += len(c.codes)
        return pd.Series(vals).astype("category")
    uniq = np.array(list(gid), object)
    order = np.argsort(uniq)
    rank = np.empty(len(uniq), np.int64)
    rank[order] = np.arange(len(uniq))
    codes = np.empty(n, np.int64)
    off = 0
    for c in cats:
        m = len(c.codes)
        if c.values:
            # None values and code -1 (the appended entry) stay -1
            to = np.array([rank[gid[v]] if v in gid else -1 for v in c.values] + [-1], np.int64)
            codes[off:off + m] = to[c.codes]
        else:
            codes[off:off + m] = -1
        off += m
    return categorical_from_codes(codes, uniq[order])


def _run_block(run: list[Event]) -> Block:
    """A run of per-line events as a Block (their fields all in ``other``)."""
    k = len(run)

    def col(a: str) -> np.ndarray:
        out = np.empty(k, object)
        out[:] = [getattr(e, a) for e in run]
        return out
    return Block(k, np.zeros(k, np.int64), col("ts_ns"), col("cpu"), col("pid"), Cat.of(col("comm")),
                 Cat.of(col("system")), Cat.of(col("event")), pa.array([e.text for e in run], pa.large_string()),
                 Cat.of(col("instance")), np.zeros(k, bool), None, {i: e.fields for i, e in enumerate(run)})


def _text(parts: list[pa.Array], n: int) -> Any:
    """The ``text`` column: Arrow-backed ``str`` straight from the blocks' arrays (what pandas
    makes of a list of strings); an object column when no row has a text (pandas' choice for
    a list of None alone)."""
    import pandas as pd

    if n and sum(len(p) - p.null_count for p in parts):
        arr = pa.chunked_array(parts, pa.large_string())
        return pd.arrays.ArrowStringArray(arr, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    return np.full(n, None, object)


def text_of(values: list[str | None]) -> Any:
    """``values`` as the frame's ``text`` column."""
    return _text([pa.array(values, pa.large_string())], len(values))


def _bufs(b: Block) -> np.ndarray:
    """Python strings of the marker rows' ``buf`` (None elsewhere), made by Arrow in C."""
    if b.buf is None:
        return np.full(b.n, None, object)
    return b.buf.to_numpy(zero_copy_only=False)


def frame(items: list[Any], fields: str = "columns"):
    """The DataFrame of ``TextTrace.dataframe`` from a mix of :class:`Block` s and events."""
    import pandas as pd

    fixed = ("ts_ns", "cpu", "pid", "comm", "system", "event", "text", "instance")
    blocks: list[Block] = []
    run: list[Event] = []
    for x in items:
        if isinstance(x, Block):
            if run:
                blocks.append(_run_block(run))
                run = []
            blocks.append(x)
        elif isinstance(x, Event):
            run.append(x)
    if run:
        blocks.append(_run_block(run))
    n = sum(b.n for b in blocks)

    def cat(name: str):
        return _category([getattr(b, name) for b in blocks], n)

    # the frame is built by one constructor call at the end: a column set at a time costs pandas
    # an index insert and a block each
    out: dict[str, Any] = {"ts_ns": _ints(blocks, "ts", n), "cpu": _ints(blocks, "cpu", n),
                           "pid": _ints(blocks, "pid", n), "comm": cat("comm"), "system": cat("system"),
                           "event": cat("event"), "text": _text([b.text for b in blocks], n),
                           "instance": cat("instance")}
    if fields == "dict":
        col: list[Any] = []
        for b in blocks:
            # copies: rows with the same kernel payload share one decoded dict in ``other``
            if b.is_print.any():
                col.extend({"ip": None, "buf": v} if p else dict(b.other.get(i, {}))
                           for i, (p, v) in enumerate(zip(b.is_print.tolist(), _bufs(b).tolist())))
            else:
                col.extend(dict(b.other.get(i, {})) for i in range(b.n))
        out["fields"] = col
        return pd.DataFrame(out)
    # field columns in order of first appearance, raw_data's buf renamed (as the per-line frame)
    names: dict[str, tuple[list[int], list[Any]]] = {}

    def add(k: str) -> tuple[list[int], list[Any]]:
        got = names.get(k)
        if got is None:
            got = names[k] = ([], [])
        return got
    off = 0
    for b in blocks:
        pr = np.flatnonzero(b.is_print)
        first_print = int(pr[0]) if len(pr) else None
        raw = b.event.values.index("raw_data") if "raw_data" in b.event.values else None
        codes = b.event.codes.tolist() if raw is not None else None
        for i, f in b.other.items():  # rows in ascending order
            if first_print is not None and first_print < i:
                add("ip"), add("buf")
                first_print = None
            ren = raw is not None and codes[i] == raw  # type: ignore[index]
            for k, v in f.items():
                rows, vals = add("raw_data_buf" if ren and k == "buf" else k)
                rows.append(off + i)
                vals.append(v)
        if first_print is not None:
            add("ip"), add("buf")
        off += b.n
    for k, (rows, vals) in names.items():
        has_str = False
        if k == "buf":
            col_vals = np.full(n, None, object)
            off = 0
            for b in blocks:
                if b.is_print.any():
                    has_str = True
                    col_vals[off:off + b.n] = _bufs(b)
                off += b.n
        col_name = ("field_" + k) if k in fixed else k
        if not has_str and all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in vals):
            data = np.zeros(n, np.int64)
            mask = np.ones(n, bool)
            got = [(r, v) for r, v in zip(rows, vals) if v is not None]
            try:
                if got:
                    at, ints = zip(*got)
                    data[list(at)] = ints
                    mask[list(at)] = False
                out[col_name] = pd.arrays.IntegerArray(data, mask)
                continue
            except OverflowError:
                pass  # past int64: an object column, as int_array makes it
        if not has_str:
            col_vals = np.full(n, None, object)
        if rows:
            # fromiter keeps bytes objects whole (a list would become a NumPy bytes array first)
            col_vals[rows] = np.fromiter(vals, object, len(vals))
        out[col_name] = pd.Series(col_vals, dtype=object)
    return pd.DataFrame(out)


def block_events(b: Block, base: int, source: Any) -> Iterator[Event]:
    """The Block's rows as the per-line code's events (``offset`` = ``base`` + line start)."""
    n = b.n

    def strs(c: Cat) -> list[Any]:
        return np.array(c.values + [None], object)[c.codes].tolist()
    if b.buf is None:
        fields: list[Any] = [{} for _ in range(n)]
    else:
        fields = [{"ip": None, "buf": x} for x in b.buf.to_pylist()]
    # kernel rows share one decoded dict per distinct payload in the Block: each event gets its own
    for j, f in b.other.items():
        fields[j] = dict(f)
    # map calls Event in C: no Python loop body per row
    return map(Event, repeat(source, n), b.ts.tolist(), [None] * n if b.cpu is None else b.cpu.tolist(),
               b.pid.tolist(), strs(b.comm), strs(b.system), strs(b.event), fields, b.text.to_pylist(),
               (b.start + base).tolist(), strs(b.instance))
