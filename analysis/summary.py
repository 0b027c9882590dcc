# SPDX-License-Identifier: GPL-2.0-only
"""The migration summary: ``summarize(m)`` (one row per device) and
``summary_objects(m)`` (the contract's ``migration_summary`` and
``device_summary`` objects, json-lines.md "``migtrace summary --json``").

A metric the captures cannot support is null and comes with a
``metric_unavailable`` info finding naming the metric and the reason.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis import metrics as M

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

MIGRATION_FIELDS = ("captures", "qemu_profile", "total_ms", "setup_ms", "precopy_iterations",
                    "precopy_iterations_method", "dirty_syncs", "qemu_iterate_sections", "ram_zero_pages",
                    "ram_normal_pages", "bytes_main", "bytes_multifd", "downtime_qemu_ms", "downtime_wire_ms",
                    "downtime_model_ms", "downtime_breakdown_ms")
DEVICE_FIELDS = ("device", "precopy_chunks", "precopy_snapshots", "precopy_policy", "stopcopy_records",
                 "stopcopy_bytes", "record_bytes_min", "record_bytes_median", "record_bytes_p95",
                 "record_bytes_max", "trailer_bug", "parts_per_record_median", "bytes_by_part_type",
                 "admin_latency_ms")
_REASONS = {
    "qemu_profile": "no version evidence (manifest, VFIO PART sections, multifd device state or typed trace events)",
    "total_ms": "needs QEMU stats, migrate_set_state events or a stream with timestamps",
    "setup_ms": "needs QEMU stats, migrate_set_state events or a stream with PART sections",
    "precopy_iterations": "needs migration_bitmap_sync_* trace events, QEMU's final dirty-sync-count (info migrate, "
                          "query-migrate or its time series) or a stream whose RAM pages can be read",
    "precopy_iterations_method": "no method applied (see precopy_iterations)",
    "dirty_syncs": "needs migration_bitmap_sync_* trace events or QEMU's final dirty-sync-count (a stream alone gives "
                   "only a lower bound of precopy_iterations)",
    "qemu_iterate_sections": "needs savevm_state_iterate events or a stream with RAM PART sections",
    "ram_zero_pages": "needs the migration stream (RAM sections)",
    "ram_normal_pages": "needs the migration stream (RAM sections)",
    "bytes_main": "needs a pcap/pcapng of the TCP migration (a file stream has no flows)",
    "bytes_multifd": "needs a pcap/pcapng of the TCP migration",
    "downtime_qemu_ms": "needs vmstate_downtime_checkpoint events, query-migrate/info migrate output or "
                        "finish-migrate/completed trace events",
    "downtime_wire_ms": "needs a stream with timestamps that reaches the switchover (END sections)",
    "downtime_model_ms": "needs stop-copy bytes and a bandwidth (link rate in run.json or a timed stream)",
    "downtime_breakdown_ms": "needs a stream with timestamps that reaches the switchover",
    "precopy_chunks": "needs the stream's VFIO chunks or vfio_save_block/vfio_save_iterate events",
    "precopy_snapshots": "needs the device's records (the stream)",
    "stopcopy_records": "needs the device's records (the stream)",
    "stopcopy_bytes": "needs the device's stop-copy chunks (the stream)",
    "record_bytes_min": "needs the device's records",
    "record_bytes_median": "needs the device's records",
    "record_bytes_p95": "needs the device's records",
    "record_bytes_max": "needs the device's records",
    "trailer_bug": "needs the device's records",
    "parts_per_record_median": "needs the device's records",
    "bytes_by_part_type": "needs the device parts of the last record",
    "admin_latency_ms": "needs an admin capture",
}


def _metrics(m: "Migration") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cache = getattr(m, "_summary_cache", None)
    if cache is None:
        mig = M.migration_metrics(m)
        devs = [M.device_metrics(m, d) for d in m.devices]
        cache = (mig, devs)
        m._summary_cache = cache  # type: ignore[attr-defined]
    return cache


def summarize(m: "Migration") -> pd.DataFrame:
    """One row per VFIO device (one row with ``device`` NA when there is none),
    migration-level metrics repeated on each row; extra columns (methods,
    context growth, policy rule) come after the contract's."""
    mig, devs = _metrics(m)
    base = {"run_id": m.run_id}
    for k in MIGRATION_FIELDS:
        if k in ("captures", "downtime_breakdown_ms"):
            continue
        base[k] = mig.get(k)
    bd = mig.get("downtime_breakdown_ms") or {}
    for k in ("ram", "vfio", "config", "dst_load"):
        base[f"downtime_{k}_ms"] = bd.get(k)
    base.update(ram_bytes=mig.get("ram_bytes"),
                downtime_qemu_method=mig.get("downtime_qemu_method"),
                downtime_wire_method=mig.get("downtime_wire_method"))
    rows = []
    for d in devs or [{"device": None}]:
        row = dict(base)
        for k in DEVICE_FIELDS:
            if k in ("bytes_by_part_type", "admin_latency_ms"):
                continue
            row[k] = d.get(k)
        row.update(context_first_precopy_bytes=d.get("context_first_precopy_bytes"),
                   context_stopcopy_bytes=d.get("context_stopcopy_bytes"),
                   context_growth_pct=d.get("context_growth_pct"),
                   precopy_policy_rule=(d.get("precopy_policy_evidence") or {}).get("rule"))
        rows.append(row)
    df = pd.DataFrame(rows)
    ints = ("precopy_iterations", "dirty_syncs", "qemu_iterate_sections", "ram_zero_pages", "ram_normal_pages", "bytes_main", "bytes_multifd",
            "precopy_chunks", "precopy_snapshots", "stopcopy_records", "stopcopy_bytes", "record_bytes_min",
            "record_bytes_max", "ram_bytes", "context_first_precopy_bytes",
            "context_stopcopy_bytes")
    for c in df.columns:
        if c in ints:
            df[c] = pd.array(df[c].tolist(), dtype="Int64")
        elif c.endswith("_ms") or c in ("record_bytes_median", "record_bytes_p95", "parts_per_record_median",
                                         "context_growth_pct"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        elif c == "trailer_bug":
            df[c] = df[c].astype("boolean")
        else:
            df[c] = df[c].astype("string")
    return df


def _json_value(v: Any) -> Any:
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item"):
        return v.item()
    return v


def summary_objects(m: "Migration") -> list[dict[str, Any]]:
    """``migration_summary``, one ``device_summary`` per device, then a
    ``metric_unavailable`` finding per null metric."""
    mig, devs = _metrics(m)
    out: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []

    why = mig.get("unavailable") or {}

    def null(metric: str, device: str | None = None, device_why: dict[str, str] | None = None) -> None:
        reason = why.get(metric) if device is None else (device_why or {}).get(metric)
        f = {"kind": "finding", "severity": "info", "code": "metric_unavailable",
             "message": f"{metric} is null: {reason or _REASONS.get(metric, 'the captures cannot support it')}",
             "offset": None, "metric": metric}
        if device is not None:
            f["device"] = device
        findings.append(f)

    obj: dict[str, Any] = {"kind": "migration_summary"}
    for k in MIGRATION_FIELDS:
        obj[k] = _json_value(mig.get(k)) if k != "downtime_breakdown_ms" else mig.get(k)
        if obj[k] is None:
            null(k)
    obj.update(run_id=m.run_id, precopy_iterations_evidence=mig.get("precopy_iterations_evidence"),
               ram_bytes=_json_value(mig.get("ram_bytes")),
               ram_transferred_bytes=_json_value(mig.get("ram_transferred_bytes")),
               total_method=mig.get("total_method"), setup_method=mig.get("setup_method"), downtime_qemu_method=mig.get("downtime_qemu_method"),
               downtime_wire_method=mig.get("downtime_wire_method"),
               downtime_model_inputs={k: v for k, v in (mig.get("downtime_model") or {}).items()
                                      if k not in ("downtime_model_ms",)},
               downtime_admin_ms=mig.get("downtime_admin_ms"),
               clock_alignment=[a.to_json() for a in m.alignment])
    out.append(obj)
    for d in devs:
        dobj: dict[str, Any] = {"kind": "device_summary"}
        for k in DEVICE_FIELDS:
            v = d.get(k)
            dobj[k] = v if isinstance(v, dict) else _json_value(v)
            if dobj[k] is None:
                null(k, d["device"], d.get("unavailable"))
        for k in ("records", "context_first_precopy_bytes", "context_stopcopy_bytes", "context_growth_bytes",
                  "context_growth_pct", "precopy_policy_evidence"):
            dobj[k] = d.get(k)
        out.append(dobj)
    if dobj_policy := [d for d in devs if d.get("precopy_policy")]:
        for d in dobj_policy:
            ev = d.get("precopy_policy_evidence") or {}
            findings.append({"kind": "finding", "severity": "info", "code": "precopy_policy_detected",
                             "message": f"{d['device']}: PRE_COPY policy {d['precopy_policy']} (heuristic: "
                                        f"{ev.get('rule')})", "offset": None, "device": d["device"],
                             "policy": d["precopy_policy"], "evidence": ev})
    late = mig.get("late_capture")
    if late:
        findings.insert(0, {"kind": "finding", "severity": "warning", "code": "capture_started_late",
                            "message": f"the capture started after the migration: flows {late['flows']} were picked "
                                       "up mid-stream, so the totals of the whole stream are null ("
                                       f"{', '.join(late['nulled']) or 'none'}); the switchover and what follows "
                                       "were captured", "offset": None, **late})
    return out + findings
