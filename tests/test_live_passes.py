# SPDX-License-Identifier: GPL-2.0-only
"""The online pass split of ``watch`` equals the analysis' definition (``greedy_segments``)."""
from __future__ import annotations

import random

from analysis.live.passes import DENSE_PAGES, LivePasses
from analysis.metrics.passes import greedy_segments


def _sends(seed: int, n: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    blocks = ["pc.ram", "pc.bios", "/rom@etc/acpi/tables"]
    return [(rng.choice(blocks), rng.randrange(0, 64) << 12) for _ in range(n)]


def test_online_split_equals_greedy_segments_both_tap_forms():
    for seed in range(30):
        sends = _sends(seed, 400)
        want = greedy_segments(sends)
        # the per-page call form
        a = LivePasses()
        for block, addr in sends:
            a(None, block, addr, 1000, "PART")
        # the columnar PageLog form (block changes, then addresses)
        b = LivePasses()
        for block, addr in sends:
            b.block(block)
            b.addrs.append(addr)
        assert [k for k, _ in a.starts] == [k for k, _ in b.starts] == want, seed
        assert a.segment == b.segment == len(want)


def test_precopy_end_and_lower_bound():
    started: list[bool] = []
    parts: list[int] = []
    t = LivePasses(started.append, lambda: parts.append(t.sends))
    t.block("pc.ram")
    t.mark(5)
    t.addrs.extend([0, 4096, 8192])      # pass 1
    t.end_of_section(2)                  # a PART section ends
    t.mark(9)
    t.addrs.extend([4096, 12288])        # 4096 again: pass 2
    t.end_of_section(2)
    t.addrs.extend([4096])               # stop-copy: a third segment, after the last PART
    t.end_of_section(3)                  # END: not pre-copy
    assert started == [True, False, False, True, False, True]
    assert parts == [3, 5]
    assert t.starts == [(0, 5), (3, 9), (5, 9)]
    assert t.result() == {"sends": 6, "segments": 3, "precopy_segments": 2, "lower_bound": 2}


def test_far_addresses_are_not_allocated():
    t = LivePasses()
    t.block("pc.ram")
    t.addrs.extend([(DENSE_PAGES + 5) << 12, (1 << 63), (DENSE_PAGES + 5) << 12])
    assert t.segment == 2 and t.sends == 3
    assert sum(len(a) for a in t._dense.values()) == 0
