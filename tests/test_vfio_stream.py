# SPDX-License-Identifier: GPL-2.0-only
"""vfio-virtio record stream: golden streams (vfio-virtio-stream.md §3, §5.3, §6)."""
from __future__ import annotations

import io
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.common.findings import Finding
from dissect.vfio.layers import VirtiovfMigrationHeader, VirtiovfStream
from dissect.vfio.stream import RecordSplitter, VfioRecord, build_record, split_records
from dissect.virtio.builders import virtio_net_vf_blob
from dissect.virtio.parts import VirtioDevPartList
from tests.test_parts_golden import WORKED_EXAMPLE, hx

HDR_EXAMPLE = hx("b9 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00")       # device-parts.md §11
HDR_TRAILER = hx("c1 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00")       # same, 6.13.0–6.15.2 source
JUNK = hx("11 22 33 44 55 66 77 88")
OPT_UNKNOWN = hx("04 00 00 00 00 00 00 00 01 00 00 00 05 00 00 00 | de ad be ef")
MAND_UNKNOWN = hx("02 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00 | 01 02")
EMPTY = hx("00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00")
FLAGS_ODD = hx("00 00 00 00 00 00 00 00 06 00 00 00 00 00 00 00")


def split(data: bytes):
    recs, fs = [], []
    for e in split_records(data):
        (recs if isinstance(e, VfioRecord) else fs).append(e)
    return recs, fs


def test_worked_example_record():
    stream = HDR_EXAMPLE + WORKED_EXAMPLE
    assert build_record(WORKED_EXAMPLE) == stream
    recs, fs = split(stream)
    assert fs == []
    (r,) = recs
    assert (r.index, r.offset, r.record_size, r.flags, r.tag, r.tag_name, r.optional) == \
        (0, 0, 0xB9, 0, 0, "DEVICE_DATA", False)
    assert r.trailer_bytes == 0 and r.findings == [] and r.payload == WORKED_EXAMPLE
    assert [p.part_type for p in r.parts] == [0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x200]
    assert r.parts[0].offset == 16 and r.parts[6].offset == 16 + 0xA3


def test_trailer_record():
    stream = HDR_TRAILER + WORKED_EXAMPLE + JUNK
    assert build_record(WORKED_EXAMPLE, trailer_bug=True, trailer=JUNK) == stream
    (r,), fs = split(stream)
    assert fs == []
    assert r.record_size == 0xC1 and r.trailer_bytes == 8 and r.parts_length == 0xB9
    assert len(r.parts) == 7
    assert [(f.severity, f.code, f.offset) for f in r.findings] == [("warning", "parts_trailer_8", 16 + 0xB9)]
    assert "6.13.0–6.15.2" in r.findings[0].message


def test_unknown_tags_and_order():
    stream = HDR_EXAMPLE + WORKED_EXAMPLE + OPT_UNKNOWN + MAND_UNKNOWN + EMPTY + FLAGS_ODD
    recs, fs = split(stream)
    assert fs == []
    assert [(r.index, r.offset, r.record_size, r.tag, r.tag_name, r.optional) for r in recs] == [
        (0, 0, 0xB9, 0, "DEVICE_DATA", False),
        (1, 0xC9, 4, 5, None, True),
        (2, 0xC9 + 20, 2, 2, None, False),
        (3, 0xC9 + 38, 0, 0, "DEVICE_DATA", False),
        (4, 0xC9 + 54, 0, 0, "DEVICE_DATA", False)]
    assert recs[1].parts is None and recs[1].payload == hx("de ad be ef")
    assert [(f.severity, f.code) for f in recs[1].findings] == [("warning", "vfio_unknown_optional_tag")]
    assert [(f.severity, f.code) for f in recs[2].findings] == [("error", "vfio_unknown_mandatory_tag")]
    assert "EOPNOTSUPP" in recs[2].findings[0].message
    assert [(f.severity, f.code) for f in recs[3].findings] == [("warning", "vfio_record_empty")]
    assert recs[3].parts == []
    assert [(f.severity, f.code) for f in recs[4].findings] == \
        [("warning", "vfio_flags_unknown"), ("warning", "vfio_record_empty")]
    assert recs[2].findings[0].context["record"] == 2


def test_truncated_header():
    recs, fs = split(HDR_EXAMPLE + WORKED_EXAMPLE + HDR_EXAMPLE[:10])
    assert len(recs) == 1
    assert [(f.severity, f.code, f.offset, f.context["missing"]) for f in fs] == \
        [("error", "vfio_truncated_header", 0xC9, 6)]


def test_truncated_payload():
    recs, fs = split(HDR_EXAMPLE + WORKED_EXAMPLE + HDR_EXAMPLE + WORKED_EXAMPLE[:100])
    assert len(recs) == 1
    assert [(f.severity, f.code, f.offset, f.context["missing"]) for f in fs] == \
        [("error", "vfio_truncated_payload", 0xC9, 0xB9 - 100)]


def test_record_too_large_is_skipped_not_kept():
    hdr = hx("00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00")  # 2^32 > 0xFFFFFFFF
    recs, fs = split(hdr + b"\x00" * 64)
    assert recs == []
    assert [(f.severity, f.code, f.offset) for f in fs] == \
        [("error", "vfio_record_too_large", 0), ("error", "vfio_truncated_payload", 0)]
    assert "ENOMEM" in fs[0].message
    assert fs[1].context["missing"] == 2**32 - 64


def test_feed_events_orders_stream_findings():
    sp = RecordSplitter()
    big = hx("00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00")
    ev = sp.feed_events(HDR_EXAMPLE + WORKED_EXAMPLE + big + b"\x00" * 3)
    assert [type(e).__name__ for e in ev] == ["VfioRecord", "Finding"]
    assert ev[1].code == "vfio_record_too_large" and ev[1].offset == 0xC9
    assert sp.feed(b"\x00") == []
    assert [f.code for f in sp.close()] == ["vfio_truncated_payload"]


def test_size_wrap_warning():
    hdr = hx("f8 ff ff ff 00 00 00 00 00 00 00 00 00 00 00 00")
    recs, fs = split(hdr + b"\x00" * 4)
    assert [f.code for f in fs] == ["vfio_record_size_wraps", "vfio_truncated_payload"]


def test_claimed_2_63_record_constant_memory():
    chunk = bytes(1 << 20)
    sp = RecordSplitter("0000:00:05.0/vfio")
    tracemalloc.start()
    try:
        sp.feed(hx("00 00 00 00 00 00 00 80 00 00 00 00 00 00 00 00"))
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(64):  # 64 MiB of claimed payload
            assert sp.feed(chunk) == []
        cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 256 * 1024
    assert cur - base < 64 * 1024
    fs = sp.close()
    assert [f.code for f in fs] == ["vfio_truncated_payload"]
    assert fs[0].context["missing"] == 2**63 - 64 * (1 << 20)
    assert fs[0].context["device"] == "0000:00:05.0/vfio"
    assert [f.code for f in sp.findings] == ["vfio_record_too_large", "vfio_truncated_payload"]


def test_byte_by_byte_equals_whole():
    stream = build_record(virtio_net_vf_blob(2)) + OPT_UNKNOWN + build_record(WORKED_EXAMPLE, trailer_bug=True)
    whole, _ = split(stream)
    sp = RecordSplitter()
    got = []
    for i in range(len(stream)):
        got += sp.feed(stream[i:i + 1])
    assert sp.close() == []
    assert [(r.offset, r.record_size, r.tag, r.payload, r.trailer_bytes, len(r.parts or []))
            for r in got] == [(r.offset, r.record_size, r.tag, r.payload, r.trailer_bytes, len(r.parts or []))
                              for r in whole]
    assert len(got) == 3


def test_file_object_input():
    stream = (HDR_EXAMPLE + WORKED_EXAMPLE) * 3
    recs = [e for e in split_records(io.BytesIO(stream)) if isinstance(e, VfioRecord)]
    assert [r.offset for r in recs] == [0, 0xC9, 2 * 0xC9]


def test_gap_stops_decoding():
    sp = RecordSplitter("dev0")
    assert len(sp.feed(HDR_EXAMPLE + WORKED_EXAMPLE + HDR_EXAMPLE + WORKED_EXAMPLE[:50])) == 1
    fs = sp.gap(100)
    assert [(f.severity, f.code, f.offset, f.context["missing"]) for f in fs] == \
        [("error", "vfio_stream_gap", 0xC9 + 66, 100)]
    assert sp.feed(HDR_EXAMPLE + WORKED_EXAMPLE) == []
    assert sp.close() == []
    assert sp.offset == 0xC9 + 66 + 100 + 0xC9


def test_scapy_header_layer():
    stream = HDR_TRAILER + WORKED_EXAMPLE + JUNK
    pkt = VirtiovfMigrationHeader(stream)
    assert (pkt.record_size, int(pkt.flags), pkt.tag) == (0xC1, 0, 0)
    lst = pkt[VirtioDevPartList]
    assert len(lst.parts) == 7 and bytes(lst.payload) == JUNK
    assert bytes(pkt) == stream
    built = VirtiovfMigrationHeader() / VirtioDevPartList(WORKED_EXAMPLE)
    assert bytes(built) == HDR_EXAMPLE + WORKED_EXAMPLE
    opt = VirtiovfMigrationHeader(OPT_UNKNOWN)
    assert (opt.record_size, int(opt.flags), opt.tag) == (4, 1, 5)
    s = VirtiovfStream(HDR_EXAMPLE + WORKED_EXAMPLE + OPT_UNKNOWN + b"\x01\x02")
    assert [r.record_size for r in s.records] == [0xB9, 4]
    assert bytes(s) == HDR_EXAMPLE + WORKED_EXAMPLE + OPT_UNKNOWN + b"\x01\x02"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 17))
def test_random_streams_never_raise_and_chunking_is_irrelevant(data, step):
    whole = list(split_records(data))
    sp = RecordSplitter()
    recs = []
    for i in range(0, len(data), step):
        recs += sp.feed(data[i:i + step])
    tail = sp.close()
    assert [(r.offset, r.payload) for r in recs] == [(r.offset, r.payload) for r in whole
                                                      if isinstance(r, VfioRecord)]
    assert [f.code for f in tail] == [f.code for f in whole if isinstance(f, Finding)
                                     and f.code.startswith("vfio_truncated")]
    VirtiovfStream(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_header_layer_round_trip(payload, flags, tag):
    raw = build_record(payload, tag=tag, flags=flags)
    pkt = VirtiovfMigrationHeader(raw)
    assert (pkt.record_size, int(pkt.flags), pkt.tag) == (len(payload), flags, tag)
    assert bytes(pkt) == raw
    assert bytes(VirtiovfMigrationHeader(flags=flags, tag=tag) / payload) == raw
