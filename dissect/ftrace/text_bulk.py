# SPDX-License-Identifier: GPL-2.0-only
"""Bulk fast path of the text readers: a whole chunk into columns, no ``Event`` per line.

Spec: trace-dat.md §8 (text forms), qemu-trace-events.md §1.2 (log backend).
Used by :meth:`dissect.ftrace.text.TextTrace.dataframe` (``bulk=True``, the
default).  Each reader's per-line code (``_run``) stays the reference: a
4 MiB chunk is parsed here only when it is pure ASCII and EVERY line of it
matches the form's one multiline regex (the common shape: tracefs and
report event lines with a 6- or 9-digit fraction, QEMU ``tid@sec.usec:``
lines); any other chunk (header, ``[LOST n EVENTS]``, continuation lines,
odd layouts, non-ASCII) goes through the per-line code unchanged.  The
last line of a bulk chunk is handed to the per-line code too, so a
continuation line at the start of the next chunk joins it as before.
Thread prefixes are parsed with the per-line code's own regexes, once per
distinct prefix; payloads other than markers go through the per-line
payload decoder (``_other_event`` / ``_event``).  ``tests/test_ftrace_text_*``
hold both paths equal frame for frame.
"""
from __future__ import annotations

import re
from itertools import repeat
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dissect.ftrace.event import Event

# tracefs: "<head>] [<flags> ]<sec>.<usec>: (tracing_mark_write: <body>|<rest>)"
_BULK_TRACE = re.compile(r"^([^\]\n]*)\] +(?:[^\s:]{4,5} +)?([0-9]+)\.([0-9]{6}): ([^\n]*)\n", re.M)
# trace-cmd report: "<head>] [<flags> ]<sec>.<frac>: <event>: <rest>"
_BULK_REPORT = re.compile(
    r"^([^\]\n]*)\] +(?:[^\s:]{4,5} +)?([0-9]+)\.([0-9]{6}|[0-9]{9}): ([^\s:(]+): *(?![ \t])([^\n]*)\n", re.M)
# QEMU log: "<tid>@<sec>.<usec>:<name>[ <args>]"
_BULK_QEMU = re.compile(r"^([0-9]{1,11})@([0-9]{1,10})\.([0-9]{6}):(([A-Za-z_][A-Za-z0-9_]*)(?: [^\n]*)?)\n",
                        re.M)


@dataclass
class Block:
    """Columns of ``n`` consecutive events parsed in bulk.

    ``buf[i]`` is the print buffer of marker rows (``fields = {ip: None,
    buf}``), None elsewhere; ``other`` maps the other rows to their fields.
    """

    n: int
    ts: np.ndarray
    cpu: list[Any]
    pid: list[Any]
    comm: list[Any]
    system: list[Any]
    event: list[Any]
    text: list[Any]
    instance: list[Any]
    is_print: np.ndarray
    buf: list[Any]
    other: dict[int, dict[str, Any]] = field(default_factory=dict)


_I64 = 1 << 63


def _ts(secs: tuple[str, ...], fracs: tuple[str, ...]) -> np.ndarray | None:
    """ns timestamps of sec.frac (6 or 9 digits); None if one does not fit int64."""
    n = len(secs)
    if max(map(len, set(secs))) > 9 and max(map(int, set(secs))) >= 9_000_000_000:
        return None
    v = np.fromiter(map(int, map(str.__add__, secs, fracs)), np.int64, n)
    lens = np.fromiter(map(len, fracs), np.int64, n)
    return v * np.where(lens == 6, 1000, 1)


def _heads(reader: Any, keys: tuple[str, ...], head_re: re.Pattern, report: bool):
    """Per distinct thread prefix its (comm, pid, cpu, instance), or None if one does not parse."""
    uniq: dict[str, Any] = {}
    for k in set(keys):
        hm = head_re.match(k)
        if hm is None:
            return None
        uniq[k] = (hm.group(2), int(hm.group(3)), int(hm.group(5)), hm.group(1)) if report else \
            (hm.group(1), int(hm.group(2)), int(hm.group(4)), None)
        if uniq[k][1] >= _I64 or uniq[k][2] >= _I64:
            return None  # beyond int64: the per-line code keeps Python ints
    return uniq


def _head_cols(uniq: dict[str, Any], heads: tuple[str, ...], n: int):
    keys = list(uniq)
    index = {k: j for j, k in enumerate(keys)}
    codes = np.fromiter(map(index.__getitem__, heads), np.int64, n)
    hc = [uniq[k] for k in keys]
    comm = np.array([h[0] for h in hc], object)[codes]
    pid = np.array([h[1] for h in hc], np.int64)[codes]
    cpu = np.array([h[2] for h in hc], np.int64)[codes]
    inst = np.array([h[3] for h in hc], object)[codes]
    return comm, pid, cpu, inst


def trace_block(reader: Any, text: str, nlines: int, head_re: re.Pattern) -> Block | None:
    m = _BULK_TRACE.findall(text)
    if len(m) != nlines:
        return None
    del m[-1]
    if not m:
        return None
    heads, secs, fracs, rests = zip(*m)
    uniq = _heads(reader, heads, head_re, False)
    if uniq is None:
        return None
    n = len(m)
    ts = _ts(secs, fracs)
    if ts is None:
        return None
    comm, pid, cpu, _inst = _head_cols(uniq, heads, n)
    is_print = np.fromiter(map(str.startswith, rests, repeat("tracing_mark_write: ", n)), bool, n)
    system = np.full(n, "ftrace", object)
    event = np.full(n, "print", object)
    texts = np.array(rests, object)
    bufs = np.full(n, None, object)
    other: dict[int, dict[str, Any]] = {}
    if is_print.all():
        bufs[:] = [r[20:] + "\n" for r in rests]
    else:
        pr = np.flatnonzero(is_print)
        bufs[pr] = [r[20:] + "\n" for r in texts[pr].tolist()]
        for i in np.flatnonzero(~is_print).tolist():
            ev: Event = reader._other_event(int(ts[i]), int(cpu[i]), int(pid[i]), comm[i], rests[i], 0)
            system[i], event[i], texts[i] = ev.system, ev.event, ev.text
            other[i] = ev.fields
    if reader.precision_ns is None:
        reader.precision_ns = 1000
    return Block(n, ts, cpu, pid, comm, system, event, texts, np.full(n, None, object),
                 is_print, bufs, other)


def report_block(reader: Any, text: str, nlines: int, head_re: re.Pattern) -> Block | None:
    m = _BULK_REPORT.findall(text)
    if len(m) != nlines:
        return None
    del m[-1]
    if not m:
        return None
    heads, secs, fracs, events, rests = zip(*m)
    uniq = _heads(reader, heads, head_re, True)
    if uniq is None:
        return None
    n = len(m)
    ts = _ts(secs, fracs)
    if ts is None:
        return None
    comm, pid, cpu, inst = _head_cols(uniq, heads, n)
    # a marker: "print" whose rest is "<sym>: <body>" (not -R's "ip=<sym> buf=<body>")
    is_print = (np.fromiter(map("print".__eq__, events), bool, n)
                & np.fromiter(map(str.__contains__, rests, repeat(": ", n)), bool, n)
                & ~np.fromiter(map(str.startswith, rests, repeat("ip=", n)), bool, n))
    system = np.full(n, "ftrace", object)
    event = np.full(n, "print", object)
    texts = np.array(rests, object)
    bufs = np.full(n, None, object)
    other: dict[int, dict[str, Any]] = {}
    if is_print.all():
        bufs[:] = [r.partition(": ")[2] + "\n" for r in rests]
    else:
        pr = np.flatnonzero(is_print)
        bufs[pr] = [r.partition(": ")[2] + "\n" for r in texts[pr].tolist()]
        for i in np.flatnonzero(~is_print).tolist():
            ev = reader._event(int(ts[i]), (comm[i], int(pid[i]), int(cpu[i]), inst[i]), events[i], rests[i], 0)
            if ev is None:
                return None
            system[i], event[i], texts[i] = ev.system, ev.event, ev.text
            other[i] = ev.fields
    if reader.precision_ns is None:
        reader.precision_ns = 1000 if len(fracs[0]) == 6 else 1
    return Block(n, ts, cpu, pid, comm, system, event, texts, inst, is_print, bufs, other)


def qemu_block(reader: Any, text: str, nlines: int, head_re: re.Pattern | None = None) -> Block | None:
    m = _BULK_QEMU.findall(text)
    if len(m) != nlines:
        return None
    del m[-1]
    if not m:
        return None
    tids, secs, fracs, texts, names = zip(*m)
    n = len(m)
    ts = _ts(secs, fracs)
    if ts is None:
        return None
    if reader.precision_ns is None:
        reader.precision_ns = 1000
    none = np.full(n, None, object)
    return Block(n, ts, none, np.array(list(map(int, tids)), np.int64), none, np.full(n, "qemu", object),
                 np.array(names, object), np.array(texts, object), none, np.zeros(n, bool), none, {})


def _ints(blocks: list[Block], name: str, n: int):
    import pandas as pd

    vals = np.zeros(n, np.int64)
    mask = np.zeros(n, bool)
    off = 0
    for b in blocks:
        col = getattr(b, name)
        if isinstance(col, np.ndarray) and col.dtype == np.int64:
            vals[off:off + b.n] = col
        else:
            mk = np.fromiter((v is None for v in col), bool, b.n)
            mask[off:off + b.n] = mk
            vals[off:off + b.n] = [0 if v is None else v for v in col]
        off += b.n
    return pd.arrays.IntegerArray(vals, mask)


def _category(vals: np.ndarray):
    """``Series(vals).astype("category")`` (sorted categories of pandas' str dtype) by one hash pass."""
    import pandas as pd

    codes, uniq = pd.factorize(vals)
    if len(uniq) == 0 or not all(isinstance(u, str) for u in uniq):
        return pd.Series(vals).astype("category")
    order = np.argsort(uniq)
    rank = np.empty(len(uniq), np.int64)
    rank[order] = np.arange(len(uniq))
    codes = np.where(codes >= 0, rank[codes], -1)
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(pd.Index(uniq[order], dtype="str")))


def frame(items: list[Any], fields: str = "columns"):
    """The DataFrame of ``TextTrace.dataframe`` from a mix of :class:`Block` s and events."""
    import pandas as pd

    fixed = ("ts_ns", "cpu", "pid", "comm", "system", "event", "text", "instance")
    blocks: list[Block] = []
    run: list[Event] = []

    def flush() -> None:
        if run:
            k = len(run)

            def col(a: str) -> np.ndarray:
                out = np.empty(k, object)
                out[:] = [getattr(e, a) for e in run]
                return out
            blocks.append(Block(k, col("ts_ns"), col("cpu"), col("pid"), col("comm"), col("system"),
                                col("event"), col("text"), col("instance"), np.zeros(k, bool),
                                np.full(k, None, object), {i: e.fields for i, e in enumerate(run)}))
            run.clear()

    for x in items:
        if isinstance(x, Block):
            flush()
            blocks.append(x)
        elif isinstance(x, Event):
            run.append(x)
    flush()
    n = sum(b.n for b in blocks)

    def objs(name: str) -> np.ndarray:
        if not blocks:
            return np.empty(0, object)
        return np.concatenate([np.asarray(getattr(b, name), object) for b in blocks])

    df = pd.DataFrame({"ts_ns": _ints(blocks, "ts", n), "cpu": _ints(blocks, "cpu", n),
                       "pid": _ints(blocks, "pid", n), "comm": _category(objs("comm")),
                       "system": _category(objs("system")), "event": _category(objs("event")),
                       "text": objs("text"), "instance": _category(objs("instance"))})
    if fields == "dict":
        col: list[Any] = []
        for b in blocks:
            col.extend({"ip": None, "buf": v} if p else b.other.get(i, {})
                       for i, (p, v) in enumerate(zip(b.is_print.tolist(), b.buf)))
        df["fields"] = col
        return df
    # field columns in order of first appearance, raw_data's buf renamed (as the per-line frame)
    names: dict[str, None] = {}
    off = 0
    sparse: list[tuple[int, dict[str, Any]]] = []
    for b in blocks:
        rows = dict(b.other)
        pr = np.flatnonzero(b.is_print)
        if len(pr):
            rows[int(pr[0])] = {"ip": None, "buf": None}
        for i in sorted(rows):
            ren = b.event[i] == "raw_data"
            for k in rows[i]:
                names.setdefault("raw_data_buf" if ren and k == "buf" else k, None)
        for i, f in b.other.items():
            ren = b.event[i] == "raw_data"
            sparse.append((off + i, {("raw_data_buf" if ren and k == "buf" else k): v for k, v in f.items()}))
        off += b.n
    for k in names:
        vals = np.full(n, None, object)
        has_str = False
        if k == "buf":
            off = 0
            for b in blocks:
                if b.is_print.any():
                    has_str = True
                    vals[off + np.flatnonzero(b.is_print)] = b.buf[b.is_print]
                off += b.n
        all_int = not has_str
        for i, f in sparse:
            if k in f:
                v = f[k]
                vals[i] = v
                if all_int and not (v is None or (isinstance(v, int) and not isinstance(v, bool))):
                    all_int = False
        col_name = ("field_" + k) if k in fixed else k
        if all_int:
            df[col_name] = pd.array(vals, dtype="Int64")
        else:
            df[col_name] = pd.Series(vals, dtype=object)
    return df
