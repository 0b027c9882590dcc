# SPDX-License-Identifier: GPL-2.0-only
"""Exit codes that never mislead a gate (issue 11 §5) and compare's human output (§7).

Each case is one of the issue's "Why": before the fix `summary` on an empty folder
and `compare` with one group exited 0 with an empty result, an unknown baseline printed
rows before failing, and `decode` called /dev/null and a directory "no such file".
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TRACES, run_cli


@pytest.mark.parametrize("command", ["summary", "report"])
def test_nothing_to_summarise_exits_2(tmp_path, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    extra = ["-o", str(tmp_path / "out")] if command == "report" else []
    proc = run_cli(command, str(empty), *extra)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"migtrace {command}: no capture found under {empty}"
    assert not (tmp_path / "out").exists()


def test_summary_of_an_empty_capture_file_exits_2(tmp_path):
    f = tmp_path / "source.pcapng"
    f.write_bytes(b"")
    proc = run_cli("summary", str(f))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.strip() == f"migtrace summary: {f}: empty file"


@pytest.mark.parametrize("command", ["decode", "flows"])
def test_decode_names_what_is_wrong_with_the_path(tmp_path, command):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    cases = {"/dev/null": "empty file", str(empty): "empty file", str(tmp_path): "is a directory",
             str(tmp_path / "missing.pcap"): "no such file"}
    for path, why in cases.items():
        proc = run_cli(command, path)
        assert (proc.returncode, proc.stdout) == (2, ""), path
        assert proc.stderr.strip() == f"migtrace {command}: {path}: {why}"


def _table(groups: dict[str, int]) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for fw, n in groups.items():
        for i in range(n):
            rows.append({"run_id": f"{fw}/{i}", "status": "ok", "firmware.version": fw,
                         "device": "0000:00:05.0/vfio", "downtime_wire_ms": float(rng.normal(180, 1.5)),
                         "stopcopy_bytes": 29_700 + i})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("groups,argv,message", [
    ({"2.0": 4}, ["--baseline", "2.0"],
     "nothing to compare: 1 group of firmware.version (2.0); at least two are needed"),
    ({"2.0": 4, "2.1": 4}, ["--baseline", "9.9"],
     "unknown baseline firmware.version = '9.9' (groups present: 2.0, 2.1)"),
    ({"2.0": 4, "2.1": 4}, ["--baseline", "2.0", "--candidate", "2.2"],
     "unknown candidate firmware.version = '2.2' (groups present: 2.0, 2.1)"),
    ({"2.0": 4, "2.1": 2}, ["--baseline", "2.0"],
     "group '2.1' has 2 decoded runs, fewer than --min-runs 3"),
    ({"2.0": 1, "2.1": 4}, ["--baseline", "2.0", "--min-runs", "2"],
     "group '2.0' has 1 decoded run, fewer than --min-runs 2"),
])
@pytest.mark.parametrize("as_json", [False, True])
def test_compare_refuses_before_printing_a_result(tmp_path, groups, argv, message, as_json):
    t = tmp_path / "t.parquet"
    _table(groups).to_parquet(t)
    proc = run_cli("compare", str(t), *argv, *(["--json"] if as_json else []))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[0] == f"migtrace compare: {message}"


def test_compare_on_a_folder_with_a_single_run_exits_2(tmp_path):
    run = tmp_path / "corpus" / "fw-28.40-s1"
    shutil.copytree(TRACES / "sim" / "compare" / "fw-28.40-s1", run)
    proc = run_cli("compare", str(tmp_path / "corpus"), "--baseline", "28.40.1000", "--no-cache")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "nothing to compare: 1 group of firmware.version (28.40.1000)" in proc.stderr


def test_compare_human_output_fixed_notation_and_plurals(tmp_path):
    t = tmp_path / "t.parquet"
    table = _table({"2.0": 4, "2.1": 4})
    table.loc[table["firmware.version"] == "2.1", "downtime_wire_ms"] *= 0.5  # one improvement
    table.to_parquet(t)
    proc = run_cli("compare", str(t), "--baseline", "2.0")
    assert proc.returncode == 0, proc.stderr
    row = next(ln for ln in proc.stdout.splitlines() if ln.startswith("stopcopy_bytes"))
    assert row.split()[3:5] == ["29702", "29702"]  # medians 29701.5 of 29700..29703, not 2.97e+04
    assert "e+" not in proc.stdout and "e-0" not in proc.stdout
    assert proc.stdout.splitlines()[-1] == ("baseline 2.0 vs 2.1: 8 runs (0 failed); 0 regressions, "
                                            "1 improvement, 0 inconclusive")
    js = run_cli("compare", str(t), "--baseline", "2.0", "--json")
    assert json.loads(js.stdout.splitlines()[-1])["improvements"] == 1
