# SPDX-License-Identifier: GPL-2.0-only
"""Gaps, truncation and garbage: findings with offsets, everything else still
decoded, never a traceback or a hang."""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect.common.findings import Finding
from dissect.qemu.build_migration import MigrationSpec, VfioDeviceSpec, build_migration
from dissect.qemu.multifd import MultifdParser
from dissect.qemu.retpath import ReturnPathParser
from dissect.qemu.session import DeviceAssembler, RecordUnit
from dissect.qemu.stream import StreamParser

SPEC = MigrationSpec(profile="8.1-9.x", devices=[VfioDeviceSpec(buffer_size=700)], ram_bytes=1 << 20,
                     extra_blocks=(), iterations=3, normal_ratio=0.3, seed=11, return_path=False,
                     switchover_ack=False)
MIG = build_migration(SPEC)
STREAM = MIG.main_stream()


def run(stream: bytes, gaps: list[tuple[int, int]] = (), step: int = 1448):
    units: list = []
    asm = DeviceAssembler()
    p = StreamParser(units.append, devices=asm)
    holes = sorted(gaps)
    pos = 0
    for start, end in holes + [(len(stream), len(stream))]:
        for i in range(pos, start, step):
            p.data(i, stream[i:min(i + step, start)], i)
        if end > start:
            p.gap(start, end)
        pos = end
    p.close()
    units += asm.close()
    return units, p


def findings(units):
    return [u for u in units if isinstance(u, Finding)]


def sections(units):
    return [(u["type"], u["section_id"]) for u in units if isinstance(u, dict) and u["kind"] == "section"
            and not u.get("incomplete")]


def _ram_part_page_offset():
    """Offset 1000 bytes into the first normal page body of the first RAM PART."""
    p = STREAM.index(b"\x02\x00\x00\x00\x02") + 5
    while True:
        flags = STREAM[p + 7]
        q = p + 8 if flags & 0x20 else p + 9 + STREAM[p + 8]
        if flags & 0x08:
            return q + 1000
        assert flags & 0x02
        p = q + 1


def test_clean_stream_baseline():
    units, p = run(STREAM)
    assert [f.code for f in findings(units) if f.severity != "info"] == []
    assert (p.ram.zero_pages, p.ram.normal_pages) == (MIG.expected.zero_pages, MIG.expected.normal_pages)


def test_gap_inside_page_body_keeps_structure():
    off = _ram_part_page_offset()
    units, p = run(STREAM, [(off, off + 100)])
    fs = findings(units)
    assert [(f.code, f.severity, f.offset) for f in fs if f.code == "stream_gap"] == [("stream_gap", "warning", off)]
    assert (p.ram.zero_pages, p.ram.normal_pages) == (MIG.expected.zero_pages, MIG.expected.normal_pages)
    assert sections(units) == [(t, s) for t, s, _ in MIG.expected.sections]


def test_gap_across_sections_resyncs_on_footer():
    # lose the second RAM PART's header and part of its pages
    first = STREAM.index(b"\x02\x00\x00\x00\x02")
    second = STREAM.index(b"\x02\x00\x00\x00\x02", first + 5)
    units, p = run(STREAM, [(second - 3, second + 50)])
    codes = [f.code for f in findings(units)]
    assert "stream_gap" in codes and "resync" in codes
    gap = [f for f in findings(units) if f.code == "stream_gap"][0]
    assert gap.offset == second - 3 and gap.context["gap_end"] == second + 50
    got = sections(units)
    want = [(t, s) for t, s, _ in MIG.expected.sections]
    # everything after the resync point decodes: the tail of the section list is intact
    assert got[-6:] == want[-6:]
    assert p.eof_offset is not None
    assert any(u for u in units if isinstance(u, dict) and u["kind"] == "vmdesc")


def test_gap_in_vfio_chunk_data_reports_lost_device_data():
    i = STREAM.index(bytes.fromhex("ffffffffef100004"))
    units, _ = run(STREAM, [(i + 20, i + 60)])
    codes = [f.code for f in findings(units)]
    assert "stream_gap" in codes and "vfio_stream_gap" in codes
    assert sections(units)[-1][0] == "FULL"


def test_every_truncation_terminates_with_a_finding():
    for cut in list(range(0, 400, 7)) + list(range(400, len(STREAM), len(STREAM) // 25)):
        units, _ = run(STREAM[:cut])
        assert findings(units), cut
        assert any(f.code in ("stream_truncated", "no_eof", "empty_stream") for f in findings(units))


def test_flipped_bytes_never_raise():
    rng = random.Random(5)
    for _ in range(30):
        b = bytearray(STREAM)
        for _ in range(rng.randrange(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        units, _ = run(bytes(b), step=rng.choice([97, 500, 4096]))
        assert all(isinstance(u, (dict, Finding, RecordUnit)) for u in units)


def test_flipped_structure_bytes_never_raise():
    """Flips next to section footers hit headers, markers and footers, not page data."""
    rng = random.Random(9)
    foots = [i for i in range(len(STREAM) - 5) if STREAM[i] == 0x7E and STREAM[i + 1:i + 4] == bytes(3)]
    for _ in range(40):
        b = bytearray(STREAM)
        at = rng.choice(foots) + rng.randrange(-20, 30)
        b[at] ^= 1 << rng.randrange(8)
        units, p = run(bytes(b), step=rng.choice([97, 1448]))
        assert all(isinstance(u, (dict, Finding, RecordUnit)) for u in units)
        assert p._closed


def test_bad_magic():
    units, _ = run(b"QEVX" + STREAM[4:200])
    assert findings(units)[0].code == "bad_magic" and findings(units)[0].offset == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.integers(1, 64))
def test_garbage_never_raises(data, step):
    for cls in (StreamParser, MultifdParser, ReturnPathParser):
        units: list = []
        p = cls(units.append)
        head = b"QEVM\x00\x00\x00\x03" if cls is StreamParser else b""
        blob = head + data
        for i in range(0, len(blob), step):
            p.data(i, blob[i:i + step], i)
        p.close()
        assert all(isinstance(u, (dict, Finding)) for u in units)


def test_multifd_gap_and_missing_device_state_packet():
    spec = MigrationSpec(profile="10.x", multifd_channels=1, devices=[VfioDeviceSpec(buffer_size=500)],
                         ram_bytes=256 << 10, extra_blocks=(), iterations=2, seed=3)
    m = build_migration(spec)
    ch = m.channel(1)
    # drop the first device-state packet entirely (a gap of exactly its bytes)
    i = ch.index(b"\x11\x22\x33\x44\x00\x00\x00\x01\x00\x00\x00\x40")
    j = ch.index(b"\x11\x22\x33\x44\x00\x00\x00\x01", i + 1)
    units: list = []
    asm = DeviceAssembler()
    p = MultifdParser(units.append, flow=1, devices=asm)
    p.data(0, ch[:i], 0)
    p.gap(i, j)
    p.data(j, ch[j:], 1)
    p.close()
    units += asm.close()
    codes = [f.code for f in findings(units)]
    assert "stream_gap" in codes and "resync" in codes and "vfio_packet_missing" in codes


def test_capture_with_a_lost_segment_reports_gap_and_decodes_the_rest(tmp_path):
    """A data segment removed from a generated capture: C's reassembly reports the
    exact range, the parser resumes, records before and after still decode."""
    from analysis.emit.migration import emit_capture
    from dissect.capture.reader import iter_packets
    from dissect.capture.synth import write_tcp_capture
    from dissect.capture.writer import PcapWriter

    spec = MigrationSpec(profile="8.1-9.x", devices=[VfioDeviceSpec(buffer_size=700)], ram_bytes=1 << 20,
                         extra_blocks=(), iterations=3, normal_ratio=0.3, seed=11)
    m = build_migration(spec)
    clean = tmp_path / "clean.pcap"
    write_tcp_capture(clean, m.synth_flows(), fmt="pcap")
    pkts = list(iter_packets(clean))
    big = [i for i, p in enumerate(pkts) if len(p.data) > 1000]
    drop = big[len(big) // 2]  # a full-size segment in the middle of the RAM pages
    cut = tmp_path / "cut.pcap"
    with open(cut, "wb") as f:
        w = PcapWriter(f, pkts[0].linktype, nanosecond=True)
        for i, p in enumerate(pkts):
            if i != drop:
                w.write(p.ts_ns, bytes(p.data))
    objs = list(emit_capture(cut))
    (flow,) = [o for o in objs if o["kind"] == "flow"]
    assert len(flow["gaps"]) == 1 and flow["gaps"][0]["end"] - flow["gaps"][0]["start"] == 1448
    gaps = [o for o in objs if o["kind"] == "finding" and o["code"] == "stream_gap"]
    assert [g["offset"] for g in gaps] == [flow["gaps"][0]["start"]]
    recs = [o for o in objs if o["kind"] == "vfio_record"]
    assert len(recs) == 3  # all device data was outside the lost segment
    assert [o for o in objs if o["kind"] == "eof"] and [o for o in objs if o["kind"] == "vmdesc"]
    clean_objs = list(emit_capture(clean))
    assert [o["section_id"] for o in objs if o["kind"] == "section"][-5:] == \
        [o["section_id"] for o in clean_objs if o["kind"] == "section"][-5:]
