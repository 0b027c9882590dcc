# SPDX-License-Identifier: GPL-2.0-only
"""Mangled copies of the real QEMU 7.2 captures (issue 3, tests and evidence):
duplicated, swapped and overlapping re-segmented packets decode to exactly
the units of the clean capture; a removed segment is reported with its exact
byte range and everything before it and after the resynchronisation point
still decodes.  Packet surgery uses engineer C's helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

from analysis.emit.migration import emit_capture
from tests.test_capture_mangled import Pkt, data_indexes, load, resegment, save, stream_offsets

SOURCES = ["qemu-tcp-returnpath.pcap", "qemu-tcp-multifd.pcap"]
#: Retransmission accounting and timestamps legitimately differ between the copies.
VOLATILE = {"ts", "ts_first", "ts_last", "retransmitted_bytes", "last_ts", "last_ts_ns", "first_ts", "first_ts_ns",
            "packets"}


def units(path: Path) -> list[dict]:
    return [{k: v for k, v in o.items() if k not in VOLATILE} for o in emit_capture(path)
            if not (o["kind"] == "finding" and o["code"].startswith("tcp_"))]


@pytest.fixture(params=SOURCES, scope="module")
def clean(request, tmp_path_factory):
    pkts = load(request.param)
    path = save(tmp_path_factory.mktemp("clean") / "clean.pcap", pkts)
    return pkts, units(path)


def test_duplicated_segments_decode_identically(clean, tmp_path):
    pkts, want = clean
    out = []
    for i, p in enumerate(pkts):
        out.append(p)
        if i in data_indexes(pkts)[::3]:
            out.append(p)
    assert units(save(tmp_path / "dup.pcap", out)) == want


def test_swapped_segments_decode_identically(clean, tmp_path):
    pkts, want = clean
    out = list(pkts)
    idx = data_indexes(pkts, pkts[data_indexes(pkts)[0]].key)
    for j in range(0, len(idx) - 1, 4):
        out[idx[j]], out[idx[j + 1]] = out[idx[j + 1]], out[idx[j]]
    assert units(save(tmp_path / "swap.pcap", out)) == want


def test_overlapping_resegmentation_decodes_identically(clean, tmp_path):
    pkts, want = clean
    out: list[Pkt] = []
    for i, p in enumerate(pkts):
        n = len(p.payload) if isinstance(p.seg, tuple) else 0
        if n >= 300:
            out += [resegment(p, 0, 2 * n // 3), resegment(p, n // 3, n)]
        else:
            out.append(p)
    assert units(save(tmp_path / "overlap.pcap", out)) == want


def test_removed_segment_reports_range_and_decodes_the_rest(clean, tmp_path):
    pkts, want = clean
    offs = stream_offsets(pkts)
    main = next(pkts[i].key for i in data_indexes(pkts) if pkts[i].payload.startswith(b"QEVM"))
    idx = data_indexes(pkts, main)  # the main channel's client-to-server segments
    victim = idx[len(idx) // 2]
    _, off, n = offs[victim]
    got = units(save(tmp_path / "removed.pcap", pkts[:victim] + pkts[victim + 1:]))
    gaps = [o for o in got if o["kind"] == "finding" and o["code"] == "stream_gap"]
    assert [(g["offset"], g["gap_end"], g["flow"]) for g in gaps] == [(off, off + n, 0)]
    # every section that ends before the hole is decoded exactly as in the clean capture
    before = [o for o in want if o["kind"] == "section" and o["offset"] + o["length"] <= off]
    assert [o for o in got if o["kind"] == "section" and o["offset"] + (o["length"] or 0) <= off] == before
    # after the hole: resynchronised, the final sections, EOF and the vmdesc decode as in the clean capture
    sec_after = [o for o in want if o["kind"] == "section" and o["offset"] > off + n]
    got_after = [o for o in got if o["kind"] == "section" and o["offset"] > off + n]
    assert got_after and got_after == sec_after[-len(got_after):]
    assert [o for o in got if o["kind"] == "vmdesc"] == [o for o in want if o["kind"] == "vmdesc"]
    assert [o for o in got if o["kind"] == "rp_message"] == [o for o in want if o["kind"] == "rp_message"]


def test_removed_multifd_segment_inside_page_data():
    """A segment lost inside a multifd packet's page data: the packet structure
    survives, so every packet and page count of QEMU's trace is still decoded."""
    import re

    from tests.test_qemu_stream_real import REAL, info_migrate

    pkts = load("qemu-tcp-multifd.pcap")
    offs = stream_offsets(pkts)
    mf = next(pkts[i].key for i in data_indexes(pkts) if pkts[i].payload.startswith(bytes.fromhex("11223344")))
    idx = data_indexes(pkts, mf)
    victim = max(idx, key=lambda i: (len(pkts[i].payload), -abs(i - idx[len(idx) // 2])))
    _, off, n = offs[victim]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        objs = list(emit_capture(save(Path(d) / "r.pcap", pkts[:victim] + pkts[victim + 1:])))
    gaps = [o for o in objs if o["kind"] == "finding" and o["code"] == "stream_gap"]
    assert [(g["offset"], g["gap_end"], g["severity"]) for g in gaps] == [(off, off + n, "warning")]
    qemu = info_migrate("qemu-tcp-multifd.pcap")
    zero = sum(o["zero_pages"] or 0 for o in objs if o["kind"] in ("ram", "multifd_packet"))
    normal = sum(o["normal_pages"] or 0 for o in objs if o["kind"] in ("ram", "multifd_packet"))
    assert (zero, normal) == (qemu["duplicate"], qemu["normal"])
    traced = len(re.findall(r"multifd_send channel", (REAL / "qemu-tcp-multifd.src.log").read_text()))
    assert sum(1 for o in objs if o["kind"] == "multifd_packet" and o["type"] != "init") == traced
