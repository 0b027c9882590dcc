# SPDX-License-Identifier: GPL-2.0-only
"""The metric dicts behind ``device_summary`` and ``migration_summary`` (json-lines.md):
``device_metrics``, ``migration_metrics`` and the detected QEMU profile.

Specs: ``qemu-trace-events.md`` §7.1 (QEMU's timing definitions),
``qemu-migration-stream.md`` §12.1 (multifd).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analysis.metrics.passes import precopy_iterations
from analysis.metrics.phases import iteration_starts, qemu_iteration_count
from analysis.metrics.policy import precopy_policy
from analysis.metrics.records import admin_latency, record_stats
from analysis.metrics.selection import _primary, device_chunks, device_records, main_sections, qemu_events
from analysis.metrics.switchover import downtime, downtime_window

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration


# --- device metrics ----------------------------------------------------------------------------

def device_metrics(m: "Migration", device: str) -> dict[str, Any]:
    ch = device_chunks(m, device)
    recs = device_records(m, device)
    pre = ch[ch["phase"] == "precopy"] if len(ch) else ch
    if len(pre):
        precopy_chunks = int(pre["section"].nunique()) if pre["section"].notna().all() else int(len(pre))
    else:
        blocks = qemu_events(m, "vfio_save_block", device=device)
        it = qemu_events(m, ("vfio_save_iterate", "vfio_save_iterate_start"), device=device)
        precopy_chunks = None
        if len(blocks) and len(it) and not len(ch):
            sc = qemu_events(m, ("vfio_save_complete_precopy_start", "vfio_vmstate_change"), device=device)
            cut = int(sc["ts_ns"].iloc[0]) if len(sc) else None
            precopy_chunks = int((blocks["ts_ns"] < cut).sum()) if cut is not None else int(len(blocks))
        elif len(ch):
            precopy_chunks = 0
    sc = ch[ch["phase"] == "stopcopy"] if len(ch) else ch
    snaps = recs[(recs["phase"] == "precopy") & (recs["tag_name"] == "DEVICE_DATA")] if len(recs) else recs
    policy, evidence = precopy_policy(m, device)
    n_snaps = int(len(snaps)) if len(recs) else None
    if n_snaps is None and evidence.get("snapshot_basis") != "records" and len(m.devices) == 1:
        n_snaps = evidence["precopy_snapshots"]
    out: dict[str, Any] = {
        "device": device, "precopy_chunks": precopy_chunks,
        "precopy_snapshots": n_snaps,
        "precopy_policy": policy, "precopy_policy_evidence": evidence,
        "stopcopy_records": int((recs["phase"] == "stopcopy").sum()) if len(recs) else None,
        "stopcopy_bytes": int(sc["size_bytes"].sum()) if len(sc) else None,
    }
    out.update(record_stats(m, device))
    out["admin_latency_ms"] = admin_latency(m, device)
    _late_device(m, device, out)
    return out


#: device metrics that count from the device's first byte (null when the capture missed it)
_WHOLE_DEVICE = ("precopy_chunks", "precopy_snapshots", "context_first_precopy_bytes", "context_growth_bytes",
                 "context_growth_pct")


def _late_device(m: "Migration", device: str, out: dict[str, Any]) -> None:
    """The device's data was picked up mid-stream (``vfio_device_named``): its pre-copy counts and
    first snapshot are of the captured part only, so they are null with the reason; the stop-copy
    records and the record sizes were captured and stay."""
    f = next((f for f in m.findings if f.get("code") == "vfio_device_named" and f.get("device") == device), None)
    if f is None:
        return
    why = (f"the capture started after the migration (section {f.get('section_id')} picked up mid-stream): "
           "the device's data before the capture is missing")
    nulled = [k for k in _WHOLE_DEVICE if out.get(k) is not None]
    for k in nulled:
        out[k] = None
    out["unavailable"] = {k: why for k in _WHOLE_DEVICE}


# --- migration metrics -------------------------------------------------------------------------

def qemu_profile(m: "Migration") -> str | None:
    """Detected QEMU generation: ``7.2``, ``8.1-9.x``, ``10.x`` (or the manifest's version)."""
    v = (m.manifest.qemu if m.manifest else None) or ""
    if v:
        try:
            major, minor = (int(x) for x in v.split(".")[:2])
        except ValueError:
            major = minor = -1
        if major >= 10:
            return "10.x"
        if (major, minor) >= (8, 1):
            return "8.1-9.x"
        if (major, minor) == (8, 0):
            return "8.0"
        if major >= 0:
            return f"{major}.{minor}"
    mf = m.multifd
    cmds = set(m.commands["cmd_name"].dropna()) if len(m.commands) else set()
    if (len(mf) and mf["device"].notna().any()) or "SWITCHOVER_START" in cmds:
        return "10.x"
    if len(m.sections) and ((m.sections["type"] == "PART") & m.sections["idstr"].fillna("").str.endswith("/vfio")).any():
        return "8.1-9.x"
    names = set(m.events["qemu_event"].dropna()) if len(m.events) else set()
    if names & {"vfio_save_buffer", "vfio_save_pending", "vfio_update_pending", "migrate_pending",
                "vfio_migration_probe"}:
        return "7.2"
    if names & {"vmstate_downtime_checkpoint", "vfio_save_iterate_start", "vfio_state_pending_exact"}:
        return "10.x" if "vfio_save_complete_precopy_thread_start" in names else "8.1-9.x"
    if len(mf) and mf["version"].notna().any() and int(mf["version"].dropna().iloc[0]) == 1 and \
            mf["zero_pages"].fillna(0).eq(0).all():
        return "7.2"
    return None


def migration_metrics(m: "Migration") -> dict[str, Any]:
    s = main_sections(m)
    starts, it_source = iteration_starts(m)
    st = m.qemu_stats.get("source", {})
    ram = _primary(m, m.sections)
    flows = _primary(m, m.flows)
    win = downtime_window(m)
    out: dict[str, Any] = {"captures": [str(c.path) for c in m.captures], "qemu_profile": qemu_profile(m)}
    total = setup = None
    total_m = setup_m = None
    # QEMU's own figures first (its definitions, §7.1; whole ms), then its trace events, then the wire.
    # The events differ by definition: "setup" state is entered before the connection is made, while
    # setup-time starts with the migration thread (real 7.2 capture: 2.2 ms vs QEMU's 1 ms).
    if st.get("total_time_ms") is not None:
        total, total_m = float(st["total_time_ms"]), "qemu stats"
    if st.get("setup_ms") is not None:
        setup, setup_m = float(st["setup_ms"]), "qemu stats"
    ms = qemu_events(m, "migrate_set_state")
    if len(ms):
        states = ms["args"].map(lambda a: a.get("new_state") if isinstance(a, dict) else None)
        t_setup = ms[states == "setup"]["ts_ns"]
        t_active = ms[states == "active"]["ts_ns"]
        t_done = ms[states == "completed"]["ts_ns"]
        if total is None and len(t_setup) and len(t_done):
            total, total_m = (int(t_done.iloc[-1]) - int(t_setup.iloc[0])) / 1e6, "trace"
        if setup is None and len(t_setup) and len(t_active):
            setup, setup_m = (int(t_active.iloc[0]) - int(t_setup.iloc[0])) / 1e6, "trace"
    if len(s) and s["ts_ns"].notna().any():
        first = int(flows["first_ts_ns"].min()) if len(flows) and flows["first_ts_ns"].notna().any() \
            else int(s["ts_ns"].min())
        if total is None and win["end_ns"] is not None:
            total, total_m = (win["end_ns"] - first) / 1e6, "wire"
        parts = s[s["type"] == "PART"]["ts_ns"].dropna()
        if setup is None and len(parts):
            setup, setup_m = (int(parts.iloc[0]) - first) / 1e6, "wire"
    out.update(total_ms=total, setup_ms=setup, total_method=total_m, setup_method=setup_m)
    out.update(precopy_iterations(m))
    out["qemu_iterate_sections"], out["qemu_iterate_sections_method"] = qemu_iteration_count(m)
    has_ram = len(ram) and ram["ram_zero_pages"].notna().any()
    out["ram_zero_pages"] = int(ram["ram_zero_pages"].fillna(0).sum()) if has_ram else None
    out["ram_normal_pages"] = int(ram["ram_normal_pages"].fillna(0).sum()) if has_ram else None
    out["ram_bytes"] = int(ram["ram_bytes"].fillna(0).sum()) if has_ram else None
    # QEMU's "transferred ram" (7.2: RAM section bytes + multifd packets, i.e. the multifd channels'
    # bytes after their 64-byte MultiFDInit_t, qemu-migration-stream.md §12.1)
    mf_flows = flows[flows["role"] == "multifd"] if len(flows) else flows
    mf_bytes = int(mf_flows["c2s_bytes"].fillna(0).sum()) - 64 * len(mf_flows) if len(mf_flows) else 0
    out["ram_transferred_bytes"] = None if out["ram_bytes"] is None else out["ram_bytes"] + max(0, mf_bytes)
    if len(m.multifd):
        mf = _primary(m, m.multifd)
        if out["ram_normal_pages"] is not None:
            out["ram_normal_pages"] += int(mf["normal_pages"].fillna(0).sum())
            out["ram_zero_pages"] += int(mf["zero_pages"].fillna(0).sum())
    if len(flows):
        main = flows[flows["role"] == "main"]
        mfd = flows[flows["role"] == "multifd"]
        out["bytes_main"] = int(main["c2s_bytes"].fillna(0).sum()) if len(main) else None
        out["bytes_multifd"] = int(mfd["c2s_bytes"].fillna(0).sum()) if len(main) else None
    else:
        out["bytes_main"] = out["bytes_multifd"] = None
    out.update(downtime(m))
    _late_capture(flows, out)
    return out


#: metrics that count the whole stream (null when the capture missed its start), and the methods of
#: the others that do too
_WHOLE_STREAM = ("ram_zero_pages", "ram_normal_pages", "ram_bytes", "ram_transferred_bytes", "bytes_main",
                 "bytes_multifd")
_WHOLE_METHODS = {"total_ms": ("total_method", "wire"), "setup_ms": ("setup_method", "wire"),
                  "precopy_iterations": ("precopy_iterations_method", "stream")}


def _late_capture(flows: Any, out: dict[str, Any]) -> None:
    """A migration channel picked up mid-stream: what only the whole stream can give is null (with
    the reason in ``out["unavailable"]``), not the count of the captured part; the switchover and
    what follows were captured and stay."""
    if not len(flows) or "midstream" not in flows or not flows["midstream"].fillna(False).any():
        return
    late = flows[flows["midstream"].fillna(False)]
    why = (f"the capture started after the migration (flows {', '.join(str(int(x)) for x in late['flow'])} "
           "picked up mid-stream): only the part captured was decoded")
    nulled = []
    for k in _WHOLE_STREAM:
        if out.get(k) is not None:
            out[k] = None
            nulled.append(k)
    for k, (mk, method) in _WHOLE_METHODS.items():
        if out.get(mk) == method and out.get(k) is not None:
            out[k], out[mk] = None, None
            nulled.append(k)
    out["unavailable"] = {k: why for k in nulled}
    out["late_capture"] = {"flows": [int(x) for x in late["flow"]], "nulled": nulled}
