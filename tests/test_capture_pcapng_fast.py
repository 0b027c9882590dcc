# SPDX-License-Identifier: GPL-2.0-only
"""The fused pcapng block loop (dissect.capture.fastpath_ng) held equal to the
generic path (CaptureReader.records() + Reassembler.feed): identical streams,
gap ranges, flow statistics, findings with their offsets, packet counts and
interface lists, on generated files exercising what pcapng allows (sections,
byte orders, interfaces with their own link types and timestamp units,
options, snaplen cuts, skipped and unknown blocks, damage) and on the real
loopback captures converted with editcap; tshark is the oracle for streams."""
from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import pytest

from dissect.capture import formats as F
from dissect.capture.reader import CaptureReader
from dissect.capture.synth import SynthFlow, write_tcp_capture
from dissect.capture.tcp import Reassembler
from tests.conftest import TRACES, require_tool
from tests.test_capture_loopback import Collect
from tests.test_capture_reassembly import mutations
from tests.test_capture_tshark import assert_same_as_tshark

RND = random.Random(29)
A = RND.randbytes(130_000)
B = RND.randbytes(20_000)
NS = 1_000_000_000
T0 = 1_700_000_000 * NS


# -- the two paths ------------------------------------------------------------

def _run(path: Path, fused: bool, monkeypatch=None):
    got: dict = {}

    def factory(flow, d):
        c = got[(flow.index, d)] = Collect()
        return c

    r = Reassembler(factory)
    reader = CaptureReader(path)
    assert reader.format == "pcapng"
    handovers: list = []
    if fused:
        records = reader.records

        def spy(*a, **kw):
            handovers.append(kw.get("start"))
            return records(*a, **kw)

        reader.records = spy  # type: ignore[method-assign]
        r.feed_pcapng(reader)
    else:
        r.feed(reader.records())
    res = r.close()
    res.findings[:0] = reader.findings
    return got, res, reader, handovers


def both(path: Path):
    """Decode ``path`` through the fused loop and the generic path, assert every
    observable result equal, return the fused one's (streams, result, reader,
    handover offsets)."""
    fg, fr, frd, hand = _run(path, True)
    gg, gr, grd, _ = _run(path, False)
    assert {k: (bytes(v.buf), v.gaps, v.first_ts, v.closed) for k, v in fg.items()} == \
        {k: (bytes(v.buf), v.gaps, v.first_ts, v.closed) for k, v in gg.items()}
    assert [f.to_json() for f in fr.flows] == [f.to_json() for f in gr.flows]
    assert [f.to_json() for f in fr.findings] == [f.to_json() for f in gr.findings]
    assert fr.packets == gr.packets
    assert (frd.linktypes, frd.snaplens, frd.packet_count) == (grd.linktypes, grd.snaplens, grd.packet_count)
    return fg, fr, frd, hand


# -- a pcapng writer for the tests (blocks as the draft lays them out) -----------

def block(bo: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (F.pad4(len(body)) - len(body))
    total = 12 + len(body)
    return F.pcapng_block_header(bo).pack(btype, total) + body + struct.pack(bo + "I", total)


def options(bo: str, opts: list[tuple[int, bytes]]) -> bytes:
    oh = F.pcapng_option_header(bo)
    out = b"".join(oh.pack(c, len(v)) + v + b"\0" * (F.pad4(len(v)) - len(v)) for c, v in opts)
    return out + oh.pack(0, 0) if opts else b""


def shb(bo: str) -> bytes:
    return block(bo, F.PCAPNG_SHB, F.pcapng_shb_body(bo).pack(F.PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1))


def idb(bo: str, lt: int, tsresol: int | None, tsoffset: int = 0, snaplen: int = 0) -> bytes:
    opts = [(2, b"if" + bytes([lt & 0x7F]))]
    if tsresol is not None:
        opts.append((F.IF_TSRESOL, bytes([tsresol])))
    if tsoffset:
        opts.append((F.IF_TSOFFSET, struct.pack(bo + "q", tsoffset)))
    return block(bo, F.PCAPNG_IDB, F.pcapng_idb_body(bo).pack(lt, 0, snaplen) + options(bo, opts))


def epb(bo: str, iface: int, ts: int, data: bytes, orig: int | None = None, opts=()) -> bytes:
    body = F.pcapng_epb_body(bo).pack(iface, ts >> 32, ts & 0xFFFFFFFF, len(data),
                                      len(data) if orig is None else orig)
    body += data + b"\0" * (F.pad4(len(data)) - len(data)) + options(bo, list(opts))
    return block(bo, F.PCAPNG_EPB, body)


def units(tsresol: int | None) -> int:
    return 1_000_000 if tsresol is None else F.tsresol_units_per_second(tsresol)


def frames(tmp: Path, flow: SynthFlow, lt: int, mss: int = 1448) -> list[tuple[int, bytes]]:
    """(ts_ns, frame) of one generated flow over link type ``lt``."""
    p = tmp / f"f{lt}-{flow.client}.pcapng".replace(":", "_")
    write_tcp_capture(p, [flow], linktype=lt, mss=mss)
    return [(ts, bytes(d)) for ts, _lt, d, *_ in CaptureReader(p).records()]


# Four flows, each on its own link type (RAW has no inlined path: per packet).
FLOWS = [
    (SynthFlow("10.0.0.1:40000", "10.0.0.2:4444", [(T0, "c2s", A[:60_000]), (T0 + 5_000_000, "s2c", B[:5000])]),
     F.LINKTYPE_ETHERNET),
    (SynthFlow("10.0.1.1:40001", "10.0.1.2:4445", [(T0 + 1000, "c2s", A[60_000:100_000])]),
     F.LINKTYPE_LINUX_SLL2),
    (SynthFlow("[fd00::1]:40002", "[fd00::2]:4446", [(T0 + 2000, "c2s", B)]), F.LINKTYPE_RAW),
    (SynthFlow("[fd00::3]:40003", "[fd00::4]:4447", [(T0 + 3000, "c2s", A[100_000:])]), F.LINKTYPE_LINUX_SLL),
]
EXPECT = {(0, "c2s"): A[:60_000], (0, "s2c"): B[:5000], (1, "c2s"): A[60_000:100_000],
          (2, "c2s"): B, (3, "c2s"): A[100_000:]}

# Per section: byte order, then per flow its interface id in that section and
# (tsresol, tsoffset s) — µs (no option), ns, ms, 2^-20 (does not divide 10^9),
# 2^-6 (does); interfaces declared in another order in the second section.
SECTIONS = [
    ("<", {0: (0, None, 0), 1: (1, 9, 0), 2: (2, 0x94, 0), 3: (3, 0x86, 5)}),
    (">", {3: (0, 9, 0), 2: (1, 3, 0), 1: (2, 0x8A, 0), 0: (3, 6, 100)}),
]


def mixed(tmp: Path, *, extra=None, opts_every: int = 3) -> tuple[Path, list[int]]:
    """The four flows split over two sections (first half / second half of the
    packets by time); an ISB ends the first section, an NRB opens the second's
    packets, every ``opts_every``-th EPB carries options.  ``extra(n, bo)``
    may return bytes to put before the n-th EPB.  Returns the path and the
    file offset of every EPB."""
    pk = sorted(((ts, n, k, fr) for n, (fl, lt) in enumerate(FLOWS) for k, (ts, fr) in enumerate(frames(tmp, fl, lt))),
                key=lambda p: (p[0], p[1], p[2]))
    out = bytearray()
    offs: list[int] = []
    half = len(pk) // 2
    count = 0
    for s, (bo, ifs) in enumerate(SECTIONS):
        out += shb(bo)
        for n in sorted(ifs, key=lambda n: ifs[n][0]):
            _, res, off = ifs[n]
            out += idb(bo, FLOWS[n][1], res, off)
        if s:
            out += block(bo, 4, struct.pack(bo + "HH", 0, 0))  # NRB: end of records only
        for ts, n, _k, fr in (pk[:half] if s == 0 else pk[half:]):
            iface, res, off = ifs[n]
            if extra is not None:
                out += extra(count, bo)
            o = [(F.OPT_COMMENT, b"c%d" % count), (2, struct.pack(bo + "I", 1))] if count % opts_every == 0 else ()
            offs.append(len(out))
            out += epb(bo, iface, (ts - off * NS) * units(res) // NS, fr, opts=o)
            count += 1
        if s == 0:
            out += block(bo, 5, struct.pack(bo + "III", 0, 0, 0))  # ISB
    path = tmp / "mixed.pcapng"
    path.write_bytes(bytes(out))
    return path, offs


# -- clean files: fused all the way ----------------------------------------------

def test_sections_interfaces_byte_orders_and_tsresol(tmp_path: Path) -> None:
    path, offs = mixed(tmp_path)
    got, res, reader, hand = both(path)
    assert hand == []  # no block needed the generic walker
    assert {k: bytes(v.buf) for k, v in got.items()} == EXPECT
    assert res.findings == []
    assert reader.linktypes == [1, 276, 101, 113, 113, 101, 276, 1]
    assert reader.packet_count == len(offs) == res.packets
    assert [(f.client, f.server) for f in res.flows] == [(fl.client, fl.server) for fl, _ in FLOWS]
    assert all(f.syn_seen and f.fin_seen and not f.gaps for f in res.flows)


def test_timestamps_per_interface_units_and_offset(tmp_path: Path) -> None:
    """Golden vector written by hand (big-endian section): IDB Ethernet with
    if_tsresol 0x86 (2^-6 s) and if_tsoffset 1000 s; a SYN and one data
    segment of 4 bytes at ts 64*1,000,000+32 units (= 1,000,000.5 s, so the
    flow's last timestamp is 1000 + 1,000,000.5 s = 1,001,000.5 s); then a
    second IDB with if_tsresol 0x94 (2^-20 s, which does not divide 10^9 ns)
    carrying the same flow's second segment at 2^20 * 2,000,000 + 1 units."""
    shb_be = bytes.fromhex("0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c")
    # 16 + if_tsresol 8 + if_tsoffset 12 + opt_endofopt 4 + trailing length 4 = 44 (0x2c)
    idb1 = bytes.fromhex("00000001 0000002c 0001 0000 00000000"
                         "0009 0001 86000000" "000e 0008 00000000000003e8" "0000 0000" "0000002c")
    idb2 = bytes.fromhex("00000001 0000001c 0001 0000 00000000" "0009 0001 94000000" "0000001c")
    eth = bytes.fromhex("020000000002 020000000001 0800")

    def ip_tcp(seq: int, flags: int, payload: bytes) -> bytes:
        ip = bytes.fromhex("4500") + (40 + len(payload)).to_bytes(2, "big") + bytes.fromhex(
            "0001 4000 4006 0000 0a000001 0a000002")
        tcp = bytes.fromhex("9c40 115c") + seq.to_bytes(4, "big") + bytes.fromhex(
            "00000000 50") + bytes([flags]) + bytes.fromhex("ffff 0000 0000")
        return eth + ip + tcp + payload

    syn = ip_tcp(99, 0x02, b"")  # 54 bytes: EPB total 28 + 56 + 4 = 88 (0x58)
    d1 = ip_tcp(100, 0x18, b"ABCD")  # 58 bytes: 28 + 60 + 4 = 92 (0x5c)
    d2 = ip_tcp(104, 0x18, b"EFGH")
    ts1 = 64 * 1_000_000 + 32
    epbs = (bytes.fromhex("00000006 00000058 00000000") + (ts1 - 1).to_bytes(8, "big")
            + bytes.fromhex("00000036 00000036") + syn + b"\0\0" + bytes.fromhex("00000058")
            + bytes.fromhex("00000006 0000005c 00000000") + ts1.to_bytes(8, "big")
            + bytes.fromhex("0000003a 0000003a") + d1 + b"\0\0" + bytes.fromhex("0000005c"))
    ts2 = (1 << 20) * 2_000_000 + 1
    epb2 = (bytes.fromhex("00000006 0000005c 00000001") + ts2.to_bytes(8, "big")
            + bytes.fromhex("0000003a 0000003a") + d2 + b"\0\0" + bytes.fromhex("0000005c"))
    path = tmp_path / "golden.pcapng"
    path.write_bytes(shb_be + idb1 + epbs + idb2 + epb2)
    got, res, reader, hand = both(path)
    assert hand == [] and res.findings == []
    assert bytes(got[(0, "c2s")].buf) == b"ABCDEFGH"
    assert got[(0, "c2s")].first_ts == 1_001_000_500_000_000
    (fl,) = res.flows
    # 2,000,000 s + 1 unit of 2^-20 s = 953.67431640625 ns, floored to 953 ns.
    assert fl.last_ts_ns == 2_000_000 * NS + 953
    assert fl.first_ts_ns == (1_000_000 * NS + 500_000_000 - 15_625_000) + 1000 * NS
    assert fl.packets == 3 and reader.linktypes == [1, 1]


def test_snaplen_cut_packets_become_the_same_gaps(tmp_path: Path) -> None:
    fl = SynthFlow("10.9.0.1:5000", "10.9.0.2:6000", [(NS, "c2s", A[:10_000])], ack_every=100)
    out = shb("<") + idb("<", F.LINKTYPE_ETHERNET, 9, snaplen=154)
    for ts, fr in frames(tmp_path, fl, F.LINKTYPE_ETHERNET, mss=1000):
        out += epb("<", 0, ts, fr[:154], orig=len(fr))
    path = tmp_path / "snap.pcapng"
    path.write_bytes(out)
    got, res, _reader, hand = both(path)
    assert hand == []
    # 54 header bytes + 100 payload bytes kept of every 1000-byte segment.
    assert res.flows[0].gaps == [{"direction": "c2s", "start": k * 1000 + 100, "end": (k + 1) * 1000}
                                 for k in range(10)]
    assert bytes(got[(0, "c2s")].buf[:100]) == A[:100]


def test_simple_packet_blocks_stay_in_the_fused_loop(tmp_path: Path) -> None:
    fl = SynthFlow("10.9.0.1:5000", "10.9.0.2:6000", [(NS, "c2s", A[:20_000])])
    out = shb(">") + idb(">", F.LINKTYPE_ETHERNET, 9, snaplen=1000)
    for k, (ts, fr) in enumerate(frames(tmp_path, fl, F.LINKTYPE_ETHERNET)):
        if k % 4 == 3:  # snaplen 1000 cuts these: gaps, as in the generic path
            out += block(">", F.PCAPNG_SPB, struct.pack(">I", len(fr)) + fr)
        else:
            out += epb(">", 0, ts, fr)
    path = tmp_path / "spb.pcapng"
    path.write_bytes(out)
    got, res, _reader, hand = both(path)
    assert hand == []
    assert [f.code for f in res.findings if f.code.startswith("pcapng")] == ["pcapng_spb_no_timestamp"]
    assert res.flows[0].gaps  # SPB frames longer than the snaplen lost their tail


# -- unusual blocks and damage: the generic walker takes over -------------------

def test_unknown_block_in_the_middle_hands_over(tmp_path: Path) -> None:
    def extra(n: int, bo: str) -> bytes:
        if n == 40:
            return block(bo, 0x0000_0BEE, b"what is this")
        return b""

    path, offs = mixed(tmp_path, extra=extra)
    got, res, _reader, hand = both(path)
    unknown = offs[40] - 24  # the 24-byte unknown block sits before EPB 40
    assert hand == [unknown]
    assert [(f.code, f.offset) for f in res.findings] == [("pcapng_unknown_block", unknown)]
    assert {k: bytes(v.buf) for k, v in got.items()} == EXPECT


def test_obsolete_packet_block_hands_over(tmp_path: Path) -> None:
    fl = SynthFlow("10.9.0.1:5000", "10.9.0.2:6000", [(NS, "c2s", A[:8000])])
    out = shb("<") + idb("<", F.LINKTYPE_ETHERNET, 9)
    offs = []
    for k, (ts, fr) in enumerate(frames(tmp_path, fl, F.LINKTYPE_ETHERNET)):
        offs.append(len(out))
        if k == 5:
            out += block("<", F.PCAPNG_OPB, F.pcapng_opb_body("<").pack(0, 0, ts >> 32, ts & 0xFFFFFFFF,
                                                                        len(fr), len(fr)) + fr)
        else:
            out += epb("<", 0, ts, fr)
    path = tmp_path / "opb.pcapng"
    path.write_bytes(out)
    got, res, _reader, hand = both(path)
    assert hand == [offs[5]] and res.findings == []
    assert bytes(got[(0, "c2s")].buf) == A[:8000]


@pytest.mark.parametrize("cut", [1, 4, 11, 30, 60])
def test_truncated_last_block(tmp_path: Path, cut: int) -> None:
    path, offs = mixed(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:offs[-1] + cut])
    got, res, _reader, hand = both(path)
    assert hand == [offs[-1]]
    assert [(f.code, f.offset) for f in res.findings][:1] == [("pcapng_truncated_block", offs[-1])]


def test_corrupted_block_length_resynchronises_as_the_generic_path(tmp_path: Path) -> None:
    path, offs = mixed(tmp_path)
    b = bytearray(path.read_bytes())
    struct.pack_into("<I", b, offs[30] + 4, 0x7778)  # leading length of EPB 30 (first section: LE)
    path.write_bytes(bytes(b))
    got, res, _reader, hand = both(path)
    assert hand == [offs[30]]
    assert [(f.code, f.offset) for f in res.findings[:2]] == [
        ("pcapng_block_length_mismatch", offs[30]), ("capture_bytes_skipped", offs[30])]
    assert res.findings[1].context["end"] == offs[31]


def test_damaged_epb_fields_and_bad_byte_order_magic(tmp_path: Path) -> None:
    path, offs = mixed(tmp_path)
    clean = path.read_bytes()
    second = clean.index(b"\x0a\x0d\x0d\x0a", 4)
    cases = {  # name: (where, new bytes, handover offset, first finding)
        "iface": (offs[10] + 8, struct.pack("<I", 9), offs[10], "pcapng_no_interface"),  # undeclared
        "caplen": (offs[12] + 20, struct.pack("<I", 60_000), offs[12], "pcapng_bad_captured_length"),
        "bom": (second + 8, b"\x01\x02\x03\x04", second, "pcapng_bad_byte_order_magic"),
    }
    for name, (at, val, where, code) in cases.items():
        b = bytearray(clean)
        b[at:at + len(val)] = val
        p = tmp_path / f"{name}.pcapng"
        p.write_bytes(bytes(b))
        _got, res, _reader, hand = both(p)
        assert hand == [where], name
        assert (res.findings[0].code, res.findings[0].offset) == (code, where), name


def test_spb_before_any_interface_and_short_idb_hand_over(tmp_path: Path) -> None:
    fr = frames(tmp_path, SynthFlow("10.9.0.1:5000", "10.9.0.2:6000", [(T0, "c2s", b"x" * 100)]),
                F.LINKTYPE_ETHERNET)
    head = shb("<")
    spb_first = head + block("<", F.PCAPNG_SPB, struct.pack("<I", len(fr[0][1])) + fr[0][1])
    short_idb = head + block("<", F.PCAPNG_IDB, b"\x01\x00\x00\x00")  # 16 bytes: minimum is 20
    for name, data, code in (("spb", spb_first, "pcapng_no_interface"), ("idb", short_idb, "pcapng_bad_block_length")):
        p = tmp_path / f"{name}.pcapng"
        p.write_bytes(data + idb("<", F.LINKTYPE_ETHERNET, 9) + b"".join(epb("<", 0, ts, f) for ts, f in fr))
        _got, res, reader, hand = both(p)
        assert hand == [28], name
        assert [(f.code, f.offset) for f in res.findings] == [(code, 28)], name
        assert reader.packet_count == len(fr)  # the refused SPB yields no packet


def test_mutations_equal_generic_path(tmp_path: Path) -> None:
    """Cut, overwritten and inserted bytes anywhere: never a traceback, and
    the fused loop's results are the generic path's."""
    path, _ = mixed(tmp_path)
    for k, b in mutations(path.read_bytes(), 36, seed=5):
        p = tmp_path / f"m{k}.pcapng"
        p.write_bytes(b)
        if b[:4] == b"\x0a\x0d\x0d\x0a":
            both(p)


@pytest.mark.parametrize("content", [b"\x0a\x0d\x0d\x0a", b"\x0a\x0d\x0d\x0a\x1c\0\0\0\x4d\x3c\x2b",
                                     b"\x0a\x0d\x0d\x0a\xff\xff\xff\xff\x4d\x3c\x2b\x1a" + b"\0" * 16,
                                     b"\x0a\x0d\x0d\x0a\x1c\0\0\0\x4d\x3c\x2b\x1a" + b"\0" * 12 + b"\x1d\0\0\0"])
def test_tiny_and_absurd_headers(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "t.pcapng"
    p.write_bytes(content)
    _got, res, _reader, hand = both(p)
    assert hand == [0] and res.findings and res.packets == 0


def test_page_release_and_kept_views(tmp_path: Path, monkeypatch) -> None:
    """Pages behind the loop are released every few pages: results still equal
    and payload views a consumer kept still read the right bytes."""
    import dissect.capture.fastpath as fp

    monkeypatch.setattr(fp, "_DROP", 3 * 4096)
    monkeypatch.setattr(fp, "_KEEP", 4096)
    path, _ = mixed(tmp_path)
    both(path)
    kept: list = []

    class Keep(Collect):
        def data(self, off, data, ts):
            kept.append(data)  # the view itself, not a copy

    r = Reassembler(lambda info, d: Keep() if (info.index, d) == (0, "c2s") else None)
    r.feed_pcapng(CaptureReader(path))
    r.close()
    assert b"".join(bytes(v) for v in kept) == EXPECT[(0, "c2s")]


# -- real captures, converted by editcap; tshark as the oracle --------------------

REAL = sorted((TRACES / "real").glob("*.pcap*"))


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_captures_as_pcapng(tmp_path: Path, path: Path) -> None:
    if path.suffix == ".pcapng":
        ng = path
    else:
        editcap = require_tool("editcap")
        ng = tmp_path / (path.stem + ".pcapng")
        subprocess.run([editcap, "-F", "pcapng", str(path), str(ng)], check=True, capture_output=True)
    got, res, reader, hand = both(ng)
    assert hand == [] and not [f for f in res.findings if f.severity == "error"]
    assert reader.packet_count == res.packets > 0
    if path.suffix == ".pcap":  # the pcap original (fused pcap loop) gives the same flows
        from dissect.capture.tcp import reassemble

        orig = reassemble(path)
        assert [f.to_json() for f in orig.flows] == [f.to_json() for f in res.flows]
    if "loopback" in path.name:
        assert_same_as_tshark(ng)


def test_mixed_file_equals_tshark(tmp_path: Path) -> None:
    path, _ = mixed(tmp_path)
    assert_same_as_tshark(path)


def test_reassemble_dispatches_pcapng_to_the_fused_loop(tmp_path: Path, monkeypatch) -> None:
    import dissect.capture.fastpath_ng as ng
    from dissect.capture.tcp import reassemble

    calls: list = []
    real = ng.feed_pcapng
    monkeypatch.setattr(ng, "feed_pcapng", lambda r, reader: calls.append(reader.path) or real(r, reader))
    path, offs = mixed(tmp_path)
    res = reassemble(path)
    assert calls == [str(path)] and res.packets == len(offs)
    assert res.linktypes == [1, 276, 101, 113, 113, 101, 276, 1]
