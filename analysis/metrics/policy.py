# SPDX-License-Identifier: GPL-2.0-only
"""PRE_COPY policy of a device (a HEURISTIC, with its evidence) and the source PF's
admin commands during pre-copy.

Spec: ``vfio-virtio-stream.md`` §7 (PRE_COPY variants, §7.3 heuristic), §9.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.metrics.selection import _NS, _arg, device_records, main_sections, qemu_events
from analysis.metrics.switchover import downtime_window

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

#: vfio-virtio-stream.md §7.3 heuristic thresholds
RATELIMIT_MIN_SPACING_S = 0.9
RATELIMIT_MIN_RECORDS = 3
CAP128_CALLS = 128
MANY_RECORDS = 130


# --- pre-copy policy ---------------------------------------------------------------------------

def precopy_policy(m: "Migration", device: str) -> tuple[str, dict[str, Any]]:
    """PRE_COPY policy (vfio-virtio-stream.md §7.3) — a HEURISTIC, with its evidence.

    ``ratelimited``: more than 130 pre-copy snapshots, or ≥ 3 snapshots never
    closer than 0.9 s.  ``cap128``: sub-second snapshot spacing and then QEMU's
    reported pre-copy sizes drop to zero for good while pre-copy goes on; or
    exactly 128 snapshots at sub-second spacing (the cap was reached: its
    signature); or, without traces, more than 128 VFIO PART sections with no
    snapshot after the 128th; or exactly 128 METADATA_GET admin commands in
    pre-copy; or, last, any two snapshots closer than 0.9 s (the rate-limited
    driver queries the device at most once a second, so sub-second spacing
    excludes it, §7.3).  Otherwise ``unknown``.
    """
    recs = device_records(m, device)
    snaps = recs[(recs["phase"] == "precopy") & (recs["tag_name"] == "DEVICE_DATA")]
    ts = snaps["ts_ns"].dropna().astype("int64").to_numpy()
    basis = "records"
    if not len(recs):
        gets = admin_precopy(m, "DEV_PARTS_GET")
        if gets is not None and len(gets):
            ts, basis = gets["request_ts_ns"].astype("int64").to_numpy(), "admin DEV_PARTS_GET"
    spacing = np.diff(ts) / _NS if len(ts) > 1 else np.array([])
    ev: dict[str, Any] = {"snapshot_basis": basis, "precopy_snapshots": int(len(ts)),
                          "min_spacing_s": float(spacing.min()) if len(spacing) else None,
                          "median_spacing_s": float(np.median(spacing)) if len(spacing) else None}
    # QEMU-reported sizes: permanently zero from some report on?
    rep = qemu_events(m, ("vfio_save_iterate", "vfio_state_pending_exact", "vfio_state_pending_estimate"),
                      device=device)
    zero_from = zero_tail_s = None
    if len(rep):
        pairs = [((_arg(r, "precopy_init_size") or 0) + (_arg(r, "precopy_dirty_size") or 0), r["ts_ns"])
                 for _, r in rep.iterrows() if _arg(r, "precopy_init_size") is not None
                 or _arg(r, "precopy_dirty_size") is not None]
        sizes = [p[0] for p in pairs]
        nz = [i for i, v in enumerate(sizes) if v]
        if nz and nz[-1] + 1 < len(sizes) and len(sizes) - nz[-1] - 1 >= 2:
            zero_from = nz[-1] + 1
            t_first, t_last = pairs[zero_from][1], pairs[-1][1]
            if pd.notna(t_first) and pd.notna(t_last):
                zero_tail_s = (int(t_last) - int(t_first)) / _NS
        elif nz:
            zero_tail_s = 0.0
        ev["reported_sizes"] = len(sizes)
        ev["reported_zero_from"] = zero_from
        ev["reported_zero_tail_s"] = zero_tail_s
    s = main_sections(m)
    parts = s[(s["idstr"] == device) & (s["type"] == "PART")] if len(s) else s
    ev["vfio_part_sections"] = int(len(parts))
    after_cap = None
    if len(parts) > CAP128_CALLS and len(ts):
        t128 = int(parts["ts_ns"].iloc[CAP128_CALLS - 1])
        after_cap = int((ts > t128).sum())
        ev["snapshots_after_128th_part"] = after_cap
    mg = admin_precopy(m, "DEV_PARTS_METADATA_GET")
    if mg is not None:
        ev["metadata_get_precopy"] = int(len(mg))
    sub_second = len(spacing) > 0 and spacing.min() < RATELIMIT_MIN_SPACING_S
    if len(ts) > MANY_RECORDS:
        ev["rule"] = f"more than {MANY_RECORDS} pre-copy snapshots"
        return "ratelimited", ev
    if len(ts) >= RATELIMIT_MIN_RECORDS and spacing.min() >= RATELIMIT_MIN_SPACING_S:
        ev["rule"] = f">= {RATELIMIT_MIN_RECORDS} pre-copy snapshots never closer than {RATELIMIT_MIN_SPACING_S} s"
        return "ratelimited", ev
    if (len(ts) == 2 and spacing.min() >= RATELIMIT_MIN_SPACING_S and zero_tail_s is not None
            and zero_tail_s < 1.0 + (1 - RATELIMIT_MIN_SPACING_S)):
        ev["rule"] = ("2 pre-copy snapshots >= 0.9 s apart and QEMU's reported pre-copy sizes never zero for "
                      "longer than the 1 s rate-limit interval")
        return "ratelimited", ev
    if sub_second and zero_from is not None:
        ev["rule"] = "sub-second snapshot spacing, then QEMU-reported pre-copy sizes permanently 0"
        return "cap128", ev
    if sub_second and len(ts) == CAP128_CALLS:
        ev["rule"] = (f"exactly {CAP128_CALLS} pre-copy snapshots at sub-second spacing: the cap's signature "
                      f"(the rate-limited driver never queries twice within {RATELIMIT_MIN_SPACING_S} s)")
        return "cap128", ev
    if after_cap == 0 and (sub_second or len(ts) <= 1):
        ev["rule"] = f"more than {CAP128_CALLS} VFIO PART sections and no snapshot after the {CAP128_CALLS}th"
        return "cap128", ev
    if ev.get("metadata_get_precopy") == CAP128_CALLS:
        ev["rule"] = f"exactly {CAP128_CALLS} METADATA_GET commands in pre-copy"
        return "cap128", ev
    if sub_second:
        ev["rule"] = (f"pre-copy snapshots {ev['min_spacing_s']:.3f} s apart: closer than the rate-limited "
                      f"driver's {RATELIMIT_MIN_SPACING_S} s, so evidence of the cap (not its signature: "
                      f"{len(ts)} snapshots, not {CAP128_CALLS})")
        return "cap128", ev
    ev["rule"] = "no rule of the heuristic matched"
    return "unknown", ev


def admin_precopy(m: "Migration", opcode_name: str) -> pd.DataFrame | None:
    """Admin commands of the source PF during pre-copy.

    The source PF is the owner that issued DEV_PARTS_GET; pre-copy ends at
    its first DEV_MODE_SET (the device is stopped for stop-copy,
    vfio-virtio-stream.md §9) or, when the stream is timed, at the switchover.
    """
    a = m.admin
    if not len(a):
        return None
    gets = a[a["opcode_name"] == "DEV_PARTS_GET"]
    if not len(gets):
        return a.iloc[0:0]
    owner = gets["owner"].mode().iloc[0]
    mine = a[(a["owner"] == owner) & a["request_ts_ns"].notna()].sort_values("request_ts_ns")
    first_get = int(gets[gets["owner"] == owner]["request_ts_ns"].min())
    stop = mine[(mine["opcode_name"] == "DEV_MODE_SET") & (mine["request_ts_ns"] > first_get)]
    win = downtime_window(m)
    cut = int(stop["request_ts_ns"].iloc[0]) if len(stop) else win["start_ns"]
    sel = mine["opcode_name"] == opcode_name
    if cut is not None:
        sel &= mine["request_ts_ns"] < cut
    return mine[sel]
