# SPDX-License-Identifier: GPL-2.0-only
"""Ground truth over the bundled simulated corpus (traces/sim/): every run's summary equals its truth.

Exact for counts, sizes, policy and the trailer flag; downtime (a) and (b),
total and setup time within 2% (the issue asks (b) within 2%); admin latency
medians per device to 1 µs.
"""
from __future__ import annotations

import json

import pytest

import analysis
from tests.conftest import TRACES

RUNS = sorted(p.parent for p in (TRACES / "sim").rglob("run.json"))
MIGRATION_EXACT = ("qemu_profile", "precopy_iterations", "dirty_syncs", "qemu_iterate_sections", "ram_zero_pages", "ram_normal_pages", "bytes_main",
                   "bytes_multifd")
MIGRATION_2PCT = ("downtime_qemu_ms", "downtime_wire_ms", "total_ms", "setup_ms")
DEVICE_EXACT = ("device", "precopy_chunks", "precopy_snapshots", "precopy_policy", "stopcopy_records",
                "stopcopy_bytes", "record_bytes_min", "record_bytes_median", "record_bytes_p95", "record_bytes_max",
                "trailer_bug", "parts_per_record_median", "bytes_by_part_type")


@pytest.mark.skipif(not RUNS, reason="traces/sim/ holds no run folders (python3 traces/sim/make_corpus.py)")
@pytest.mark.parametrize("run", RUNS, ids=[str(p.relative_to(TRACES / "sim")) for p in RUNS])
def test_run_matches_truth(run):
    truth = json.loads((run / "run.json").read_text())["truth"]
    m = analysis.load(run)
    objs = analysis.summary_objects(m)
    mig = objs[0]
    devs = [o for o in objs if o["kind"] == "device_summary"]
    for k in MIGRATION_EXACT:
        assert mig[k] == truth[k], k
    # every method that had data agrees with the truth; the stream's estimate is a lower bound
    ev = mig["precopy_iterations_evidence"]
    assert ev["trace_dirty_syncs"] == truth["dirty_syncs"] and mig["precopy_iterations_method"] == "trace"
    if truth["outcome"] == "completed":
        assert ev["qmp_dirty_syncs"] == truth["dirty_syncs"]
    assert 1 <= ev["stream"]["lower_bound"] <= truth["precopy_iterations"]
    for k in MIGRATION_2PCT:
        if truth[k] is None:
            assert mig[k] is None, k
        elif (k == "downtime_qemu_ms" and "query-migrate" in (mig["downtime_qemu_method"] or "")) or (
                k in ("total_ms", "setup_ms") and mig[k.replace("_ms", "_method")] == "qemu stats"):
            # QEMU's own query-migrate figures are whole milliseconds (8.1 has no checkpoint events)
            assert mig[k] == pytest.approx(truth[k], abs=1.0), k
        else:
            assert mig[k] == pytest.approx(truth[k], rel=0.02), k
    bd, tbd = mig["downtime_breakdown_ms"], truth["downtime_breakdown_ms"]
    if tbd is not None:  # (c): shares of (b) to 0.1 ms
        if bd["dst_load"] is None:  # no return path: the destination's load is not on the wire
            assert tbd["dst_load"] == 0.0 and "no return-path SHUT" in mig["downtime_wire_method"]
            bd = dict(bd, dst_load=0.0)
        assert bd == pytest.approx(tbd, abs=0.1)
    assert len(devs) == len(truth["devices"])
    for got, want in zip(devs, truth["devices"]):
        for k in DEVICE_EXACT:
            assert got[k] == want[k], (got["device"], k)
        assert got["admin_latency_ms"] == pytest.approx(want["admin_latency_ms"], abs=1e-3)
        sizes = [r["record_size"] for r in want["records"]]
        recs = m.records[m.records["device"] == got["device"]]
        assert [int(x) for x in recs["record_size_bytes"]] == sizes
