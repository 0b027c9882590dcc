# SPDX-License-Identifier: GPL-2.0-only
"""The reader's chunked reads (dissect.capture.reader: pcap, dissect.capture.pcapng_walk:
pcapng).  Each walk refills its buffer at two places, a header cut by the end of the
chunk and a record/block body cut by it (the same refill written twice in the hot loop,
deliberately); with chunks of a few bytes every record, finding and count equals the
read of the whole file in one chunk.  The real captures are all smaller than CHUNK, so
the default read is the one-chunk reference.

Damaged pcapng files too: the pcapng walk has no per-chunk state.  (The pcap walk's
timestamp plausibility window moves at every refill by design, mirrored by the fused
loop: damaged pcap files are held equal to that loop in test_capture_reassembly.py.)
"""
from __future__ import annotations

from pathlib import Path

import pytest

import dissect.capture.pcapng_walk as pcapng_walk
import dissect.capture.reader as reader
from dissect.capture.limits import CHUNK
from dissect.capture.reader import CaptureReader
from tests.conftest import TRACES
from tests.test_capture_reassembly import mutations

REAL = sorted((TRACES / "real").glob("*.pcap*"))


def read_all(path: Path) -> tuple[list, list, int]:
    r = CaptureReader(path)
    recs = [(ts, lt, bytes(d), orig, iface, off) for ts, lt, d, orig, iface, off in r.records()]
    return recs, [f.to_json() for f in r.findings], r.packet_count


def small_chunks(monkeypatch, size: int) -> None:
    monkeypatch.setattr(reader, "CHUNK", size)
    monkeypatch.setattr(pcapng_walk, "CHUNK", size)


@pytest.mark.parametrize("chunk", [7, 100, 5000])
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_small_chunks_equal_one_read(monkeypatch, path: Path, chunk: int) -> None:
    assert path.stat().st_size < CHUNK  # the default read takes the whole file at once
    want = read_all(path)
    assert want[2] > 50 and len(want[0]) == want[2]
    small_chunks(monkeypatch, chunk)
    assert read_all(path) == want


def test_small_chunks_equal_one_read_on_damaged_pcapng(tmp_path: Path, monkeypatch) -> None:
    data = (TRACES / "real" / "loopback-ipv6.pcapng").read_bytes()
    cases = []
    for k, b in mutations(data, 12, seed=11, first=28):
        p = tmp_path / f"m{k}.pcapng"
        p.write_bytes(b)
        cases.append((p, read_all(p)))
    assert any(f for _, (_, f, _) in cases)  # the damage is seen
    small_chunks(monkeypatch, 64)
    for p, want in cases:
        assert read_all(p) == want, p.name
