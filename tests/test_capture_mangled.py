# SPDX-License-Identifier: GPL-2.0-only
"""Mangled captures made from real ones: duplicated, swapped and overlapping
re-segmented packets reassemble byte-identically to the clean capture (and
to tshark); a removed segment, a file cut mid-packet and a snap length
report the exact missing byte ranges and deliver everything else."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from dissect.capture import link as L
from dissect.capture.reader import CaptureReader
from dissect.capture.writer import PcapWriter
from tests.conftest import TRACES
from tests.test_capture_loopback import collect
from tests.test_capture_tshark import assert_same_as_tshark, tshark_follow

SOURCES = ["loopback-ipv4.pcap", "loopback-any-sll2-ns.pcap", "qemu-tcp-returnpath.pcap"]


class Pkt:
    def __init__(self, ts: int, linktype: int, frame: bytes) -> None:
        self.ts, self.linktype, self.frame = ts, linktype, frame
        self.seg = L.parse_tcp(linktype, frame)

    @property
    def payload(self) -> bytes:
        s = self.seg
        return self.frame[s[8]:s[8] + s[9]]

    @property
    def key(self) -> tuple:
        s = self.seg
        return (s[1], s[3])


def load(name: str) -> list[Pkt]:
    path = TRACES / "real" / name
    if not path.exists():
        pytest.skip(f"{path} missing")
    return [Pkt(p.ts_ns, p.linktype, bytes(p.data)) for p in CaptureReader(path).packets()]


def save(path: Path, pkts: list[Pkt]) -> Path:
    with open(path, "wb") as f:
        w = PcapWriter(f, pkts[0].linktype)
        for p in pkts:
            w.write(p.ts, p.frame)
    return path


def resegment(p: Pkt, a: int, b: int) -> Pkt:
    """The same segment carrying only payload bytes [a, b) (seq and IP length adjusted)."""
    s = p.seg
    ver, ipoff = L.l3_offset(p.linktype, p.frame)  # type: ignore[misc]
    start = s[8]
    hdr = bytearray(p.frame[:start])
    n = b - a
    if ver == 4:
        ihl = (hdr[ipoff] & 0x0F) * 4
        struct.pack_into("!H", hdr, ipoff + 2, start - ipoff + n)
        tcp = ipoff + ihl
    else:
        struct.pack_into("!H", hdr, ipoff + 4, start - ipoff - 40 + n)
        tcp = ipoff + 40
    struct.pack_into("!I", hdr, tcp + 4, (s[5] + a) & 0xFFFFFFFF)
    return Pkt(p.ts, p.linktype, bytes(hdr) + p.payload[a:b])


def data_indexes(pkts: list[Pkt], key=None) -> list[int]:
    return [i for i, p in enumerate(pkts) if isinstance(p.seg, tuple) and p.seg[9] and
            (key is None or p.key == key)]


def stream_offsets(pkts: list[Pkt]) -> dict[int, tuple[tuple, int, int]]:
    """packet index -> (direction key, stream offset, payload length) from the SYNs."""
    base: dict[tuple, int] = {}
    out = {}
    for i, p in enumerate(pkts):
        s = p.seg
        if not isinstance(s, tuple):
            continue
        if s[7] & L.TCP_SYN:
            base[p.key] = (s[5] + 1) & 0xFFFFFFFF
        elif s[9]:
            out[i] = (p.key, (s[5] - base[p.key]) & 0xFFFFFFFF, s[9])
    return out


def streams(path_or_pkts) -> tuple[dict, object]:
    got, res = collect(path_or_pkts)
    return {k: bytes(v.buf) for k, v in got.items()}, res


@pytest.fixture(params=SOURCES)
def clean(request, tmp_path: Path):
    pkts = load(request.param)
    path = save(tmp_path / "clean.pcap", pkts)
    s, res = streams(path)
    assert all(not fl.gaps for fl in res.flows)
    return pkts, s, res


def test_duplicated_segments(clean, tmp_path: Path) -> None:
    pkts, want, _ = clean
    idx = data_indexes(pkts)
    out, dup_bytes = [], 0
    for i, p in enumerate(pkts):
        out.append(p)
        if i in idx[::3]:
            out.append(p)
            dup_bytes += len(p.payload)
    late = pkts[idx[1]]  # and one retransmitted much later
    out.insert(min(len(out) - 1, idx[1] + 12), late)
    dup_bytes += len(late.payload)
    path = save(tmp_path / "dup.pcap", out)
    got, res = streams(path)
    assert got == want
    assert sum(fl.retransmitted_bytes for fl in res.flows) == dup_bytes
    assert sum(fl.overlap_mismatch_bytes for fl in res.flows) == 0
    assert_same_as_tshark(path)


def test_swapped_segments(clean, tmp_path: Path) -> None:
    pkts, want, _ = clean
    out = list(pkts)
    key = pkts[data_indexes(pkts)[0]].key
    idx = data_indexes(pkts, key)
    swapped = 0
    for j in range(0, len(idx) - 1, 4):
        a, b = idx[j], idx[j + 1]
        out[a], out[b] = out[b], out[a]
        swapped += 1
    assert swapped >= 3
    path = save(tmp_path / "swap.pcap", out)
    got, res = streams(path)
    assert got == want
    assert sum(fl.retransmitted_bytes for fl in res.flows) == 0
    assert_same_as_tshark(path)


def test_overlapping_resegmentation(clean, tmp_path: Path) -> None:
    pkts, want, _ = clean
    out: list[Pkt] = []
    overlap = 0
    big = [i for i in data_indexes(pkts) if len(pkts[i].payload) >= 300]
    assert len(big) >= 3
    for i, p in enumerate(pkts):
        if i in big:
            n = len(p.payload)
            # [0, 2n/3) then [n/3, n): the middle third arrives twice.
            out += [resegment(p, 0, 2 * n // 3), resegment(p, n // 3, n)]
            overlap += 2 * n // 3 - n // 3
        else:
            out.append(p)
    path = save(tmp_path / "overlap.pcap", out)
    got, res = streams(path)
    assert got == want
    assert sum(fl.retransmitted_bytes for fl in res.flows) == overlap
    assert_same_as_tshark(path)


def test_overlap_ahead_of_a_hole_and_out_of_order(clean) -> None:
    """Re-segmented pieces arriving in reverse order, each overlapping the next."""
    pkts, want, _ = clean
    out: list = []
    big = [i for i in data_indexes(pkts) if len(pkts[i].payload) >= 300]
    for i, p in enumerate(pkts):
        if i in big:
            n = len(p.payload)
            out += [resegment(p, n // 2, n), resegment(p, n // 4, 3 * n // 4), resegment(p, 0, n // 2)]
        else:
            out.append(p)
    got, res = streams([_raw(p) for p in out])
    assert got == want


def _raw(p: Pkt):
    from dissect.capture.reader import RawPacket

    return RawPacket(p.ts, p.linktype, memoryview(p.frame), len(p.frame), 0, 0)


def test_removed_segment(clean, tmp_path: Path) -> None:
    pkts, want, res0 = clean
    offs = stream_offsets(pkts)
    key = pkts[data_indexes(pkts)[0]].key
    idx = data_indexes(pkts, key)
    victim = idx[len(idx) // 2]
    _, off, n = offs[victim]
    out = pkts[:victim] + pkts[victim + 1:]
    path = save(tmp_path / "removed.pcap", out)
    got, res = streams(path)
    fl = res.flows[0]
    assert fl.gaps == [{"direction": "c2s", "start": off, "end": off + n}]
    c = got[(0, "c2s")]
    # Everything before and after the hole is delivered; the hole is the gap.
    assert c[:off] == want[(0, "c2s")][:off] and c[off + n:] == want[(0, "c2s")][off + n:]
    assert got[(0, "s2c")] == want[(0, "s2c")]
    gap_findings = [f for f in res.findings if f.code == "tcp_gap"]
    assert [(f.context["start"], f.context["end"]) for f in gap_findings] == [(off, off + n)]
    assert_same_as_tshark(path)


def test_capture_cut_mid_packet(clean, tmp_path: Path) -> None:
    pkts, want, _ = clean
    offs = stream_offsets(pkts)
    key = pkts[data_indexes(pkts)[0]].key
    idx = [i for i in data_indexes(pkts, key) if len(pkts[i].payload) >= 100]
    victim = idx[len(idx) // 2]
    _, off, n = offs[victim]
    path = save(tmp_path / "full.pcap", pkts[:victim + 1])
    data = path.read_bytes()
    # The file ends 40 bytes into the victim's payload.
    rec = len(data) - len(pkts[victim].frame) - 16
    keep = pkts[victim].seg[8] + 40
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:rec + 16 + keep])
    got, res = streams(cut)
    fl = res.flows[0]
    assert fl.gaps == [{"direction": "c2s", "start": off + 40, "end": off + n}]
    assert got[(0, "c2s")][:off + 40] == want[(0, "c2s")][:off + 40]
    assert got[(0, "c2s")][off + 40:] == b"\0" * (n - 40)  # Collect fills gaps with zeros
    trunc = [f for f in res.findings if f.code == "pcap_truncated_record"]
    assert len(trunc) == 1 and trunc[0].offset == rec
    assert trunc[0].context["missing"] == len(pkts[victim].frame) - keep
    # tshark (which exits 2 on this file) drops the cut packet altogether and
    # marks nothing; it agrees with every byte before it.
    (t,) = tshark_follow(cut).values()
    assert t["0"] == got[(0, "c2s")][:off]


def test_snap_length_truncation_is_a_gap(clean, tmp_path: Path) -> None:
    pkts, want, _ = clean
    offs = stream_offsets(pkts)
    path = tmp_path / "snap.pcap"
    snap = 200
    with open(path, "wb") as f:
        w = PcapWriter(f, pkts[0].linktype, snaplen=snap)
        for p in pkts:
            w.write(p.ts, p.frame[:snap], orig_len=len(p.frame))
    got, res = streams(path)
    expected: dict[str, list[tuple[int, int]]] = {"c2s": [], "s2c": []}
    c2s_key = pkts[0].key  # the SYN's sender
    for i, (key, off, n) in sorted(offs.items(), key=lambda kv: kv[1][1]):
        have = max(0, snap - pkts[i].seg[8])
        if have < n:
            expected["c2s" if key == c2s_key else "s2c"].append((off + have, off + n))
    for d in ("c2s", "s2c"):
        # One gap per cut segment (never merged: captured bytes sit between them).
        gaps = [(g["start"], g["end"]) for g in res.flows[0].gaps if g["direction"] == d]
        assert gaps == sorted(expected[d]), d
        # Every captured byte is delivered at its place.
        buf = got.get((0, d), b"")
        for i, (key, off, n) in offs.items():
            if ("c2s" if key == c2s_key else "s2c") == d:
                have = min(n, max(0, snap - pkts[i].seg[8]))
                assert buf[off:off + have] == want[(0, d)][off:off + have]
    # tshark concatenates the captured parts silently (no marker for bytes the
    # snap length cut): equal to our stream with the gaps taken out.
    (t,) = tshark_follow(path).values()
    for node, d in (("0", "c2s"), ("1", "s2c")):
        buf, kept, pos = got.get((0, d), b""), bytearray(), 0
        for g in res.flows[0].gaps:
            if g["direction"] == d:
                kept += buf[pos:g["start"]]
                pos = g["end"]
        kept += buf[pos:]
        assert t[node] == bytes(kept), d


def test_differing_overlap_is_a_finding(clean) -> None:
    pkts, want, _ = clean
    offs = stream_offsets(pkts)
    key = pkts[data_indexes(pkts)[0]].key
    i = [j for j in data_indexes(pkts, key) if len(pkts[j].payload) >= 100][2]
    _, off, n = offs[i]
    p = pkts[i]
    bad = bytearray(p.frame)
    s = p.seg
    bad[s[8] + 10] ^= 0xFF
    bad[s[8] + 12] ^= 0xFF
    forged = Pkt(p.ts, p.linktype, bytes(bad))
    out = pkts[:i + 1] + [forged] + pkts[i + 1:]
    got, res = streams([_raw(q) for q in out])
    assert got == want  # the first copy wins
    (f,) = [f for f in res.findings if f.code == "tcp_overlap_mismatch"]
    assert (f.context["start"], f.context["end"]) == (off + 10, off + 13)
    assert res.flows[0].overlap_mismatch_bytes == 2


def test_capture_starting_mid_stream(clean, tmp_path: Path) -> None:
    """No handshake and no first data: both directions start at the first
    payload seen, like tshark's follow."""
    pkts, want, _ = clean
    idx = data_indexes(pkts)
    start = idx[len(idx) // 3]
    offs = stream_offsets(pkts)
    path = save(tmp_path / "mid.pcap", pkts[start:])
    got, res = streams(path)
    (fl,) = res.flows
    assert not fl.syn_seen and fl.gaps == []
    key0 = pkts[0].key  # the SYN's sender is still found to be the client
    assert fl.client.endswith(f":{key0[1]}")
    for d, key in (("c2s", key0), ("s2c", next(p.key for p in pkts if p.key != key0))):
        first = min((o for i, (k, o, n) in offs.items() if k == key and i >= start), default=None)
        if first is not None:
            assert got[(0, d)] == want[(0, d)][first:]
    assert_same_as_tshark(path)
