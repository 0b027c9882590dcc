# SPDX-License-Identifier: GPL-2.0-only
"""Model invariants over random scenarios (hypothesis, modest example counts)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.simulate.model import MS, build_timeline
from analysis.simulate.profiles import FIRMWARE_PRESETS, QEMU_PRESETS, PRESETS
from analysis.simulate.truth import truth

scenarios = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31),
    "firmware": st.sampled_from(["fw-28.40", "fw-28.41", "fw-29.0", "fw-28.40-einval"]),
    "qemu": st.sampled_from(sorted(QEMU_PRESETS)),
    "policy": st.sampled_from(["ratelimited", "cap128"]),
    "trailer_bug": st.booleans(),
    "vfs": st.integers(1, 2),
    "busy_s": st.floats(0.5, 3.0),
    "ack": st.booleans(),
})


def _profile(d: dict):
    q = replace(QEMU_PRESETS[d["qemu"]], switchover_ack=d["ack"])
    return replace(PRESETS["default"], qemu=q, firmware=FIRMWARE_PRESETS[d["firmware"]], policy=d["policy"],
                   trailer_bug=d["trailer_bug"], vfs=d["vfs"], busy_s=d["busy_s"])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios)
def test_invariants(d: dict) -> None:
    p = _profile(d)
    tl = build_timeline(p, d["seed"])
    t = truth(tl)
    assert t["outcome"] == "completed"
    # downtime: parts sum to their totals, all parts non-negative
    assert sum(t["downtime_breakdown_ms"].values()) == pytest.approx(t["downtime_wire_ms"], abs=1e-5)
    assert sum(t["downtime_parts_ms"].values()) == pytest.approx(t["downtime_ms"], abs=1e-5)
    assert min(t["downtime_breakdown_ms"].values()) >= 0 and min(t["downtime_parts_ms"].values()) >= 0
    for vf in range(p.vfs):
        recs = tl.records[vf]
        # the chunks QEMU read are exactly the records, in order, split at the buffer size
        chunks = tl.chunks[vf]
        assert sum(c.size for c in chunks) == sum(len(r.data) for r in recs)
        assert [c.data_offset for c in chunks] == list(np.cumsum([0] + [c.size for c in chunks[:-1]]))
        # every record: 16-byte header + parts (+ 8 with the trailer bug); the context only grows
        for r in recs:
            assert len(r.data) == 16 + r.record_size
            assert r.record_size == r.parts_len + (8 if p.trailer_bug else 0)
        assert [r.parts_len for r in recs] == sorted(r.parts_len for r in recs)
        assert recs[-1].reason == "stopcopy" and recs[-1].phase == "stopcopy"
        # the destination sets every record, payload unchanged (trailer included)
        sets = [c for c in tl.admin if c.opcode == "DEV_PARTS_SET" and c.vf == vf]
        assert [c.parts for c in sets] == [r.data[16:] for r in recs]
        # policy
        queries = [c.ts_ns for c in tl.admin if c.vf == vf and c.opcode == "DEV_PARTS_METADATA_GET"
                   and c.reason == "precopy-info"]
        if p.policy == "cap128":
            assert len(queries) <= 128
        elif len(queries) > 1:
            assert np.diff(queries).min() >= 1_000 * MS
    # switchover waits for the ack when it is on
    if p.qemu.switchover_ack:
        assert tl.marks["switchover_ack_arrival"] <= tl.marks["switchover_decision"]
    # capture times on each flow never go backwards
    for flow in {u.flow for u in tl.units}:
        ts = [u.ts_ns for u in tl.units if u.flow == flow]
        assert ts == sorted(ts)
