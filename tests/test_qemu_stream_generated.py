# SPDX-License-Identifier: GPL-2.0-only
"""Generated VFIO-bearing migrations (QEMU 8.0, 8.1–9.x, 10.x builders) decode
to exactly the records, parts, phases, pages and sections that were put in,
as raw streams and as TCP captures; incremental feeding in random splits
gives the same units as one-shot feeding."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from analysis.emit.migration import emit_capture, emit_stream_file
from dissect.capture.synth import write_tcp_capture
from dissect.common.findings import Finding
from dissect.qemu.build_migration import MigrationSpec, VfioDeviceSpec, build_migration
from dissect.qemu.multifd import MultifdParser
from dissect.qemu.retpath import ReturnPathParser
from dissect.qemu.session import DeviceAssembler, RecordUnit
from dissect.qemu.stream import StreamParser
from dissect.vfio.stream import build_record
from dissect.virtio.builders import build_parts, virtio_net_vf_parts

GEN = Path(__file__).resolve().parent.parent / "traces" / "generated"


def _spec(profile: str, **kw) -> MigrationSpec:
    devs = [VfioDeviceSpec(buffer_size=700),  # records (~1.2 KB) span chunks and PART sections
            VfioDeviceSpec(idstr="0000:00:06.0/vfio", trailer_bug=True, buffer_size=5000, queue_pairs=2)]
    return MigrationSpec(profile=profile, devices=devs, multifd_channels=2 if profile == "10.x" else 0,
                         ram_bytes=1 << 20, extra_blocks=(("pc.bios", 64 << 10),), iterations=3, seed=7, **kw)


def _feed_all(m, splitter=None):
    """Feed every flow's writes in time order, optionally re-split into random pieces."""
    units: list = []
    asm = DeviceAssembler()
    parsers = {0: StreamParser(units.append, flow=0, devices=asm)}
    for c in range(m.spec.multifd_channels):
        parsers[1 + c] = MultifdParser(units.append, flow=1 + c, devices=asm)
    rp = ReturnPathParser(units.append, flow=0)
    offs: dict = {}
    writes = sorted((ts, f, d, data) for f, ws in m.flows.items() for ts, d, data in ws)
    for ts, f, d, data in writes:
        p = parsers[f] if d == "c2s" else rp
        off = offs.get((f, d), 0)
        pieces = splitter(data) if splitter else [data]
        for piece in pieces:
            p.data(off, piece, ts)
            off += len(piece)
        offs[(f, d)] = off
    for p in [*parsers.values(), rp]:
        p.close()
    units += asm.close()
    return units, parsers


def _norm(u):
    if isinstance(u, RecordUnit):
        return ("record", u.device, u.record.index, u.record.offset, u.record.payload, u.phase)
    if isinstance(u, Finding):
        return ("finding", u.code, u.offset)
    d = dict(u)
    d.pop("ts", None)
    return tuple(sorted((k, repr(v)) for k, v in d.items()))


@pytest.mark.parametrize("profile", ["8.0", "8.1-9.x", "10.x"])
def test_profile_decodes_to_what_was_put_in(profile):
    m = build_migration(_spec(profile))
    exp = m.expected
    units, parsers = _feed_all(m)
    assert [u for u in units if isinstance(u, Finding) and u.severity != "info"] == []
    recs = [u for u in units if isinstance(u, RecordUnit)]
    for dev, want in exp.records.items():
        got = [r for r in recs if r.device == dev]
        assert len(got) == len(want) == (1 if profile == "8.0" else 3)
        for g, w in zip(got, want):
            assert g.record.offset == w.offset
            assert g.record.payload[:len(w.payload)] == w.payload
            assert g.record.trailer_bytes == (8 if dev.endswith("06.0/vfio") else 0)
            assert len(g.record.parts) == w.parts
            assert g.phase == w.phase
            assert g.ts_first_ns <= g.ts_last_ns
    # the 700-byte buffer splits every record of the first device across chunks (and PART sections)
    if profile != "8.0":
        assert [w.phase for w in exp.records["0000:00:05.0/vfio"]] == ["precopy", "precopy", "stopcopy"]
    sections = [(u["type"], u["section_id"], u["idstr"]) for u in units if isinstance(u, dict) and u["kind"] == "section"]
    assert sections == exp.sections
    zero = parsers[0].ram.zero_pages + sum(p.zero_pages for k, p in parsers.items() if k)
    normal = parsers[0].ram.normal_pages + sum(p.normal_pages for k, p in parsers.items() if k)
    assert (zero, normal) == (exp.zero_pages, exp.normal_pages)
    rps = [u["type_name"] for u in units if isinstance(u, dict) and u["kind"] == "rp_message"]
    assert rps == exp.rp_messages
    cmds = [u["cmd_name"] for u in units if isinstance(u, dict) and u["kind"] == "command"]
    assert cmds == exp.commands
    chunks = {}
    for u in units:
        if isinstance(u, dict) and u["kind"] == "vfio_chunk" and u["phase"] != "config":
            chunks.setdefault(u["device"], []).append((u["phase"], u["size"]))
    assert chunks == exp.vfio_chunks
    configs = {u["device"]: bytes.fromhex(u["data"]) for u in units
               if isinstance(u, dict) and u["kind"] == "vfio_chunk" and u["phase"] == "config"}
    assert configs == exp.config


def test_record_spanning_chunks_by_hand():
    """One record split 3 ways over a PART and the END section decodes whole."""
    from dissect.qemu import build as B

    parts = virtio_net_vf_parts(1, rss_table_size=0)
    rec = build_record(build_parts(parts))
    a, b_, c = rec[:10], rec[10:500], rec[500:]
    stream = (B.file_header() + B.section_start(3, "0000:00:05.0/vfio", 0, 1, B.vfio_setup_payload())
              + B.section_part(3, B.vfio_precopy_payload(a)) + B.section_part(3, B.vfio_precopy_payload(b_))
              + B.section_end(3, B.vfio_stopcopy_payload(c)) + B.eof())
    units: list = []
    asm = DeviceAssembler()
    p = StreamParser(units.append, devices=asm)
    for i in range(0, len(stream), 100):
        p.data(i, stream[i:i + 100], i)
    p.close()
    units += asm.close()
    (r,) = [u for u in units if isinstance(u, RecordUnit)]
    assert r.record.payload == build_parts(parts) and len(r.record.parts) == len(parts)
    assert r.phase == "precopy" and r.ts_first_ns < r.ts_last_ns


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_splits_equal_one_shot(seed):
    m = build_migration(_spec("10.x" if seed == 3 else "8.1-9.x"))
    one, _ = _feed_all(m)
    rng = random.Random(seed)

    def splitter(data):
        out, i = [], 0
        while i < len(data):
            n = rng.choice([1, 2, 7, 100, 1448, 5000])
            out.append(data[i:i + n])
            i += n
        return out

    many, _ = _feed_all(m, splitter)
    assert [_norm(u) for u in many] == [_norm(u) for u in one]


def test_capture_decode_through_tcp(tmp_path):
    m = build_migration(_spec("10.x"))
    path = tmp_path / "m.pcapng"
    write_tcp_capture(path, m.synth_flows(), mss=1448)
    objs = list(emit_capture(path))
    flows = [o for o in objs if o["kind"] == "flow"]
    assert [f["role"] for f in flows] == ["main", "multifd", "multifd"]
    recs = [o for o in objs if o["kind"] == "vfio_record"]
    assert len(recs) == 6
    assert [r["phase"] for r in recs if r["device"] == "0000:00:05.0/vfio"] == ["precopy", "precopy", "stopcopy"]
    assert all(r["ts_first"] <= r["ts_last"] for r in recs)
    nparts = sum(w.parts for lst in m.expected.records.values() for w in lst)
    assert sum(1 for o in objs if o["kind"] == "dev_part") == nparts
    # flows in order of first packet, each followed by its own units
    idx = [i for i, o in enumerate(objs) if o["kind"] == "flow"]
    for k, i in enumerate(idx):
        nxt = idx[k + 1] if k + 1 < len(idx) else len(objs)
        assert all(o.get("flow") in (k, None) for o in objs[i:nxt] if o["kind"] in ("section", "multifd_packet"))
    assert not [o for o in objs if o["kind"] == "finding" and o["severity"] == "error"]


def test_stream_file_uses_vmdesc(tmp_path):
    m = build_migration(_spec("8.1-9.x"))
    path = tmp_path / "s.mig"
    path.write_bytes(m.main_stream())
    objs = list(emit_stream_file(path))
    assert objs[0]["code"] == "full_sections_by_vmdesc"
    fulls = [o for o in objs if o["kind"] == "section" and o["type"] == "FULL"]
    assert {o["delimited_by"] for o in fulls if not o["idstr"].endswith("/vfio")} == {"vmdesc"}
    assert len([o for o in objs if o["kind"] == "vfio_record"]) == 6


@pytest.mark.parametrize("name,records,flows", [("qemu-9x-vfio.mig", 3, 0), ("qemu-9x-vfio-rp.pcapng", 6, 1),
                                                 ("qemu-10x-multifd.pcapng", 3, 3)])
def test_committed_generated_traces(name, records, flows, tmp_path):
    """The committed files are what make.py writes, and they decode fully."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_make", GEN / "make.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.make(tmp_path)
    assert (tmp_path / name).read_bytes() == (GEN / name).read_bytes()
    emit = emit_stream_file if name.endswith(".mig") else emit_capture
    objs = list(emit(GEN / name))
    assert len([o for o in objs if o["kind"] == "vfio_record"]) == records
    assert len([o for o in objs if o["kind"] == "flow"]) == flows
    assert not [o for o in objs if o["kind"] == "finding" and o["severity"] == "error"]


def test_capture_main_channel_equals_raw_stream_file(tmp_path):
    """A raw stream file decodes like the capture's main channel (issue 3 §4)."""
    m = build_migration(_spec("8.1-9.x"))
    cap = tmp_path / "m.pcapng"
    write_tcp_capture(cap, m.synth_flows())
    raw = tmp_path / "m.mig"
    raw.write_bytes(m.main_stream())

    def key(objs):
        out = []
        for o in objs:
            if o["kind"] in ("section", "ram", "vfio_marker", "vfio_chunk", "vfio_record", "dev_part", "command",
                             "vmdesc", "eof", "configuration"):
                o = {k: v for k, v in o.items() if k not in ("ts", "ts_ns", "flow", "ts_first", "ts_last", "ts_first_ns",
                                                          "ts_last_ns", "delimited_by")}
                out.append(o)
        return out

    a = key(emit_capture(cap))
    b = key(emit_stream_file(raw))
    assert a == b and len(a) > 100


def test_two_migrations_in_one_capture_keep_device_data_apart(tmp_path):
    m1 = build_migration(_spec("8.1-9.x"))
    m2 = build_migration(_spec("8.1-9.x", start_ns=1_760_000_000_000_000_000))
    cap = tmp_path / "two.pcapng"
    f1 = m1.synth_flows(server="192.0.2.2:49152")
    f2 = m2.synth_flows(client="192.0.2.9", server="192.0.2.2:49152")
    write_tcp_capture(cap, f1 + f2)
    objs = list(emit_capture(cap))
    recs = [(o["flow"] if "flow" in o else None, o["device"], o["index"]) for o in objs if o["kind"] == "vfio_record"]
    assert len(recs) == 12
    assert [i for _, d, i in recs if d == "0000:00:05.0/vfio"] == [0, 1, 2, 0, 1, 2]
    assert not [o for o in objs if o["kind"] == "finding" and o["severity"] == "error"]


def test_10_1_config_load_ready_ends_the_full_section():
    m = build_migration(_spec("10.x", load_config_after_iter=True))
    units, _ = _feed_all(m)
    assert [u for u in units if isinstance(u, Finding) and u.severity != "info"] == []
    fulls = [u for u in units if isinstance(u, dict) and u["kind"] == "section" and u["type"] == "FULL"
             and u["idstr"].endswith("/vfio")]
    assert [f["length"] for f in fulls] == [6 + 17 + 8 + 8 + 5] * 2
    marks = [u["marker"] for u in units if isinstance(u, dict) and u["kind"] == "vfio_marker"]
    assert marks.count("DEV_CONFIG_LOAD_READY") == 2
    assert len([u for u in units if isinstance(u, RecordUnit)]) == 6
