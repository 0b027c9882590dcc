# SPDX-License-Identifier: GPL-2.0-only
"""Pre-copy iterations as QEMU counts them (json-lines.md ``precopy_iterations``, ``dirty_syncs``):
exact from QEMU's trace and saved counters, a lower bound from the capture alone; held against
QEMU's own ``dirty sync count`` on the real captures."""
from __future__ import annotations

import json
import random
import re

import pytest

import analysis
from analysis.metrics.passes import DENSE_PAGES, PassTracker, greedy_segments, precopy_iterations
from tests.conftest import ROOT

REAL = ROOT / "traces" / "real"
Q10 = REAL / "qemu10"


def _dirty_sync_count(info_migrate) -> int:
    """QEMU's own figure, read from its HMP text (the oracle)."""
    return int(re.search(r"^dirty sync count: (\d+)$", info_migrate.read_text(), re.M).group(1))


# --- the greedy split -------------------------------------------------------------------------

def test_greedy_segments_by_hand():
    # a b c | a d | d b a | b
    assert greedy_segments(list("abcaddbab")) == [0, 3, 5, 8]
    assert greedy_segments([]) == []
    assert greedy_segments(list("abc")) == [0]


def test_tracker_equals_the_greedy_definition():
    rnd = random.Random(7)
    for _ in range(50):
        keys = [(rnd.choice("xy"), rnd.randrange(40) << 12) for _ in range(rnd.randrange(1, 200))]
        tr = PassTracker()
        for i, (blk, addr) in enumerate(keys):
            tr(0, blk, addr, 1000 + i, "PART")
        starts = greedy_segments(keys)
        assert tr.segment == len(starts)
        assert [k for k, _ in tr.starts] == starts
        assert [t for _, t in tr.starts] == [1000 + k for k in starts]


def test_tracker_precopy_cut_and_bound():
    tr = PassTracker()
    # pass 1: pages 0..3; pass 2 (pre-copy): page 1 again; RAM PART ends; stop-copy: page 1 again
    for a in (0, 1, 2, 3, 1):
        tr(0, "pc.ram", a << 12, None, "PART")
    tr(0, None, None, None, "PART")          # EOS of the last RAM PART
    tr(1, "pc.ram", 1 << 12, None, "multifd")  # a stop-copy page on a multifd channel
    r = tr.result()
    assert (r["sends"], r["segments"], r["precopy_segments"], r["lower_bound"]) == (6, 3, 2, 2)


def test_tracker_far_addresses_do_not_allocate():
    tr = PassTracker()
    far = (DENSE_PAGES + 5) << 12
    tr(0, "b", far, None, "PART")
    tr(0, "b", 1 << 60, None, "PART")
    tr(0, "b", far, None, "PART")
    assert tr.segment == 2 and "b" not in tr._dense and len(tr._sparse) == 2


# --- real QEMU 7.2 captures: QEMU's info migrate is the oracle ----------------------------------

@pytest.mark.parametrize("name,stream", [("qemu-tcp-returnpath", "pcap"), ("qemu-tcp-multifd", "pcap"),
                                         ("qemu-file", "mig")])
def test_qemu72_methods(name, stream):
    truth = _dirty_sync_count(REAL / f"{name}.src-info-migrate.txt")
    assert truth == 4
    # trace: migration_bitmap_sync_end events
    r = precopy_iterations(analysis.load(REAL / f"{name}.src.log"))
    assert (r["precopy_iterations"], r["precopy_iterations_method"], r["dirty_syncs"]) == (truth - 1, "trace", truth)
    # qmp: QEMU's saved counters (HMP text), with the stream beside it
    m = analysis.load(REAL / f"{name}.{stream}", REAL / f"{name}.src-info-migrate.txt")
    r = precopy_iterations(m)
    assert (r["precopy_iterations"], r["precopy_iterations_method"], r["dirty_syncs"]) == (truth - 1, "qmp", truth)
    # stream alone: a lower bound; here pass 3 re-sent nothing before the stop-copy sync (the trace
    # shows sync 3 and sync 4 back to back), so the estimate is one short
    r = precopy_iterations(analysis.load(REAL / f"{name}.{stream}"))
    assert (r["precopy_iterations"], r["precopy_iterations_method"], r["dirty_syncs"]) == (2, "stream", None)
    assert r["precopy_iterations_evidence"]["stream"]["sends"] == 4098 + 144  # QEMU's duplicate + normal


# --- real QEMU 10.0.2 captures -----------------------------------------------------------------

Q10_RUNS = [("multipass", "pcap"), ("multipass-rp", "pcap"), ("returnpath", "pcap"), ("multifd", "pcap"),
            ("file", "mig")]


@pytest.mark.skipif(not (Q10 / "multipass.pcap").exists(), reason="traces/real/qemu10 not recorded")
@pytest.mark.parametrize("name,stream", Q10_RUNS)
def test_qemu10_methods(name, stream):
    truth = _dirty_sync_count(Q10 / f"{name}.src-info-migrate.txt")
    qm = json.loads((Q10 / f"{name}.src-query-migrate.json").read_text())
    assert qm.get("return", qm)["ram"]["dirty-sync-count"] == truth
    for files, method in (([f"{name}.src.log"], "trace"), ([f"{name}.{stream}", f"{name}.src-qmp.jsonl"], "qmp"),
                          ([f"{name}.{stream}", f"{name}.src-query-migrate.json"], "qmp")):
        mig = analysis.summary_objects(analysis.load(*(Q10 / f for f in files)))[0]
        assert (mig["precopy_iterations"], mig["precopy_iterations_method"], mig["dirty_syncs"]) == (
            truth - 1, method, truth), files
    # the capture alone: a lower bound within one of QEMU's count
    mig = analysis.summary_objects(analysis.load(Q10 / f"{name}.{stream}"))[0]
    assert mig["precopy_iterations_method"] == "stream" and mig["dirty_syncs"] is None
    assert truth - 2 <= mig["precopy_iterations"] <= truth - 1


@pytest.mark.skipif(not (Q10 / "multipass.pcap").exists(), reason="traces/real/qemu10 not recorded")
def test_qemu10_multipass_passes_per_round():
    """Each savevm iterate round in the pass QEMU's trace puts it in; the stream's estimate agrees
    round for round on this capture (every pass re-sends the guest's dirtied buffer)."""
    truth = _dirty_sync_count(Q10 / "multipass.src-info-migrate.txt")
    assert truth == 9
    by_trace = analysis.load(Q10 / "multipass.pcap", Q10 / "multipass.src.log").iterations
    by_stream = analysis.load(Q10 / "multipass.pcap").iterations
    assert set(by_trace["precopy_pass_method"]) == {"trace"} and set(by_stream["precopy_pass_method"]) == {"stream"}
    assert by_trace["precopy_pass"].tolist() == by_stream["precopy_pass"].tolist()
    assert by_trace["precopy_pass"].tolist() == [1] * 8 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [6] * 4 + [7]
    mig = analysis.summary_objects(analysis.load(Q10 / "multipass.pcap"))[0]
    assert (mig["precopy_iterations"], mig["qemu_iterate_sections"]) == (7, 29)


def test_priority_trace_over_qmp(tmp_path):
    """A trace and QEMU's counters that disagree: the trace wins (both would be QEMU's own; the
    counters here are made up to show the order)."""
    info = tmp_path / "x.src-info-migrate.txt"
    info.write_text("Migration status: completed\ndirty sync count: 11\n")
    r = precopy_iterations(analysis.load(REAL / "qemu-tcp-returnpath.src.log", info))
    assert (r["precopy_iterations"], r["precopy_iterations_method"]) == (3, "trace")
    assert r["precopy_iterations_evidence"]["qmp_dirty_syncs"] == 11
    # counters saved before the migration completed are not the final count
    info.write_text("Migration status: active\ndirty sync count: 2\n")
    r = precopy_iterations(analysis.load(REAL / "qemu-tcp-returnpath.pcap", info))
    assert r["precopy_iterations_method"] == "stream" and "qmp_unused" in r["precopy_iterations_evidence"]
