# SPDX-License-Identifier: GPL-2.0-only
"""PRE_COPY policy from a capture alone (vfio-virtio-stream.md §7.3): sub-second snapshot spacing
excludes the rate-limited driver (one device query per second at most), so it is evidence of the
cap; exactly 128 pre-copy snapshots at sub-second spacing is the cap's signature."""
from __future__ import annotations

import json

import pytest

import analysis
from analysis import metrics as M
from tests import test_analysis_fixture as U
from tests.conftest import TRACES

DEV = U.DEV


def _stream(spacing_ms: float, n: int, extra_parts: int = 0) -> list[dict]:
    """A main channel with n pre-copy snapshots (one VFIO PART section each, spacing_ms apart),
    extra_parts VFIO PART sections without data after them, then the stop-copy record."""
    u = [{"kind": "flow", "flow": 0, "client": "10.0.0.1:40000", "server": "10.0.0.2:4444", "role": "main",
          "c2s_bytes": 10 ** 6, "s2c_bytes": 0, "retransmitted_bytes": 0, "gaps": [],
          "first_ts_ns": U.ms(0), "last_ts_ns": U.ms(10 + spacing_ms * (n + extra_parts) + 100)},
         U._sec(100, 1, "START", 1, "ram", 200), U._ram(1, "START", 10, 0, 150),
         U._sec(300, 2, "START", 2, DEV, 40)]
    off, data_off = 400, 0
    for i in range(n):
        t = 10 + spacing_ms * i
        u += [U._sec(off, t, "PART", 2, DEV, 16 + 1000 + 29), U._chunk(t, "precopy", off + 5, data_off, 1016),
              U._record(t, i, data_off, 1000, "precopy", 3)]
        off += 16 + 1000 + 29
        data_off += 1016
    t = 10 + spacing_ms * n
    for j in range(extra_parts):
        u.append(U._sec(off, t + spacing_ms * j, "PART", 2, DEV, 30))
        off += 30
    t += spacing_ms * extra_parts
    u += [U._sec(off, t, "END", 2, DEV, 1240), U._chunk(t + 5, "stopcopy", off + 5, data_off, 1200),
          U._record(t + 5, n, data_off, 1184, "stopcopy", 4)]
    return u


def _policy(spacing_ms: float, n: int, extra_parts: int = 0) -> tuple[str, dict]:
    m = analysis.load("s.pcapng", units={0: _stream(spacing_ms, n, extra_parts)})
    return M.precopy_policy(m, DEV)


def test_128_sub_second_snapshots_are_the_cap_signature():
    # the switchover came right after the 128th snapshot: 128 PART sections, so the PART rule
    # cannot fire, and without traces there are no reported sizes (this was `unknown` before)
    policy, ev = _policy(60, 128)
    assert (policy, ev["precopy_snapshots"], ev["vfio_part_sections"]) == ("cap128", 128, 128)
    assert ev["min_spacing_s"] == pytest.approx(0.06)
    assert ev["rule"].startswith("exactly 128 pre-copy snapshots at sub-second spacing")


def test_sub_second_spacing_alone_is_evidence_of_the_cap():
    policy, ev = _policy(300, 12)
    assert policy == "cap128" and ev["precopy_snapshots"] == 12
    assert "0.300 s apart" in ev["rule"] and "evidence of the cap" in ev["rule"]


def test_snapshots_a_second_apart_are_ratelimited():
    policy, ev = _policy(1000, 5)
    assert (policy, ev["min_spacing_s"]) == ("ratelimited", pytest.approx(1.0))
    assert ev["rule"] == ">= 3 pre-copy snapshots never closer than 0.9 s"


@pytest.mark.parametrize("spacing_ms,n", [(1200, 2), (100, 1), (100, 0)])
def test_too_little_evidence_is_unknown(spacing_ms, n):
    # two snapshots 1.2 s apart fit both drivers (no traces to tell); one or none says nothing
    policy, ev = _policy(spacing_ms, n)
    assert policy == "unknown" and ev["rule"] == "no rule of the heuristic matched"


def test_more_than_130_snapshots_is_ratelimited_first():
    # the count rule of §7.3 comes first: the cap allows at most 128
    policy, ev = _policy(950, 131)
    assert (policy, ev["precopy_snapshots"]) == ("ratelimited", 131)


@pytest.mark.parametrize("run,policy,snapshots,rule", [
    ("policies/fw-29.0-cap128", "cap128", 128, "exactly 128 pre-copy snapshots at sub-second spacing"),
    ("policies/fw-28.40-cap128", "cap128", 64, "more than 128 VFIO PART sections"),
    ("compare/fw-28.40-s1", "ratelimited", 4, ">= 3 pre-copy snapshots never closer than 0.9 s"),
])
def test_simulated_pcap_alone(run, policy, snapshots, rule):
    """The simulator's pcaps (traces/sim), without traces or admin captures: the truth's policy."""
    d = TRACES / "sim" / run
    truth = json.loads((d / "run.json").read_text())["truth"]
    m = analysis.load(d / "source.pcapng")
    got, ev = M.precopy_policy(m, m.devices[0])
    assert (got, ev["precopy_snapshots"]) == (truth["precopy_policy"], truth["precopy_snapshots"]) == (
        policy, snapshots)
    assert ev["rule"].startswith(rule)
