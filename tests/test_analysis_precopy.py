# SPDX-License-Identifier: GPL-2.0-only
"""Pre-copy iterations as QEMU counts them (json-lines.md ``precopy_iterations``, ``dirty_syncs``):
exact from QEMU's trace and saved counters, a lower bound from the capture alone; held against
QEMU's own ``dirty sync count`` on the real captures."""
from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

import analysis
from analysis.metrics.passes import greedy_segments, log_passes, precopy_iterations, segment_starts
from dissect.qemu.pages import PageLog
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


def test_bulk_split_equals_the_greedy_definition():
    rnd = random.Random(7)
    for _ in range(200):
        n = rnd.randrange(1, 300)
        keys = [(rnd.randrange(3), rnd.randrange(rnd.choice([5, 40, 400]))) for _ in range(n)]
        got = segment_starts(np.array([k[0] for k in keys], dtype=np.int64),
                             np.array([k[1] for k in keys], dtype=np.uint64))
        assert got.tolist() == greedy_segments(keys)
    assert segment_starts(np.zeros(0, np.int64), np.zeros(0, np.uint64)).tolist() == []


def _log(sends, sections=(), marks=()):
    """A PageLog by hand: sends = [(block, page number)], in order."""
    log = PageLog()
    marks = dict(marks)
    for i, (blk, page) in enumerate(sends):
        for k, typ in sections:
            if k == i:
                log.end_of_section(typ)
        if i in marks:
            log.mark(marks[i])
        log.block(blk)
        log.addrs.append(page << 12)
    for k, typ in sections:
        if k == len(sends):
            log.end_of_section(typ)
    return log


def test_log_passes_precopy_cut_and_bound():
    # pass 1: pages 0..3 of pc.ram, page 0 of vga; pass 2 (pre-copy): page 1 again; the last RAM PART
    # ends (EOS, type 2); stop-copy: page 1 again (e.g. on a multifd channel)
    sends = [("pc.ram", 0), ("pc.ram", 1), ("vga", 1), ("pc.ram", 2), ("pc.ram", 3), ("pc.ram", 1), ("pc.ram", 1)]
    r = log_passes(_log(sends, sections=[(6, 2)], marks=[(0, 100), (5, 200), (6, 300)]))
    assert (r["sends"], r["segments"], r["precopy_segments"], r["lower_bound"]) == (7, 3, 2, 2)
    assert r["segment_starts_ns"] == [100, 200, 300] and r["precopy_segment_starts_ns"] == [100, 200]
    # without any PART end (a capture cut in pre-copy): all segments - 1, at least 1
    r = log_passes(_log(sends[:6]))
    assert (r["segments"], r["precopy_segments"], r["lower_bound"], r["segment_starts_ns"]) == (2, None, 1, [None] * 2)


def test_far_addresses_are_sorted_not_indexed():
    """Page numbers come from the stream: nothing is sized by them (a damaged header may say 2^64-1)."""
    log = PageLog()
    log.block("b")
    log.addrs.extend([(1 << 64) - 4096, 1 << 63, (1 << 64) - 4096])
    r = log_passes(log)
    assert (r["sends"], r["segments"]) == (3, 2)


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


def test_mismatch_between_methods_is_a_finding(tmp_path):
    """QEMU's trace and its counters must agree; the stream's bound must not exceed them."""
    info = tmp_path / "x.src-info-migrate.txt"
    info.write_text("Migration status: completed\ndirty sync count: 2\n")
    m = analysis.load(REAL / "qemu-tcp-returnpath.src.log", REAL / "qemu-tcp-returnpath.pcap", info)
    f = [x for x in m.findings if x["code"] == "precopy_iterations_mismatch"]
    assert [(x["severity"], x["trace_dirty_syncs"], x["qmp_dirty_syncs"], x["stream_lower_bound"]) for x in f] == [
        ("warning", 4, 2, 2)]
    assert "the trace has 4 dirty-bitmap syncs, QEMU's counters say 2" in f[0]["message"]
    # counters alone, lower than what the stream shows: the second half of the check
    m = analysis.load(REAL / "qemu-tcp-returnpath.pcap", info)
    f = [x for x in m.findings if x["code"] == "precopy_iterations_mismatch"]
    assert len(f) == 1 and "at least 2 pre-copy passes, more than QEMU's 1" in f[0]["message"]
    # QEMU's own files agree: no finding
    m = analysis.load(REAL / "qemu-tcp-returnpath.src.log", REAL / "qemu-tcp-returnpath.pcap",
                      REAL / "qemu-tcp-returnpath.src-info-migrate.txt")
    assert not [x for x in m.findings if x["code"] == "precopy_iterations_mismatch"]
