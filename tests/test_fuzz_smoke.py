# SPDX-License-Identifier: GPL-2.0-only
"""A short, deterministic fuzz budget per decoder family on every run (docs/robustness.md).

Each family decodes a fixed sequence of mutated inputs (base "smoke"): any
crash (an exception the family does not document), hang (> 5 s) or memory
blow-up (peak RSS growth > 10x the input + 200 MB) fails the test with the
execution number that rebuilds the input (``fuzz.engine.input_for``).  The
long campaign is ``scripts/fuzz.sh``.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from fuzz.engine import Result, input_for, memory_limit, run_family, run_one
from fuzz.mutate import mutate
from fuzz.targets import Target, targets

#: executions per family: about 3,500 in all, ~20-30 s on one core
BUDGET = {"pcap": 300, "pcapng": 300, "tcp": 60, "qemu-stream": 150, "vfio-records": 500,
          "admin-commands": 800, "admin-captures": 80, "dev-parts": 150, "trace-dat": 60, "ftrace-text": 50,
          "trace-cmd-report": 50, "qemu-log": 50, "run-json": 1000, "qmp-series": 150,
          "cli": 80}
TARGETS = targets()


def test_every_family_has_a_target_and_a_budget():
    want = {"pcap", "pcapng", "tcp", "qemu-stream", "vfio-records", "admin-commands", "admin-captures",
            "dev-parts", "trace-dat", "ftrace-text", "trace-cmd-report", "qemu-log", "run-json", "qmp-series", "cli"}
    assert want <= set(TARGETS)
    assert set(TARGETS) <= set(BUDGET)


@pytest.mark.parametrize("family", sorted(TARGETS))
def test_smoke_budget(family):
    t = TARGETS[family]
    seeds = t.seeds()
    assert seeds, f"{family}: no seed under traces/"
    st = run_family(t, n=BUDGET[family], base="smoke")
    assert st.execs == BUDGET[family]
    bad = [p for p in st.problems if p["outcome"] in ("crash", "hang", "memory")]
    assert not bad, bad
    # the mutated inputs reach the decoders: most of them decode with findings
    assert st.outcomes["finding"] + st.outcomes["documented"] > 0


# -- the harness measures what it says ------------------------------------------------

def _target(run, documented=()):
    return Target("probe", lambda: [b"seed"], run, documented)


def test_classification(tmp_path):
    p = tmp_path / "in"
    assert run_one(_target(lambda d, path: (1, 0)), b"x", p).outcome == "decoded"
    assert run_one(_target(lambda d, path: (3, 2)), b"x", p).outcome == "finding"

    def doc(d, path):
        raise KeyError("documented here")
    assert run_one(_target(doc, (KeyError,)), b"x", p).outcome == "documented"
    r = run_one(_target(doc), b"x", p)
    assert r.outcome == "crash" and r.error == "KeyError: 'documented here'" and "test_fuzz_smoke.py" in r.where

    def spin(d, path):
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end:
            pass
        return 1, 0
    t0 = time.monotonic()
    r = run_one(_target(spin), b"x", p, hang_s=0.3)
    assert r.outcome == "hang" and time.monotonic() - t0 < 5

    def hog(d, path):
        block = bytearray(memory_limit(len(d)) + (64 << 20))
        block[::4096] = b"\1" * len(block[::4096])  # touch every page: resident, not just reserved
        return len(block), 0
    r = run_one(_target(hog), b"x" * 10, p)
    assert r.outcome == "memory" and r.peak_growth > memory_limit(10)


def test_inputs_are_rebuilt_from_their_number():
    t = TARGETS["vfio-records"]
    seeds = t.seeds()
    a = [input_for(t, seeds, "b", i) for i in range(50)]
    assert a == [input_for(t, seeds, "b", i) for i in range(50)]
    assert len(set(a)) > 40 and any(x != seeds[0] and x != seeds[1] for x in a)


def test_mutations_keep_sizes_bounded():
    import random

    seeds = [bytes(range(256)) * 4]
    rng = random.Random(1)
    sizes = [len(mutate(seeds, rng)) for _ in range(2000)]
    assert max(sizes) <= 1024 + 4 * 8192 + 4 * 4096 and min(sizes) >= 0
    assert len(set(sizes)) > 50


def test_campaign_script_exists():
    root = Path(__file__).resolve().parent.parent
    text = (root / "scripts" / "fuzz.sh").read_text()
    assert "fuzz.campaign" in text and "nice -n 19" in text


def test_sigterm_ends_the_campaign_with_its_figures_written(tmp_path):
    """A stopped campaign writes the running family's figures (consistent counts); later families do not start."""
    import json
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    p = subprocess.Popen([sys.executable, "-m", "fuzz.campaign", "--out", str(tmp_path), "--seconds", "120",
                          "--families", "admin-commands,pcap", "--base", "sigterm-test"],
                         cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # a worker reports its figures every 2 s: wait for the first report to be sure executions ran
    time.sleep(5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["family"] for r in rows] == ["admin-commands"]
    r = rows[0]
    assert r["execs"] > 0 and r["wall_secs"] < 60
    assert sum(r["outcomes"].values()) == r["execs"]
    assert r["next_i"] == r["execs"]
    assert "pcap: not started (stopped)" in out
