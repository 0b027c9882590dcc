# SPDX-License-Identifier: GPL-2.0-only
"""Round trips through the writers and bad input: corrupted and truncated
real captures never raise, never hang, and keep the good packets."""
from __future__ import annotations

import io
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.capture.reader import CaptureReader
from dissect.capture.tcp import reassemble
from dissect.capture.writer import PcapngWriter, PcapWriter
from tests.conftest import TRACES

REAL = TRACES / "real"

packets_st = st.lists(st.tuples(st.integers(0, 2**62), st.binary(max_size=300)), max_size=20)


@settings(max_examples=40, deadline=None)
@given(pk=packets_st, ns=st.booleans(), bo=st.sampled_from("<>"), linktype=st.integers(0, 300))
def test_pcap_round_trip(tmp_path_factory, pk, ns, bo, linktype) -> None:
    b = io.BytesIO()
    w = PcapWriter(b, linktype, nanosecond=ns, byteorder=bo)
    pk = [(ts % (2**32 * 10**9), data) for ts, data in pk]
    for ts, data in pk:
        w.write(ts, data)
    path = tmp_path_factory.mktemp("rt") / "x.pcap"
    path.write_bytes(b.getvalue())
    r = CaptureReader(path)
    got = [(p.ts_ns, bytes(p.data), p.linktype) for p in r.packets()]
    assert got == [(ts if ns else ts // 1000 * 1000, data, linktype) for ts, data in pk]
    assert r.findings == []


@settings(max_examples=40, deadline=None)
@given(sections=st.lists(st.tuples(st.sampled_from("<>"),
                                   st.lists(st.tuples(st.integers(0, 300), st.sampled_from([6, 9, 0x86, 0x8A])),
                                            min_size=1, max_size=3),
                                   st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**60),
                                                      st.binary(max_size=100)), max_size=8)),
                         min_size=1, max_size=3))
def test_pcapng_round_trip(tmp_path_factory, sections) -> None:
    b = io.BytesIO()
    want = []
    nif_before = 0
    for bo, ifaces, pkts in sections:
        # Each writer starts a new section (SHB) in its own byte order on the same file.
        w = PcapngWriter(b, byteorder=bo)
        units = []
        for lt, res in ifaces:
            w.add_interface(lt, tsresol=res)
            units.append((lt, 10**res if res < 0x80 else 2 ** (res & 0x7F)))
        for k, ts, data in pkts:
            k %= len(ifaces)
            w.write(ts, data, interface=k)
            lt, u = units[k]
            want.append(((ts * u // 10**9) * 10**9 // u, lt, data, nif_before + k))
        nif_before += len(ifaces)
    path = tmp_path_factory.mktemp("rt") / "x.pcapng"
    path.write_bytes(b.getvalue())
    r = CaptureReader(path)
    got = [(p.ts_ns, p.linktype, bytes(p.data), p.interface) for p in r.packets()]
    assert got == want
    assert r.findings == []


def _mutations(data: bytes, rnd: random.Random, n: int):
    for _ in range(n):
        b = bytearray(data)
        kind = rnd.randrange(4)
        if kind == 0:  # flip bytes
            for _ in range(rnd.randint(1, 20)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif kind == 1:  # cut
            del b[rnd.randrange(len(b)):]
        elif kind == 2:  # delete a range
            a = rnd.randrange(len(b))
            del b[a:a + rnd.randint(1, 5000)]
        else:  # insert garbage
            a = rnd.randrange(len(b))
            b[a:a] = rnd.randbytes(rnd.randint(1, 300))
        yield bytes(b)


def test_corrupted_real_captures_never_raise(tmp_path: Path) -> None:
    rnd = random.Random(2026)
    for name in ("loopback-ipv4.pcap", "loopback-ipv6.pcapng"):
        data = (REAL / name).read_bytes()
        clean = [bytes(p.data) for p in CaptureReader(REAL / name).packets()]
        for i, mutated in enumerate(_mutations(data, rnd, 25)):
            path = tmp_path / f"{i}-{name}"
            path.write_bytes(mutated)
            r = CaptureReader(path)
            got = [bytes(p.data) for p in r.packets()]
            res = reassemble(path)  # must not raise either
            assert res.packets == len(got)
            if mutated != data:
                # Most packets survive a local corruption.
                same = len(set(got) & set(clean))
                assert same >= len(clean) // 3 or len(mutated) < len(data) // 2, (name, i, same)
