# SPDX-License-Identifier: GPL-2.0-only
"""The campaign record (fuzz/campaigns.jsonl) and the figures docs/robustness.md shows from it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fuzz.engine import OUTCOMES
from fuzz.tally import GOAL, RECORD, compact, main, markdown, read_record, totals
from fuzz.targets import targets

ROOT = Path(__file__).resolve().parent.parent


def _line(family, campaign, execs, counted=True, **outcomes):
    o = {k: 0 for k in OUTCOMES}
    o.update(outcomes)
    return {"family": family, "campaign": campaign, "execs": execs, "outcomes": o, "counted": counted,
            "cpu_s": 10.0, "wall_s": 12.0, "slowest_exec_s": 0.5}


def test_totals_sum_counted_lines_only():
    rows = [_line("pcap", "a", 600_000, decoded=100_000, finding=500_000),
            _line("pcap", "b", 400_000, finding=400_000),
            _line("pcap", "old", 7, counted=False, hang=7),
            _line("tcp", "a", 5, finding=5)]
    t = totals(rows)
    assert t["pcap"]["execs"] == 1_000_000 == GOAL
    assert t["pcap"]["outcomes"] == {"decoded": 100_000, "finding": 900_000, "documented": 0, "crash": 0,
                                     "hang": 0, "memory": 0}
    assert t["pcap"]["campaigns"] == ["a", "b"] and t["pcap"]["cpu_s"] == 20.0
    table = markdown(rows, ["pcap", "tcp", "cli"]).splitlines()
    assert table[2] == "| `pcap` | 1,000,000 | yes | 2 | 0.01 h | 100,000 | 900,000 | 0 | 0 | 0 | 0 | 0.50 s |"
    assert table[3] == "| `tcp` | 5 | no | 1 | 0.00 h | 0 | 5 | 0 | 0 | 0 | 0 | 0.50 s |"
    assert table[4] == "| `cli` | 0 | no | 0 | 0.00 h | 0 | 0 | 0 | 0 | 0 | 0 | 0.00 s |"


def test_compact_keeps_the_figures_not_the_paths():
    res = {"family": "pcap", "base": "m1", "execs": 3, "secs": 1.5, "wall_secs": 2.0, "max_exec_secs": 0.7,
           "max_peak_growth_mb": 4.0, "commit": "abc1234", "workers": 1, "next_i": 3,
           "outcomes": {"decoded": 1, "finding": 1, "documented": 0, "crash": 1, "hang": 0, "memory": 0},
           "problems": [{"i": 2, "outcome": "crash", "file": "/tmp/x.bin"}]}
    c = compact(res, "2 cores")
    assert c == {"family": "pcap", "campaign": "m1", "commit": "abc1234", "execs": 3,
                 "outcomes": {"decoded": 1, "finding": 1, "documented": 0, "crash": 1, "hang": 0, "memory": 0},
                 "wall_s": 2.0, "cpu_s": 1.5, "slowest_exec_s": 0.7, "peak_growth_mb": 4.0, "problems": 1,
                 "machine": "2 cores", "counted": True}


def test_a_line_whose_outcomes_do_not_add_up_is_refused(tmp_path):
    p = tmp_path / "r.jsonl"
    bad = _line("pcap", "a", 10, finding=9)
    p.write_text(json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match="r.jsonl:1: outcomes do not add up"):
        read_record(p)


def test_add_appends_and_the_exit_status_tells_a_crash(tmp_path, capsys):
    rec = tmp_path / "r.jsonl"
    res = tmp_path / "results.jsonl"
    base = {"base": "m1", "secs": 1.0, "wall_secs": 1.0, "max_exec_secs": 0.1, "max_peak_growth_mb": 0.0,
            "problems": []}
    res.write_text(json.dumps({**base, "family": "pcap", "execs": 2,
                               "outcomes": {"decoded": 2, "finding": 0, "documented": 0, "crash": 0, "hang": 0,
                                            "memory": 0}}) + "\n")
    assert main(["--record", str(rec), "--add", str(res), "--machine", "test"]) == 0
    res.write_text(json.dumps({**base, "family": "tcp", "execs": 1,
                               "outcomes": {"decoded": 0, "finding": 0, "documented": 0, "crash": 1, "hang": 0,
                                            "memory": 0}}) + "\n")
    assert main(["--record", str(rec), "--add", str(res)]) == 1
    assert [r["family"] for r in read_record(rec)] == ["pcap", "tcp"]


def test_the_record_is_well_formed_and_names_real_families():
    rows = read_record(RECORD)
    fams = set(targets())
    assert rows and {r["family"] for r in rows} <= fams
    # counted campaigns saw no crash, hang or memory blow-up (the bar)
    assert all(sum(r["outcomes"][k] for k in ("crash", "hang", "memory")) == 0 for r in rows if r["counted"])


def test_docs_show_the_record():
    """docs/robustness.md's totals table is the record's (python3 -m fuzz.tally --markdown)."""
    doc = (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
    assert markdown(read_record(RECORD), list(targets())) in doc
