# SPDX-License-Identifier: GPL-2.0-only
"""Clock alignment of the captures of one migration (the ``_align`` step of
:func:`analysis.load.load`): the keys each capture offers (chunk sizes, section
keys, admin parts sizes) and their matching against the reference capture with
:mod:`analysis.align`.  docs/analysis.md, "Clock alignment", explains the order.

Specs: ``vfio-virtio-stream.md`` §4.1, §5, §6 (records, trailer),
``qemu-trace-events.md`` §5 (section events), ``trace-dat.md`` §9 (DATE option).
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from analysis import align as A
from analysis.load_frames import ts_ns_of

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Capture

STREAM_KINDS = {"pcap", "pcapng", "qemu-stream", "migration-capture"}
TRACE_KINDS = {"trace-dat", "ftrace-text", "trace-cmd-report", "qemu-log"}


# --- clock alignment -------------------------------------------------------------------------

def _unit_ts(units: list[dict[str, Any]]) -> list[int]:
    out = []
    for u in units:
        t = ts_ns_of(u)
        if t is not None:
            out.append(t)
    return out


def _stream_keys(units: list[dict[str, Any]]) -> tuple[tuple[list, list], tuple[list, list]]:
    """(chunk sizes, section keys) of a stream capture, each as (keys, ts)."""
    ck, ct, sk, st = [], [], [], []
    for u in units:
        t = ts_ns_of(u)
        if t is None:
            continue
        if u.get("kind") == "vfio_chunk" and u.get("phase") != "config":
            ck.append(int(u.get("size") or 0))
            ct.append(t)
        elif u.get("kind") == "section":
            sk.append((u.get("type"), u.get("section_id")))
            st.append(t)
    return (ck, ct), (sk, st)


def _trace_keys(units: list[dict[str, Any]], side: str | None) -> tuple[tuple[list, list], tuple[list, list]]:
    ck, ct, sk, st = [], [], [], []
    section_type = {"1": "START", "2": "PART", "3": "END", "4": "FULL"}
    last_type: str | None = None
    for u in units:
        if u.get("kind") != "event":
            continue
        q = u.get("qemu") or {}
        name, args, t = q.get("event"), q.get("args") or {}, ts_ns_of(u)
        if t is None or not name:
            continue
        if side != "destination" and name == "vfio_save_block" and "data_size" in args:
            ck.append(int(args["data_size"]))
            ct.append(t)
        elif side == "destination" and name == "vfio_load_state_device_data" and "data_size" in args:
            ck.append(int(args["data_size"]))
            ct.append(t)
        elif name == "savevm_section_start":
            sk.append(("?", args.get("section_id")))
            st.append(t)
        elif name == "qemu_loadvm_state_section":
            last_type = section_type.get(str(args.get("section_type")))
        elif name == "qemu_loadvm_state_section_startfull":
            sk.append((last_type, args.get("section_id")))
            st.append(t)
        elif name == "qemu_loadvm_state_section_partend":
            sk.append((last_type, args.get("section_id")))
            st.append(t)
    return (ck, ct), (sk, st)


def _has_date_option(cap: Capture) -> bool:
    """True when a trace.dat carries the DATE option.  E's reader applies it (with
    OFFSET/TSC2NSEC, trace-dat.md §9), so such a trace's events are already on the
    wall clock: the anchor shows up as method ``date-option`` with offset 0."""
    if cap.kind != "trace-dat":
        return False
    try:
        from dissect.ftrace.tracedat import read_trace_dat
    except ImportError:
        return False
    try:
        opts = read_trace_dat(cap.data_path).options
    except Exception:
        return False
    return any(getattr(o, "id", None) == 1 or str(getattr(o, "name", "")).upper() == "DATE" for o in opts or [])


def trace_ids(path: Any) -> tuple[int | None, int | None]:
    """(TRACEID, TimeShift peer trace id) of a trace.dat file, None where absent or unreadable.

    A guest recorded with ``trace-cmd record -A`` carries a TimeShift option naming
    the host recording's TRACEID; the reader maps the guest's events onto that host
    trace's clock (dissect/ftrace/tsync.py), so the guest capture shares the host
    trace's alignment (method ``time-shift``)."""
    try:
        st = os.stat(path)
        return _trace_ids(str(path), st.st_mtime_ns, st.st_size)
    except Exception:  # not a readable trace.dat: no ids
        return None, None


@lru_cache(maxsize=64)
def _trace_ids(path: str, _mtime: int, _size: int) -> tuple[int | None, int | None]:
    from dissect.ftrace.tracedat import read_trace_dat

    with read_trace_dat(path) as td:
        tid = next((o.value for o in td.options if o.id == 11 and isinstance(o.value, int)), None)
        return tid, (td.time_shift.peer_trace_id if td.time_shift is not None else None)


def _admin_keys(units: list[dict[str, Any]]) -> tuple[list, list]:
    """Device-context sizes moved by admin commands: 16 + parts bytes of each
    DEV_PARTS_GET result / DEV_PARTS_SET request (one record's payload each,
    vfio-virtio-stream.md §4.1, §5), at the command's request time."""
    acc: dict[Any, list] = {}
    order: list[Any] = []
    req_ts: dict[Any, int] = {}
    last: Any = None
    for u in units:
        k = u.get("kind")
        if k in ("admin_cmd", "admin_result"):
            key = (u.get("owner"), u.get("tag"))
            if k == "admin_cmd":
                t = ts_ns_of(u)
                if t is not None:
                    req_ts[key] = t
                last = (key, len(order))
                order.append([key, u.get("opcode_name"), 0, req_ts.get(key)])
            else:
                last = (key, len(order))
                order.append([key, u.get("opcode_name"), 0, req_ts.get(key, ts_ns_of(u))])
        elif k == "dev_part" and u.get("admin_tag") is not None and last is not None:
            order[last[1]][2] += 16 + int(u.get("length") or 0)
    keys, ts = [], []
    for key, op, nbytes, t in order:
        if op in ("DEV_PARTS_GET", "DEV_PARTS_SET") and nbytes and t is not None:
            keys.append(16 + nbytes)
            ts.append(t)
    return keys, ts


def _match_boundaries(a_sizes: list, a_ts: list, b_sizes: list, b_ts: list
                      ) -> tuple[int, int, int, int] | None:
    """Match cumulative byte positions: where both sequences end a unit at the
    same offset of the device's data.  Admin GET/SET sizes are whole records;
    chunks (reads) may split records anywhere, but a chunk ending on a record
    boundary is the read that completed that record."""
    import numpy as np

    b_end = np.cumsum(np.asarray(b_sizes, dtype=np.int64))
    best = None
    for extra in (0, 8):  # 8: the kernel 6.13.0-6.15.2 trailer after every record (CVE-2025-38314)
        a_end = np.cumsum(np.asarray(a_sizes, dtype=np.int64) + extra)
        common, ia, ib = np.intersect1d(a_end, b_end, assume_unique=False, return_indices=True)
        if len(common) >= 2 and (best is None or len(common) > best[0]):
            best = (len(common), common, ia, ib, extra)
    if best is None:
        return None
    _, common, ia, ib, _extra = best
    got = A.match_sequences(list(common), [a_ts[i] for i in ia], list(common), [b_ts[i] for i in ib],
                            min_match=2)
    return None if got is None else (*got, best[4])


def _keys(cap: Capture, units: list[dict[str, Any]], is_stream: bool) -> tuple[tuple[list, list], tuple[list, list]]:
    if is_stream:
        return _stream_keys(units)
    if cap.kind in TRACE_KINDS:
        return _trace_keys(units, cap.side)
    return _admin_keys(units), ([], [])


def _align(caps: list[Capture], per_cap: dict[int, list[dict[str, Any]]]) -> list[A.Alignment]:
    timed = [c for c in caps if _unit_ts(per_cap.get(c.index, [])[:2000])]
    if not timed:
        return []
    stream_ix = {c.index for c in timed if c.kind in STREAM_KINDS
                 and any(u.get("kind") in ("section", "vfio_chunk", "flow") for u in per_cap[c.index][:5000])}
    # guest trace.dat files whose TimeShift names a host trace.dat of this load: already on its clock
    ids = {c.index: trace_ids(c.data_path) for c in timed if c.kind == "trace-dat"}
    host_of = {}
    for c in timed:
        peer = ids.get(c.index, (None, None))[1]
        host = next((h for h in timed if peer is not None and h is not c and ids.get(h.index, (None,))[0] == peer
                     and ids[h.index][1] is None), None)
        if host is not None:
            host_of[c.index] = host.index
    src_traces = [c for c in timed if c.kind in TRACE_KINDS and c.side == "source"]
    ref = next((c for c in timed if c.index in stream_ix), None) or (src_traces[0] if src_traces else None) \
        or next((c for c in timed if c.index not in host_of), timed[0])
    ref_units = per_cap[ref.index]
    ref_wall = A.is_wall_clock(_unit_ts(ref_units[:2000]))
    (rck, rct), (rsk, rst) = _keys(ref, ref_units, ref.index in stream_ix)
    out = [A.Alignment(ref.index, None, "reference", 0, 0, 0)]
    for c in timed:
        if c is ref or c.index in host_of:
            continue
        units = per_cap[c.index]
        (ck, ct), (sk, st) = _keys(c, units, c.index in stream_ix)
        match, basis = None, None
        if ck and rck:
            basis = "chunk-sizes" if c.kind in TRACE_KINDS or c.index in stream_ix else "admin-parts-sizes"
            match = A.match_sequences(ck, ct, rck, rct, min_match=2)
        if match is None and ck and rck and (basis == "admin-parts-sizes" or ref.kind not in TRACE_KINDS
                                             and not c.kind in TRACE_KINDS and ref.index not in stream_ix):
            # records split over chunks differently: match cumulative record ends instead
            match, basis = _match_boundaries(ck, ct, rck, rct), "record-boundaries"
            if match is not None and match[3] == 8:
                basis = "record-boundaries+trailer"  # records are 8 bytes longer on the wire than in the admin capture
        if match is None and sk and rsk:
            if (c.kind in TRACE_KINDS and c.side != "destination") or (ref.kind in TRACE_KINDS):
                # savevm_section_start gives no type: match on section ids only
                match, basis = A.match_sequences([k[1] for k in sk], st, [k[1] for k in rsk], rst,
                                                 min_match=2), "sections"
            else:
                match, basis = A.match_sequences(sk, st, rsk, rst, min_match=2), "sections"
        wall = A.is_wall_clock(_unit_ts(units[:2000]))
        if ref_wall and wall:
            # anchored at 0: the residual is the matched pairs' distance from 0 (|median| + MAD)
            resid = None if match is None else abs(match[0]) + match[1]
            out.append(A.Alignment(c.index, ref.index, "date-option" if _has_date_option(c) else "wall-clock", 0,
                                   resid, match[2] if match else 0, basis if match else None))
        elif match is not None:
            out.append(A.Alignment(c.index, ref.index, "sequence", match[0], match[1], match[2], basis))
        else:
            out.append(A.Alignment(c.index, ref.index, "none", 0, None, 0))
    done = {a.capture: a for a in out}
    for g, h in host_of.items():
        a = done[h]
        out.append(A.Alignment(g, h, "time-shift", a.offset_ns, a.residual_ns, 0, "TimeShift"))
    return out
