# SPDX-License-Identifier: GPL-2.0-only
"""End to end on simulated corpora whose firmware profiles differ by a known amount:
the verdicts and their direction are right, and `migtrace compare` exits 3 exactly
when a regression was planted."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from analysis.simulate import simulate
from analysis.simulate.profiles import resolve
from tests.conftest import TRACES, run_cli

SEEDS = (1, 2, 3, 4)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """28.40.1000 (baseline), 28.40.1001 (the same firmware, renumbered: nothing
    planted) and 28.41.1000 (slower DEV_MODE_SET / DEV_PARTS_GET / DEV_PARTS_SET:
    downtime planted), four seeds each."""
    root = tmp_path_factory.mktemp("corpus")
    base = resolve("default", firmware="fw-28.40")
    same = replace(base, firmware=replace(base.firmware, version="28.40.1001"))
    slow = resolve("default", firmware="fw-28.41")
    for name, prof in (("base", base), ("same", same), ("slow", slow)):
        for seed in SEEDS:
            simulate(prof, seed, root / f"{name}-{seed}")
    return root


def _compare(corpus: Path, candidate: str) -> tuple[int, dict, list[dict]]:
    proc = run_cli("compare", str(corpus), "--baseline", "28.40.1000", "--candidate", candidate,
                   "--no-cache", "--json")
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    comp = {c["metric"]: c for c in lines if c["kind"] == "comparison"}
    return proc.returncode, comp, lines


def test_nothing_planted_exits_0_and_nothing_regresses(corpus):
    rc, comp, lines = _compare(corpus, "28.40.1001")
    assert rc == 0
    assert not [m for m, c in comp.items() if c["verdict"] == "regression"]
    # the same device and the same admin behaviour: sizes and counts identical
    for metric in ("stopcopy_bytes", "record_bytes_max", "precopy_snapshots", "precopy_chunks"):
        assert comp[metric]["verdict"] == "unchanged" and comp[metric]["change_pct"] == 0.0
    assert lines[-1]["regressions"] == 0 and lines[-1]["runs"] == 8


def test_planted_downtime_regression_exits_3_with_the_right_direction(corpus):
    rc, comp, lines = _compare(corpus, "28.41.1000")
    assert rc == 3
    for metric in ("downtime_wire_ms", "downtime_qemu_ms", "admin_latency_ms.DEV_PARTS_SET",
                   "admin_latency_ms.DEV_MODE_SET"):
        c = comp[metric]
        assert c["verdict"] == "regression", (metric, c)
        assert c["change_pct"] > 0 and c["ci_low_pct"] > c["threshold_pct"]
        assert c["effect_size"] == 1.0  # every candidate run is worse than every baseline run
    # the firmware did not change the device state: sizes are unchanged
    assert comp["stopcopy_bytes"]["verdict"] == "unchanged"
    assert lines[-1]["regressions"] >= 4


def test_bundled_corpus_shows_the_three_firmware_stories():
    """traces/sim/compare: 28.41 regresses downtime; 29.0 changes pre-copy (fewer, larger chunks)."""
    proc = run_cli("compare", str(TRACES / "sim" / "compare"), "--baseline", "28.40.1000",
                   "--no-cache", "--json")
    assert proc.returncode == 3
    comp = {(c["metric"], c["candidate"]): c for c in map(json.loads, proc.stdout.splitlines())
            if c["kind"] == "comparison"}
    assert comp[("downtime_wire_ms", "28.41.1000")]["verdict"] == "regression"
    assert comp[("downtime_wire_ms", "29.0.200")]["verdict"] in ("unchanged", "inconclusive")
    assert comp[("precopy_chunks", "29.0.200")]["change_pct"] == -50.0
    assert comp[("precopy_chunks", "28.41.1000")]["verdict"] == "unchanged"
