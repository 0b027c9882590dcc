# SPDX-License-Identifier: GPL-2.0-only
"""Record statistics of a device (sizes, trailer, parts, context growth) and admin
command latencies.

Specs: ``vfio-virtio-stream.md`` §4.1, §6 (records, kernel trailer).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.metrics.selection import device_records

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration


# --- record statistics -------------------------------------------------------------------------

def record_stats(m: "Migration", device: str) -> dict[str, Any]:
    """Record sizes (``record_size`` of the 16-byte header, all records of the device)."""
    recs = device_records(m, device)
    sizes = recs["record_size_bytes"].dropna().astype("int64").to_numpy()
    out: dict[str, Any] = {"records": int(len(recs))}
    if len(sizes):
        out.update(record_bytes_min=int(sizes.min()), record_bytes_median=int(round(float(np.median(sizes)))),
                   record_bytes_p95=int(round(float(np.percentile(sizes, 95)))), record_bytes_max=int(sizes.max()))
    else:
        out.update(record_bytes_min=None, record_bytes_median=None, record_bytes_p95=None, record_bytes_max=None)
    out["trailer_bug"] = bool((recs["trailer_bytes"].fillna(0) == 8).any()) if len(recs) else None
    if out["trailer_bug"] is None:
        # no records: the admin capture's records lined up with the device data only with 8 extra bytes each
        bases = {a.basis for a in m.alignment if a.basis and a.basis.startswith("record-boundaries")}
        if bases:
            out["trailer_bug"] = "record-boundaries+trailer" in bases
    np_ = recs["n_parts"].dropna()
    out["parts_per_record_median"] = float(np_.median()) if len(np_) else None
    snaps = recs[recs["tag_name"] == "DEVICE_DATA"]
    pre = snaps[snaps["phase"] == "precopy"]
    sc = snaps[snaps["phase"] == "stopcopy"]
    first = int(pre["record_size_bytes"].iloc[0]) if len(pre) and pd.notna(pre["record_size_bytes"].iloc[0]) else None
    final = int(sc["record_size_bytes"].iloc[-1]) if len(sc) and pd.notna(sc["record_size_bytes"].iloc[-1]) else None
    out["context_first_precopy_bytes"] = first
    out["context_stopcopy_bytes"] = final
    out["context_growth_bytes"] = None if first is None or final is None else final - first
    out["context_growth_pct"] = None if not first or final is None else 100.0 * (final - first) / first
    out["bytes_by_part_type"] = bytes_by_part_type(m, device, recs)
    return out


def bytes_by_part_type(m: "Migration", device: str, recs: pd.DataFrame | None = None) -> dict[str, int] | None:
    """Bytes per part type (16-byte part header + value) over the device's last record."""
    recs = device_records(m, device) if recs is None else recs
    p = m.parts
    if not len(recs) or not len(p):
        return None
    last = recs.iloc[-1]
    sel = (p["device"] == device) & (p["record"] == last["index"]) & (p["capture"] == last["capture"])
    lp = p[sel.fillna(False)]
    if not len(lp):
        return None
    names = lp["part_type_name"].fillna(lp["part_type"].astype("string")).fillna("?")
    return {str(k): int(v) for k, v in lp.groupby(names, sort=False)["total_bytes"].sum().items()}


def admin_members(m: "Migration") -> dict[str, int]:
    """Device → SR-IOV group member id (VF number) of its admin commands.

    With one device every command is its own; with several, the i-th device
    in sorted name order is taken to be the i-th smallest VF number seen (a
    HEURISTIC: the captures do not name the VF of a migration stream).
    """
    a = m.admin
    devs = sorted(m.devices)
    if not len(a) or not devs:
        return {}
    members = sorted(int(x) for x in a["group_member_id"].dropna().unique())
    if len(devs) > 1 and len(members) == len(devs):
        return dict(zip(devs, members))
    return {}


def admin_latency(m: "Migration", device: str | None = None) -> dict[str, float] | None:
    """Median admin command latency per opcode name (ms); per device when the VF is known."""
    a = m.admin
    if not len(a) or not a["latency_ns"].notna().any():
        return None
    member = admin_members(m).get(device) if device is not None else None
    if member is not None:
        a = a[a["group_member_id"] == member]
    g = a[a["latency_ns"].notna()].groupby("opcode_name")["latency_ns"].median()
    return {str(k): float(v) / 1e6 for k, v in g.items()}
