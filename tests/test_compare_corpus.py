# SPDX-License-Identifier: GPL-2.0-only
"""The corpus table: manifest columns, per-run failures, the content-hash cache, and Dask."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.compare.engine import compare
from analysis.corpus import load_corpus, run_key
from tests.conftest import TRACES, run_cli

SIM = TRACES / "sim"


def _runs(n: int) -> list[Path]:
    runs = sorted(p.parent for p in SIM.rglob("run.json"))
    if len(runs) < n:
        pytest.skip(f"needs {n} simulated runs under traces/sim, found {len(runs)}")
    return runs[:n]


def _copy_corpus(tmp_path: Path, n: int) -> Path:
    root = tmp_path / "corpus"
    for i, run in enumerate(_runs(n)):
        shutil.copytree(run, root / f"run{i:02d}")
    return root


def test_table_has_manifest_columns_and_summary_metrics(tmp_path):
    root = _copy_corpus(tmp_path, 2)
    res = load_corpus([root], cache_dir=None)
    t = res.table
    assert res.decoded == 2 and res.failed == 0 and not res.findings
    assert list(t.columns[:5]) == ["run_id", "run_dir", "kind", "status", "error"]
    for m in (root / "run00" / "run.json", root / "run01" / "run.json"):
        man = json.loads(m.read_text())
        row = t[t["run_id"] == man["run_id"]].iloc[0]
        assert row["firmware.version"] == man["firmware"]["version"]
        assert row["kernel"] == man["kernel"] and row["qemu"] == man["qemu"]
        assert row["status"] == "ok" and row["kind"] == "simulated"
        for k, v in man.get("labels", {}).items():
            assert row[f"labels.{k}"] == v
        assert row["precopy_snapshots"] == man["truth"]["precopy_snapshots"]
    assert {"total_ms", "downtime_qemu_ms", "precopy_policy", "device"} <= set(t.columns)


def test_cache_decodes_only_new_runs(tmp_path):
    root = _copy_corpus(tmp_path, 3)
    extra = root / "run02"
    held = tmp_path / "held"
    shutil.move(extra, held)
    cache = tmp_path / "cache"
    first = load_corpus([root], cache_dir=cache)
    assert (first.decoded, first.cached) == (2, 0)
    assert len(list(cache.glob("*.parquet"))) == 2
    shutil.move(held, extra)
    second = load_corpus([root], cache_dir=cache)
    assert (second.decoded, second.cached) == (1, 2)
    pd.testing.assert_frame_equal(second.table[second.table["run_id"].isin(first.table["run_id"])]
                                  .reset_index(drop=True), first.table, check_dtype=False)
    # the key follows the capture bytes: touching one capture decodes that run again
    man = json.loads((extra / "run.json").read_text())
    before = run_key(extra / "run.json", "x")
    cap = extra / man["captures"][0]["path"]
    cap.write_bytes(cap.read_bytes() + b"\0")
    assert run_key(extra / "run.json", "x") != before


def test_malformed_and_undecodable_runs_are_named_and_the_rest_still_counts(tmp_path):
    root = _copy_corpus(tmp_path, 2)
    bad = root / "bad"
    bad.mkdir()
    (bad / "run.json").write_text('{"schema": 1, "run_id": "bad-run", "kind": "simulated", "captures": 3}')
    missing = root / "missing"
    missing.mkdir()
    (missing / "run.json").write_text(json.dumps({"schema": 1, "run_id": "gone", "kind": "real",
                                                  "captures": [{"path": "nope.pcap", "role": "source-stream"}]}))
    res = load_corpus([root], cache_dir=None)
    assert res.failed == 2 and res.decoded == 2
    failed = res.table[res.table["status"] == "failed"].set_index("run_id")
    assert "captures" in failed.loc["bad", "error"] and "expected a list" in failed.loc["bad", "error"]
    assert "nope.pcap" in failed.loc["gone", "error"]
    assert {f.context["run_id"] for f in res.findings if f.code == "run_failed"} == {"bad", "gone"}
    out = tmp_path / "t.parquet"
    proc = run_cli("corpus", str(root), "-o", str(out), "--no-cache", "--json")
    assert proc.returncode == 1
    last = json.loads(proc.stdout.splitlines()[-1])
    assert (last["kind"], last["runs"], last["failed"]) == ("corpus_summary", 4, 2)
    assert len(pd.read_parquet(out)) == len(res.table)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_local_table_and_verdicts(tmp_path):
    pytest.importorskip("distributed")
    runs = _runs(3)
    root = tmp_path / "corpus"
    for i, run in enumerate(runs):
        shutil.copytree(run, root / f"run{i:02d}")
    local = load_corpus([root], cache_dir=None)
    dask = load_corpus([root], engine="dask", workers=2, cache_dir=None)
    assert dask.decoded == len(runs)
    pd.testing.assert_frame_equal(dask.table.drop(columns=["run_dir"]), local.table.drop(columns=["run_dir"]))
    base = str(local.table["firmware.version"].iloc[0])
    a = compare(local.table, baseline=base, min_runs=1)
    b = compare(dask.table, baseline=base, min_runs=1)
    assert a.comparisons == b.comparisons


def test_cache_key_follows_the_summary_revision(tmp_path, monkeypatch):
    """Cached rows of an older set of summary fields (e.g. qemu_iterations) are not reused."""
    import analysis.corpus as C

    run = tmp_path / "r"
    run.mkdir()
    (run / "run.json").write_text('{"schema": 1, "run_id": "r", "kind": "real", "captures": []}')
    now = C.run_key(run / "run.json", "x")
    monkeypatch.setattr(C, "SUMMARY_REVISION", C.SUMMARY_REVISION - 1)
    assert C.run_key(run / "run.json", "x") != now
