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
import pyarrow as pa
import pyarrow.compute as pc

from dissect.common.findings import Finding
from dissect.ftrace.formats import EventFormat

if TYPE_CHECKING:
    from dissect.ftrace.tracedat import TraceDat

FIXED = ["ts_ns", "cpu", "pid", "comm", "system", "event", "text", "instance"]
_SCHED = ("sched_switch", "sched_wakeup", "sched_wakeup_new")


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
    decodes with replacement characters, as the per-record decoder does)."""
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
_TAKE_ROWS = 1 << 16


def _utf8_without_nul(region: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> bool:
    """Whether every ``region[starts[i]:ends[i]]`` is UTF-8 without a NUL byte, checked
    ``_CHECK_ROWS`` rows at a time (a small copy reused, never one of the whole column)."""
    for i in range(0, len(starts), _CHECK_ROWS):
        strs = _arrow_strings(region, starts[i:i + _CHECK_ROWS], ends[i:i + _CHECK_ROWS])
        if strs is None or _has_nul(strs):
            return False
    return True


# " xx" for every byte value: raw_data's text is "# <id>" and then this per byte
_HEX3 = np.frombuffer("".join(f" {i:02x}" for i in range(256)).encode(), dtype=np.uint8).reshape(256, 3)


def _raw_data_bulk(fmt: EventFormat, words: _Words, offs: np.ndarray,
                   lens: np.ndarray) -> tuple[dict[str, Any], Any] | None:
    """``ftrace/raw_data`` records (trace_marker_raw: the admin pieces), vectorised: ``id``
    gathered, ``buf`` the record's bytes after it, the text as
    :func:`~dissect.ftrace.formats.render_raw_data` writes it (hex by a table lookup)."""
    own = fmt.own_fields
    if [f.name for f in own] != ["id", "buf"]:
        return None
    idf, buff = own
    if idf.kind != "scalar" or idf.size != 4 or (idf.signed and not idf.is_pointer) or buff.kind != "flex":
        return None
    n = len(offs)
    if n == 0 or int(lens.min()) < max(buff.offset, idf.offset + 4):
        return None  # short records: let the per-record decoder report them
    a = offs + buff.offset
    b = offs + lens
    if (a[1:] < b[:-1]).any():
        return None
    ids = words.read(offs + idf.offset, 4).astype(np.int64)
    lo = int(a[0])
    raw = _arrow_slices(words.u8[lo:int(b[-1])], a - lo, b - lo)
    offsets, data = _values(raw)
    hexed = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(3 * offsets),
                                                         pa.py_buffer(_HEX3[data].reshape(-1))])
    uniq, inv = np.unique(ids, return_inverse=True)
    prefixes = pa.array([f"# {i:x}" for i in uniq.tolist()], type=pa.large_string())
    pref = prefixes.take(pa.array(inv.reshape(-1)))
    texts = pc.binary_join_element_wise(pref, hexed, pa.scalar("", type=pa.large_string()))
    return {"id": ids, "buf": raw.to_pylist()}, texts


def _print_bulk(td: "TraceDat", fmt: EventFormat, buf, words: _Words, offs: np.ndarray,
                lens: np.ndarray, lazy: bool = False) -> tuple[dict[str, Any], Any] | None:
    """``ftrace/print`` records, vectorised: ip gathered, texts cut at their NUL into Arrow strings
    (``lazy``: into :class:`_Spans` of ``buf``, copied later straight into the columns)."""
    ipf, buff = fmt.field("ip"), fmt.field("buf")
    if ipf is None or buff is None or ipf.kind != "scalar" or buff.kind != "flex" or ipf.size not in (4, 8):
        return None
    n = len(offs)
    if n == 0 or int(lens.min()) < buff.offset:
        return None  # short records: let the per-record decoder report them
    ips = words.read(offs + ipf.offset, ipf.size)
    a = offs + buff.offset
    b = offs + lens
    if (a[1:] < b[:-1]).any():
        return None
    lo = int(a[0])
    region = words.u8[lo:int(b[-1])]
    # The text ends at the record's first NUL.  The kernel's NUL sits in the last 4
    # bytes (only padding follows it): take the first zero there, then make sure
    # no text holds an earlier NUL (such rows go to the per-record decoder).
    if words.u32 is not None and not (b & 3).any() and (b - 4 >= a).all():
        # the usual case: the last 4 bytes are one aligned word of the text
        v = words.u32[(b - 4) >> 2]
        zero = [(v >> np.uint32(sh)) & np.uint32(0xFF) == 0
                for sh in ((0, 8, 16, 24) if words.e == "<" else (24, 16, 8, 0))]
        if not (zero[0] | zero[1] | zero[2] | zero[3]).all():
            return None  # a record without a NUL near its end
        z = (b - 4 - lo) + np.where(zero[0], 0, np.where(zero[1], 1, np.where(zero[2], 2, 3)))
    else:
        tail = np.maximum(b - 4, a) - lo
        last4 = words.u8[(tail + lo)[:, None] + np.arange(4, dtype=np.int64)[None, :]]
        last4 = np.where(((tail + lo)[:, None] + np.arange(4)[None, :]) < b[:, None], last4, 1)
        has0 = last4 == 0
        if not has0.any(axis=1).all():
            return None  # a record without a NUL near its end
        z = tail + has0.argmax(axis=1)
    nl = (z > a - lo) & (region[np.maximum(z - 1, 0)] == 10)
    if lazy:
        if not _utf8_without_nul(region, a - lo, z):
            return None
        uniq, inv = np.unique(ips, return_inverse=True)
        prefixes = pa.array([td.kallsyms.symbol(ip) + ": " for ip in uniq.tolist()], type=pa.large_string())
        z = z + lo
        return {"ip": ips, "buf": _Spans(buf, a, z)}, _Spans(buf, a, z - nl, prefixes,
                                                          None if len(uniq) == 1 else inv.reshape(-1))
    bufs = _arrow_strings(region, a - lo, z)
    if bufs is None or _has_nul(bufs):
        return None
    stripped = _arrow_strings(region, a - lo, z - nl)
    if stripped is None:
        return None
    ks = td.kallsyms
    uniq, inv = np.unique(ips, return_inverse=True)
    prefixes = pa.array([ks.symbol(ip) + ": " for ip in uniq.tolist()], type=stripped.type)
    pref = prefixes[0] if len(uniq) == 1 else prefixes.take(pa.array(inv))
    texts = pc.binary_join_element_wise(pref, stripped, pa.scalar("", type=pa.large_string()))
    return {"ip": ips, "buf": bufs}, texts


def _fixed_bulk(td: "TraceDat", fmt: EventFormat, words: _Words, offs: np.ndarray,
                lens: np.ndarray) -> tuple[dict[str, Any], Any] | None:
    """Events whose fields all sit at fixed offsets (scalars, fixed arrays): one NumPy gather per
    field.  Most kernel events (sched_switch, …) are like this."""
    own = fmt.own_fields
    if not own or any(f.kind not in ("scalar", "string", "array") for f in own):
        return None
    if fmt.system == "ftrace":
        return None  # print-like events need their rendered text: per-record path
    end = max(f.offset + f.size for f in own)
    if int(lens.min()) < end:
        return None  # short records: the per-record decoder reports None fields
    out: dict[str, Any] = {}
    for f in own:
        if f.kind == "scalar":
            out[f.name] = words.read(offs + f.offset, f.size, f.signed and not f.is_pointer)
            continue
        idx = (offs + f.offset)[:, None] + np.arange(f.size, dtype=np.int64)[None, :]
        mat = np.ascontiguousarray(words.u8[idx])
        if f.kind == "string":
            raw = mat.view(f"S{f.size}").reshape(-1).tolist()  # trailing NULs already stripped
            out[f.name] = [(b.split(b"\0", 1)[0] if b"\0" in b else b).decode("utf-8", "replace")
                           for b in raw]
        else:
            kind = ("i" if f.signed and not f.is_pointer else "u") + str(f.elem_size)
            if f.elem_size not in (1, 2, 4, 8) or f.size % f.elem_size:
                out[f.name] = [bytes(r) for r in mat]
            else:
                out[f.name] = mat.view(words.e + kind).reshape(len(offs), -1).tolist()
    return out, None


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
            bulk = None
            if fmt.system == "ftrace" and fmt.name == "print":
                bulk = _print_bulk(td, fmt, rec.buf, words, offs[sel], lens[sel], lazy=fields_mode == "columns")
            elif fmt.system == "ftrace" and fmt.name == "raw_data":
                bulk = _raw_data_bulk(fmt, words, offs[sel], lens[sel])
            else:
                bulk = _fixed_bulk(td, fmt, words, offs[sel], lens[sel])
            if bulk is not None:
                fcols, tx = bulk
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
    return pd.Categorical.from_codes(remap[codes] if len(labels) else codes, categories=cats)


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
    return pd.Categorical.from_codes(remap[codes], categories=cats)
