# SPDX-License-Identifier: GPL-2.0-only
"""Hand-written golden bytes (pcap-savefile(5), draft-ietf-opsawg-pcapng,
the link-layer header types, RFC 791/8200/9293) for the readers and the
link/IP/TCP parser, and bad-input handling."""
from __future__ import annotations

from pathlib import Path

import pytest

from dissect.capture import link as L
from dissect.capture.flows import classify
from dissect.capture.reader import CaptureReader

H = bytes.fromhex


def read(tmp_path: Path, data: bytes, name: str = "f.cap"):
    p = tmp_path / name
    p.write_bytes(data)
    r = CaptureReader(p)
    return r, list(r.packets())


# -- pcap ----------------------------------------------------------------------

PCAP_LE_US = (
    H("d4c3b2a1 0200 0400 00000000 00000000 00000400 01000000".replace(" ", ""))
    # ts 1600000000 (0x5f5e1000) + 123456 µs, incl 4, orig 60
    + H("00105e5f 40e20100 04000000 3c000000 deadbeef".replace(" ", ""))
    # a 70000-byte frame (loopback frames exceed 65535): incl = orig = 0x11170
    + H("01105e5f 00000000 70110100 70110100".replace(" ", "")) + b"\xab" * 70000
)


def test_pcap_le_microseconds(tmp_path: Path) -> None:
    r, pk = read(tmp_path, PCAP_LE_US)
    assert r.format == "pcap" and r.linktypes == [1] and r.snaplens == [262144]
    assert [(p.ts_ns, bytes(p.data[:4]), len(p.data), p.orig_len, p.interface, p.offset) for p in pk] == [
        (1_600_000_000_123_456_000, H("deadbeef"), 4, 60, 0, 24),
        (1_600_000_001_000_000_000, b"\xab" * 4, 70000, 70000, 0, 44),
    ]
    assert r.findings == []


def test_pcap_be_nanoseconds_raw_ip(tmp_path: Path) -> None:
    data = (H("a1b23c4d 0002 0004 00000000 00000000 0000ffff 00000065".replace(" ", ""))
            + H("5f5e1000 075bcd15 00000002 00000002 6162".replace(" ", "")))
    r, pk = read(tmp_path, data)
    assert r.linktypes == [101]
    assert [(p.ts_ns, bytes(p.data), p.linktype) for p in pk] == [(1_600_000_000_123_456_789, b"ab", 101)]


def test_pcap_lying_length_resynchronises(tmp_path: Path) -> None:
    good = H("00105e5f 00000000 04000000 04000000 01020304".replace(" ", ""))
    bad = H("00105e5f 00000000 ffffff7f ffffff7f".replace(" ", ""))  # incl_len 2^31-1
    data = PCAP_LE_US[:24] + good + bad + b"junk" + good + good
    r, pk = read(tmp_path, data)
    assert [p.offset for p in pk] == [24, 24 + 20 + 16 + 4, 24 + 20 + 16 + 4 + 20]
    codes = [(f.code, f.offset) for f in r.findings]
    assert codes == [("pcap_bad_record_header", 44), ("capture_bytes_skipped", 44)]
    assert r.findings[1].context == {"start": 44, "end": 64}


def test_pcap_truncated_file(tmp_path: Path) -> None:
    data = PCAP_LE_US[:24 + 20 + 16 + 1000]  # cut inside the 70000-byte frame
    r, pk = read(tmp_path, data)
    assert len(pk) == 2 and len(pk[1].data) == 1000 and pk[1].orig_len == 70000
    (f,) = r.findings
    assert (f.code, f.severity, f.offset, f.context["missing"]) == ("pcap_truncated_record", "error", 44, 69000)
    r, pk = read(tmp_path, PCAP_LE_US[:24 + 10], "g.cap")  # cut inside a record header
    assert pk == [] and [(f.code, f.offset) for f in r.findings] == [("pcap_truncated_record", 24)]
    r, pk = read(tmp_path, PCAP_LE_US[:10], "h.cap")
    assert pk == [] and [f.code for f in r.findings] == ["pcap_truncated_header"]


# -- pcapng --------------------------------------------------------------------

PCAPNG = H("".join("""
0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000
01000000 2c000000 0100 0000 00000400 0900 0100 06000000 0e00 0800 0a00000000000000 00000000 2c000000
78563412 0c000000 0c000000
06000000 28000000 00000000 00000000 e8030000 05000000 05000000 68656c6c6f000000 28000000
0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c
00000001 00000020 0071 0000 00000000 0009 0001 89000000 00000000 00000020
00000001 00000014 0065 0000 00000000 00000014
00000002 00000024 0001 0000 00000000 00000200 00000002 00000002 78790000 00000024
00000003 00000014 00000003 61626300 00000014
""".split()))


def test_pcapng_sections_interfaces_resolutions(tmp_path: Path) -> None:
    r, pk = read(tmp_path, PCAPNG)
    assert r.format == "pcapng" and r.linktypes == [1, 113, 101]
    got = [(p.ts_ns, p.linktype, bytes(p.data), p.orig_len, p.interface, p.offset) for p in pk]
    assert got == [
        # EPB: 1000 µs (if_tsresol 6) + if_tsoffset 10 s
        (10_001_000_000, 1, b"hello", 5, 0, 28 + 44 + 12),
        # OPB on the second section's interface 1 (raw IP): 512 ticks of 2^-9 s... of interface 1
        # (if_tsresol default: µs) = 512 µs
        (512_000, 101, b"xy", 2, 2, 28 + 44 + 12 + 40 + 28 + 32 + 20),
        # SPB: interface 0 of its section (linktype 113), timestamp of the previous packet
        (512_000, 113, b"abc", 3, 1, 28 + 44 + 12 + 40 + 28 + 32 + 20 + 36),
    ]
    assert [(f.code, f.offset) for f in r.findings] == [
        ("pcapng_unknown_block", 72), ("pcapng_spb_no_timestamp", 28 + 44 + 12 + 40 + 28 + 32 + 20 + 36)]


def test_pcapng_bad_block_length_resynchronises(tmp_path: Path) -> None:
    epb = H("06000000 28000000 00000000 00000000 e8030000 05000000 05000000 68656c6c6f000000 28000000"
            .replace(" ", ""))
    broken = bytearray(epb)
    broken[-4:] = H("2c000000")  # trailing length disagrees
    data = PCAPNG[:72] + epb + bytes(broken) + epb
    r, pk = read(tmp_path, data)
    assert [p.offset for p in pk] == [72, 72 + 40 + 40]
    assert [(f.code, f.offset) for f in r.findings] == [
        ("pcapng_block_length_mismatch", 112), ("capture_bytes_skipped", 112)]
    lying = bytearray(epb)
    lying[20:24] = H("ffff0000")  # captured length larger than the block
    r, pk = read(tmp_path, PCAPNG[:72] + bytes(lying), "g.cap")
    assert len(pk) == 1 and bytes(pk[0].data) == b"hello\0\0\0"
    assert [(f.code, f.offset) for f in r.findings] == [("pcapng_bad_captured_length", 72)]


def test_pcapng_truncated(tmp_path: Path) -> None:
    r, pk = read(tmp_path, PCAPNG[:84 + 30])  # inside the EPB's data
    assert pk[0].data.tobytes() == b"he" and pk[0].orig_len == 5
    assert [(f.code, f.offset, f.context.get("missing")) for f in r.findings] == [
        ("pcapng_unknown_block", 72, None), ("pcapng_truncated_block", 84, 10)]


# -- link, IP, TCP -------------------------------------------------------------

IPV4_OPT_TCP = H("".join("""
46000030 00014000 4006 0000 0a000001 0a000002 01010100
1f90 115c 00000064 00000000 50 18 ffff 0000 0000 5145564d
""".split()))
TCP_EXPECT = (4, H("0a000001"), H("0a000002"), 8080, 4444, 100, 0, 0x18)


@pytest.mark.parametrize("linktype,prefix", [
    (1, H("020000000002 020000000001 0800")),
    (1, H("020000000002 020000000001 8100 0064 0800".replace(" ", ""))),  # 802.1Q VLAN 100
    (1, H("020000000002 020000000001 88a8 0064 8100 00c8 0800".replace(" ", ""))),  # QinQ
    (113, H("0004 0001 0006 020000000001 0000 0800".replace(" ", ""))),  # Linux cooked v1
    (276, H("0800 0000 00000001 0001 04 06 0200000000010000".replace(" ", ""))),  # cooked v2
    (0, H("02000000")),  # BSD loopback, little-endian host
    (0, H("00000002")),  # BSD loopback, big-endian host
    (108, H("00000002")),  # OpenBSD loopback (network order)
    (101, b""), (228, b""),
])
def test_ipv4_tcp_on_every_link_type(linktype: int, prefix: bytes) -> None:
    prefix = H(prefix.hex())
    seg = L.parse_tcp(linktype, prefix + IPV4_OPT_TCP)
    assert seg[:8] == TCP_EXPECT
    start, n = seg[8], seg[9]
    assert (start, n) == (len(prefix) + 24 + 20, 4)
    assert (prefix + IPV4_OPT_TCP)[start:start + n] == b"QEVM"


def test_ethernet_padding_and_snap_truncation() -> None:
    frame = H("020000000002020000000001 0800".replace(" ", "")) + IPV4_OPT_TCP
    assert L.parse_tcp(1, frame + b"\0" * 6)[8:] == (58, 4)  # padding is not payload
    assert L.parse_tcp(1, frame[:-2])[8:] == (58, 4)  # declared 4, 2 captured


IPV6_EXT_TCP = H("".join("""
60000000 0028 00 40 00000000000000000000000000000001 00000000000000000000000000000002
2c 00 0000 00000000
06 00 0000 00000001
1f90 115c 00000064 00000001 50 10 ffff 0000 0000 11223344
""".split()))


def test_ipv6_extension_headers() -> None:
    # hop-by-hop (8 bytes) then an atomic fragment header (offset 0, M 0) then TCP
    seg = L.parse_tcp(229, IPV6_EXT_TCP)
    assert seg == (6, H("00" * 15 + "01"), H("00" * 15 + "02"), 8080, 4444, 100, 1, 0x10, 76, 4)
    assert IPV6_EXT_TCP[76:] == H("11223344")
    frag = bytearray(IPV6_EXT_TCP)
    frag[51] = 0x01  # M flag set
    assert L.parse_tcp(229, bytes(frag)) == L.NOTE_FRAGMENT
    assert L.format_endpoint(6, seg[1], 4444) == "[::1]:4444"


def test_notes_and_non_tcp() -> None:
    frag = bytearray(IPV4_OPT_TCP)
    frag[6:8] = H("2000")  # MF
    assert L.parse_tcp(101, bytes(frag)) == L.NOTE_FRAGMENT
    udp = bytearray(IPV4_OPT_TCP)
    udp[9] = 17
    assert L.parse_tcp(101, bytes(udp)) is None
    assert L.parse_tcp(1, H("020000000002020000000001 0806".replace(" ", "")) + b"\0" * 28) is None  # ARP
    assert L.parse_tcp(1, b"\0" * 10) == L.NOTE_TRUNCATED
    assert L.parse_tcp(101, IPV4_OPT_TCP[:30]) == L.NOTE_TRUNCATED
    assert L.parse_tcp(147, IPV4_OPT_TCP) == L.NOTE_LINKTYPE
    bad = bytearray(IPV4_OPT_TCP)
    bad[24 + 12] = 0x30  # data offset 12 bytes < 20
    assert L.parse_tcp(101, bytes(bad)) == L.NOTE_BAD_TCP


def test_classify() -> None:
    assert classify(H("5145564d00000003070000000d")) == "main"
    assert classify(H("5145564d00000002")) == "other"  # version 2 is rejected by QEMU
    assert classify(H("1122334400000001")) == "multifd"
    assert classify(H("11223344")) == "multifd"
    assert classify(b"SSH-2.0-") == "other" and classify(b"") == "other"
