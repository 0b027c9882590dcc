# SPDX-License-Identifier: GPL-2.0-only
"""analysis.load / metrics / summary on the hand-built migration of tests/test_analysis_fixture.py.

Expected values are worked out by hand from the fixture's numbers.
"""
from __future__ import annotations

import pytest

import analysis
from analysis import metrics as M
from tests import test_analysis_fixture as U
from tests.test_analysis_fixture import DEV, ms


def load(u=None, paths=("s.pcapng", "s.dat", "a.pcapng"), **kw):
    u = U.units() if u is None else u
    return analysis.load(*paths[:len(u)], units=u, **kw)


@pytest.fixture(scope="module")
def m():
    return load()


def codes(m):
    return [f["code"] for f in m.findings]


def test_frames_have_documented_columns_and_dtypes(m):
    assert str(m.sections["ts_ns"].dtype) == "Int64"
    assert str(m.chunks["size_bytes"].dtype) == "Int64"
    assert str(m.records["record_size_bytes"].dtype) == "Int64"
    assert str(m.records["optional"].dtype) == "boolean"
    assert str(m.events["event"].dtype) == "string"
    assert list(m.records["record_size_bytes"]) == [984, 1000, 1016, 1184]
    assert list(m.records["total_bytes"]) == [1000, 1016, 1032, 1200]
    assert list(m.chunks["phase"]) == ["precopy"] * 3 + ["stopcopy"]
    # RAM units are attached to their sections: 10 + 4×1 zero pages, 4×1 + 2 normal pages
    assert int(m.sections["ram_zero_pages"].sum()) == 14
    assert int(m.sections["ram_normal_pages"].sum()) == 6
    # the chunk of the stop-copy record belongs to the END section of the device
    sec = m.sections.loc[int(m.chunks["section"].iloc[-1])]
    assert (sec["type"], sec["idstr"]) == ("END", DEV)


def test_empty_migration_frames_keep_schema():
    e = analysis.load()
    assert len(e.records) == 0 and "record_size_bytes" in e.records
    assert str(e.records["record_size_bytes"].dtype) == "Int64"
    assert e.devices == []


def test_clock_alignment_by_chunk_sizes(m):
    a = m.alignment[1]
    assert (a.method, a.basis, a.matched) == ("sequence", "chunk-sizes", 4)
    # trace clock = wire − BOOT − LAG exactly, so the offset is BOOT + LAG and the residual 0
    assert a.offset_ns == U.BOOT + U.LAG
    assert a.residual_ns == 0
    blocks = m.events[m.events["qemu_event"] == "vfio_save_block"]
    assert list(blocks["ts_ns"]) == [ms(20), ms(1020), ms(2020), ms(3128)]
    assert "clock_alignment" in codes(m)


def test_admin_capture_aligned_by_wall_clock(m):
    assert m.alignment[2].method == "wall-clock"
    assert list(m.admin["latency_ns"]) == [1_000_000, 3_000_000]
    # parts after the DEV_PARTS_GET result: 24 + 56 + 56 + 1048
    assert int(m.admin["parts_bytes"].iloc[1]) == 1184


def test_device_names_mapped_to_stream_idstr(m):
    assert m.device_map == {U.HOST: DEV}
    assert set(m.events["device"].dropna()) == {DEV}
    assert set(m.events["host_device"].dropna()) == {U.HOST}


def test_phases(m):
    p = m.phases.set_index("phase")
    assert list(p.index) == ["setup", "precopy", "stopcopy", "config", "resume"]
    assert p.loc["setup", "start_ns"] == ms(2) and p.loc["setup", "end_ns"] == ms(10)
    assert p.loc["precopy", "start_ns"] == ms(20) and p.loc["precopy", "end_ns"] == ms(3100)
    assert p.loc["precopy", "bytes"] == 1000 + 1016 + 1032
    assert (p.loc["stopcopy", "start_ns"], p.loc["stopcopy", "end_ns"], p.loc["stopcopy", "bytes"]) == (
        ms(3110), ms(3130), 1200)
    assert (p.loc["config", "duration_ns"], p.loc["config", "bytes"]) == (5_000_000, 80)
    assert (p.loc["resume", "start_ns"], p.loc["resume", "end_ns"]) == (ms(3135), ms(3150))


def test_iterations(m):
    it = m.iterations
    assert list(it["iteration"]) == [1, 2, 3, 4]
    assert list(it["source"]) == ["trace"] * 4
    # savevm_state_iterate at 9, 1009, … ms minus nothing: the aligned trace clock equals the wire
    assert list(it["ts_ns"]) == [ms(9) , ms(1009), ms(2009), ms(3009)]
    assert it["end_ns"].iloc[-1] == ms(3100)  # the last iteration ends at the switchover
    assert list(it["vfio_bytes"]) == [1000, 1016, 1032, 0]
    assert list(it["snapshots"]) == [1, 1, 1, 0]
    assert list(it["qemu_init_bytes"]) == [1000, 0, 0, 0]
    assert list(it["qemu_dirty_bytes"]) == [0, 1016, 1032, 0]
    assert list(it["ram_bytes"]) == [5000] * 4


def test_iterations_from_stream_without_trace():
    u = U.units()
    m = analysis.load("s.pcapng", units={0: u[0]})
    assert list(m.iterations["source"]) == ["stream"] * 4
    assert list(m.iterations["ts_ns"]) == [ms(10), ms(1010), ms(2010), ms(3010)]
    assert list(m.iterations["vfio_bytes"]) == [1000, 1016, 1032, 0]


def test_downtime_estimates(m):
    d = M.downtime(m)
    # (a) checkpoints 3095 → 3152 ms; (b) END ram at 3100 → SHUT at 3150
    assert d["downtime_qemu_ms"] == pytest.approx(57.0)
    assert "vmstate_downtime_checkpoint" in d["downtime_qemu_method"]
    assert d["downtime_wire_ms"] == pytest.approx(50.0)
    assert "SHUT" in d["downtime_wire_method"]
    # (c) RAM END 3100→3110 (no link rate: busy until the next section), VFIO END 3110→3128 (its last
    # chunk), then idle until FULL at 3130 (producing the config) + FULL 3130→3135, destination 3135→3150
    assert d["downtime_breakdown_ms"] == pytest.approx({"ram": 10.0, "vfio": 18.0, "config": 7.0, "dst_load": 15.0})
    assert sum(d["downtime_breakdown_ms"].values()) == pytest.approx(d["downtime_wire_ms"])
    assert d["downtime_admin_ms"] == pytest.approx({"DEV_MODE_SET": 1.0, "DEV_PARTS_GET": 3.0})


def test_downtime_model_and_what_if(m):
    base = M.downtime_model(m)
    # 8300 + 1240 + 80 + 50 bytes sent in 35 ms, plus 15 ms destination load
    assert base["stopcopy_bytes"] == 9670
    assert base["downtime_model_ms"] == pytest.approx(50.0)
    doubled = M.downtime_model(m, vfio_bytes=2480)
    assert doubled["downtime_model_ms"] == pytest.approx(35.0 * 10910 / 9670 + 15.0)
    fast = M.downtime_model(m, bandwidth_bytes_per_s=9670 / 0.005, fixed_ms=1.0)
    assert fast["downtime_model_ms"] == pytest.approx(6.0)


def test_downtime_without_return_path_ends_at_stream_end():
    u = U.units()
    u[0] = [x for x in u[0] if x.get("type_name") != "SHUT"]
    m = analysis.load("s.pcapng", units={0: u[0]})
    d = M.downtime(m)
    assert d["downtime_wire_ms"] == pytest.approx(35.0)  # 3100 → the last FULL section at 3135
    assert "end of stream" in d["downtime_wire_method"]
    assert d["downtime_breakdown_ms"]["dst_load"] is None


def test_record_metrics(m):
    r = M.record_stats(m, DEV)
    # sizes in bytes are JSON integers (json-lines.md): the median and p95 are rounded
    assert (r["record_bytes_min"], r["record_bytes_median"], r["record_bytes_max"]) == (984, 1008, 1184)
    assert r["record_bytes_p95"] == round(1016 + 0.85 * 168) == 1159
    assert r["bytes_by_part_type"] == {"DEV_FEATURES": 24, "VQ_CFG": 112, "NET_CVQ_CFG": 1048}
    assert sum(r["bytes_by_part_type"].values()) == 1184
    assert (r["context_growth_bytes"], r["trailer_bug"], r["parts_per_record_median"]) == (200, False, 3.0)


def test_policy_ratelimited(m):
    policy, ev = M.precopy_policy(m, DEV)
    assert policy == "ratelimited"
    assert ev["min_spacing_s"] == pytest.approx(1.0)
    assert ev["precopy_snapshots"] == 3


def _shift_precopy(u, spacing_ms):
    """Pre-copy snapshots spacing_ms apart instead of 1000 ms."""
    for x in u[0]:
        if x["kind"] in ("vfio_chunk", "vfio_record") and x["phase"] == "precopy":
            i = x["index"] if x["kind"] == "vfio_record" else x["data_offset"] // 1000
            x["ts_ns"] = ms(20 + spacing_ms * i)
    return u


def test_policy_cap128_from_reported_sizes():
    u = _shift_precopy(U.units(), 100)
    # QEMU sees 1000, 1016, 1032, then 0 for good (the 129th info call on)
    m = analysis.load("s", "t", units={0: u[0], 1: u[1]})
    policy, ev = M.precopy_policy(m, DEV)
    assert policy == "cap128"
    assert ev["reported_zero_from"] == 3
    assert ev["min_spacing_s"] == pytest.approx(0.1)


def test_policy_sub_second_spacing_alone_is_cap_evidence():
    """No traces, 3 snapshots 0.1 s apart: the rate-limited driver cannot produce that (§7.3)."""
    u = _shift_precopy(U.units(), 100)
    m = analysis.load("s", units={0: u[0]})
    policy, ev = M.precopy_policy(m, DEV)
    assert policy == "cap128" and "evidence of the cap" in ev["rule"] and "0.100 s apart" in ev["rule"]


def test_summarize_row(m):
    df = analysis.summarize(m)
    assert len(df) == 1
    row = df.iloc[0]
    assert row["device"] == DEV
    assert (row["qemu_profile"], row["qemu_iterate_sections"], row["precopy_chunks"], row["precopy_snapshots"]) == (
        "8.1-9.x", 4, 3, 3)
    assert (row["stopcopy_records"], row["stopcopy_bytes"], row["precopy_policy"]) == (1, 1200, "ratelimited")
    assert row["downtime_wire_ms"] == pytest.approx(50.0)
    assert row["ram_zero_pages"] == 14 and row["bytes_main"] == 27000
    assert str(df["stopcopy_bytes"].dtype) == "Int64"


def test_summary_objects_contract(m):
    objs = analysis.summary_objects(m)
    assert [o["kind"] for o in objs[:2]] == ["migration_summary", "device_summary"]
    ms_, ds = objs[0], objs[1]
    for k in ("captures", "qemu_profile", "total_ms", "setup_ms", "precopy_iterations", "precopy_iterations_method",
              "dirty_syncs", "qemu_iterate_sections", "ram_zero_pages",
              "ram_normal_pages", "bytes_main", "bytes_multifd", "downtime_qemu_ms", "downtime_wire_ms",
              "downtime_model_ms", "downtime_breakdown_ms"):
        assert k in ms_
    assert set(ms_["downtime_breakdown_ms"]) == {"ram", "vfio", "config", "dst_load"}
    assert ds["bytes_by_part_type"] == {"DEV_FEATURES": 24, "VQ_CFG": 112, "NET_CVQ_CFG": 1048}
    assert ds["admin_latency_ms"] == {"DEV_MODE_SET": 1.0, "DEV_PARTS_GET": 3.0}
    assert isinstance(ds["record_bytes_min"], int) and isinstance(ds["trailer_bug"], bool)
    # the fixture has no sync events, no QEMU counters and only decoded units (no page sends):
    # the pre-copy iterations are the only contract fields left null, each with its finding
    assert {o["metric"] for o in objs if o.get("code") == "metric_unavailable"} == {
        "precopy_iterations", "precopy_iterations_method", "dirty_syncs"}
    assert (ms_["precopy_iterations"], ms_["dirty_syncs"], ms_["qemu_iterate_sections"]) == (None, None, 4)


def test_metric_unavailable_findings_for_trace_only():
    u = U.units()
    m = analysis.load("t", units={0: u[1]})
    objs = analysis.summary_objects(m)
    ms_ = objs[0]
    assert ms_["downtime_wire_ms"] is None and ms_["bytes_main"] is None
    assert ms_["downtime_qemu_ms"] == pytest.approx(57.0)
    missing = {o["metric"] for o in objs if o.get("code") == "metric_unavailable"}
    assert {"downtime_wire_ms", "bytes_main", "ram_zero_pages", "stopcopy_bytes"} <= missing
    # trace-only device: named by its host name; pre-copy chunks from vfio_save_block before stop-copy
    ds = objs[1]
    assert ds["device"] == U.HOST


# --- one test per finding type -------------------------------------------------------------------

def test_finding_trace_stream_chunk_mismatch():
    u = U.units()
    for x in u[1]:
        if x["qemu"]["event"] == "vfio_save_block" and x["qemu"]["args"]["data_size"] == 1016:
            x["qemu"]["args"]["data_size"] = 2000
    m = load(u)
    f = [f for f in m.findings if f["code"] == "trace_stream_chunk_mismatch"]
    assert len(f) == 1 and f[0]["first_difference"] == 1 and f[0]["device"] == DEV


def test_finding_stopcopy_size_mismatch():
    u = U.units()
    for x in u[1]:
        if x["qemu"]["event"] == "vfio_state_pending_exact":
            x["qemu"]["args"]["stopcopy_size"] = 2000
    m = load(u)
    f = [f for f in m.findings if f["code"] == "stopcopy_size_mismatch"]
    assert len(f) == 1 and (f[0]["reported_bytes"], f[0]["wire_bytes"]) == (2000, 1200)
    assert "stopcopy_size_mismatch" not in codes(load())


def test_finding_admin_record_size_mismatch():
    u = U.units()
    u[2][-1]["length"] = 1000  # the GET result now holds 24 + 112 + 1016 bytes
    m = load(u)
    f = [f for f in m.findings if f["code"] == "admin_record_size_mismatch"]
    assert len(f) == 1 and f[0]["unmatched"] == 1
    assert "admin_record_size_mismatch" not in codes(load())


def test_finding_record_trailer_present():
    u = U.units()
    for x in u[0]:
        if x["kind"] == "vfio_record":  # record_size includes the 8 junk bytes (vfio-virtio-stream.md §6)
            x["trailer_bytes"] = 8
            x["record_size"] += 8
    m = load(u)
    f = [f for f in m.findings if f["code"] == "record_trailer_present"]
    assert len(f) == 1 and f[0]["records"] == 4
    assert analysis.summarize(m)["trailer_bug"].iloc[0]
    # the DEV_PARTS_GET result (1184 bytes of parts) still matches the 1192-byte record
    assert "admin_record_size_mismatch" not in codes(m)
    assert int(m.records["total_bytes"].iloc[-1]) == 16 + 1192


def test_finding_clock_alignment_failed():
    u = U.units()
    u[1] = [x for x in u[1] if x["qemu"]["event"] != "vfio_save_block"]
    m = load(u)
    assert m.alignment[1].method == "none"
    assert "clock_alignment_failed" in codes(m)


def test_finding_device_name_unmapped():
    u = U.units()
    u[1].append(dict(U._ev(30, "vfio_save_setup", name="0000:3b:00.2")))
    m = load(u)
    # HOST is recognised by its vfio_save_block sizes; the second name has nothing to match
    assert m.device_map == {U.HOST: DEV}
    f = [f for f in m.findings if f["code"] == "device_name_unmapped"]
    assert f and f[0]["devices"] == ["0000:3b:00.2"]


def test_finding_device_names_mapped_by_order():
    u = U.units()
    u[0].append({"kind": "section", "flow": 0, "offset": 350, "length": 40, "type": "START", "section_id": 9,
                 "idstr": "0000:00:06.0/vfio", "instance_id": 0, "version_id": 1, "ts_ns": ms(3)})
    u[1] = [x for x in u[1] if x["qemu"]["event"] not in ("vfio_save_block",)]
    u[1] += [U._ev(30, "vfio_save_setup", name="0000:3b:00.2"), U._ev(31, "vfio_save_setup", name=U.HOST)]
    m = load(u)
    assert m.device_map == {U.HOST: DEV, "0000:3b:00.2": "0000:00:06.0/vfio"}
    assert "device_names_mapped_by_order" in codes(m)


def test_finding_qemu_counter_mismatch(tmp_path):
    info = tmp_path / "info.txt"
    info.write_text("Migration status: completed\ntotal time: 3150 ms\ndowntime: 52 ms\nsetup: 1 ms\n"
                    "transferred ram: 24 kbytes\nduplicate: 15 pages\nnormal: 6 pages\ndirty sync count: 5\n")
    u = U.units()
    m = analysis.load("s.pcapng", info, units={0: u[0]})
    f = [f for f in m.findings if f["code"] == "qemu_counter_mismatch"]
    assert [(x["counter"], x["stream"], x["qemu"]) for x in f] == [("duplicate_pages", 14, 15)]
    assert m.qemu_stats["source"]["dirty_sync_count"] == 5
    d = M.downtime(m)
    assert d["downtime_qemu_ms"] == 52.0 and "info migrate" in d["downtime_qemu_method"]


def test_finding_capture_unreadable_and_unknown(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01\x02\x03" * 100)
    m = analysis.load(tmp_path / "missing.pcap", junk)
    assert codes(m)[:2] == ["capture_unreadable", "capture_unknown_format"]
    assert all(f["severity"] == "error" for f in m.findings[:2])


def test_finding_precopy_policy_detected_and_metric_unavailable(m):
    objs = analysis.summary_objects(m)
    f = [o for o in objs if o.get("code") == "precopy_policy_detected"]
    assert f[0]["policy"] == "ratelimited" and "0.9 s" in f[0]["message"]


def test_lazy_import_keeps_analysis_cheap():
    import subprocess
    import sys
    code = "import sys, analysis; print('pandas' in sys.modules, analysis.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", analysis.__version__]


def test_finding_admin_duplicates_dropped():
    u = U.units()
    u[1] += U.admin_units()  # the same exchanges carried as raw_data records by the trace
    m = load(u)
    assert len(m.admin) == 2 and set(m.admin["capture"]) == {2}
    assert int(m.parts["admin_tag"].notna().sum()) == 4
    f = [f for f in m.findings if f["code"] == "admin_duplicates_dropped"]
    assert f and f[0]["dropped"] == 2


def test_finding_capture_decode_failed(monkeypatch):
    """A decoder that raises loses only its own capture."""
    import importlib

    L = importlib.import_module("analysis.load")  # the module (``analysis.load`` is the function)

    def broken(path, kind, *args, **kwargs):
        yield {"kind": "finding", "severity": "warning", "code": "partial", "message": "before the crash",
               "offset": 0}
        raise RuntimeError("boom")
    monkeypatch.setattr(L, "iter_units", broken)
    info = U.__file__  # any readable file; detection is not what is tested here
    monkeypatch.setattr(L, "detect_kind", lambda p: "pcapng")
    m = analysis.load(info, "s.pcapng", units={1: U.units()[0]})
    f = [f for f in m.findings if f["code"] == "capture_decode_failed"]
    assert len(f) == 1 and "RuntimeError: boom" in f[0]["message"] and f[0]["capture"] == 0
    assert "partial" in codes(m)  # what the decoder yielded before failing is kept
    assert len(m.records) == 4  # the other capture is analysed


def test_load_is_the_function_whatever_is_imported_first():
    """help(analysis.load) documents the function with its real signature, not the module (issue 11)."""
    import subprocess
    import sys
    code = ("import analysis, inspect, pydoc, sys; f = analysis.load; import analysis.load; import analysis.metrics; "
            "from analysis.load import Migration; from analysis import load; "
            "print(f is analysis.load is load, inspect.isfunction(load), "
            "list(inspect.signature(load).parameters), hasattr(sys.modules['analysis.load'], 'iter_units')); "
            "print(pydoc.render_doc(analysis.load, renderer=pydoc.plaintext).splitlines()[0])")
    code2 = "import analysis.load; import analysis; print(analysis.load.__module__, analysis.load.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "True True ['captures', 'manifest', 'progress', 'units'] True"
    assert out[1] == "Python Library Documentation: function load in module analysis.load"
    out2 = subprocess.run([sys.executable, "-c", code2], capture_output=True, text=True, check=True).stdout
    assert out2.split() == ["analysis.load", "load"]


def test_trace_dat_with_date_option_is_anchored(tmp_path):
    """A trace.dat recorded with `trace-cmd record --date`: the reader applies DATE, the trace lands
    on the wall clock and is aligned as date-option with offset 0."""
    from dissect.ftrace.event import Event
    from dissect.ftrace.writer import write_trace_dat

    date_us = (U.BOOT + U.LAG) // 1000  # trace clock + DATE = wall clock (µs resolution)
    events = []
    for x in U.trace_units():
        q = x["qemu"]
        args = " ".join(f"{k} {v}" for k, v in q["args"].items() if k != "name")
        text = f"{q['event']}  ({q['args']['name']}) {args}" if "name" in q["args"] else q["event"] + " "
        if q["event"] == "vfio_save_block":
            text = f"vfio_save_block  ({U.HOST}) data_size {q['args']['data_size']}"
        events.append(Event("trace-dat", x["ts_ns"], 0, 100, "live_migration", "ftrace", "print",
                            {"ip": 0, "buf": text + "\n"}, text))
    path = write_trace_dat(tmp_path / "src.dat", events, extra_options=[(1, f"0x{date_us:x}\0".encode())])
    m = analysis.load("s.pcapng", path, units={0: U.units()[0]})
    a = m.alignment[1]
    assert (a.method, a.offset_ns) == ("date-option", 0)
    blocks = m.events[m.events["qemu_event"] == "vfio_save_block"]
    assert list(blocks["ts_ns"]) == [ms(20), ms(1020), ms(2020), ms(3128)]
