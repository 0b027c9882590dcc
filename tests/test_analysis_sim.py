# SPDX-License-Identifier: GPL-2.0-only
"""Ground truth: analysis of simulated runs (engineer G's analysis.simulate) vs run.json ``truth``.

Every run has source/destination trace.dat and admin captures; runs that also
carry the source pcapng (when the QEMU stream builders are in the tree) are
checked on the stream metrics too: record sizes exactly, downtime (b) within 2%.
"""
from __future__ import annotations

import json

import pytest

import analysis

simulate = pytest.importorskip("analysis.simulate").simulate


@pytest.fixture(scope="module", params=["default", "cap128", "qemu10", "trailer"])
def run(request, tmp_path_factory):
    d = simulate(request.param, 3, tmp_path_factory.mktemp(request.param))
    truth = json.loads((d / "run.json").read_text())["truth"]
    m = analysis.load(d)
    objs = analysis.summary_objects(m)
    return request.param, d, truth, m, objs[0], objs[1]


def test_iterations_and_chunks_exact(run):
    _, _, truth, m, mig, dev = run
    assert mig["qemu_iterate_sections"] == truth["qemu_iterate_sections"]
    # the simulator's source trace holds its dirty-bitmap syncs: pre-copy iterations exact
    assert (mig["precopy_iterations"], mig["dirty_syncs"], mig["precopy_iterations_method"]) == (
        truth["precopy_iterations"], truth["dirty_syncs"], "trace")
    assert dev["precopy_chunks"] == truth["precopy_chunks"]
    assert dev["precopy_snapshots"] == truth["precopy_snapshots"]
    assert mig["qemu_profile"] == truth["qemu_profile"]


def test_policy_detected(run):
    name, _, truth, _, _, dev = run
    assert dev["precopy_policy"] == truth["precopy_policy"] == ("cap128" if name == "cap128" else "ratelimited")


def test_downtime_qemu_and_admin_latency(run):
    _, _, truth, _, mig, dev = run
    assert mig["downtime_qemu_ms"] == pytest.approx(truth["downtime_qemu_ms"], abs=1e-3)
    # QEMU's query-migrate figures (written by the simulator) are whole milliseconds
    assert mig["total_method"] == mig["setup_method"] == "qemu stats"
    assert mig["total_ms"] == pytest.approx(truth["total_ms"], abs=1.0)
    assert mig["setup_ms"] == pytest.approx(truth["setup_ms"], abs=1.0)
    assert dev["admin_latency_ms"] == pytest.approx(truth["admin_latency_ms"], abs=1e-3)


def test_stream_metrics_when_the_stream_is_there(run):
    _, d, truth, m, mig, dev = run
    if not (d / "source.pcapng").exists():
        pytest.skip("this tree's simulator writes no source.pcapng yet (QEMU stream builders missing)")
    if not len(m.sections):
        pytest.skip("source.pcapng is not decoded: the migration-capture emitter is not in this tree yet")
    stream_errors = sorted({f["code"] for f in m.findings if f["severity"] == "error" and f.get("capture") == 0})
    if stream_errors:
        # the decoder (dissect.qemu) and the simulator's stream builder disagree: not an analysis result
        pytest.xfail(f"source.pcapng decodes with errors {stream_errors}")
    sizes = [r["record_size"] for r in truth["devices"][0]["records"]]
    got = [int(x) for x in m.records[m.records["device"] == dev["device"]]["record_size_bytes"]]
    assert got == sizes
    for k in ("record_bytes_min", "record_bytes_max", "stopcopy_records", "stopcopy_bytes", "trailer_bug",
              "bytes_by_part_type"):
        assert dev[k] == truth[k], k
    assert mig["downtime_wire_ms"] == pytest.approx(truth["downtime_wire_ms"], rel=0.02)
    # (c) splits (b) exactly; the destination's share is measured to the return path's SHUT
    bd = mig["downtime_breakdown_ms"]
    assert sum(bd.values()) == pytest.approx(mig["downtime_wire_ms"])
    assert bd["dst_load"] == pytest.approx(truth["downtime_breakdown_ms"]["dst_load"], rel=0.05, abs=0.2)


def test_clock_alignment_against_the_simulators_clocks(run):
    _, d, truth, m, _, _ = run
    clk = truth["clock"]
    zero = {"source.pcapng": clk["source_stream_epoch_ns"], "admin-source.pcapng": clk["admin_epoch_ns"],
            "admin-destination.pcapng": clk["admin_epoch_ns"], "source.dat": clk["source_trace_ns"],
            "destination.dat": clk["destination_trace_ns"]}
    names = {c.index: c.path.name for c in m.captures}
    ref = next(a for a in m.alignment if a.method == "reference")
    tolerance = {"destination.dat": 5_000_000, "admin-destination.pcapng": 1_000_000,
                 "source.dat": 1_000_000, "admin-source.pcapng": 60_000_000}  # snapshot → read lag
    for a in m.alignment:
        if a.method == "reference":
            continue
        name = names[a.capture]
        assert a.method != "none", name
        expected = zero[names[ref.capture]] - zero[name]
        assert abs(a.offset_ns - expected) <= tolerance[name], (name, a)
        if name == "admin-destination.pcapng" and a.method == "sequence":
            assert a.basis == ("record-boundaries+trailer" if truth["trailer_bug"] else "record-boundaries")


def test_trailer_bug_seen_without_the_stream(run):
    _, _, truth, _, _, dev = run
    assert dev["trailer_bug"] == truth["trailer_bug"]


def test_traces_and_admin_captures_without_the_stream(tmp_path):
    """The captures a user has when no pcap was taken: the metrics that do not need the stream still hold."""
    d = simulate("default", 7, tmp_path / "run")
    truth = json.loads((d / "run.json").read_text())["truth"]
    clk = truth["clock"]
    m = analysis.load(d / "source.dat", d / "destination.dat", d / "admin-source.pcapng",
                      d / "admin-destination.pcapng")
    mig, dev = analysis.summary_objects(m)[:2]
    assert [c.side for c in m.captures[:2]] == ["source", "destination"]
    assert (mig["qemu_iterate_sections"], dev["precopy_chunks"], dev["precopy_snapshots"], dev["precopy_policy"]) == (
        truth["qemu_iterate_sections"], truth["precopy_chunks"], truth["precopy_snapshots"], "ratelimited")
    assert dev["device"] == truth["host_device"]  # no stream: the trace's host name
    assert mig["downtime_wire_ms"] is None and mig["downtime_qemu_ms"] == pytest.approx(truth["downtime_qemu_ms"])
    al = {m.captures[a.capture].path.name: a for a in m.alignment}
    assert al["source.dat"].method == "reference"
    assert abs(al["destination.dat"].offset_ns - (clk["source_trace_ns"] - clk["destination_trace_ns"])) < 5_000_000
    assert al["admin-destination.pcapng"].basis == "record-boundaries"
    assert abs(al["admin-destination.pcapng"].offset_ns - (clk["source_trace_ns"] - clk["admin_epoch_ns"])) < 1_000_000
    assert dev["trailer_bug"] is False
    # iterations: snapshots from the admin capture's DEV_PARTS_GET commands (aligned by record boundaries)
    assert int(m.iterations["snapshots"].sum()) == truth["precopy_snapshots"]
    # phases come from the QEMU events
    assert set(m.phases["source"]) == {"trace"}
    assert list(m.phases["phase"]) == ["setup", "precopy", "stopcopy", "config"]
