# SPDX-License-Identifier: GPL-2.0-only
"""Cross-source consistency checks: findings appended to the migration
(docs/analysis.md, "Finding codes").

Specs: ``vfio-virtio-stream.md`` §4.1, §6; ``qemu-trace-events.md`` §7.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.metrics.selection import _arg, _primary, device_chunks, device_records, qemu_events, stream_capture
from analysis.metrics.switchover import downtime_window

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

#: stop-copy size reported by QEMU vs the wire: relative difference that is flagged
STOPCOPY_TOLERANCE = 0.10


# --- cross-source consistency ------------------------------------------------------------------

def consistency_checks(m: "Migration") -> None:
    """Append cross-source findings (docs/analysis.md, "Finding codes")."""
    _check_chunk_sizes(m)
    _check_stopcopy_size(m)
    _check_admin_sizes(m)
    _check_qemu_counters(m)
    _check_precopy_passes(m)
    for dev in m.devices:
        recs = device_records(m, dev)
        n = int((recs["trailer_bytes"].fillna(0) == 8).sum()) if len(recs) else 0
        if n:
            m.finding("warning", "record_trailer_present",
                      f"{dev}: {n} of {len(recs)} records carry the 8-byte trailer of kernels 6.13.0-6.15.2 "
                      "(CVE-2025-38314)", device=dev, records=n)


def _check_precopy_passes(m: "Migration") -> None:
    """QEMU's sync count from its trace and from its counters are the same number; the stream's
    page-repeat count can only be lower (docs/analysis.md "Pre-copy iterations")."""
    from analysis.metrics.passes import precopy_iterations

    ev = precopy_iterations(m)["precopy_iterations_evidence"]
    trace, qmp = ev.get("trace_dirty_syncs"), ev.get("qmp_dirty_syncs")
    bound = (ev.get("stream") or {}).get("lower_bound")
    exact = trace if trace is not None and trace >= 2 else qmp
    problems = []
    if trace is not None and trace >= 2 and qmp is not None and trace != qmp:
        problems.append(f"the trace has {trace} dirty-bitmap syncs, QEMU's counters say {qmp}")
    if exact is not None and bound is not None and bound > exact - 1:
        problems.append(f"the stream shows at least {bound} pre-copy passes, more than QEMU's {exact - 1}")
    if problems:
        m.finding("warning", "precopy_iterations_mismatch", "; ".join(problems) + " (a trace that missed syncs, "
                  "counters saved from another run, or pages decoded out of order)",
                  trace_dirty_syncs=trace, qmp_dirty_syncs=qmp, stream_lower_bound=bound)


def _check_chunk_sizes(m: "Migration") -> None:
    if not len(m.chunks):
        return
    for dev in m.devices:
        blocks = qemu_events(m, "vfio_save_block", device=dev)
        if not len(blocks):
            continue
        trace = [int(a.get("data_size", -1)) for a in blocks["args"]]
        dc = device_chunks(m, dev)
        # the config blob (DEV_CONFIG_STATE) is carried as a chunk too, but no vfio_save_block fires for it
        dc = dc[(dc["phase"] != "config") & dc["data_offset"].notna()]
        wire = [int(x) for x in dc.sort_values("data_offset")["size_bytes"].dropna()]
        if trace == wire:
            continue
        first = next((i for i, (x, y) in enumerate(zip(trace, wire)) if x != y), min(len(trace), len(wire)))
        m.finding("warning", "trace_stream_chunk_mismatch",
                  f"{dev}: {len(trace)} vfio_save_block events ({sum(trace)} bytes) vs {len(wire)} DEV_DATA_STATE "
                  f"chunks ({sum(wire)} bytes) on the wire; first difference at chunk {first}",
                  device=dev, trace_chunks=len(trace), wire_chunks=len(wire), first_difference=first)


def _check_stopcopy_size(m: "Migration") -> None:
    if not len(m.chunks):
        return
    win = downtime_window(m)
    for dev in m.devices:
        rep = qemu_events(m, "vfio_state_pending_exact", device=dev)
        if win["start_ns"] is not None and len(rep):
            rep = rep[rep["ts_ns"] <= win["start_ns"]]
        if not len(rep):
            continue
        reported = _arg(rep.iloc[-1], "stopcopy_size")
        ch = device_chunks(m, dev)
        wire = int(ch[ch["phase"] == "stopcopy"]["size_bytes"].sum())
        if reported is None or not wire:
            continue
        diff = abs(int(reported) - wire) / wire
        if diff > STOPCOPY_TOLERANCE:
            m.finding("warning", "stopcopy_size_mismatch",
                      f"{dev}: QEMU's last reported stop-copy size {int(reported)} bytes differs from the "
                      f"{wire} stop-copy bytes on the wire by {100 * diff:.1f}%",
                      device=dev, reported_bytes=int(reported), wire_bytes=wire)


def _check_admin_sizes(m: "Migration") -> None:
    a = m.admin
    if not len(a) or not len(m.records):
        return
    gets = a[(a["opcode_name"] == "DEV_PARTS_GET") & a["parts_bytes"].notna()]
    if not len(gets):
        return
    # every DEV_PARTS_GET result becomes one record's payload (vfio-virtio-stream.md §4.1); the admin
    # capture may cover only part of the migration, so results are matched to records, not the reverse
    got = [int(x) for x in gets["parts_bytes"]]
    recs = m.records[(m.records["tag_name"] == "DEVICE_DATA") & (m.records["capture"] == stream_capture(m))]
    # with the kernel trailer bug record_size is 8 bytes larger than the parts (vfio-virtio-stream.md §6)
    recs = recs[recs["record_size_bytes"].notna()]
    pool = sorted(int(x) - int(t) for x, t in zip(recs["record_size_bytes"], recs["trailer_bytes"].fillna(0)))
    unmatched = []
    for g in got:
        if g in pool:
            pool.remove(g)
        else:
            unmatched.append(g)
    if unmatched:
        m.finding("warning", "admin_record_size_mismatch",
                  f"{len(unmatched)} of {len(got)} DEV_PARTS_GET results have no DEVICE_DATA record of the same "
                  f"size in the stream (first: {unmatched[0]} bytes; records: {len(recs)})",
                  parts_get_results=len(got), unmatched=len(unmatched), records=len(recs))


def _check_qemu_counters(m: "Migration") -> None:
    st = m.qemu_stats.get("source")
    if not st or not len(m.sections):
        return
    ram = _primary(m, m.sections)
    if not ram["ram_zero_pages"].notna().any():
        return
    zero = int(ram["ram_zero_pages"].fillna(0).sum())
    normal = int(ram["ram_normal_pages"].fillna(0).sum())
    mf = _primary(m, m.multifd)
    if len(mf):
        zero += int(mf["zero_pages"].fillna(0).sum())
        normal += int(mf["normal_pages"].fillna(0).sum())
    for name, ours, key in (("zero pages", zero, "duplicate_pages"), ("normal pages", normal, "normal_pages")):
        if st.get(key) is not None and int(st[key]) != ours:
            m.finding("warning", "qemu_counter_mismatch",
                      f"{name}: the stream holds {ours}, QEMU's counters say {st[key]}",
                      counter=key, stream=ours, qemu=int(st[key]))
