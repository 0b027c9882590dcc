# SPDX-License-Identifier: GPL-2.0-only
"""Columnar trace.dat → pandas.DataFrame (the fast twin of ``TraceDat.events()``).

The page walk (:mod:`dissect.ftrace.ring`) yields parallel lists of raw
timestamps, record offsets and lengths per CPU.  Here the common header of
every record (type, pid) is gathered with NumPy, the global order is one
stable lexsort on (timestamp, CPU, stream), and each event type's own fields
are decoded with its compiled decoder, one type at a time.  The tests hold
the result equal, row for row, to :meth:`TraceDat.events`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dissect.common.findings import Finding

if TYPE_CHECKING:
    from dissect.ftrace.tracedat import TraceDat

COLUMNS = ["ts_ns", "cpu", "pid", "comm", "system", "event", "fields", "text", "instance"]


def _gather(buf, offsets: np.ndarray, width: int, dtype: str) -> np.ndarray:
    """Read one ``dtype`` value of ``width`` bytes at each offset of ``buf``."""
    if len(offsets) == 0:
        return np.zeros(0, dtype=dtype)
    arr = np.frombuffer(buf, dtype=np.uint8)
    idx = offsets[:, None] + np.arange(width, dtype=np.int64)[None, :]
    return np.ascontiguousarray(arr[idx]).view(dtype).reshape(-1)


def records_dataframe(td: "TraceDat") -> pd.DataFrame:
    streams = td._cpu_records()
    e = ">" if td.big_endian else "<"
    ts_parts, cpu_parts, k_parts, i_parts, type_parts, pid_parts = [], [], [], [], [], []
    for k, (inst, rec) in enumerate(streams):
        n = len(rec.ts)
        if n == 0:
            continue
        offs = np.asarray(rec.offsets, dtype=np.int64)
        lens = np.asarray(rec.lengths, dtype=np.int64)
        short = lens < 8
        safe = np.where(short, 0, offs)  # records too short for a header: patched below
        types = _gather(rec.buf, safe, 2, e + "u2").astype(np.int64)
        pids = _gather(rec.buf, safe + 4, 4, e + "i4").astype(np.int64)
        types[short] = -1
        pids[short] = -1
        ts_parts.append(np.asarray(rec.ts, dtype=np.uint64))
        cpu_parts.append(np.full(n, rec.cpu, dtype=np.int64))
        k_parts.append(np.full(n, k, dtype=np.int64))
        i_parts.append(np.arange(n, dtype=np.int64))
        type_parts.append(types)
        pid_parts.append(pids)
    if not ts_parts:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("ts_ns", "cpu", "pid") else object)
                             for c in COLUMNS})
    ts = np.concatenate(ts_parts)
    cpu = np.concatenate(cpu_parts)
    ks = np.concatenate(k_parts)
    ii = np.concatenate(i_parts)
    types = np.concatenate(type_parts)
    pids = np.concatenate(pid_parts)
    order = np.lexsort((ii, ks, cpu, ts))
    ts, cpu, ks, ii, types, pids = ts[order], cpu[order], ks[order], ii[order], types[order], pids[order]
    n = len(ts)
    system = np.empty(n, dtype=object)
    event = np.empty(n, dtype=object)
    fields = np.empty(n, dtype=object)
    text = np.empty(n, dtype=object)
    # decode type by type, each record with its stream's buffer
    uniq = np.unique(types)
    has_sched = False
    for t in uniq.tolist():
        sel = np.nonzero(types == t)[0]
        fmt = td.formats_by_id.get(t) if t >= 0 else None
        if fmt is None:
            name = "unknown" if t < 0 else f"unknown_{t}"
            if t >= 0 and t not in td._unknown_ids:
                td._unknown_ids.add(t)
                td.findings.append(Finding("warning", "unknown_event_id", f"no format for event id {t}", None))
            event[sel] = name
            for j in sel.tolist():
                inst, rec = streams[ks[j]]
                o, ln = rec.offsets[ii[j]], rec.lengths[ii[j]]
                fields[j] = {"raw": bytes(rec.buf[o:o + ln])}
            continue
        system[sel] = fmt.system
        event[sel] = fmt.name
        dec = fmt.decoder
        render = td.render
        if fmt.system == "sched" and fmt.name in ("sched_switch", "sched_wakeup", "sched_wakeup_new"):
            has_sched = True
        for j in sel.tolist():
            inst, rec = streams[ks[j]]
            i = ii[j]
            f = dec(rec.buf, rec.offsets[i], rec.lengths[i])
            fields[j] = f
            text[j] = render(fmt, f)
    # comm: saved cmdlines, plus the comms libtraceevent's sched plugins register in order
    comms = dict(td.cmdlines)
    pid_list = pids.tolist()
    if has_sched:
        comm = []
        ev_list = event.tolist()
        sys_list = system.tolist()
        for j, pid in enumerate(pid_list):
            comm.append("<idle>" if pid == 0 else comms.get(pid, "<...>"))
            if sys_list[j] == "sched" and ev_list[j] in ("sched_switch", "sched_wakeup", "sched_wakeup_new"):
                td._register_comms(ev_list[j], fields[j], comms)
    else:
        comm = ["<idle>" if pid == 0 else comms.get(pid, "<...>") for pid in pid_list]
    if td.tsc2nsec is not None or td.ts_offset:
        ts_ns = np.array([td.timestamp_ns(int(x)) for x in ts.tolist()], dtype=np.int64)
    else:
        ts_ns = ts.astype(np.int64)
    inst_names = [(streams[k][0].name or None) for k in range(len(streams))]
    instance = np.array(inst_names, dtype=object)[ks] if streams else np.empty(0, dtype=object)
    pid_col = pids.copy()
    # object columns keep None as None (pandas 3 would infer str with NaN)
    obj = {name: pd.Series(col, dtype=object) for name, col in
           (("comm", comm), ("system", system), ("event", event), ("fields", fields), ("text", text),
            ("instance", instance))}
    df = pd.DataFrame({"ts_ns": ts_ns, "cpu": cpu, "pid": pid_col, **obj})
    return df[COLUMNS]
