# SPDX-License-Identifier: GPL-2.0-only
"""The query-migrate time series as a capture kind (run-manifest.md roles ``qmp-source`` /
``qmp-destination``): detection, the tidy frame, damaged lines, iteration boundaries, the summary's
``qmp`` method and QEMU's downtime, the ``remaining`` plot; real QEMU 10.0.2 series against QEMU's
own final reply."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import analysis
from analysis import plots
from analysis.load import detect_kind
from analysis.load_qmp import iteration_boundaries, read_series
from tests.conftest import ROOT

Q10 = ROOT / "traces" / "real" / "qemu10"
T = 1_800_000_000_000_000_000


def _ram(dsc: int, remaining: int, transferred: int, rate: int = 0) -> dict:
    return {"total": 1 << 20, "remaining": remaining, "transferred": transferred, "dirty-sync-count": dsc,
            "normal": transferred // 4096, "duplicate": 3, "dirty-pages-rate": rate, "mbps": 8.5,
            "normal-bytes": (transferred // 4096) * 4096, "page-size": 4096}


LINES = [
    json.dumps({"ts_ns": T, "status": "setup"}),
    json.dumps({"ts_ns": T + 100_000_000, "status": "active", "setup-time": 2, "total-time": 100,
                "expected-downtime": 30, "ram": _ram(1, 900_000, 120_000)}),
    '{"ts_ns": 1800000000200000000, "status": "active", "ram": {',          # cut by a crash of the writer
    json.dumps({"ts_ns": T + 300_000_000, "status": "active", "setup-time": 2, "total-time": 300,
                "ram": _ram(2, 40_960, 1_000_000, 250)}),
    "[1, 2]",                                                                 # not an object
    json.dumps({"ts_ns": T + 400_000_000, "status": "active", "setup-time": 2, "total-time": 400,
                "ram": _ram(3, 8192, 1_040_000, 250)}),
    json.dumps({"ts_ns": T + 500_000_000, "status": "completed", "setup-time": 2, "total-time": 480,
                "downtime": 7, "ram": _ram(4, 0, 1_052_672)}),
]


@pytest.fixture
def series(tmp_path):
    p = tmp_path / "run.src-qmp.jsonl"
    p.write_text("\n".join(LINES) + "\n")
    return p


def test_detected_by_content(series, tmp_path):
    assert detect_kind(series) == "qmp-series"
    # a single saved reply (no ts_ns) stays QEMU's statistics, as before
    one = tmp_path / "reply.json"
    one.write_text(json.dumps({"return": {"status": "completed", "ram": _ram(4, 0, 1)}}))
    assert detect_kind(one) == "qemu-stats"
    # a damaged first line does not hide the series
    damaged = tmp_path / "d.jsonl"
    damaged.write_text("\n".join(LINES[2:]) + "\n")
    assert detect_kind(damaged) == "qmp-series"
    # contract units with ts_ns and status (an admin_result) are not a series
    units = tmp_path / "units.jsonl"
    units.write_text(json.dumps({"kind": "admin_result", "ts_ns": T, "status": 0, "tag": 1}) + "\n")
    assert detect_kind(units) != "qmp-series"


def test_frame_and_findings(series):
    df, findings = read_series(series, capture=0, side="source")
    assert df["ts_ns"].tolist() == [T, T + 100_000_000, T + 300_000_000, T + 400_000_000, T + 500_000_000]
    assert df["status"].tolist() == ["setup", "active", "active", "active", "completed"]
    assert df["dirty_sync_count"].tolist()[1:] == [1, 2, 3, 4] and df["dirty_sync_count"].isna().iloc[0]
    assert df["remaining_bytes"].tolist()[1:] == [900_000, 40_960, 8192, 0]
    assert df["dirty_pages_rate"].tolist()[1:] == [0, 250, 250, 0]
    assert df["expected_downtime_ms"].iloc[1] == 30.0 and df["downtime_ms"].iloc[-1] == 7.0
    assert df["total_time_ms"].iloc[-1] == 480.0 and df["setup_ms"].iloc[-1] == 2.0
    assert df["throughput_mbps"].iloc[1] == 8.5
    # lines 3 and 5 are reported with their line number and byte offset; the rest is read
    offs = [0]
    for line in LINES:
        offs.append(offs[-1] + len(line) + 1)
    assert [(f["code"], f["line"], f["offset"], f["severity"]) for f in findings] == [
        ("qmp_series_line_malformed", 3, offs[2], "warning"), ("qmp_series_line_malformed", 5, offs[4], "warning")]


def test_cut_last_line_and_long_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(LINES[0].encode() + b"\n" + b"{" * ((1 << 20) + 10) + b"\n" + LINES[1].encode()[:40])
    df, findings = read_series(p)
    assert len(df) == 1
    assert [(f["line"], f["offset"]) for f in findings] == [(2, len(LINES[0]) + 1),
                                                            (3, len(LINES[0]) + 1 + (1 << 20) + 11)]
    assert "longer than" in findings[0]["message"] and "cut short" in findings[1]["message"]


def test_iteration_boundaries(series):
    df, _ = read_series(series)
    b = iteration_boundaries(df)
    # a sync happened after the poll before (after_ts_ns) and by the poll where the count grew
    assert b["dirty_sync_count"].tolist() == [1, 2, 3, 4]
    assert b["ts_ns"].tolist() == [T + 100_000_000, T + 300_000_000, T + 400_000_000, T + 500_000_000]
    assert b["after_ts_ns"].tolist() == [T, T + 100_000_000, T + 300_000_000, T + 400_000_000]


def test_summary_uses_the_series(series):
    m = analysis.load(series)
    assert [c.kind for c in m.captures] == ["qmp-series"] and m.captures[0].side == "source"
    assert len(m.qmp) == 5 and m.captures[0].units == 5
    mig = analysis.summary_objects(m)[0]
    assert (mig["precopy_iterations"], mig["precopy_iterations_method"], mig["dirty_syncs"]) == (3, "qmp", 4)
    assert mig["downtime_qemu_ms"] == 7.0 and "query-migrate" in mig["downtime_qemu_method"]
    assert (mig["total_ms"], mig["setup_ms"]) == (480.0, 2.0)
    assert [f["line"] for f in m.findings if f["code"] == "qmp_series_line_malformed"] == [3, 5]


def test_role_from_the_manifest(series, tmp_path):
    """run.json roles name the side, whatever the file is called."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "polls.jsonl").write_text(series.read_text())
    (run / "other.jsonl").write_text(series.read_text().replace('"dirty-sync-count": 4', '"dirty-sync-count": 9'))
    (run / "run.json").write_text(json.dumps({
        "schema": 1, "run_id": "r1", "kind": "real",
        "captures": [{"path": "polls.jsonl", "role": "qmp-destination"},
                     {"path": "other.jsonl", "role": "qmp-source"}]}))
    m = analysis.load(run)
    assert [(c.kind, c.side) for c in m.captures] == [("qmp-series", "destination"), ("qmp-series", "source")]
    assert sorted(set(m.qmp["side"])) == ["destination", "source"]
    mig = analysis.summary_objects(m)[0]
    assert (mig["precopy_iterations"], mig["dirty_syncs"]) == (8, 9)  # the source's series


def test_remaining_plot(series):
    m = analysis.load(series)
    fig = plots.remaining(m)
    ax = fig.axes[0]
    main = [ln for ln in ax.lines if ln.get_label() == "RAM remaining (QEMU)"]
    assert len(main) == 1 and list(main[0].get_ydata()) == [900_000, 40_960, 8192, 0]
    assert len([ln for ln in ax.lines if ln.get_linestyle() == ":"]) == 4  # one per count change
    assert [t.get_text() for t in ax.texts] == ["1", "2", "3", "4"]
    rate = [ln for a in fig.axes for ln in a.lines if ln.get_label() == "dirty pages rate (pages/s)"]
    assert list(rate[0].get_ydata()) == [0, 250, 250, 0]
    assert "remaining" in plots.KINDS
    empty = plots.remaining(analysis.load(ROOT / "traces" / "real" / "qemu-tcp-returnpath.src.log"))
    assert "no query-migrate time series" in empty.axes[0].texts[0].get_text()


@pytest.mark.skipif(not (Q10 / "multipass.src-qmp.jsonl").exists(), reason="traces/real/qemu10 not recorded")
@pytest.mark.parametrize("name", ["multipass", "multipass-rp", "returnpath", "multifd", "file"])
def test_real_series_ends_with_qemus_final_reply(name):
    """The last poll equals the final query-migrate QEMU returned (saved separately by the recorder)."""
    final = json.loads((Q10 / f"{name}.src-query-migrate.json").read_text())
    final = final.get("return", final)
    m = analysis.load(Q10 / f"{name}.src-qmp.jsonl")
    last = m.qmp.iloc[-1]
    assert last["status"] == final["status"] == "completed"
    ram = final["ram"]
    assert (last["dirty_sync_count"], last["transferred_bytes"], last["normal_pages"], last["duplicate_pages"]) == (
        ram["dirty-sync-count"], ram["transferred"], ram["normal"], ram["duplicate"])
    assert last["downtime_ms"] == final["downtime"] and last["total_time_ms"] == final["total-time"]
    n_lines = sum(1 for ln in (Q10 / f"{name}.src-qmp.jsonl").read_text().splitlines() if ln.strip())
    assert len(m.qmp) == n_lines and not [f for f in m.findings if f["code"] == "qmp_series_line_malformed"]
    mig = analysis.summary_objects(m)[0]
    assert (mig["dirty_syncs"], mig["precopy_iterations_method"]) == (ram["dirty-sync-count"], "qmp")
    assert mig["downtime_qemu_ms"] == final["downtime"]


SIM = ROOT / "traces" / "sim"


@pytest.mark.parametrize("run", ["compare/fw-28.40-s1", "policies/fw-29.0-cap128", "variants/qemu10",
                                 "variants/set-reject"])
def test_simulated_series_gives_the_truth(run):
    """The simulator's query-migrate series (role qmp-source) with its pcap, without the traces:
    the qmp method gives the truth's pre-copy iterations; the series' sync count never decreases and
    its polls are 100 ms apart on the pcap's clock."""
    d = SIM / run
    manifest = json.loads((d / "run.json").read_text())
    truth = manifest["truth"]
    assert {"path": "source-qmp.jsonl", "role": "qmp-source"} in manifest["captures"]
    m = analysis.load(d / "source.pcapng", d / "source-qmp.jsonl")
    mig = analysis.summary_objects(m)[0]
    q = m.qmp
    assert q["ts_ns"].diff().dropna().iloc[:-1].eq(100_000_000).all()
    assert q["dirty_sync_count"].dropna().is_monotonic_increasing
    assert q["ts_ns"].iloc[0] >= m.flows["first_ts_ns"].min() - 100_000_000
    if truth["outcome"] == "completed":
        assert (mig["precopy_iterations"], mig["dirty_syncs"], mig["precopy_iterations_method"]) == (
            truth["precopy_iterations"], truth["dirty_syncs"], "qmp")
        assert mig["downtime_qemu_ms"] == truth["downtime_query_migrate_ms"]
    else:  # a failed migration: QEMU's last counters are not final, the stream's lower bound is used
        assert q["status"].iloc[-1] == "failed" and mig["precopy_iterations_method"] == "stream"
        assert mig["precopy_iterations"] <= truth["precopy_iterations"]


def test_role_names_the_kind_of_a_damaged_series(tmp_path):
    """Every line damaged: content detection cannot tell, the qmp-source role can; each line is a finding."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "polls.jsonl").write_text("\n".join([LINES[2], "[1, 2]", "{}"]) + "\n")
    (run / "run.json").write_text(json.dumps({"schema": 1, "run_id": "r", "kind": "real",
                                              "captures": [{"path": "polls.jsonl", "role": "qmp-source"}]}))
    m = analysis.load(run)
    assert [(c.kind, c.side, c.error) for c in m.captures] == [("qmp-series", "source", None)]
    assert [f["line"] for f in m.findings if f["code"] == "qmp_series_line_malformed"] == [1, 2, 3]
    assert not [f for f in m.findings if f["severity"] == "error"] and len(m.qmp) == 0
    mig = analysis.summary_objects(m)[0]
    assert mig["precopy_iterations"] is None and mig["dirty_syncs"] is None


@pytest.mark.skipif(not (Q10 / "multipass.pcap").exists(), reason="traces/real/qemu10 not recorded")
def test_qemu_counters_of_the_manifest(tmp_path):
    """A recorded run's run.json carries QEMU's final query-migrate (qemu_counters): method qmp from it."""
    import os

    final = json.loads((Q10 / "multipass.src-query-migrate.json").read_text())
    final = final.get("return", final)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "schema": 1, "run_id": "r", "kind": "real", "qemu_counters": final,
        "captures": [{"path": os.path.relpath(Q10 / "multipass.pcap", run), "role": "source-stream"}]}))
    mig = analysis.summary_objects(analysis.load(run))[0]
    assert (mig["precopy_iterations"], mig["precopy_iterations_method"], mig["dirty_syncs"]) == (
        final["ram"]["dirty-sync-count"] - 1, "qmp", final["ram"]["dirty-sync-count"]) == (8, "qmp", 9)
    assert mig["downtime_qemu_ms"] == final["downtime"]
    assert mig["precopy_iterations_evidence"]["stream"]["lower_bound"] == 7


def test_plot_remaining_cli(series, tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "r.png"
    p = run_cli("plot", "remaining", str(series), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not (Q10 / "multipass.pcap").exists(), reason="traces/real/qemu10 not recorded")
def test_iterations_carry_qemus_remaining():
    """Each iterate round of the stream gets the RAM remaining of the last poll inside it."""
    m = analysis.load(Q10 / "multipass.pcap", Q10 / "multipass.src-qmp.jsonl")
    it, q = m.iterations, m.qmp
    for _, r in it.iterrows():
        inside = q[(q["ts_ns"] >= r["ts_ns"]) & (q["ts_ns"] < r["end_ns"]) & q["remaining_bytes"].notna()]
        want = int(inside["remaining_bytes"].iloc[-1]) if len(inside) else None
        got = None if r["qemu_remaining_bytes"] is pd.NA else int(r["qemu_remaining_bytes"])
        assert got == want, r["iteration"]
    assert it["qemu_remaining_bytes"].iloc[0] == 33042432  # QEMU's first active poll: 32 MiB guest, bulk pass


def test_deeply_nested_line_is_a_finding(tmp_path):
    p = tmp_path / "deep.src-qmp.jsonl"
    p.write_text("[" * 200_000 + "\n" + LINES[1] + "\n")
    df, findings = read_series(p)
    assert len(df) == 1 and [(f["line"], f["offset"]) for f in findings] == [(1, 0)]


def test_counters_past_2_53_stay_exact_when_a_poll_lacks_them(tmp_path):
    """A column with a missing value never goes through float64: 2**60 + 1 stays 2**60 + 1."""
    big = (1 << 60) + 1
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps({"ts_ns": 1, "status": "active", "ram": {"transferred": big, "total": big}}) + "\n"
                 + json.dumps({"ts_ns": 2, "status": "active", "ram": {"total": big + 2}}) + "\n")
    df, findings = read_series(p, capture=0, side="source")
    assert findings == []
    assert df["transferred_bytes"].tolist() == [big, pd.NA]
    assert df["total_bytes"].tolist() == [big, big + 2]
    assert str(df["transferred_bytes"].dtype) == "Int64" and df["throughput_mbps"].dtype == "float64"
