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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dissect.ftrace.event import Event

# tracefs: "<head>] [<flags> ]<sec>.<usec>: (tracing_mark_write: <body>|<rest>)"
_BULK_TRACE = re.compile(
    r"^([^\]\n]*)\] +(?:[^\s:]{4,5} +)?([0-9]+)\.([0-9]{6}): "
    r"(?=(tracing_mark_write: [^\n]*)|([^\n]*))(?:tracing_mark_write: )?([^\n]*\n)", re.M)
# trace-cmd report: "<head>] [<flags> ]<sec>.<frac>: <event>: <rest>"; group 5 (whole rest)
# and 6 (after its first ": ", with the newline) serve print lines, group 7 the rest
_BULK_REPORT = re.compile(
    r"^([^\]\n]*)\] +(?:[^\s:]{4,5} +)?([0-9]+)\.([0-9]{6}|[0-9]{9}): ([^\s:(]+): *(?![ \t])"
    r"(?:(?=(?!ip=)([^\n]*?: [^\n]*))[^\n]*?: ([^\n]*\n)|([^\n]*)\n)", re.M)
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


def _ts(secs: tuple[str, ...], fracs: tuple[str, ...]) -> np.ndarray:
    n = len(secs)
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
    return uniq


def trace_block(reader: Any, text: str, nlines: int, head_re: re.Pattern) -> Block | None:
    m = _BULK_TRACE.findall(text)
    if len(m) != nlines:
        return None
    del m[-1]
    if not m:
        return None
    heads, secs, fracs, texts, rests, bufs = zip(*m)
    uniq = _heads(reader, heads, head_re, False)
    if uniq is None:
        return None
    n = len(m)
    ts = _ts(secs, fracs)
    hc = list(map(uniq.__getitem__, heads))
    comm, pid, cpu, _inst = zip(*hc)
    is_print = np.fromiter(map(bool, texts), bool, n)
    system = ["ftrace"] * n
    event = ["print"] * n
    texts = list(texts)
    bufs = list(bufs)
    other: dict[int, dict[str, Any]] = {}
    if not is_print.all():
        for i in np.flatnonzero(~is_print).tolist():
            ev: Event = reader._other_event(int(ts[i]), cpu[i], pid[i], comm[i], rests[i], 0)
            system[i], event[i], texts[i], bufs[i] = ev.system, ev.event, ev.text, None
            other[i] = ev.fields
    if reader.precision_ns is None:
        reader.precision_ns = 1000
    return Block(n, ts, list(cpu), list(pid), list(comm), system, event, texts, [None] * n,
                 is_print, bufs, other)


def report_block(reader: Any, text: str, nlines: int, head_re: re.Pattern) -> Block | None:
    m = _BULK_REPORT.findall(text)
    if len(m) != nlines:
        return None
    del m[-1]
    if not m:
        return None
    heads, secs, fracs, events, ptexts, pbufs, rests = zip(*m)
    uniq = _heads(reader, heads, head_re, True)
    if uniq is None:
        return None
    n = len(m)
    ts = _ts(secs, fracs)
    comm, pid, cpu, inst = zip(*map(uniq.__getitem__, heads))
    is_print = np.fromiter(map("print".__eq__, events), bool, n) & np.fromiter(map(bool, ptexts), bool, n)
    system = ["ftrace"] * n
    event = ["print"] * n
    texts = list(ptexts)
    bufs = list(pbufs)
    other: dict[int, dict[str, Any]] = {}
    if not is_print.all():
        for i in np.flatnonzero(~is_print).tolist():
            ev = reader._event(int(ts[i]), (comm[i], pid[i], cpu[i], inst[i]), events[i],
                               ptexts[i] or rests[i], 0)
            if ev is None:
                return None
            system[i], event[i], texts[i], bufs[i] = ev.system, ev.event, ev.text, None
            other[i] = ev.fields
    if reader.precision_ns is None:
        reader.precision_ns = 1000 if len(fracs[0]) == 6 else 1
    return Block(n, ts, list(cpu), list(pid), list(comm), system, event, texts, list(inst),
                 is_print, bufs, other)


def qemu_block(reader: Any, text: str, nlines: int, head_re: re.Pattern | None = None) -> Block | None:
    m = _BULK_QEMU.findall(text)
    if len(m) != nlines:
        return None
    del m[-1]
    if not m:
        return None
    tids, secs, fracs, texts, names = zip(*m)
    n = len(m)
    if max(map(len, set(secs))) == 10 and max(map(int, set(secs))) >= 9_000_000_000:
        return None  # beyond int64 ns: leave it to the per-line code
    ts = _ts(secs, fracs)
    none = [None] * n
    if reader.precision_ns is None:
        reader.precision_ns = 1000
    return Block(n, ts, none, list(map(int, tids)), none, ["qemu"] * n, list(names), list(texts), none,
                 np.zeros(n, bool), none, {i: {} for i in range(0)})


def frame(items: list[Any], fields: str = "columns"):
    """The DataFrame of ``TextTrace.dataframe`` from a mix of :class:`Block` s and events."""
    import pandas as pd

    fixed = ("ts_ns", "cpu", "pid", "comm", "system", "event", "text", "instance")
    blocks: list[Block] = []
    run: list[Event] = []

    def flush() -> None:
        if run:
            k = len(run)
            blocks.append(Block(k, np.array([0] * k, np.int64), [e.cpu for e in run], [e.pid for e in run],
                                [e.comm for e in run], [e.system for e in run], [e.event for e in run],
                                [e.text for e in run], [e.instance for e in run], np.zeros(k, bool),
                                [None] * k, {i: e.fields for i, e in enumerate(run)}))
            blocks[-1].ts_obj = [e.ts_ns for e in run]  # type: ignore[attr-defined]
            run.clear()

    for x in items:
        if isinstance(x, Block):
            flush()
            blocks.append(x)
        elif isinstance(x, Event):
            run.append(x)
    flush()
    n = sum(b.n for b in blocks)

    def ints(name: str):
        vals = np.zeros(n, np.int64)
        mask = np.zeros(n, bool)
        off = 0
        for b in blocks:
            src = getattr(b, "ts_obj", None) if name == "ts" else None
            if name == "ts" and src is None:
                vals[off:off + b.n] = b.ts
            else:
                col = src if src is not None else getattr(b, name)
                if None in col:
                    mk = np.fromiter((v is None for v in col), bool, b.n)
                    mask[off:off + b.n] = mk
                    vals[off:off + b.n] = [0 if v is None else v for v in col]
                else:
                    vals[off:off + b.n] = col
            off += b.n
        return pd.arrays.IntegerArray(vals, mask)

    def objs(name: str) -> list[Any]:
        out: list[Any] = []
        for b in blocks:
            out.extend(getattr(b, name))
        return out

    df = pd.DataFrame({"ts_ns": ints("ts"), "cpu": ints("cpu"), "pid": ints("pid"),
                       "comm": objs("comm"), "system": objs("system"), "event": objs("event"),
                       "text": objs("text"), "instance": objs("instance")})
    for k in ("comm", "system", "event", "instance"):
        df[k] = df[k].astype("category")
    if fields == "dict":
        col: list[Any] = []
        for b in blocks:
            if b.is_print.any():
                col.extend({"ip": None, "buf": v} if p else b.other[i]
                           for i, (p, v) in enumerate(zip(b.is_print.tolist(), b.buf)))
            else:
                col.extend(b.other[i] for i in range(b.n))
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
            f = rows[i]
            ren = b.event[i] == "raw_data"
            for k in f:
                names.setdefault("raw_data_buf" if ren and k == "buf" else k, None)
        for i, f in b.other.items():
            ren = b.event[i] == "raw_data"
            sparse.append((off + i, {("raw_data_buf" if ren and k == "buf" else k): v for k, v in f.items()}))
        off += b.n
    for k in names:
        vals = np.full(n, None, object)
        off = 0
        if k == "buf":
            for b in blocks:
                pr = np.flatnonzero(b.is_print)
                if len(pr):
                    vals[off + pr] = np.array(b.buf, object)[pr]
                off += b.n
        for i, f in sparse:
            if k in f:
                vals[i] = f[k]
        col_name = ("field_" + k) if k in fixed else k
        if all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in vals):
            df[col_name] = pd.array(vals, dtype="Int64")
        else:
            df[col_name] = pd.Series(vals, dtype=object)
    return df
