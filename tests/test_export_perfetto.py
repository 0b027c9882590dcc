# SPDX-License-Identifier: GPL-2.0-only
"""`migtrace export perfetto` (issue 11 §4): a Chrome trace-event JSON file (the JSON format
ui.perfetto.dev opens) read back with json; its slices and instants held against the frames."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

import analysis
from analysis import metrics as M
from tests.conftest import TRACES, run_cli

RUN = TRACES / "sim" / "variants" / "two-vfs"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("perfetto") / "two-vfs.json"
    proc = run_cli("export", "perfetto", str(RUN), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    return json.loads(out.read_text()), analysis.load(RUN)


def _us(ns, t0):
    return round((int(ns) - t0) / 1000, 3)


def _names(trace):
    procs = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    return procs, threads


def test_well_formed_trace_event_json(exported):
    trace, m = exported
    assert trace["displayTimeUnit"] == "ms" and trace["otherData"]["t0_ns"] == m.t0_ns
    for e in trace["traceEvents"]:
        assert e["ph"] in ("X", "i", "M", "C") and isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0 and isinstance(e["args"], dict)
        if e["ph"] == "X":
            assert e["dur"] >= 0
        if e["ph"] == "i":
            assert e["s"] == "t"
    # complete slices on one thread nest (never partially overlap): Perfetto's JSON importer needs it
    by_thread = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            by_thread[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_thread.values():
        spans.sort()
        for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
            assert s1 >= e0 - 1e-6 or e1 <= e0 + 1e-6  # µs with 3 decimals: float sums wobble
    procs, threads = _names(trace)
    assert {"migration", "device records", "admin commands", "return path"} <= set(procs.values())
    assert {"trace events: source.dat (source)", "trace events: destination.dat (destination)"} <= set(procs.values())
    assert {"pre-copy iterations", "downtime (wire)", "phases 0000:00:05.0/vfio", "phases 0000:00:06.0/vfio",
            "records 0000:00:05.0/vfio", "records 0000:00:06.0/vfio"} <= set(threads.values())


def test_phase_iteration_and_downtime_slices_equal_the_frames(exported):
    trace, m = exported
    t0 = m.t0_ns
    xs = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    phases = sorted((e["args"]["device"], e["name"], e["ts"], e["dur"]) for e in xs if e["cat"] == "phase")
    want = sorted((r.device, r.phase, _us(r.start_ns, t0), round(_us(r.end_ns, t0) - _us(r.start_ns, t0), 3))
                  for r in m.phases.itertuples())
    assert phases == want and len(want) == 10  # 2 VFs x setup, precopy, stopcopy, config, resume
    its = [e for e in xs if e["cat"] == "iteration"]
    first = m.iterations.drop_duplicates("iteration")
    assert [e["name"] for e in its] == [f"iteration {int(i)}" for i in first["iteration"]]
    assert [e["ts"] for e in its] == [_us(v, t0) for v in first["ts_ns"]]
    assert [e["args"]["ram_bytes"] for e in its] == [int(v) for v in first["ram_bytes"]]
    (down,) = [e for e in xs if e["cat"] == "downtime"]
    win = M.downtime_window(m)
    assert down["ts"] == _us(win["start_ns"], t0)
    assert down["dur"] == pytest.approx(down["args"]["downtime_wire_ms"] * 1000, abs=0.002)


def test_admin_commands_are_latency_slices(exported):
    trace, m = exported
    t0 = m.t0_ns
    adm = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "admin"]
    a = m.admin.dropna(subset=["request_ts_ns", "completion_ts_ns"])
    assert len(adm) == len(a) > 50
    got = sorted((e["name"], e["ts"], e["args"]["tag"]) for e in adm)
    assert got == sorted((r.opcode_name, _us(r.request_ts_ns, t0), int(r.tag)) for r in a.itertuples())
    for e in adm:
        assert e["dur"] == pytest.approx(e["args"]["latency_ns"] / 1000, abs=0.0015)


def test_records_messages_and_trace_events_are_instants(exported):
    trace, m = exported
    t0 = m.t0_ns
    ins = [e for e in trace["traceEvents"] if e["ph"] == "i"]
    recs = [e for e in ins if e["cat"] == "record"]
    assert sorted((e["ts"], e["args"]["record_size_bytes"]) for e in recs) == \
        sorted((_us(r.ts_ns, t0), int(r.record_size_bytes)) for r in m.records.itertuples())
    rp = [e for e in ins if e["cat"] == "rp_message"]
    assert [e["name"] for e in rp] == list(m.rp_messages["type_name"])
    ev = [e for e in ins if e["cat"] in ("qemu", "kernel")]
    timed = m.events[m.events["ts_ns"].notna()]
    assert len(ev) == len(timed)
    assert sum(e["cat"] == "qemu" for e in ev) == int(timed["qemu_event"].notna().sum())
    blocks = [e for e in ev if e["name"] == "vfio_save_block"]
    assert blocks and all("data_size" in e["args"]["args"] for e in blocks)


def test_export_takes_one_migration(tmp_path):
    proc = run_cli("export", "perfetto", str(TRACES / "sim" / "variants"), "-o", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and proc.stdout == "" and "export takes one" in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_bytes_sent_counters_end_at_the_streams_totals(exported):
    trace, m = exported
    from analysis import metrics as M

    counters = {}
    for e in trace["traceEvents"]:
        if e["ph"] == "C":
            counters.setdefault(e["name"], []).append((e["ts"], e["args"]["bytes"]))
    chunks = M._primary(m, m.chunks)
    for dev in ("0000:00:05.0/vfio", "0000:00:06.0/vfio"):
        series = counters[f"VFIO bytes {dev} sent"]
        assert [v for _, v in series] == sorted(v for _, v in series)  # cumulative
        assert series[-1][1] == int(chunks.loc[chunks["device"] == dev, "size_bytes"].sum())
    assert counters["RAM bytes sent"][-1][1] > 0
