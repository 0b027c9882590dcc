# SPDX-License-Identifier: GPL-2.0-only
"""The simulator's model: PRE_COPY policies, records, trailer, downtime, determinism.

Expected record sizes are computed by hand from device-parts.md (§2, §4,
§8) for the fw-28.40 composition: DEV_FEATURES 16+16, DRV_FEATURES 16+8,
two PCI_COMMON_CFG 2×(16+2), DEVICE_STATUS 16+1, 3 VQ_CFG 3×(16+32),
3 VQ_NOTIFY_CFG 3×(16+8), two RX switches 2×(16+1), MAC table with 1
unicast and 2 multicast entries 16+4+6+4+12, MAC address 16+6, MQ pairs
16+2 = 441 bytes; each snapshot adds one multicast MAC (6 bytes).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from analysis.simulate.model import MS, build_timeline
from analysis.simulate.profiles import FIRMWARE_PRESETS, PRESETS, kernel_has_trailer_bug, resolve
from analysis.simulate.truth import truth

FIRST_CONTEXT = 32 + 24 + 36 + 17 + 144 + 72 + 34 + 42 + 22 + 18


def test_hand_computed_first_context_size() -> None:
    assert FIRST_CONTEXT == 441
    tl = build_timeline(PRESETS["default"], 1)
    recs = tl.records[0]
    assert [r.record_size for r in recs] == [441 + 6 * i for i in range(len(recs))]
    # record = 16-byte header with record_size, flags 0, tag 0, then the parts
    head = recs[0].data[:16]
    assert head == bytes.fromhex("b901000000000000" "00000000" "00000000")
    assert len(recs[0].data) == 16 + 441


def test_cap128_reads_128_times_then_reports_zero() -> None:
    tl = build_timeline(PRESETS["cap128"], 1)
    info = tl.info_calls[0]
    queried = [c for c in info if c["queried"]]
    assert len(queried) == 128
    assert [c["call"] for c in queried] == list(range(1, 129))
    after = [c for c in info if c["call"] > 128]
    assert after, "pre-copy must outlast the cap in the cap128 preset"
    assert all(c["initial"] == 0 and c["dirty"] == 0 and c["snapshot"] == 0 for c in after)
    md = [c for c in tl.admin if c.opcode == "DEV_PARTS_METADATA_GET" and c.reason == "precopy-info"]
    assert len(md) == 128
    # every METADATA_GET of an info call happens before the first call past the cap
    assert max(c.ts_ns for c in md) < after[0]["ts_ns"]
    # no snapshot after the cap: pre-copy records all come from the first 128 calls
    resnaps = [r for r in tl.records[0] if r.reason == "precopy-info"]
    assert len(resnaps) == sum(c["snapshot"] for c in info)
    assert max(r.taken_ns for r in resnaps) < after[0]["ts_ns"]
    # QEMU's exact pending sizes are zero from call 129 on
    exact = [e for e in tl.events if e.name == "vfio_state_pending_exact" and e.ts_ns > after[0]["ts_ns"]]
    assert exact and all(e.args["precopy_init_size"] == 0 and e.args["precopy_dirty_size"] == 0 for e in exact)


def test_cap128_exact_values_seed_1() -> None:
    tl = build_timeline(PRESETS["cap128"], 1)
    t = truth(tl)
    # records of 457+ bytes need two 441-byte reads, so 128 info calls give 64 re-snapshots
    assert t["records_total"] == 65
    assert t["precopy_snapshots"] == 64
    assert t["stopcopy_records"] == 1
    assert t["precopy_info_zero_after_cap"] == t["precopy_info_calls"] - 128


def test_ratelimited_queries_at_least_one_second_apart() -> None:
    for seed in (1, 2, 3):
        tl = build_timeline(PRESETS["default"], seed)
        md = [c.ts_ns for c in tl.admin if c.opcode == "DEV_PARTS_METADATA_GET" and c.reason == "precopy-info"]
        assert len(md) >= 3
        assert np.diff(md).min() >= 1_000 * MS
        snaps = [r.taken_ns for r in tl.records[0] if r.reason == "precopy-info"]
        assert np.diff(snaps).min() >= 1_000 * MS


def test_ratelimited_snapshot_count_follows_busy_time() -> None:
    short = build_timeline(replace(PRESETS["default"], busy_s=1.5), 4)
    long = build_timeline(replace(PRESETS["default"], busy_s=5.5), 4)
    assert truth(short)["precopy_snapshots"] < truth(long)["precopy_snapshots"]
    # at most one re-snapshot per second of pre-copy, plus the initial one
    t = truth(long)
    precopy_s = (t["marks_ms"]["switchover_decision"] - t["marks_ms"]["setup_end"]) / 1000
    assert t["precopy_snapshots"] <= 1 + int(precopy_s) + 1


def test_trailer_bug_adds_exactly_8_bytes_per_record() -> None:
    plain = build_timeline(PRESETS["default"], 5)
    bug = build_timeline(PRESETS["trailer"], 5)
    assert len(plain.records[0]) == len(bug.records[0])
    for a, b in zip(plain.records[0], bug.records[0]):
        assert b.record_size == a.record_size + 8
        assert len(b.data) == len(a.data) + 8
        assert b.data[16:16 + a.parts_len] == a.data[16:]
        assert len(b.trailer) == 8
    assert truth(bug)["trailer_bug"] is True and truth(plain)["trailer_bug"] is False


def test_kernel_range_of_the_trailer_bug() -> None:
    assert kernel_has_trailer_bug("6.13.0") and kernel_has_trailer_bug("6.15.2")
    assert kernel_has_trailer_bug("6.14.2-200.fc41")
    assert not kernel_has_trailer_bug("6.15.3") and not kernel_has_trailer_bug("6.12.9")
    assert resolve("default", trailer_bug=True).kernel == "6.14.2"


@pytest.mark.parametrize("name", ["default", "cap128", "qemu81", "qemu10", "two-vfs", "no-ack", "trailer"])
def test_downtime_parts_sum_to_the_total(name: str) -> None:
    t = truth(build_timeline(PRESETS[name], 7))
    bd = t["downtime_breakdown_ms"]
    assert set(bd) == {"ram", "vfio", "config", "dst_load"}
    assert sum(bd.values()) == pytest.approx(t["downtime_wire_ms"], abs=1e-5)
    parts = t["downtime_parts_ms"]
    assert sum(parts.values()) == pytest.approx(t["downtime_ms"], abs=1e-5)
    assert all(v >= 0 for v in bd.values()) and all(v >= 0 for v in parts.values())
    # QEMU's downtime includes the destination's load (return path: SHUT ends it)
    assert t["downtime_qemu_ms"] > t["downtime_wire_ms"]


def test_firmware_regression_raises_downtime() -> None:
    base = [truth(build_timeline(PRESETS["default"], s))["downtime_wire_ms"] for s in range(1, 6)]
    slow = [truth(build_timeline(resolve("default", firmware="fw-28.41"), s))["downtime_wire_ms"]
            for s in range(1, 6)]
    assert min(slow) > max(base)
    assert np.median(slow) > 1.5 * np.median(base)


def test_fw29_reads_each_record_in_one_chunk() -> None:
    t = truth(build_timeline(resolve("default", firmware="fw-29.0"), 1))
    # METADATA SIZE rounded up to 4 KiB: QEMU's buffer holds a whole record
    assert t["precopy_chunks"] == t["precopy_snapshots"]
    assert "NET_CVQ_CFG" in t["bytes_by_part_type"]
    base = truth(build_timeline(PRESETS["default"], 1))
    assert base["precopy_chunks"] == 2 * base["precopy_snapshots"]


def test_switchover_waits_for_the_ack() -> None:
    tl = build_timeline(PRESETS["default"], 3)
    assert tl.marks["switchover_ack_arrival"] < tl.marks["switchover_decision"]
    kinds = [u.kind for u in tl.units if u.flow == "main"]
    assert kinds.count("rp_switchover_ack") == 1 and kinds.count("rp_shut") == 1
    parts = [u for u in tl.units if u.kind == "vfio_part"]
    assert [u.args["terminator"] for u in parts].count("DEV_INIT_DATA_SENT") == 1
    noack = build_timeline(PRESETS["no-ack"], 3)
    assert all(u.args["terminator"] == "END_OF_STATE" for u in noack.units if u.kind == "vfio_part")
    assert "rp_switchover_ack" not in [u.kind for u in noack.units]


def test_destination_sets_every_record() -> None:
    tl = build_timeline(PRESETS["default"], 2)
    sets = [c for c in tl.admin if c.opcode == "DEV_PARTS_SET"]
    assert [c.parts for c in sets] == [r.data[16:] for r in tl.records[0]]
    assert sets[-1].reason == "load-stopcopy"


def test_parts_set_rejection_fails_the_migration() -> None:
    tl = build_timeline(PRESETS["set-reject"], 1)
    assert tl.outcome == "failed"
    bad = [c for c in tl.admin if c.status]
    assert [(c.opcode, c.status, c.qualifier, c.side) for c in bad] == [("DEV_PARTS_SET", 22, 3, "destination")]
    shut = [u for u in tl.units if u.kind == "rp_shut"]
    assert [u.args["value"] for u in shut] == [1]
    t = truth(tl)
    assert t["outcome"] == "failed" and t["downtime_breakdown_ms"] is None


def test_precopy_metadata_einval_is_survived() -> None:
    tl = build_timeline(PRESETS["einval"], 1)
    assert tl.outcome == "completed"
    bad = [c for c in tl.admin if c.status]
    assert len(bad) == 1 and bad[0].opcode == "DEV_PARTS_METADATA_GET" and bad[0].reason == "precopy-info"
    assert [c["ret"] for c in tl.info_calls[0]].count(-22) == 1


def test_qemu10_moves_stopcopy_to_multifd() -> None:
    tl = build_timeline(PRESETS["qemu10"], 1)
    mf = [u for u in tl.units if u.kind == "multifd_device_state"]
    assert mf and mf[-1].args["config"] is not None
    assert [u.args["idx"] for u in mf] == list(range(len(mf)))
    data = b"".join(u.args["data"] for u in mf if u.args["data"])
    final = tl.records[0][-1]
    assert data.endswith(final.data)
    end = [u for u in tl.units if u.kind == "vfio_end"]
    assert end[0].args["chunks"] == []
    assert tl.marks["wire_t0"] == [u for u in tl.units if u.kind == "cmd_switchover_start"][0].ts_ns


def test_two_vfs_have_their_own_streams() -> None:
    tl = build_timeline(PRESETS["two-vfs"], 1)
    assert len(tl.records) == 2
    assert tl.records[0][0].data != tl.records[1][0].data  # different MACs and rings
    assert {c.vf for c in tl.admin} == {0, 1}


def test_deterministic_for_a_seed() -> None:
    a = build_timeline(PRESETS["default"], 11)
    b = build_timeline(PRESETS["default"], 11)
    c = build_timeline(PRESETS["default"], 12)
    assert truth(a) == truth(b)
    assert [(u.ts_ns, u.kind) for u in a.units] == [(u.ts_ns, u.kind) for u in b.units]
    assert truth(a)["downtime_ms"] != truth(c)["downtime_ms"]


def test_firmware_presets_are_distinct_versions() -> None:
    versions = [f.version for f in FIRMWARE_PRESETS.values()]
    assert len(set(versions)) == len(versions)


def test_without_a_return_path_the_wire_downtime_ends_with_the_stream() -> None:
    tl = build_timeline(PRESETS["no-return-path"], 1)
    assert not [u for u in tl.units if u.direction == "s2c"]
    kinds = [u.kind for u in tl.units]
    assert "cmd_open_return_path" not in kinds and "cmd_ping" not in kinds
    assert not [e for e in tl.events if e.name.startswith(("source_return_path", "migration_return_path"))]
    t = truth(tl)
    assert t["downtime_wire_end"] == "end of stream"
    assert t["downtime_wire_ms"] == pytest.approx((tl.marks["last_src_byte"] - tl.marks["wire_t0"]) / MS, abs=1e-5)
    assert t["downtime_breakdown_ms"]["dst_load"] == 0
    # QEMU's downtime then covers only the source side (qemu-trace-events.md §7.2)
    assert t["downtime_qemu_ms"] < t["downtime_ms"]
    with pytest.raises(ValueError):
        build_timeline(replace(PRESETS["no-return-path"], firmware=FIRMWARE_PRESETS["fw-28.40-setreject"]), 1)
