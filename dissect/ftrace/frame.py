# SPDX-License-Identifier: GPL-2.0-only
"""Columnar trace.dat → pandas.DataFrame (the fast twin of ``TraceDat.events()``).

The page walk (:mod:`dissect.ftrace.ring`) yields parallel lists of raw
timestamps, record offsets and lengths per CPU.  Here the common header of
every record (type, pid) is gathered with NumPy, the global order is one
stable lexsort on (timestamp, CPU, stream), and each event type of each
stream is decoded in bulk: ``ftrace/print`` (the QEMU markers, nearly all of
a QEMU trace) by a vectorised path, every other type by its compiled
per-record decoder.  The tests hold the result equal, row for row, to
:meth:`TraceDat.events`.
"""
from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dissect.common.findings import Finding
from dissect.ftrace.formats import EventFormat

if TYPE_CHECKING:
    from dissect.ftrace.tracedat import TraceDat

COLUMNS = ["ts_ns", "cpu", "pid", "comm", "system", "event", "fields", "text", "instance"]
_SCHED = ("sched_switch", "sched_wakeup", "sched_wakeup_new")


def _gather(u8: np.ndarray, offsets: np.ndarray, width: int, dtype: str) -> np.ndarray:
    """Read one ``dtype`` value of ``width`` bytes at each offset of the byte array ``u8``."""
    if len(offsets) == 0:
        return np.zeros(0, dtype=dtype)
    idx = offsets[:, None] + np.arange(width, dtype=np.int64)[None, :]
    return np.ascontiguousarray(u8[idx]).view(dtype).reshape(-1)


def _print_bulk(td: "TraceDat", fmt: EventFormat, buf, u8: np.ndarray, offs: np.ndarray,
                lens: np.ndarray) -> tuple[list, list] | None:
    """``ftrace/print`` records: ip gathered with NumPy, text sliced per record."""
    ipf, buff = fmt.field("ip"), fmt.field("buf")
    if ipf is None or buff is None or ipf.kind != "scalar" or buff.kind != "flex" or ipf.size not in (4, 8):
        return None
    if len(offs) and int(lens.min()) < buff.offset:
        return None  # short records: let the per-record decoder report them
    e = ">" if td.big_endian else "<"
    n = len(offs)
    ips_arr = _gather(u8, offs + ipf.offset, ipf.size, f"{e}u{ipf.size}")
    a = offs + buff.offset
    b = offs + lens
    if n == 0 or (a > b).any() or (np.diff(a) <= 0).any():
        return None
    # Each text with its NUL (the kernel's terminator), sliced in one pass; one
    # decode and one split then give all strings.  A record without a NUL
    # loses its separator, the count no longer matches, and the per-record
    # decoder takes over.
    find = buf.find
    parts = [buf[x:find(b"\0", x, y) + 1] for x, y in zip(a.tolist(), b.tolist())]
    joined = b"".join(parts).decode("utf-8", "replace")
    del parts
    strs = joined.split("\0")
    strs.pop()
    if len(strs) != n:
        return None
    ks = td.kallsyms
    ips = ips_arr.tolist()
    uniq = np.unique(ips_arr)
    if len(uniq) == 1:
        ip0 = ips[0] if n else 0
        prefix = ks.symbol(ip0) + ": "
        texts = (prefix + joined.replace("\n\0", "\0").replace("\0", "\0" + prefix)).split("\0")
        texts.pop()
        fields = [{"ip": ip0, "buf": s} for s in strs]
    else:
        sym = {ip: ks.symbol(ip) for ip in uniq.tolist()}
        texts = [f"{sym[ip]}: {s[:-1] if s[-1:] == chr(10) else s}" for ip, s in zip(ips, strs)]
        fields = [{"ip": ip, "buf": s} for ip, s in zip(ips, strs)]
    return fields, texts


def records_dataframe(td: "TraceDat") -> pd.DataFrame:
    # Hundreds of thousands of small dicts and strings: pause the cyclic GC while
    # building them (they hold no cycles), as pandas' own parsers do.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _records_dataframe(td)
    finally:
        if enabled:
            gc.enable()


def _records_dataframe(td: "TraceDat") -> pd.DataFrame:
    streams = td._cpu_records()
    e = ">" if td.big_endian else "<"
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("ts", "cpu", "k", "i", "type", "pid")}
    per_stream: list[tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for k, (inst, rec) in enumerate(streams):
        n = len(rec.ts)
        offs = np.asarray(rec.offsets, dtype=np.int64)
        lens = np.asarray(rec.lengths, dtype=np.int64)
        u8 = np.frombuffer(rec.buf, dtype=np.uint8) if n else np.zeros(0, np.uint8)
        short = lens < 8
        safe = np.where(short, 0, offs)  # records too short for a common header: patched below
        types = _gather(u8, safe, 2, e + "u2").astype(np.int64)
        pids = _gather(u8, safe + 4, 4, e + "i4").astype(np.int64)
        types[short] = -1
        pids[short] = -1
        per_stream.append((u8, offs, lens, types, pids))
        if n == 0:
            continue
        parts["ts"].append(np.asarray(rec.ts, dtype=np.uint64))
        parts["cpu"].append(np.full(n, rec.cpu, dtype=np.int64))
        parts["k"].append(np.full(n, k, dtype=np.int64))
        parts["i"].append(np.arange(n, dtype=np.int64))
        parts["type"].append(types)
        parts["pid"].append(pids)
    if not parts["ts"]:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("ts_ns", "cpu", "pid") else object)
                             for c in COLUMNS})
    ts, cpu, ks, ii, types, pids = (np.concatenate(parts[c]) for c in ("ts", "cpu", "k", "i", "type", "pid"))
    order = np.lexsort((ii, ks, cpu, ts))
    n = len(order)
    # position of (stream k, record i) in the output
    starts = np.zeros(len(streams) + 1, dtype=np.int64)
    for k, (_, rec) in enumerate(streams):
        starts[k + 1] = starts[k] + len(rec.ts)
    where = np.empty(n, dtype=np.int64)
    where[order] = np.arange(n, dtype=np.int64)
    system = np.empty(n, dtype=object)
    event = np.empty(n, dtype=object)
    fields = np.empty(n, dtype=object)
    text = np.empty(n, dtype=object)
    has_sched = False
    for k, (inst, rec) in enumerate(streams):
        u8, offs, lens, stypes, _ = per_stream[k]
        if len(offs) == 0:
            continue
        pos = where[starts[k]:starts[k + 1]]
        for t in np.unique(stypes).tolist():
            sel = np.nonzero(stypes == t)[0]
            dst = pos[sel]
            fmt = td.formats_by_id.get(t) if t >= 0 else None
            if fmt is None:
                if t >= 0 and t not in td._unknown_ids:
                    td._unknown_ids.add(t)
                    td.findings.append(Finding("warning", "unknown_event_id", f"no format for event id {t}",
                                               None, {"cpu": rec.cpu}))
                event[dst] = "unknown" if t < 0 else f"unknown_{t}"
                fl = [{"raw": bytes(rec.buf[o:o + ln])} for o, ln in zip(offs[sel].tolist(), lens[sel].tolist())]
                _put(fields, dst, fl)
                continue
            system[dst] = fmt.system
            event[dst] = fmt.name
            bulk = None
            if fmt.system == "ftrace" and fmt.name == "print":
                bulk = _print_bulk(td, fmt, rec.buf, u8, offs[sel], lens[sel])
            if bulk is None:
                dec, render, buf = fmt.decoder, td.render, rec.buf
                fl = [dec(buf, o, ln) for o, ln in zip(offs[sel].tolist(), lens[sel].tolist())]  # type: ignore[misc]
                tx = [render(fmt, f) for f in fl]
                bulk = (fl, tx)
            _put(fields, dst, bulk[0])
            _put(text, dst, bulk[1])
            if fmt.system == "sched" and fmt.name in _SCHED:
                has_sched = True
    pids = pids[order]
    comm = _comms(td, pids, system, event, fields, has_sched)
    ts = ts[order]
    if td.tsc2nsec is not None:
        ts_ns = np.array([td.timestamp_ns(int(x)) for x in ts.tolist()], dtype=np.int64)
    else:
        ts_ns = ts.astype(np.int64) + np.int64(td.ts_offset)
    inst_names = np.array([(streams[k][0].name or None) for k in range(len(streams))] + [None], dtype=object)
    instance = inst_names[ks[order]]
    obj = {name: pd.Series(col, dtype=object) for name, col in
           (("comm", comm), ("system", system), ("event", event), ("fields", fields), ("text", text),
            ("instance", instance))}
    df = pd.DataFrame({"ts_ns": ts_ns, "cpu": cpu[order], "pid": pids, **obj})
    return df[COLUMNS]


def _put(arr: np.ndarray, dst: np.ndarray, values: list) -> None:
    tmp = np.empty(len(values), dtype=object)
    tmp[:] = values
    arr[dst] = tmp


def _comms(td: "TraceDat", pids: np.ndarray, system, event, fields, has_sched: bool) -> list:
    """comm per row: saved cmdlines, plus what libtraceevent's sched plugins register in order."""
    comms = dict(td.cmdlines)
    pid_list = pids.tolist()
    base = ["<idle>" if p == 0 else comms.get(p, "<...>") for p in pid_list]
    if not has_sched:
        return base
    regs: list[tuple[int, int, str]] = []  # (row, pid, comm) of each new registration
    known = set(comms)
    sched_rows = np.nonzero((system == "sched") & np.isin(event, _SCHED))[0].tolist()
    for j in sched_rows:
        before = dict()
        td._register_comms(event[j], fields[j], before)
        for pid, c in before.items():
            if pid not in known:
                known.add(pid)
                regs.append((j, pid, c))
    if not regs:
        return base
    out = np.array(base, dtype=object)
    for j, pid, c in regs:
        out[(pids == pid) & (np.arange(len(pids)) > j) & (pid != 0)] = c
    return list(out)
