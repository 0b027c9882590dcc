# SPDX-License-Identifier: GPL-2.0-only
"""Ground truth of a simulated run, in the metric names of json-lines.md.

``truth(timeline)`` gives the ``run.json`` ``truth`` object: the
``migration_summary`` metrics at the top level, the ``device_summary``
metrics of the first VF at the top level too (the contract's example shape,
for single-VF runs) and of every VF under ``devices``, plus what the
summaries do not carry: the true guest downtime and its parts, every
record, the PRE_COPY info calls and the pre-copy iterations.  Every time
is in milliseconds on the source capture's clock unless named ``_ns``.
Definitions are in docs/simulator.md ("Truth").
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from dissect.virtio import names as N

from analysis.simulate.model import MS, Timeline, vf_host_name, vf_idstr


def _ms(ns: int | float) -> float:
    return round(ns / MS, 6)


def _profile_label(family: str) -> str:
    return "10.x" if family == "10.x" else "8.1-9.x"


def downtime(tl: Timeline) -> dict[str, Any]:
    """Downtime measures and the wire breakdown (parts sum to ``downtime_wire_ms``)."""
    m = tl.marks
    out: dict[str, Any] = {
        "downtime_qemu_ms": _ms(m["downtime_end"] - m["downtime_start"]),
        # what query-migrate reports: whole milliseconds (source-query-migrate.json)
        "downtime_query_migrate_ms": (m["downtime_end"] - m["downtime_start"]) // MS,
        # → RP SHUT, or the end of the stream without a return path
        "downtime_wire_ms": _ms(m.get("shut_arrival", m["last_src_byte"]) - m["wire_t0"]),
        "downtime_model_ms": None,
    }
    if tl.outcome == "completed":
        out["downtime_ms"] = _ms(m["dst_vm_started"] - m["downtime_start"])
        ram = m["ram_end"] - m["wire_t0"]
        vfio = m["vfio_end"] - m["ram_end"]
        config = m["last_src_byte"] - m["vfio_end"]
        dst = m.get("shut_arrival", m["last_src_byte"]) - m["last_src_byte"]
        out["downtime_breakdown_ms"] = {"ram": _ms(ram), "vfio": _ms(vfio), "config": _ms(config),
                                        "dst_load": _ms(dst)}
        # the guest-visible downtime, from VM stop on the source to VM start on the destination
        out["downtime_parts_ms"] = {
            "src_stop": _ms(m["vm_stopped"] - m["downtime_start"]),
            "ram": _ms(ram), "vfio": _ms(vfio), "config": _ms(config),
            "dst_load": _ms(m["dst_vm_started"] - m["last_src_byte"]),
            "pre_wire": _ms(m["wire_t0"] - m["vm_stopped"]),
        }
    else:
        # a failed migration has no QEMU downtime (query-migrate reports none)
        out["downtime_qemu_ms"] = None
        out["downtime_query_migrate_ms"] = None
        out["downtime_ms"] = _ms(m["src_vm_resumed"] - m["downtime_start"])
        out["downtime_breakdown_ms"] = None
        out["downtime_parts_ms"] = None
    return out


def device_truth(tl: Timeline, vf: int) -> dict[str, Any]:
    recs = tl.records[vf]
    chunks = tl.chunks[vf]
    sizes = [r.record_size for r in recs]
    pre = [r for r in recs if r.phase == "precopy"]
    stop = [r for r in recs if r.phase == "stopcopy"]
    last = recs[-1]
    by_type: dict[str, int] = defaultdict(int)
    # parts of the last record: header (16) + value, keyed by contract part-type name
    from dissect.virtio.parts_fast import decode_parts

    parts, _end, _f = decode_parts(last.data[16:16 + last.parts_len])
    for pt in parts:
        by_type[N.PART_TYPES.get(pt.part_type, f"0x{pt.part_type:04x}")] += 16 + pt.length
    lat: dict[str, list[float]] = defaultdict(list)
    for c in tl.admin:
        if c.vf == vf:
            lat[c.opcode].append(c.latency_ns / MS)
    info = tl.info_calls[vf]
    queries = [c["ts_ns"] for c in info if c["queried"]]
    resnap = [r.taken_ns for r in recs if r.reason == "precopy-info"]
    spacing = np.diff(resnap) / MS if len(resnap) > 1 else np.array([])
    return {
        "device": vf_idstr(vf),
        "host_device": vf_host_name(vf),
        "precopy_chunks": sum(1 for c in chunks if c.phase == "precopy"),
        "precopy_snapshots": len(pre),
        "precopy_policy": tl.profile.policy,
        "stopcopy_records": len(stop),
        "stopcopy_bytes": sum(c.size for c in chunks if c.phase == "stopcopy"),
        "record_bytes_min": int(min(sizes)),
        "record_bytes_median": int(round(float(np.median(sizes)))),
        "record_bytes_p95": int(round(float(np.percentile(sizes, 95)))),
        "record_bytes_max": int(max(sizes)),
        "trailer_bug": tl.profile.trailer_bug,
        "parts_per_record_median": float(np.median([len(r.part_types) for r in recs])),
        "bytes_by_part_type": dict(by_type),
        "admin_latency_ms": {k: round(float(np.median(v)), 6) for k, v in sorted(lat.items())},
        # beyond device_summary
        "records_total": len(recs),
        "precopy_info_calls": len(info),
        "precopy_device_queries": len(queries),
        "precopy_info_zero_after_cap": sum(1 for c in info if c["call"] > 128),
        "resnapshot_spacing_min_ms": round(float(spacing.min()), 6) if spacing.size else None,
        "context_growth_bytes": last.parts_len - recs[0].parts_len,
        "admin_errors": [{"opcode": c.opcode, "status": c.status, "qualifier": c.qualifier, "side": c.side,
                          "reason": c.reason} for c in tl.admin if c.vf == vf and c.status],
        "records": [{"index": r.index, "offset": r.offset, "record_size": r.record_size,
                     "parts_bytes": r.parts_len, "trailer_bytes": len(r.trailer), "parts": len(r.part_types),
                     "phase": r.phase, "reason": r.reason, "taken_ms": _ms(r.taken_ns),
                     # capture time of the write carrying the record's header (main channel or multifd)
                     "header_wire_ms": _ms(r.header_ts_ns) if r.header_ts_ns is not None else None}
                    for r in recs],
        "chunks": {"precopy": [c.size for c in chunks if c.phase == "precopy"],
                   "stopcopy": [c.size for c in chunks if c.phase == "stopcopy"]},
    }


def truth(tl: Timeline, *, bytes_main: int | None = None, bytes_multifd: int | None = None) -> dict[str, Any]:
    """The ``truth`` object of run.json (see module docstring)."""
    m = tl.marks
    its = tl.iterations
    syncs = 1 + sum(1 for i in its if i.exact) + 1  # setup + iterations + completion
    out: dict[str, Any] = {
        "outcome": tl.outcome,
        "qemu_profile": _profile_label(tl.profile.qemu.family),
        "total_ms": _ms(m["downtime_end"] - m["start"]),
        "setup_ms": _ms(m["setup_end"] - m["start"]),
        # passes over dirty memory before the switchover, as QEMU's dirty-sync-count counts them
        "precopy_iterations": syncs - 1,
        "dirty_syncs": syncs,
        "qemu_iterate_sections": len(its) - 1,  # the last entry is the switchover decision
        "ram_zero_pages": tl.ram["zero"],
        "ram_normal_pages": tl.ram["normal"],
        "bytes_main": bytes_main,
        "bytes_multifd": bytes_multifd,
    }
    out.update(downtime(tl))
    devs = [device_truth(tl, vf) for vf in range(tl.profile.vfs)]
    first = {k: v for k, v in devs[0].items() if k not in ("records", "chunks")}
    out.update(first)
    out["trailer_bug"] = tl.profile.trailer_bug
    out["devices"] = devs
    out["downtime_wire_start"] = ("SWITCHOVER_START command" if tl.profile.qemu.family == "10.x"
                                  else "RAM END section")
    out["downtime_wire_end"] = "RP SHUT" if "shut_arrival" in m else "end of stream"
    out["marks_ms"] = {k: _ms(v) for k, v in sorted(m.items(), key=lambda kv: kv[1])}
    out["switchover_ack"] = tl.profile.qemu.switchover_ack
    # per pre-copy iteration, as columns (the last entry is the switchover decision)
    out["iterations"] = {
        "start_ms": [round(i.start_ns / MS, 3) for i in its],
        "exact": [int(i.exact) for i in its],
        "dirty_pages": [i.dirty_pages for i in its],
        "pending_bytes": [i.pending_bytes for i in its],
        "vfio_chunk_bytes": [[v["chunk"] for v in i.vfio] for i in its],
        "vfio_snapshots": [[v["snapshot"] for v in i.vfio] for i in its],
    }
    return out
