# SPDX-License-Identifier: GPL-2.0-only
"""TCP reassembly semantics on generated flows (dissect.capture.synth) and
the inlined fast path checked equal to the per-packet path on real captures."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from dissect.capture import formats as F
from dissect.capture import link as L
from dissect.capture.reader import CaptureReader, RawPacket
from dissect.capture.synth import SynthFlow, write_tcp_capture
from dissect.capture.tcp import Reassembler, _Dir, _Flow, reassemble
from tests.conftest import TRACES
from tests.test_capture_loopback import Collect, collect

RND = random.Random(11)
A = RND.randbytes(200_000)
B = RND.randbytes(30_000)


def packets(tmp_path: Path, flows, **kw) -> list[RawPacket]:
    path = tmp_path / "g.pcapng"
    write_tcp_capture(path, flows, **kw)
    return [RawPacket(p.ts_ns, p.linktype, memoryview(bytes(p.data)), p.orig_len, p.interface, p.offset)
            for p in CaptureReader(path).packets()]


def simple(writes=None, **kw) -> SynthFlow:
    if writes is None:
        writes = [(1_000_000_000, "c2s", A[:100_000]), (1_010_000_000, "s2c", B),
                  (1_020_000_000, "c2s", A[100_000:])]
    return SynthFlow("192.168.1.1:40000", "192.168.1.2:4444", writes, **kw)


def slow_path(pkts, **kw):
    got: dict = {}

    def factory(flow, d):
        c = got[(flow.index, d)] = Collect()
        return c

    r = Reassembler(factory, **kw)
    for p in pkts:
        r.packet(p[0], p[1], p[2], p[5])
    return got, r.close()


REAL = sorted((TRACES / "real").glob("*.pcap*"))


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_fast_path_equals_per_packet_path(path: Path) -> None:
    pkts = list(CaptureReader(path).records())
    fast, rf = collect(pkts)
    slow, rs = slow_path(pkts)
    assert {k: bytes(v.buf) for k, v in fast.items()} == {k: bytes(v.buf) for k, v in slow.items()}
    assert [f.to_json() for f in rf.flows] == [f.to_json() for f in rs.flows]
    assert [f.to_json() for f in rf.findings] == [f.to_json() for f in rs.findings]


@pytest.mark.parametrize("linktype", [F.LINKTYPE_ETHERNET, F.LINKTYPE_LINUX_SLL, F.LINKTYPE_LINUX_SLL2,
                                      F.LINKTYPE_RAW, F.LINKTYPE_NULL, F.LINKTYPE_LOOP])
@pytest.mark.parametrize("v6", [False, True])
def test_link_types_and_ip_versions(tmp_path: Path, linktype: int, v6: bool) -> None:
    fl = simple()
    if v6:
        fl.client, fl.server = "[fd00::1]:40000", "[fd00::2]:4444"
    pk = packets(tmp_path, [fl], linktype=linktype)
    got, res = collect(pk)
    assert bytes(got[(0, "c2s")].buf) == A and bytes(got[(0, "s2c")].buf) == B
    (st,) = res.flows
    assert (st.client, st.server) == (fl.client, fl.server)
    assert st.gaps == [] and st.retransmitted_bytes == 0 and st.syn_seen and st.fin_seen


def test_streaming_delivery_as_soon_as_contiguous(tmp_path: Path) -> None:
    pk = packets(tmp_path, [simple()], mss=1000)
    seen: list[int] = []

    class C(Collect):
        def data(self, offset, data, ts_ns):
            super().data(offset, data, ts_ns)
            seen.append(offset + len(data))

    r = Reassembler(lambda f, d: C() if d == "c2s" else None)
    data_pk = [p for p in pk if L.parse_tcp(p[1], p[2])[9] and L.parse_tcp(p[1], p[2])[1] == bytes([192, 168, 1, 1])]
    # Hold back the 5th data segment: nothing after it is delivered until it comes.
    held = data_pk[4]
    for p in pk:
        if p is held:
            continue
        r.feed([p])
        if p is data_pk[3]:
            assert seen[-1] == 4000
        if p is data_pk[10]:
            assert seen[-1] == 4000  # buffered behind the hole
    r.feed([held])
    assert seen[-1] == len(A)  # the hole filled: everything flushed at once
    res = r.close()
    assert res.flows[0].gaps == []


def test_reorder_window_overflow_declares_the_gap_early(tmp_path: Path) -> None:
    pk = packets(tmp_path, [simple()], mss=1000)
    data_pk = [p for p in pk if L.parse_tcp(p[1], p[2])[9]]
    victim = data_pk[20]
    off = 20 * 1000
    events: list = []

    class C(Collect):
        def gap(self, start, end):
            events.append(("gap", start, end))
            super().gap(start, end)

        def close(self):
            events.append(("close",))

    r = Reassembler(lambda f, d: C() if d == "c2s" else None, window=10_000)
    r.feed(p for p in pk if p is not victim)
    assert ("gap", off, off + 1000) in events and ("close",) not in events  # declared while streaming
    assert max(len(d.pending) for fl in r.flows for d in (fl.c2s, fl.s2c)) == 0
    res = r.close()
    assert res.flows[0].gaps == [{"direction": "c2s", "start": off, "end": off + 1000}]
    assert [f.code for f in res.findings] == ["tcp_reorder_window_overflow", "tcp_gap"]


def test_capture_starts_after_syn_and_with_a_server_ack(tmp_path: Path) -> None:
    pk = packets(tmp_path, [simple()], mss=1000)
    # Drop the handshake and the first 7 client segments; start with an ACK from the server.
    first_data = [i for i, p in enumerate(pk) if L.parse_tcp(p[1], p[2])[9]]
    start = first_data[7]
    while L.parse_tcp(pk[start][1], pk[start][2])[1] != bytes([192, 168, 1, 2]):
        start += 1  # an ACK from the server
    sub = pk[start:]
    got, res = collect(sub)
    (st,) = res.flows
    assert (st.client, st.server) == ("192.168.1.1:40000", "192.168.1.2:4444")
    assert not st.syn_seen and st.gaps == []
    skipped = sum(1 for i in first_data if i < start and L.parse_tcp(pk[i][1], pk[i][2])[1] == bytes([192, 168, 1, 1]))
    assert skipped >= 8
    assert bytes(got[(0, "c2s")].buf) == A[skipped * 1000:]
    assert bytes(got[(0, "s2c")].buf) == B


def test_capture_ends_before_fin_and_ack_proves_missing_tail(tmp_path: Path) -> None:
    pk = packets(tmp_path, [simple()], mss=1000)
    data_pk = [i for i, p in enumerate(pk) if L.parse_tcp(p[1], p[2])[9]]
    last = data_pk[-1]
    # End right after the last data segment: no FIN, no gap.
    got, res = collect(pk[:last + 1])
    assert bytes(got[(0, "c2s")].buf) == A and res.flows[0].gaps == [] and not res.flows[0].fin_seen
    # Remove the last data segment but keep the ACK that covers it: the tail is a gap.
    sub = pk[:last] + pk[last + 1:last + 2]
    assert not L.parse_tcp(sub[-1][1], sub[-1][2])[9]  # the receiver's ACK
    got, res = collect(sub)
    n_last = len(A) % 1000 or 1000
    assert res.flows[0].gaps == [{"direction": "c2s", "start": len(A) - n_last, "end": len(A)}]
    # And a FIN whose sequence number is beyond the data seen.
    fin = [i for i, p in enumerate(pk) if L.parse_tcp(p[1], p[2])[7] & L.TCP_FIN][0]
    sub = pk[:last] + [pk[fin]]
    got, res = collect(sub)
    assert res.flows[0].gaps == [{"direction": "c2s", "start": len(A) - n_last, "end": len(A)}]


def test_unwrap_beyond_4gib_and_across_the_isn_wrap() -> None:
    d = _Dir("c2s", _Flow(0, 0))
    d.base = 0xFFFF_FF00
    assert d.unwrap(0xFFFF_FF00) == 0
    assert d.unwrap(0x0000_0100) == 0x200  # wrapped
    d.nxt = 5 << 30  # 5 GiB into the stream
    seq = (0xFFFF_FF00 + (5 << 30) + 1448) & 0xFFFFFFFF
    assert d.unwrap(seq) == (5 << 30) + 1448
    assert d.unwrap((seq - 3000) & 0xFFFFFFFF) == (5 << 30) + 1448 - 3000  # a retransmission


def test_wraparound_flow(tmp_path: Path) -> None:
    for isn in (0xFFFF_FFFF, 0xFFFF_0000, 0x7FFF_FFFF):
        pk = packets(tmp_path, [simple(isn_client=isn, isn_server=isn ^ 0x8000_0000)])
        got, res = collect(pk)
        assert bytes(got[(0, "c2s")].buf) == A and bytes(got[(0, "s2c")].buf) == B
        assert res.flows[0].gaps == []


def test_roles_and_factory_info(tmp_path: Path) -> None:
    main = SynthFlow("10.0.0.1:50000", "10.0.0.2:4444",
                     [(1_000_000_000, "c2s", b"QEVM\0\0\0\3" + A[:5000]),
                      (1_000_500_000, "s2c", b"\x00\x01\x00\x04\x00\x00\x00\x01"),
                      (1_001_000_000, "c2s", A[5000:9000])])
    mfd = SynthFlow("10.0.0.1:50002", "10.0.0.2:4444",
                    [(1_000_200_000, "c2s", bytes.fromhex("1122334400000001") + A[:3000])])
    other = SynthFlow("10.0.0.1:50004", "10.0.0.3:22", [(1_000_100_000, "c2s", b"SSH-2.0-x\r\n")])
    # The first 4 bytes arrive alone: classification waits for 8.
    split = SynthFlow("10.0.0.1:50006", "10.0.0.2:4444",
                      [(1_000_300_000, "c2s", b"QEVM"), (1_000_400_000, "c2s", b"\0\0\0\3rest")])
    pk = packets(tmp_path, [main, mfd, other, split])
    calls = []

    def factory(flow, d):
        calls.append((flow.index, d, flow.role))
        return Collect()

    res = reassemble(pk, factory)
    assert [(f.flow, f.role) for f in res.flows] == [(0, "main"), (1, "other"), (2, "multifd"), (3, "main")]
    assert sorted(calls) == [(0, "c2s", "main"), (0, "s2c", "main"), (1, "c2s", "other"),
                             (2, "c2s", "multifd"), (3, "c2s", "main")]


def test_port_reuse_makes_a_new_flow(tmp_path: Path) -> None:
    f1 = simple([(1_000_000_000, "c2s", A[:5000])], isn_client=1000)
    f2 = simple([(2_000_000_000, "c2s", A[5000:8000])], isn_client=900_000)
    pk = packets(tmp_path, [f1, f2])
    got, res = collect(pk)
    assert len(res.flows) == 2
    assert bytes(got[(0, "c2s")].buf) == A[:5000] and bytes(got[(1, "c2s")].buf) == A[5000:8000]


def test_syn_ack_first_orients_the_flow(tmp_path: Path) -> None:
    pk = packets(tmp_path, [simple()])
    got, res = collect(pk[1:])  # the SYN was not captured
    assert (res.flows[0].client, res.flows[0].server) == ("192.168.1.1:40000", "192.168.1.2:4444")
    assert bytes(got[(0, "c2s")].buf) == A


# -- property: any segmentation, order and duplication gives the same stream --

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dissect.capture.synth import _FrameBuilder  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=1, max_size=3000),
       cuts=st.lists(st.integers(0, 3000), max_size=12),
       overlaps=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 400)), max_size=6),
       swaps=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3)), max_size=10),
       isn=st.integers(0, 0xFFFFFFFF))
def test_any_segmentation_order_and_duplication(data, cuts, overlaps, swaps, isn) -> None:
    fb = _FrameBuilder(F.LINKTYPE_ETHERNET, 4, False)
    c, s = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    bounds = sorted({0, len(data), *[x % len(data) for x in cuts]})
    pieces = [(a, b) for a, b in zip(bounds, bounds[1:])]
    pieces += [(a % len(data), min(len(data), a % len(data) + n)) for a, n in overlaps]
    segs = [fb.frame(c, s, 1000, 2000, isn + 1 + a, 1, L.TCP_ACK, data[a:b], True) for a, b in pieces]
    for i, k in swaps:  # local reordering
        if segs:
            i %= len(segs)
            j = min(len(segs) - 1, i + k)
            segs[i], segs[j] = segs[j], segs[i]
    frames = [fb.frame(c, s, 1000, 2000, isn, 0, L.TCP_SYN, b"", True)] + segs
    pk = [RawPacket(i * 1000, F.LINKTYPE_ETHERNET, memoryview(f), len(f), 0, i) for i, f in enumerate(frames)]
    got, res = collect(pk)
    assert bytes(got[(0, "c2s")].buf) == data
    (fl,) = res.flows
    assert fl.gaps == [] and fl.c2s_bytes == len(data) and fl.overlap_mismatch_bytes == 0
    assert fl.retransmitted_bytes == sum(b - a for a, b in pieces) - len(data)


def _generic(path: Path):
    got: dict = {}

    def factory(flow, d):
        c = got[(flow.index, d)] = Collect()
        return c

    r = Reassembler(factory)
    reader = CaptureReader(path)
    r.feed(reader.records())
    res = r.close()
    res.findings[:0] = reader.findings
    return got, res


def _same(path: Path) -> None:
    fused, rf = collect(path)  # reassemble(path): the fused pcap loop
    generic, rg = _generic(path)
    assert {k: bytes(v.buf) for k, v in fused.items()} == {k: bytes(v.buf) for k, v in generic.items()}
    assert [f.to_json() for f in rf.flows] == [f.to_json() for f in rg.flows]
    assert [f.to_json() for f in rf.findings] == [f.to_json() for f in rg.findings]
    assert rf.packets == rg.packets


@pytest.mark.parametrize("path", [p for p in REAL if p.suffix == ".pcap"], ids=lambda p: p.name)
def test_fused_pcap_loop_equals_generic_path(path: Path) -> None:
    _same(path)


def mutations(data: bytes, count: int, seed: int, first: int = 0):
    """``(k, bytes)`` of ``count`` damaged copies of ``data``, in turn cut, with 4 bytes
    overwritten, or with 1..40 random bytes inserted, at random offsets from ``first`` on."""
    rnd = random.Random(seed)
    for k in range(count):
        b = bytearray(data)
        if k % 3 == 0:
            del b[rnd.randrange(first, len(b)):]
        elif k % 3 == 1:
            for _ in range(4):
                b[rnd.randrange(first, len(b))] = rnd.randrange(256)
        else:
            a = rnd.randrange(first, len(b))
            b[a:a] = rnd.randbytes(rnd.randint(1, 40))
        yield k, bytes(b)


def test_fused_pcap_loop_hands_over_on_bad_input(tmp_path: Path) -> None:
    data = (TRACES / "real" / "loopback-ipv4.pcap").read_bytes()
    for k, b in mutations(data, 30, seed=3, first=24):
        path = tmp_path / f"m{k}.pcap"
        path.write_bytes(b)
        _same(path)


def _frames(data: bytes, pieces, isn: int = 5000, flip: dict | None = None) -> list[RawPacket]:
    """SYN then one segment per (start, end) piece of ``data`` (bytes at the
    offsets in ``flip`` altered in that piece's copy)."""
    fb = _FrameBuilder(F.LINKTYPE_ETHERNET, 4, False)
    c, s = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    frames = [fb.frame(c, s, 1000, 2000, isn, 0, L.TCP_SYN, b"", True)]
    for n, (a, b) in enumerate(pieces):
        payload = bytearray(data[a:b])
        for off, val in (flip or {}).get(n, {}).items():
            payload[off - a] = val
        frames.append(fb.frame(c, s, 1000, 2000, isn + 1 + a, 1, L.TCP_ACK, bytes(payload), True))
    return [RawPacket(i * 1000, F.LINKTYPE_ETHERNET, memoryview(f), len(f), 0, i) for i, f in enumerate(frames)]


def test_ring_is_small_for_short_flows_and_checks_old_retransmissions() -> None:
    data = RND.randbytes(1_000_000)
    r = Reassembler(lambda f, d: Collect())
    r.feed(_frames(data[:1000], [(0, 1000)]))
    assert len(r.flows[0].c2s.ring) == 4096  # not the full 512 KiB
    # 1 MB in 1000-byte segments, then a retransmission of bytes 600,000..601,000
    # (within the last 512 KiB) with one byte changed, and one of 100,000..101,000
    # (older than the ring: counted, not compared).
    pieces = [(a, a + 1000) for a in range(0, len(data), 1000)] + [(600_000, 601_000), (100_000, 101_000)]
    pk = _frames(data, pieces, flip={len(pieces) - 2: {600_500: data[600_500] ^ 1}})
    got, res = collect(pk)
    assert bytes(got[(0, "c2s")].buf) == data
    (fl,) = res.flows
    assert fl.retransmitted_bytes == 2000 and fl.overlap_mismatch_bytes == 1
    (f,) = [f for f in res.findings if f.code == "tcp_overlap_mismatch"]
    assert (f.context["start"], f.context["end"]) == (600_500, 600_501)


def test_retransmission_into_a_declared_gap_is_not_a_mismatch() -> None:
    data = RND.randbytes(50_000)
    pieces = [(a, a + 1000) for a in range(0, 50_000, 1000) if a != 10_000] + [(10_000, 11_000)]
    got, res = collect(_frames(data, pieces), window=5000)  # the hole is declared lost early
    (fl,) = res.flows
    assert fl.gaps == [{"direction": "c2s", "start": 10_000, "end": 11_000}]
    assert fl.overlap_mismatch_bytes == 0 and fl.retransmitted_bytes == 1000


@pytest.mark.parametrize("linktype", [F.LINKTYPE_ETHERNET, F.LINKTYPE_LINUX_SLL2])
def test_fused_pcap_loop_flow_cache_follows_port_reuse(tmp_path: Path, linktype: int) -> None:
    """feed_pcap looks IPv4 flows up by their raw address/port bytes (a cache of
    the flow table, emptied whenever the generic path ran): a reused 4-tuple
    must reach the new flow, interleaved flows their own, as the generic path does."""
    f1 = simple([(1_000_000_000, "c2s", A[:50_000]), (1_001_000_000, "s2c", B[:9000])], isn_client=1000)
    f2 = simple([(2_000_000_000, "c2s", A[50_000:90_000])], isn_client=900_000)
    f3 = SynthFlow("192.168.1.1:40001", "192.168.1.2:4444", [(1_000_500_000, "c2s", A[90_000:150_000])])
    f4 = SynthFlow("[2001:db8::1]:40000", "[2001:db8::2]:4444", [(1_000_200_000, "c2s", B)])
    path = tmp_path / "reuse.pcap"
    write_tcp_capture(path, [f1, f2, f3, f4], fmt="pcap", linktype=linktype)
    _same(path)
    got, res = collect(list(CaptureReader(path).records()))
    assert len(res.flows) == 4
    assert bytes(got[(0, "c2s")].buf) == A[:50_000] and bytes(got[(3, "c2s")].buf) == A[50_000:90_000]


@pytest.mark.parametrize("path", [p for p in REAL if p.suffix == ".pcap"], ids=lambda p: p.name)
def test_fused_pcap_loop_small_chunks_and_page_release(path: Path, monkeypatch) -> None:
    """The fused loop maps the file and mirrors the reader's chunk reads (where its
    timestamp window moves) and releases pages behind it: with tiny chunks and
    release every few pages, streams, stats and findings still equal the generic
    path's, and payload views kept by a consumer still read the right bytes."""
    import dissect.capture.fastpath as fp
    import dissect.capture.reader as rd

    monkeypatch.setattr(rd, "CHUNK", 5000)
    monkeypatch.setattr(fp, "_DROP", 3 * 4096)
    monkeypatch.setattr(fp, "_KEEP", 4096)
    _same(path)
    kept: list = []

    class Keep:
        def data(self, off, data, ts):
            kept.append((off, data))  # the view itself, not a copy

        def gap(self, start, end):
            pass

        def close(self):
            pass

    from dissect.capture.tcp import reassemble

    reassemble(path, lambda info, d: Keep() if (info.index, d) == (0, "c2s") else None)
    generic, _ = _generic(path)
    joined = b"".join(bytes(v) for _, v in kept)
    assert joined == bytes(generic[(0, "c2s")].buf)
