# SPDX-License-Identifier: GPL-2.0-only
"""The skip hint (StreamParser.data returns the bytes of a page body it does
not need; tcp.Reassembler then drops the packets inside it without a call)
is a fast path: decoding with it gives exactly the units — timestamps
included — of decoding with a parser whose hint is ignored, on generated
MSS-1448 captures (where most packets lie inside page bodies), on mangled
copies of them (a segment removed inside a page body or across a record,
the file cut inside a page body, swapped and duplicated segments) and on the
real QEMU 7.2 captures."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import dissect.qemu.session as session
from analysis.emit.migration import emit_capture
from dissect.capture.synth import write_tcp_capture
from dissect.qemu.build_migration import MigrationSpec, VfioDeviceSpec, build_migration
from dissect.qemu.stream import StreamParser
from tests.test_capture_mangled import Pkt, data_indexes, save, stream_offsets

REAL = Path(__file__).resolve().parent.parent / "traces" / "real"


class NoHintParser(StreamParser):
    """The twin: every byte reaches the parser (the hint is dropped)."""

    def data(self, offset, data, ts_ns):  # type: ignore[override]
        super().data(offset, data, ts_ns)
        return None


def _decode(path: Path, monkeypatch, hint: bool) -> list[str]:
    with monkeypatch.context() as m:
        if not hint:
            m.setattr(session, "StreamParser", NoHintParser)
        return [json.dumps(o, sort_keys=True) for o in emit_capture(path)]


def _both(path: Path, monkeypatch) -> list[str]:
    fast = _decode(path, monkeypatch, True)
    assert fast == _decode(path, monkeypatch, False)
    return fast


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list[Pkt]:
    spec = MigrationSpec(profile="8.1-9.x", devices=[VfioDeviceSpec(buffer_size=700)], ram_bytes=2 << 20,
                         extra_blocks=(("pc.bios", 64 << 10),), iterations=3, normal_ratio=0.6, seed=5)
    path = tmp_path_factory.mktemp("gen") / "gen.pcap"
    write_tcp_capture(path, build_migration(spec).synth_flows(), fmt="pcap", mss=1448)
    from dissect.capture.reader import CaptureReader

    return [Pkt(p.ts_ns, p.linktype, bytes(p.data)) for p in CaptureReader(path).packets()]


def _main_idx(pkts: list[Pkt]) -> list[int]:
    main = next(pkts[i].key for i in data_indexes(pkts) if pkts[i].payload.startswith(b"QEVM"))
    return data_indexes(pkts, main)


def test_clean_generated_capture(generated, tmp_path, monkeypatch):
    got = _both(save(tmp_path / "g.pcap", generated), monkeypatch)
    assert sum(1 for line in got if '"kind": "ram"' in line) >= 3
    assert not any('"severity": "error"' in line for line in got)


def test_removed_segments_inside_page_bodies(generated, tmp_path, monkeypatch):
    idx = _main_idx(generated)
    drop = set(idx[len(idx) // 4::len(idx) // 5])  # a few, each alone: most lie inside a page body
    got = _both(save(tmp_path / "r.pcap", [p for i, p in enumerate(generated) if i not in drop]), monkeypatch)
    gaps = [json.loads(line) for line in got if '"stream_gap"' in line]
    offs = stream_offsets(generated)
    assert sorted((g["offset"], g["gap_end"]) for g in gaps) == sorted((offs[i][1], offs[i][1] + offs[i][2])
                                                                       for i in drop)
    assert any(g["severity"] == "warning" for g in gaps)  # at least one inside page data


def test_run_of_removed_segments(generated, tmp_path, monkeypatch):
    idx = _main_idx(generated)
    drop = set(idx[len(idx) // 2:len(idx) // 2 + 7])  # across page records: resynchronisation
    _both(save(tmp_path / "run.pcap", [p for i, p in enumerate(generated) if i not in drop]), monkeypatch)


def test_cut_inside_page_body(generated, tmp_path, monkeypatch):
    idx = _main_idx(generated)
    for k in (len(idx) // 3, len(idx) // 3 + 1, len(idx) // 3 + 2):
        path = save(tmp_path / f"cut{k}.pcap", generated[:idx[k] + 1])
        got = _both(path, monkeypatch)
        assert any('"stream_truncated"' in line for line in got)
        # the file itself cut in the middle of the last packet
        raw = path.read_bytes()
        cut = tmp_path / f"cutmid{k}.pcap"
        cut.write_bytes(raw[:-700])
        _both(cut, monkeypatch)


def test_swapped_and_duplicated_segments(generated, tmp_path, monkeypatch):
    clean = _both(save(tmp_path / "c.pcap", generated), monkeypatch)
    out = list(generated)
    idx = _main_idx(generated)
    for j in range(0, len(idx) - 1, 5):
        out[idx[j]], out[idx[j + 1]] = out[idx[j + 1]], out[idx[j]]
    dup = []
    for i, p in enumerate(out):
        dup.append(p)
        if i % 7 == 0:
            dup.append(p)

    def stable(lines):
        vol = {"ts", "ts_first", "ts_last", "retransmitted_bytes", "last_ts", "last_ts_ns", "first_ts",
               "first_ts_ns", "packets"}
        return [{k: v for k, v in json.loads(x).items() if k not in vol} for x in lines
                if not ('"finding"' in x and '"tcp_' in x)]

    assert stable(_both(save(tmp_path / "s.pcap", dup), monkeypatch)) == stable(clean)


@pytest.mark.parametrize("name", ["qemu-tcp-returnpath.pcap", "qemu-tcp-multifd.pcap"])
def test_real_captures(name, monkeypatch):
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} missing")
    _both(path, monkeypatch)
