# SPDX-License-Identifier: GPL-2.0-only
"""Columnar trace.dat → pandas.DataFrame (the fast twin of ``TraceDat.events()``).

The page walk (:func:`dissect.ftrace.ring.walk_cpu`) gives NumPy arrays of
raw timestamps, record offsets and lengths per CPU.  Here the common header
of every record (type, pid) is gathered with NumPy, the global order is one
stable lexsort on (timestamp, CPU, stream), and each event type of each
stream is decoded in bulk: ``ftrace/print`` (the QEMU markers, nearly all of
a QEMU trace) by a vectorised path, every other type by its compiled
per-record decoder.  Repeated strings (comm, system, event, instance) are
categoricals.  The tests hold the result equal, row for row, to
:meth:`TraceDat.events`.

Field layout: ``fields="columns"`` (default) gives one column per field name
(a name that clashes with a fixed column gets a ``field_`` prefix; rows of
events without that field hold None); ``fields="dict"`` gives one ``fields``
column holding each event's dict, exactly ``Event.fields``.
"""
from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dissect.common.findings import Finding
# the pieces live in frame_arrow (buffer views), frame_bulk (vectorised decoders) and
# frame_columns (column building); their names stay importable from here
from dissect.ftrace.frame_arrow import (_CHECK_ROWS, _arrow_slices, _arrow_strings, _has_nul,  # noqa: F401
                                        _Spans, _utf8_without_nul, _values, _Words)
from dissect.ftrace.frame_bulk import _HEX3, _fixed_bulk, _print_bulk, _raw_data_bulk  # noqa: F401
from dissect.ftrace.frame_columns import (_STR, _TAKE_ROWS, _add, _arrow_column, _categorical,  # noqa: F401
                                          _column, _int_array, _int_dtype, _kind, _pylist, _put,
                                          _spans_column, categorical_from_codes)
from dissect.ftrace.utf8 import BAD

if TYPE_CHECKING:
    from dissect.ftrace.tracedat import TraceDat

FIXED = ["ts_ns", "cpu", "pid", "comm", "system", "event", "text", "instance"]
_SCHED = ("sched_switch", "sched_wakeup", "sched_wakeup_new")


def records_dataframe(td: "TraceDat", fields: str = "columns") -> pd.DataFrame:
    """See the module docstring; ``fields`` is ``"columns"`` or ``"dict"``."""
    if fields not in ("columns", "dict"):
        raise ValueError("fields must be 'columns' or 'dict'")
    # Hundreds of thousands of small objects and no cycles among them: pause the
    # cyclic GC while building them (its passes would rescan all of them).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _records_dataframe(td, fields)
    finally:
        if enabled:
            gc.enable()


def _empty(fields: str) -> pd.DataFrame:
    cols = FIXED[:6] + (["fields"] if fields == "dict" else []) + FIXED[6:]
    return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("ts_ns", "cpu", "pid") else object) for c in cols})


def _records_dataframe(td: "TraceDat", fields_mode: str) -> pd.DataFrame:
    streams = td._cpu_records()
    big = td.big_endian
    per_stream = []
    for k, (inst, rec) in enumerate(streams):
        offs = np.asarray(rec.offsets, dtype=np.int64)
        lens = np.asarray(rec.lengths, dtype=np.int64)
        ts = np.asarray(rec.ts, dtype=np.uint64)
        words = _Words(rec.buf, big)
        short = lens < 8
        safe = np.where(short, 0, offs)  # records too short for a common header: patched below
        types = words.read(safe, 2).astype(np.int64) if len(offs) else np.zeros(0, np.int64)
        if len(offs) and words.u32 is not None and not (safe & 3).any():
            types = (words.u32[safe >> 2] >> 16 if big else words.u32[safe >> 2] & 0xFFFF).astype(np.int64)
        pids = words.read(safe + 4, 4, signed=True).astype(np.int64)
        types[short] = -1
        pids[short] = -1
        per_stream.append((words, offs, lens, ts, types, pids))
    if not any(len(p[1]) for p in per_stream):
        return _empty(fields_mode)
    sizes = [len(p[1]) for p in per_stream]
    ts = np.concatenate([p[3] for p in per_stream])
    cpu = np.concatenate([np.full(s, rec.cpu, dtype=np.int64) for s, (_, rec) in zip(sizes, streams)])
    ks = np.concatenate([np.full(s, k, dtype=np.int64) for k, s in enumerate(sizes)])
    types = np.concatenate([p[4] for p in per_stream])
    pids = np.concatenate([p[5] for p in per_stream])
    # ns first (TimeShift per CPU, TSC2NSEC, OFFSET/DATE: td.timestamps_ns, in bulk), then the
    # global order on it: time, then CPU, then stream, then position (np.lexsort is stable)
    if td.tsc2nsec is not None or (td.time_shift is not None and td.apply_time_shift):
        ts = td.timestamps_ns(ts, cpu)
    else:
        ts = ts.astype(np.int64) + np.int64(td.ts_offset)
    order = np.lexsort((ks, cpu, ts))
    n = len(order)
    where = np.empty(n, dtype=np.int64)
    where[order] = np.arange(n, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    texts: list[tuple[np.ndarray, Any]] = []
    cols: dict[str, list[tuple[np.ndarray, Any]]] = {}
    kinds: dict[str, str] = {}
    dicts: list[tuple[np.ndarray, list]] = []
    names: dict[int, tuple[str | None, str]] = {}
    sched_rows: list[tuple[np.ndarray, list]] = []
    utf8: list[tuple] = []  # (row, key, file offset, cpu, instance, system, event, fields): invalid_utf8
    bad = BAD
    for k, (inst, rec) in enumerate(streams):
        words, offs, lens, _, stypes, _ = per_stream[k]
        if len(offs) == 0:
            continue
        pos = where[starts[k]:starts[k + 1]]
        for t in np.unique(stypes).tolist():
            sel = np.nonzero(stypes == t)[0]
            dst = pos[sel]
            fmt = td.formats_by_id.get(t) if t >= 0 else None
            if fmt is None or fmt.bad is not None:
                if fmt is not None:  # a format whose fields cannot be read (bad_format_field): the bytes
                    names[t] = (fmt.system, fmt.name)
                elif t >= 0 and t not in td._unknown_ids:
                    td._unknown_ids.add(t)
                    td.findings.append(Finding("warning", "unknown_event_id", f"no format for event id {t}",
                                               None, {"cpu": rec.cpu}))
                if fmt is None:
                    names[t] = (None, "unknown" if t < 0 else f"unknown_{t}")
                raws = [bytes(rec.buf[o:o + ln]) for o, ln in zip(offs[sel].tolist(), lens[sel].tolist())]
                _add(cols, kinds, "raw", None, dst, raws)
                if fields_mode == "dict":
                    dicts.append((dst, [{"raw": r} for r in raws]))
                continue
            names[t] = (fmt.system, fmt.name)
            moved = bad[0]
            bulk = None
            if fmt.system == "ftrace" and fmt.name == "print":
                bulk = _print_bulk(td, fmt, rec.buf, words, offs[sel], lens[sel], lazy=fields_mode == "columns")
            elif fmt.system == "ftrace" and fmt.name == "raw_data":
                bulk = _raw_data_bulk(fmt, words, offs[sel], lens[sel])
            else:
                bulk = _fixed_bulk(td, fmt, words, offs[sel], lens[sel])
            if bulk is not None:
                fcols, tx = bulk
                if bad[0] != moved:  # a string held bytes that are not UTF-8: which rows
                    cand = _escaped_rows(fcols.values())
                    _utf8_rows(td, fmt, k, inst, rec, sel, dst, offs[sel], lens[sel], cand, utf8)
                for name, vals in fcols.items():
                    _add(cols, kinds, name, fmt.name, dst, vals)
                if fields_mode == "dict":
                    keys = list(fcols)
                    vals = [_pylist(v) for v in fcols.values()]
                    dicts.append((dst, [dict(zip(keys, row)) for row in zip(*vals)]))
                if fmt.system == "sched" and fmt.name in _SCHED:
                    sched_rows.append((dst, _comm_pairs(fmt.name, fcols)))
                if tx is None:
                    continue
            else:
                dec, render, buf = fmt.decoder, td.render, rec.buf
                fl = [dec(buf, o, ln) for o, ln in zip(offs[sel].tolist(), lens[sel].tolist())]  # type: ignore[misc]
                tx = [render(fmt, f) for f in fl]
                if bad[0] != moved:
                    cand = _candidates(fmt, fl, tx)
                    _utf8_rows(td, fmt, k, inst, rec, sel, dst, offs[sel], lens[sel], cand, utf8)
                for f in fmt.own_fields:
                    _add(cols, kinds, f.name, fmt.name, dst, [d.get(f.name) for d in fl])
                if fields_mode == "dict":
                    dicts.append((dst, fl))
                if fmt.system == "sched" and fmt.name in _SCHED:
                    fc = {k: [d.get(k) for d in fl] for k in ("next_pid", "next_comm", "prev_pid", "prev_comm",
                                                               "pid", "comm")}
                    sched_rows.append((dst, _comm_pairs(fmt.name, fc)))
            texts.append((dst, tx))
    bulk = fcols = tx = vals = None  # the loop's last pieces: only ``texts``/``cols`` hold them now
    del where, per_stream  # event-sized temporaries: their pages are reused by what follows
    words = offs = lens = stypes = None
    pids = pids[order]
    types_o = types[order]
    del types
    inv, utypes = pd.factorize(types_o)
    system = _categorical([names[t][0] for t in utypes.tolist()], inv)
    event = _categorical([names[t][1] for t in utypes.tolist()], inv)
    ts_ns = ts[order]
    for row, key, off, c, iname, sysname, ev, fl in sorted(utf8, key=lambda u: u[0]):
        td._utf8.add(key, off, c, iname, sysname, ev, int(ts_ns[row]), fl)
    inst_names = [(streams[k][0].name or None) for k in range(len(streams))]
    instance = _categorical(inst_names, ks[order])
    del ks
    comm = _comms(td, pids, sched_rows, n)
    data: dict[str, Any] = {"ts_ns": ts_ns, "cpu": cpu[order], "pid": pids, "comm": comm, "system": system,
                            "event": event}
    if fields_mode == "dict":
        fd = np.full(n, None, dtype=object)
        for dst, vals in dicts:
            _put(fd, dst, vals)
        data["fields"] = pd.Series(fd, dtype=object)
    # Each column's pieces are dropped once it is built: the next column reuses
    # that memory instead of faulting in more (peak memory is most of the cost
    # of a first call in a fresh process).
    data["text"] = _column(texts, n, strings=True)
    del texts
    data["instance"] = instance
    if fields_mode == "columns":
        for name in list(cols):
            col = name if name not in FIXED and name != "fields" else f"field_{name}"
            data[col] = _column(cols.pop(name), n)
    return pd.DataFrame(data, copy=False)


def _candidates(fmt: Any, fl: list[dict], tx: list) -> list[int]:
    """Rows whose strings hold ``\\x`` (the rendering of a byte that is not UTF-8, or a literal
    one: :func:`_utf8_rows` asks the record's bytes): print/bprint by their rendered text (it
    holds buf and the %s arguments), other events by their char fields."""
    if fmt.system == "ftrace" and fmt.name in ("print", "bprint"):
        return _escaped_rows([tx])
    return _escaped_rows([[d.get(f.name) for d in fl] for f in fmt.own_fields if f.is_char])


def _escaped_rows(columns: Any) -> list[int]:
    """Rows (sorted) where a str value of one of the list ``columns`` holds ``\\x``."""
    rows: set[int] = set()
    for col in columns:
        if isinstance(col, list):
            rows.update(j for j, v in enumerate(col) if type(v) is str and "\\x" in v)
    return sorted(rows)


def _utf8_rows(td: "TraceDat", fmt: Any, k: int, inst: Any, rec: Any, sel: np.ndarray, dst: np.ndarray,
               offs: np.ndarray, lens: np.ndarray, cand: list[int], out: list[tuple]) -> None:
    """Of the candidate rows ``cand`` (their strings hold ``\\x``), those whose record's own bytes
    are not UTF-8 (:meth:`TraceDat._utf8_fields`, as the event path): into ``out``."""
    for j in cand:
        off = int(offs[j])
        fl = td._utf8_fields(fmt, rec.buf, off, int(lens[j]))
        if fl:
            out.append((int(dst[j]), (k, int(sel[j])), None if inst.compressed else off, rec.cpu,
                        inst.name or None, fmt.system, fmt.name, fl))


def _comm_pairs(name: str, cols: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(pid column, comm column) pairs a sched plugin registers, in its order."""
    if name == "sched_switch":
        keys = (("next_pid", "next_comm"), ("prev_pid", "prev_comm"))
    else:
        keys = (("pid", "comm"),)
    return [(cols.get(p), cols.get(c)) for p, c in keys]


def _comms(td: "TraceDat", pids: np.ndarray, sched_rows: list[tuple[np.ndarray, list]], n: int):
    """comm per row: saved cmdlines, plus what libtraceevent's sched plugins register in order.

    A plugin registers a comm only for a pid not known yet (``tep_register_comm``
    does not override), so only the first mention of each new pid matters.
    """
    comms = dict(td.cmdlines)
    inv, upids = pd.factorize(pids)
    labels = ["<idle>" if p == 0 else comms.get(p, "<...>") for p in upids.tolist()]
    known = np.array(sorted(comms), dtype=np.int64)
    cand_row, cand_ord, cand_pid, cand_comm = [], [], [], []
    for dst, pairs in sched_rows:
        for k, (pcol, ccol) in enumerate(pairs):
            if pcol is None or ccol is None:
                continue
            if isinstance(pcol, list):
                if not all(x is None or type(x) is int for x in pcol):
                    continue  # a damaged format: these are not pids
                pcol = [-1 if x is None else x for x in pcol]
            parr = np.asarray(pcol)
            if parr.ndim != 1 or parr.dtype.kind not in "iu" or len(parr) != len(dst):
                continue
            parr = parr.astype(np.int64)
            new = np.nonzero(~np.isin(parr, known) & (parr >= 0))[0]
            if len(new) == 0:
                continue
            cand_row.append(dst[new])
            cand_ord.append(np.full(len(new), k))
            cand_pid.append(parr[new])
            cand_comm.extend(ccol[i] for i in new.tolist())
    regs: list[tuple[int, int, str]] = []
    if cand_row:
        rows, ords, cpids = np.concatenate(cand_row), np.concatenate(cand_ord), np.concatenate(cand_pid)
        order = np.lexsort((ords, rows))
        _, first = np.unique(cpids[order], return_index=True)
        for i in np.sort(order[first]).tolist():
            c = cand_comm[i]
            if isinstance(c, str):
                regs.append((int(rows[i]), int(cpids[i]), c))
    if not regs:
        return _categorical(labels, inv)
    # Per-row codes into ``labels`` (one label appended per registration), then
    # the categorical pd.Categorical(<those strings>) gives — categories sorted —
    # without a Python object per row.
    labels = list(labels)
    codes = np.asarray(inv, dtype=np.int64).copy()
    rowidx = np.arange(n)
    for j, pid, c in regs:
        if pid != 0:
            codes[(pids == pid) & (rowidx > j)] = len(labels)
            labels.append(c)
    used = np.unique(codes).tolist()
    cats = sorted({labels[i] for i in used})
    at = {c: i for i, c in enumerate(cats)}
    remap = np.full(len(labels), -1, dtype=np.int64)
    for i in used:
        remap[i] = at[labels[i]]
    return categorical_from_codes(remap[codes], cats)
