# SPDX-License-Identifier: GPL-2.0-only
"""`migtrace compare` on a corpus table: JSON Lines, exit codes, the HTML report, figures."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.compare.engine import compare
from analysis.compare.report import metric_figure
from tests.conftest import run_cli


def _table(shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    rows = []
    for fw, scale in (("2.0", 1.0), ("2.1", 1.0 + shift), ("2.10", 1.0)):
        for i in range(6):
            rows.append({"run_id": f"{fw}/{i}", "status": "ok", "firmware.version": fw,
                         "device": "0000:00:05.0/vfio", "kernel": "6.14.2",
                         "downtime_wire_ms": float(rng.normal(180.0 * scale, 1.5)),
                         "stopcopy_bytes": 70000 + i, "precopy_policy": "ratelimited"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("shift,code", [(0.3, 3), (0.0, 0)])
def test_exit_code_is_3_exactly_when_a_regression_is_planted(tmp_path, shift, code):
    t = tmp_path / "t.parquet"
    _table(shift).to_parquet(t)
    proc = run_cli("compare", str(t), "--baseline", "2.0", "--json")
    assert proc.returncode == code, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines[-1]["kind"] == "compare_summary"
    assert lines[-1]["candidates"] == ["2.1", "2.10"]
    comp = {(c["metric"], c["candidate"]): c for c in lines if c["kind"] == "comparison"}
    assert set(comp) == {("downtime_wire_ms", "2.1"), ("downtime_wire_ms", "2.10"),
                         ("stopcopy_bytes", "2.1"), ("stopcopy_bytes", "2.10")}
    d = comp[("downtime_wire_ms", "2.1")]
    assert d["verdict"] == ("regression" if shift else "unchanged")
    assert d["n_baseline"] == d["n_candidate"] == 6
    assert d["worse_when"] == "higher" and d["threshold_pct"] == 5.0
    if shift:
        assert d["ci_low_pct"] < 30.0 < d["ci_high_pct"]
    assert lines[-1]["regressions"] == (1 if shift else 0)


@pytest.mark.parametrize("threshold,verdict", [("+50%", "unchanged"), ("30", "inconclusive")])
def test_threshold_option_changes_the_verdict(tmp_path, threshold, verdict):
    t = tmp_path / "t.parquet"
    _table(0.3).to_parquet(t)
    proc = run_cli("compare", str(t), "--baseline", "2.0", "--candidate", "2.1",
                   "--threshold", f"downtime_wire_ms={threshold}", "--json")
    assert proc.returncode == 0
    comp = [json.loads(x) for x in proc.stdout.splitlines() if '"comparison"' in x]
    d = next(c for c in comp if c["metric"] == "downtime_wire_ms")
    # the +30 % shift's interval lies inside ±50 %, and straddles 30 %
    assert d["threshold_pct"] == float(threshold.strip("+%")) and d["verdict"] == verdict


def test_html_report_and_human_table(tmp_path):
    t = tmp_path / "t.parquet"
    _table(0.3).to_parquet(t)
    out = tmp_path / "report.html"
    proc = run_cli("compare", str(t), "--baseline", "2.0", "-o", str(out))
    assert proc.returncode == 3
    assert "REGRESSION" in proc.stdout and "downtime_wire_ms" in proc.stdout
    doc = out.read_text()
    assert doc.count("data:image/png;base64,") == 2  # one figure per metric
    assert "regression" in doc


def test_usage_errors(tmp_path):
    assert run_cli("compare", str(tmp_path / "none"), "--baseline", "1").returncode == 2
    t = tmp_path / "t.parquet"
    _table(0.0).to_parquet(t)
    assert run_cli("compare", str(t), "--baseline", "2.0", "--threshold", "bogus").returncode == 2
    assert run_cli("compare", str(t), "--baseline", "2.0", "--by", "nosuchfield").returncode == 2


def test_metric_figure_shows_groups_in_version_order_and_a_trend():
    res = compare(_table(0.3), baseline="2.0")
    spec = next(s for s in res.specs if s.name == "downtime_wire_ms")
    fig = metric_figure(res, spec)
    box, trend = fig.axes
    assert [t.get_text() for t in box.get_xticklabels()] == ["2.0", "2.1", "2.10"]
    assert box.get_ylabel() == "downtime_wire_ms" and box.get_xlabel() == "firmware.version"
    y = trend.lines[0].get_ydata()
    med = _table(0.3).groupby("firmware.version")["downtime_wire_ms"].median()
    assert list(y) == pytest.approx([med["2.0"], med["2.1"], med["2.10"]])
    assert len(box.collections) == 3  # one strip per group
    assert len(box.collections[1].get_offsets()) == 6
