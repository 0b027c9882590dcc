# SPDX-License-Identifier: GPL-2.0-only
"""Comparison statistics on constructed data with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.compare.engine import compare, group_values
from analysis.compare.metrics import load_threshold_file, metric_specs, parse_threshold, version_key
from analysis.compare.stats import (bootstrap_change_ci, cliffs_delta, compare_groups,
                                    mann_whitney_u, rankdata, verdict)


def test_no_difference_is_unchanged():
    rng = np.random.default_rng(7)
    b = rng.normal(100.0, 1.0, 10)
    c = rng.normal(100.0, 1.0, 10)
    r = compare_groups(b, c, threshold_pct=5.0, worse_when="higher")
    assert r.verdict == "unchanged"
    assert -5.0 <= r.ci_low_pct <= r.ci_high_pct <= 5.0


def test_thirty_percent_shift_with_ten_runs_is_a_regression():
    rng = np.random.default_rng(11)
    b = rng.normal(200.0, 8.0, 10)
    c = rng.normal(260.0, 10.4, 10)  # +30 %
    r = compare_groups(b, c, threshold_pct=5.0, worse_when="higher")
    assert r.verdict == "regression"
    assert r.ci_low_pct < 30.0 < r.ci_high_pct
    assert r.p_value < 0.001
    assert r.effect_size == 1.0
    assert r.n_baseline == r.n_candidate == 10


def test_shift_in_the_better_direction_is_an_improvement():
    rng = np.random.default_rng(3)
    b = rng.normal(200.0, 8.0, 10)
    c = rng.normal(140.0, 6.0, 10)  # -30 %
    assert compare_groups(b, c, threshold_pct=5.0, worse_when="higher").verdict == "improvement"
    assert compare_groups(b, c, threshold_pct=5.0, worse_when="lower").verdict == "regression"


def test_two_runs_per_group_are_inconclusive():
    r = compare_groups(np.array([100.0, 101.0]), np.array([150.0, 151.0]),
                       threshold_pct=5.0, worse_when="higher")
    assert r.verdict == "inconclusive"
    assert r.change_pct == pytest.approx((150.5 - 100.5) / 100.5 * 100)


def test_interval_straddling_the_threshold_is_inconclusive():
    assert verdict((2.0, 9.0), 0.01, threshold_pct=5.0, worse_when="higher",
                   n_baseline=10, n_candidate=10) == "inconclusive"
    assert verdict((6.0, 9.0), 0.2, threshold_pct=5.0, worse_when="higher",
                   n_baseline=10, n_candidate=10) == "inconclusive"  # not significant
    assert verdict((6.0, 9.0), 0.01, threshold_pct=5.0, worse_when="higher",
                   n_baseline=10, n_candidate=10) == "regression"
    assert verdict((-4.0, 4.0), 0.9, threshold_pct=5.0, worse_when="lower",
                   n_baseline=3, n_candidate=3) == "unchanged"


def test_identical_constant_groups_are_unchanged():
    r = compare_groups(np.full(5, 4096.0), np.full(5, 4096.0), threshold_pct=5.0, worse_when="higher")
    assert (r.change_pct, r.ci_low_pct, r.ci_high_pct, r.verdict) == (0.0, 0.0, 0.0, "unchanged")
    assert r.p_value == 1.0


def test_bootstrap_is_deterministic_for_a_seed():
    b, c = np.arange(10.0) + 100, np.arange(10.0) + 120
    assert bootstrap_change_ci(b, c, seed=5) == bootstrap_change_ci(b, c, seed=5)


def test_rankdata_averages_ties():
    assert rankdata(np.array([10.0, 20.0, 10.0, 30.0])).tolist() == [1.5, 3.0, 1.5, 4.0]


def test_cliffs_delta_known_values():
    assert cliffs_delta(np.array([1, 2, 3]), np.array([4, 5, 6])) == 1.0
    assert cliffs_delta(np.array([4, 5, 6]), np.array([1, 2, 3])) == -1.0
    # pairs: (1,1)= (1,2)< ... 2 greater, 1 less, 1 tie of 4 → (2-1)/4
    assert cliffs_delta(np.array([1, 2]), np.array([1, 3])) == pytest.approx(0.25)


@pytest.mark.parametrize("n1,n2,ties", [(5, 6, False), (8, 8, False), (3, 4, False), (20, 3, False),
                                        (10, 10, False), (10, 12, True), (6, 6, True)])
def test_mann_whitney_matches_scipy(n1, n2, ties):
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(n1 * 100 + n2)
    for _ in range(5):
        if ties:
            x, y = rng.integers(0, 5, n1).astype(float), rng.integers(1, 6, n2).astype(float)
        else:
            x, y = rng.normal(0, 1, n1), rng.normal(0.8, 1, n2)
        ref = scipy_stats.mannwhitneyu(x, y, alternative="two-sided")
        u, p = mann_whitney_u(x, y)
        assert u == ref.statistic
        assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_version_order_is_not_lexical():
    vals = ["28.10.1", "28.9.0", "28.41.1000", "3.0", "28.9.0-rc1"]
    assert sorted(vals, key=version_key) == ["3.0", "28.9.0", "28.9.0-rc1", "28.10.1", "28.41.1000"]


def test_threshold_parsing_and_toml(tmp_path):
    assert parse_threshold("downtime_wire_ms=+5%") == ("downtime_wire_ms", 5.0)
    assert parse_threshold("stopcopy_bytes = 2.5") == ("stopcopy_bytes", 2.5)
    with pytest.raises(ValueError):
        parse_threshold("downtime_wire_ms>5")
    p = tmp_path / "t.toml"
    p.write_text('[thresholds]\ndowntime_wire_ms = "+3%"\n"admin_latency_ms.*" = 20\n')
    th = load_threshold_file(p)
    assert th == {"downtime_wire_ms": 3.0, "admin_latency_ms.*": 20.0}
    specs = {s.name: s for s in metric_specs(["downtime_wire_ms", "admin_latency_ms.DEV_PARTS_GET", "total_ms"], th)}
    assert specs["downtime_wire_ms"].threshold_pct == 3.0
    assert specs["admin_latency_ms.DEV_PARTS_GET"].threshold_pct == 20.0
    assert specs["total_ms"].threshold_pct == 10.0


def _table(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for fw, scale, policy, trailer in (("1.2", 1.0, "ratelimited", False), ("1.10", 1.3, "ratelimited", False),
                                       ("1.9", 1.0, "cap128", True)):
        for i in range(8):
            rows.append({"run_id": f"{fw}-{i}", "status": "ok", "firmware.version": fw, "device": "0000:00:05.0/vfio",
                         "downtime_wire_ms": rng.normal(100.0 * scale, 2.0), "stopcopy_bytes": 65536,
                         "precopy_policy": policy, "trailer_bug": trailer,
                         "bytes_by_part_type.VQ_CFG": 1024, "bytes_by_part_type.NET_CVQ_CFG": 0 if fw == "1.2" else 600})
    rows.append({"run_id": "broken", "status": "failed", "firmware.version": "1.10", "device": None})
    return pd.DataFrame(rows)


def test_compare_table_end_to_end():
    t = _table(np.random.default_rng(1))
    assert group_values(t, "firmware.version") == ["1.2", "1.9", "1.10"]
    res = compare(t, baseline="1.2")
    assert res.candidates == ["1.9", "1.10"]
    by = {(c["metric"], c["candidate"]): c for c in res.comparisons}
    assert by[("downtime_wire_ms", "1.10")]["verdict"] == "regression"
    assert by[("downtime_wire_ms", "1.9")]["verdict"] == "unchanged"
    assert by[("stopcopy_bytes", "1.10")]["verdict"] == "unchanged"
    assert res.regressed
    s = res.summary_object()
    assert (s["runs"], s["runs_failed"], s["regressions"]) == (24, 1, 1)
    codes = {(f.code, f.context.get("candidate")) for f in res.findings}
    assert ("precopy_policy_changed", "1.9") in codes
    assert ("trailer_bug_appeared", "1.9") in codes
    assert ("part_type_appeared", "1.10") in codes
    assert ("precopy_policy_changed", "1.10") not in codes


def test_compare_names_missing_groups():
    t = _table(np.random.default_rng(2))
    res = compare(t, baseline="1.2", candidates=["9.9"])
    assert [f.code for f in res.findings if f.severity == "error"] == ["group_has_no_runs"]
    assert res.comparisons and all(c["verdict"] == "inconclusive" for c in res.comparisons)
