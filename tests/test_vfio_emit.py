# SPDX-License-Identifier: GPL-2.0-only
"""analysis.emit.vfio helpers used by the admin and migration emitters."""
from __future__ import annotations

from analysis.emit.vfio import dev_part_objects, record_objects, stream_objects
from dissect.vfio.stream import RecordSplitter, build_record
from tests.test_parts_golden import WORKED_EXAMPLE, hx


def test_record_objects_carry_device_phase_ts():
    sp = RecordSplitter("0000:00:05.0/vfio")
    (rec,) = sp.feed(build_record(WORKED_EXAMPLE, trailer_bug=True, trailer=b"\x00" * 8))
    objs = list(record_objects(rec, device="0000:00:05.0/vfio", phase="stopcopy", ts=1.5))
    assert objs[0] == {"kind": "vfio_record", "device": "0000:00:05.0/vfio", "index": 0, "offset": 0,
                       "record_size": 0xC1, "flags": 0, "tag": 0, "tag_name": "DEVICE_DATA",
                       "optional": False, "phase": "stopcopy", "parts": 7, "trailer_bytes": 8,
                       "parts_length": 0xB9, "ts": 1.5}
    assert objs[1]["kind"] == "finding" and objs[1]["code"] == "parts_trailer_8"
    assert objs[1]["device"] == "0000:00:05.0/vfio" and objs[1]["record"] == 0
    parts = [o for o in objs if o["kind"] == "dev_part"]
    assert [(p["device"], p["record"], p["admin_tag"]) for p in parts] == [("0000:00:05.0/vfio", 0, None)] * 7
    assert [p["offset"] for p in parts] == [16, 48, 72, 90, 107, 155, 179]
    # the worked example carries only vq 0 of num_queues 3: DP-13 in a snapshot
    last = objs[-1]
    assert last["kind"] == "finding" and last["code"] == "vq_indices_incomplete"
    assert last["device"] == "0000:00:05.0/vfio" and last["record"] == 0


def test_dev_part_objects_for_admin_results():
    buf = hx("00 00 00 00 00 00 00 00") + WORKED_EXAMPLE  # e.g. parts after an 8-byte object header
    objs = list(dev_part_objects(buf[8:], admin_tag=0x2A, base_offset=8))
    parts = [o for o in objs if o["kind"] == "dev_part"]
    assert len(parts) == 7 and objs == parts
    assert parts[0]["offset"] == 8 and parts[6]["offset"] == 8 + 0xA3
    assert {(p["admin_tag"], p["device"], p["record"]) for p in parts} == {(0x2A, None, None)}
    # findings follow the part they are about and carry the admin tag
    bad = WORKED_EXAMPLE + hx("03 01 00 00 00 00 00 00 00 00 00 00 01 00 00 00 | 0f")
    objs = list(dev_part_objects(bad, admin_tag=7))
    assert [o["kind"] for o in objs[-4:]] == ["dev_part", "finding", "finding", "finding"]
    assert [(o["code"], o["admin_tag"], o["offset"], o["index"]) for o in objs[-3:]] == [
        ("part_order", 7, 0xB9, 7), ("part_device_before_common", 7, 0xB9, 7), ("part_duplicate", 7, 0xB9, 7)]


def test_stream_objects_from_chunks():
    stream = build_record(WORKED_EXAMPLE) * 2
    chunks = [stream[i:i + 37] for i in range(0, len(stream), 37)]
    objs = list(stream_objects(chunks, device="dev"))
    recs = [o for o in objs if o["kind"] == "vfio_record"]
    assert [(r["index"], r["offset"], r["device"]) for r in recs] == [(0, 0, "dev"), (1, 0xC9, "dev")]
    assert sum(o["kind"] == "dev_part" for o in objs) == 14
