# SPDX-License-Identifier: GPL-2.0-only
"""Device names and duplicate admin commands across the captures of one
migration: trace names (host PCI address) mapped to stream idstrs, admin commands
seen in both an admin capture and a trace kept once.  Steps of
:func:`analysis.load.load`; docs/analysis.md, "Device names".

Specs: ``qemu-migration-stream.md`` §10.1 (idstr), ``admin-capture.md`` (ftrace form).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from analysis import align as A
from analysis.load_align import TRACE_KINDS

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration


def _map_devices(m: Migration) -> None:
    """Trace device names (host PCI address) → stream idstr (qemu-migration-stream.md §10.1).

    10.x traces print both (``vfio_save_complete_precopy_thread_start``);
    otherwise a single device on each side maps one-to-one.  Unmapped names
    stay as they are, with an info finding.
    """
    ev = m.events
    if not len(ev):
        return
    stream_devs = [d for d in m.devices if d.endswith("/vfio")]
    trace_devs = [str(d) for d in ev.loc[ev["qemu_event"].fillna("").str.startswith("vfio_"), "device"].dropna().unique()]
    mapping: dict[str, str] = {}
    th = ev[ev["qemu_event"] == "vfio_save_complete_precopy_thread_start"]
    for _, r in th.iterrows():
        idstr = r["args"].get("idstr")
        if idstr and r["device"]:
            mapping[str(r["device"])] = str(idstr)
    if not mapping and len(stream_devs) == 1 and len(trace_devs) == 1:
        mapping[trace_devs[0]] = stream_devs[0]
    pending = [d for d in trace_devs if d not in mapping]
    if pending and stream_devs and len(m.chunks):
        mapping.update(_map_by_chunk_sizes(m, pending, stream_devs))
    pending = sorted(d for d in trace_devs if d not in mapping)
    free = sorted(d for d in stream_devs if d not in mapping.values())
    if pending and len(pending) == len(free):
        # indistinguishable by data and time (same firmware, chunks in the same packets): host PCI
        # order ↔ guest PCI order, a HEURISTIC that holds when VFs are assigned in order
        mapping.update(zip(pending, free))
        m.finding("info", "device_names_mapped_by_order",
                  "trace device names mapped to stream devices by sorted order (heuristic): "
                  + ", ".join(f"{a} -> {b}" for a, b in zip(pending, free)), mapping=dict(zip(pending, free)))
    unmapped = [d for d in trace_devs if d not in mapping]
    if stream_devs and unmapped:
        m.finding("info", "device_name_unmapped",
                  f"trace device name(s) {', '.join(unmapped)} could not be matched to stream device(s) "
                  f"{', '.join(stream_devs)}; their events keep the host name", devices=unmapped)
    if mapping:
        m.device_map = mapping
        m.events["device"] = m.events["device"].map(lambda d: mapping.get(d, d) if isinstance(d, str) else d
                                                    ).astype("string")


def _dedup_admin(m: Migration) -> None:
    """Admin commands seen twice — in an admin capture and as raw_data records in a
    trace (admin-capture.md, ftrace form) — are kept once, from the admin capture."""
    a = m.admin
    if not len(a):
        return
    kinds = {c.index: c.kind for c in m.captures}
    from_trace = a["capture"].map(lambda i: kinds.get(int(i)) in TRACE_KINDS)
    owners = set(a.loc[~from_trace, "owner"].dropna())
    drop = from_trace & a["owner"].isin(owners)
    if not drop.any():
        return
    caps = set(int(x) for x in a.loc[drop, "capture"])
    m.admin = a[~drop].reset_index(drop=True)
    keep_caps = set(int(x) for x in m.admin["capture"])
    p = m.parts
    gone = p["admin_tag"].notna() & p["capture"].isin(caps - keep_caps)
    m.parts = p[~gone].reset_index(drop=True)
    m.finding("info", "admin_duplicates_dropped",
              f"{int(drop.sum())} admin commands carried by trace capture(s) {sorted(caps)} are also in an "
              "admin capture; the admin capture's copies are used", dropped=int(drop.sum()))


def _map_by_chunk_sizes(m: Migration, names: list[str], idstrs: list[str]) -> dict[str, str]:
    """Map each trace device name to the stream device whose DEV_DATA_STATE chunks its
    ``vfio_save_block`` (source) / ``vfio_load_state_device_data`` (destination) events
    match: most size matches first, then (devices with equal sizes, e.g. two VFs of one
    firmware) the smallest time distance on the aligned clock.  A name maps only when it
    has one best candidate."""
    ev = m.events
    wire: dict[str, tuple[list[int], list[int]]] = {}
    for d in idstrs:
        c = m.chunks[(m.chunks["device"] == d) & (m.chunks["phase"] != "config") & m.chunks["data_offset"].notna()
                     & m.chunks["ts_ns"].notna()]
        c = c[c["capture"] == c["capture"].min()].sort_values("data_offset") if len(c) else c
        wire[d] = ([int(x) for x in c["size_bytes"]], [int(x) for x in c["ts_ns"]])
    out: dict[str, str] = {}
    for name in names:
        sel = (ev["device"] == name) & ev["qemu_event"].isin(["vfio_save_block", "vfio_load_state_device_data"])
        e = ev[sel.fillna(False) & ev["ts_ns"].notna()].sort_values("ts_ns")
        sizes = [int(a.get("data_size", -1)) for a in e["args"]]
        if len(sizes) < 2:
            continue
        scores = []
        for d, (w, wt) in wire.items():
            r = A.match_sequences(sizes, [int(t) for t in e["ts_ns"]], w, wt, min_match=2)
            if r:
                scores.append((r[2], -(abs(r[0]) + r[1]), d))
        scores.sort(reverse=True)
        if scores and (len(scores) == 1 or scores[0][:2] != scores[1][:2]):
            out[name] = scores[0][2]
    return out
