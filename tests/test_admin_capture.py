# SPDX-License-Identifier: GPL-2.0-only
"""Admin captures (admin-capture.md): pcap/pcapng of USER0 records, scapy
dissection, pairing, writers, and the ftrace trace_marker_raw form."""
from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.compat import raw

from dissect.common.findings import Finding
from dissect.virtio import admin_capture as C
from tests.conftest import require_tool, run_cli


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


# Records written by hand from the admin-capture.md table: version 1, direction,
# reserved, tag, owner 0000:3b:00.0 (bus 0x3b << 8 = 0x3b00), opcode, subtype.
REC_META_REQ = h("01 00 0000 01000000 003b0000 0e00 0000"
                 "0e00 0100 000000000000000000000000 0100000000000000"   # METADATA_GET, VF 1
                 "0000 0000 00000000 00 00000000000000")                  # object 0, SIZE
REC_META_CPL = h("01 01 0000 01000000 003b0000 0e00 0000"
                 "0000 0000 00000000 b9000000 00000000")                  # OK, size 0xb9
REC_GET_REQ = h("01 00 0000 02000000 003b0000 0f00 0100"
                "0f00 0100 000000000000000000000000 0100000000000000"     # DEV_PARTS_GET, VF 1
                "0000 0000 00000000 01 00000000000000")                   # object 0, ALL
REC_GET_CPL = h("01 01 0000 02000000 003b0000 0f00 0100"
                "0000 0000 00000000"
                "0201 00 00 12000000 00000000 02000000 0300"              # num_queues = 3
                "0301 00 00 0000000000000000 01000000 0f")                # DEVICE_STATUS = 0x0f
RECORDS = [REC_META_REQ, REC_META_CPL, REC_GET_REQ, REC_GET_CPL]
TIMES_US = [16, 64, 80, 160]  # at 1 s + n µs

# Classic pcap, little-endian µs magic, snaplen 0x40000, LINKTYPE_USER0 (147 = 0x93).
PCAP_HDR = h("d4c3b2a1 0200 0400 00000000 00000000 00000400 93000000")


def _pcap_bytes(records=RECORDS, times=TIMES_US, hdr=PCAP_HDR) -> bytes:
    out = bytearray(hdr)
    for rec, us in zip(records, times):
        out += struct.pack("<IIII", 1, us, len(rec), len(rec)) + rec
    return bytes(out)


def _decode_json(path, *extra):
    proc = run_cli("decode", "--json", str(path), *extra)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    return proc, lines


def _check_objects(lines, fmt):
    kinds = [o["kind"] for o in lines]
    assert kinds[:4] == ["admin_cmd", "admin_result", "admin_cmd", "admin_result"]
    cmd, res, get, got = lines[:4]
    assert cmd == {"kind": "admin_cmd", "tag": 1, "owner": "0000:3b:00.0", "ts": pytest.approx(1.000016),
                   "ts_ns": 1_000_016_000, "opcode": 14, "opcode_name": "DEV_PARTS_METADATA_GET",
                   "group_type": 1, "group_type_name": "SRIOV", "group_member_id": 1,
                   "data": {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS",
                            "resource_obj_id": 0, "type": 0, "type_name": "SIZE"}}
    assert res["tag"] == 1 and res["owner"] == "0000:3b:00.0" and res["ts_ns"] == 1_000_064_000
    assert (res["status"], res["status_name"], res["status_qualifier"], res["status_qualifier_name"]) == \
        (0, "OK", 0, "OK")
    assert res["result"] == {"size": 185} and res["latency_ns"] == 48_000
    assert get["data"]["type_name"] == "ALL" and get["tag"] == 2
    assert got["result"] == {"parts": 2, "parts_offset": 8, "parts_length": 35}
    assert got["latency_ns"] == 80_000
    parts = [o for o in lines if o["kind"] == "dev_part"]
    assert [(p["admin_tag"], p["index"], p["offset"], p["part_type_name"], p["length"]) for p in parts] == \
        [(2, 0, 8, "PCI_COMMON_CFG", 2), (2, 1, 26, "DEVICE_STATUS", 1)]
    assert parts[1]["value"] == {"value": 15, "names": ["ACKNOWLEDGE", "DRIVER", "DRIVER_OK", "FEATURES_OK"]}
    assert parts[0]["selector"] == {"offset": 18} and parts[0]["value"] == {"field": "num_queues", "value": 3}
    assert lines[-1]["kind"] == "summary" and lines[-1]["format"] == fmt
    assert lines[-1]["counts"]["admin_cmd"] == 2 and lines[-1]["counts"]["dev_part"] == 2


def test_decode_hand_built_pcap(tmp_path):
    path = tmp_path / "admin.pcap"
    path.write_bytes(_pcap_bytes())
    proc, lines = _decode_json(path)
    _check_objects(lines, "pcap")
    # Only the parts validator speaks: a two-part GET ALL result is an incomplete snapshot.
    findings = [o for o in lines if o["kind"] == "finding"]
    assert {f["severity"] for f in findings} <= {"warning", "info"}
    assert all(f["admin_tag"] == 2 and f["tag"] == 2 and f["owner"] == "0000:3b:00.0" for f in findings)
    assert proc.returncode == 0, proc.stderr
    assert lines[-1]["errors"] == 0


def test_decode_pcapng_written_by_writer(tmp_path):
    recs = []
    for buf, us in zip(RECORDS, TIMES_US):
        rec, f = C.AdminRecord.from_bytes(buf, 1_000_000_000 + us * 1000)
        assert f == []
        recs.append(rec)
    path = tmp_path / "admin.pcapng"
    C.write_admin_pcapng(path, recs)
    proc, lines = _decode_json(path)
    _check_objects(lines, "pcapng")
    # Same objects as the hand-built pcap.
    pcap = tmp_path / "admin.pcap"
    pcap.write_bytes(_pcap_bytes())
    _, lines_pcap = _decode_json(pcap)
    assert [o for o in lines if o["kind"] != "finding" and o["kind"] != "summary"] == \
        [o for o in lines_pcap if o["kind"] != "finding" and o["kind"] != "summary"]
    # The pcap writer's file decodes the same again.
    pcap2 = tmp_path / "w.pcap"
    C.write_admin_pcap(pcap2, recs)
    _, lines2 = _decode_json(pcap2)
    assert lines2[:-1] == lines_pcap[:-1]


def test_tshark_reads_written_capture(tmp_path):
    tshark = require_tool("tshark")
    import subprocess

    recs = [C.AdminRecord.from_bytes(b, 1_000_000_000 + us * 1000)[0] for b, us in zip(RECORDS, TIMES_US)]
    path = tmp_path / "admin.pcapng"
    C.write_admin_pcapng(path, recs)
    out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.len", "-e", "frame.time_epoch"],
                         capture_output=True, text=True, timeout=120, check=True).stdout.split("\n")
    rows = [r.split("\t") for r in out if r.strip()]
    assert [int(r[0]) for r in rows] == [len(b) for b in RECORDS]
    assert [r[1] for r in rows] == ["1.000016000", "1.000064000", "1.000080000", "1.000160000"]


def test_decode_errors_and_exit_code(tmp_path):
    # A 10-byte record (no full pseudo-header) and a completion with no request.
    short = h("01 00 0000 09000000 003b")
    orphan = h("01 01 0000 07000000 003b0000 1100 0000 1600 0300 00000000")
    path = tmp_path / "bad.pcap"
    path.write_bytes(_pcap_bytes([short, orphan], [1, 2]))
    proc, lines = _decode_json(path)
    assert proc.returncode == 1
    findings = [o for o in lines if o["kind"] == "finding"]
    assert [(f["code"], f["severity"]) for f in findings] == \
        [("admin_record_short", "error"), ("admin_completion_unmatched", "warning")]
    assert findings[0]["offset"] == 24  # file offset of the record
    res = next(o for o in lines if o["kind"] == "admin_result")
    assert res["opcode_name"] == "DEV_MODE_SET" and res["status_name"] == "EINVAL" and res["latency_ns"] is None


def test_admin_linktype_option(tmp_path):
    path = tmp_path / "user3.pcap"
    path.write_bytes(_pcap_bytes(hdr=PCAP_HDR[:20] + struct.pack("<I", 150)))
    proc, lines = _decode_json(path, "--admin-linktype", "150")
    assert proc.returncode in (0, 1)
    _check_objects(lines, "pcap")
    proc, lines = _decode_json(path)  # any USER link type is an admin capture by default
    _check_objects(lines, "pcap")


def test_human_output(tmp_path):
    path = tmp_path / "admin.pcap"
    path.write_bytes(_pcap_bytes())
    proc = run_cli("decode", str(path))
    assert proc.returncode in (0, 1)
    assert "opcode_name=DEV_PARTS_METADATA_GET" in proc.stdout and "result={size=185}" in proc.stdout


def test_single_buffers_with_as(tmp_path):
    req = tmp_path / "req.bin"
    req.write_bytes(REC_GET_REQ[16:])
    proc, lines = _decode_json(req, "--as", "admin-request")
    assert proc.returncode == 0 and lines[0]["kind"] == "admin_cmd" and lines[0]["tag"] is None
    assert lines[0]["data"]["type_name"] == "ALL"
    cpl = tmp_path / "cpl.bin"
    cpl.write_bytes(REC_GET_CPL[16:])
    proc, lines = _decode_json(cpl, "--as", "admin-completion", "--opcode", "0xf", "--subtype", "1")
    assert lines[0]["kind"] == "admin_result" and lines[0]["result"]["parts"] == 2
    assert [o["admin_tag"] for o in lines if o["kind"] == "dev_part"] == [None, None]
    proc = run_cli("decode", "--json", "--as", "admin-completion", str(cpl))
    assert proc.returncode == 2  # --opcode missing


# --- scapy -----------------------------------------------------------------------------

def test_scapy_rdpcap_dissects(tmp_path):
    from scapy.utils import rdpcap

    from dissect.virtio.admin import VirtioAdminCmd, VirtioAdminCmdResult
    from dissect.virtio.admin_data import VirtioAdminDevPartsMetadataData
    from dissect.virtio.admin_result import VirtioAdminDevPartsGetResult, VirtioAdminDevPartsMetadataSize

    path = tmp_path / "admin.pcap"
    path.write_bytes(_pcap_bytes())
    pkts = rdpcap(str(path))
    assert [type(p).__name__ for p in pkts] == ["AdminCaptureHdr"] * 4
    assert pkts[0].haslayer(VirtioAdminCmd) and pkts[0][VirtioAdminDevPartsMetadataData].type == 0
    assert pkts[1][VirtioAdminCmdResult].status == 0
    assert pkts[1][VirtioAdminDevPartsMetadataSize].size == 0xB9
    parts = pkts[3][VirtioAdminDevPartsGetResult].parts
    assert [p.part_type for p in parts] == [0x102, 0x103]
    assert pkts[0].sprintf("%AdminCaptureHdr.owner%") == "0000:3b:00.0"
    assert [raw(p) for p in pkts] == RECORDS


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=16, max_size=64))
def test_struct_twin_equals_layer(buf):
    rec, _ = C.AdminRecord.from_bytes(buf)
    p = C.AdminCaptureHdr(buf)
    assert (rec.version, rec.direction, rec.reserved, rec.tag, rec.owner, rec.opcode, rec.subtype) == \
        (p.version, p.getfieldval("direction"), p.reserved, p.tag, p.owner, p.opcode, p.subtype)
    assert rec.to_bytes() == buf
    # the layer builds the same pseudo-header (its payload may read zero-filled)
    assert raw(p)[:16] == buf[:16]
    assert raw(p.payload).startswith(buf[16:])


# --- pairing -----------------------------------------------------------------------------

def _rec(direction, tag, opcode, ts, owner=0x3B00, payload=b""):
    return C.AdminRecord(1, direction, tag, owner, opcode, 0, payload, ts)


def test_pairing_by_tag_with_reuse():
    recs = [
        _rec(0, 5, 0x11, 100), _rec(0, 6, 0xE, 110),
        _rec(1, 6, 0xE, 150), _rec(1, 5, 0x11, 400),
        _rec(0, 5, 0xD, 500), _rec(1, 5, 0xD, 530),      # tag 5 reused after completion
        _rec(0, 5, 0xD, 600, owner=0x3C00), _rec(1, 5, 0xD, 610, owner=0x3C00),  # other owner
    ]
    ex = list(C.pair_records(recs))
    assert [(e.request.opcode, e.completion.ts_ns, e.latency_ns) for e in ex] == \
        [(0xE, 150, 40), (0x11, 400, 300), (0xD, 530, 30), (0xD, 610, 10)]
    assert all(e.findings == [] for e in ex)


def test_pairing_unanswered_orphan_and_early_reuse():
    recs = [_rec(0, 1, 0x11, 0), _rec(0, 1, 0xE, 10), _rec(1, 9, 0xE, 20), _rec(0, 2, 0xF, 30)]
    ex = list(C.pair_records(recs))
    assert [(e.request and e.request.opcode, e.completion and e.completion.tag) for e in ex] == \
        [(0x11, None), (None, 9), (0xE, None), (0xF, None)]
    assert [e.findings[0].code for e in ex] == \
        ["admin_tag_reused", "admin_completion_unmatched", "admin_request_unanswered", "admin_request_unanswered"]
    assert ex[1].latency_ns is None


# --- ftrace form -----------------------------------------------------------------------

def test_trace_pieces_layout():
    rec = bytes(range(30))
    pieces = C.trace_pieces(rec, max_piece=12 + 16)
    assert pieces == [
        h("74726976 1e000000 00000000") + rec[:16],   # "virt", total 30, offset 0
        h("74726976 1e000000 10000000") + rec[16:],   # offset 16
    ]
    assert C.trace_pieces(b"") == [h("74726976 00000000 00000000")]
    with pytest.raises(ValueError):
        C.trace_pieces(rec, max_piece=15)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def test_joiner_interleaved_threads_and_padding():
    a, b = REC_GET_CPL, REC_META_REQ
    pa = C.trace_pieces(a, max_piece=32)
    pb = C.trace_pieces(b, max_piece=40)
    j = C.TracePieceJoiner()
    got = []
    # the kernel pads every write to 4 bytes; pieces of two threads interleave
    order = [(1, p) for p in pa]
    order[1:1] = [(2, p) for p in pb]
    for ts, (pid, piece) in enumerate(order):
        out, f = j.feed(pid, ts, _pad4(piece))
        assert f == []
        if out is not None:
            got.append((pid, out, j.last_ts_ns))
    assert got == [(2, b, 1), (1, a, 0)]
    assert j.close() == []
    rec, f = C.AdminRecord.from_bytes(got[1][1])
    assert rec.opcode == 0xF and rec.direction == 1 and f == []


def test_joiner_missing_piece():
    rec = bytes(range(100))
    p = C.trace_pieces(rec, max_piece=40)  # 28 bytes per piece: 4 pieces
    assert len(p) == 4
    j = C.TracePieceJoiner()
    assert j.feed(7, 0, p[0]) == (None, [])
    out, f = j.feed(7, 1, p[2])  # piece 1 lost
    assert out is None
    assert [x.code for x in f] == ["admin_trace_piece_missing", "admin_trace_piece_missing"]
    assert f[0].context["missing"] == 72 and f[0].context["pid"] == 7
    out, f = j.feed(7, 2, p[3])  # a tail without its start: dropped, reported
    assert out is None and [x.code for x in f] == ["admin_trace_piece_missing"]
    # a record that never completes is reported at close
    j.feed(8, 3, p[0])
    f = j.close()
    assert [x.code for x in f] == ["admin_trace_piece_missing"] and f[0].context["missing"] == 72
    # not ours / too short / absurd total
    assert j.feed(1, 0, h("01020304 05")) == (None, [])
    assert [x.code for x in j.feed(1, 0, h("74726976 0000"))[1]] == ["admin_trace_piece_short"]
    assert [x.code for x in j.feed(1, 0, h("74726976 ffffffff 00000000"))[1]] == ["admin_trace_piece_bad"]


def test_joiner_raw_data_event_form():
    rec = REC_META_CPL
    j = C.TracePieceJoiner()
    (piece,) = C.trace_pieces(rec)
    out, f = j.feed_raw_data(3, 9, C.TRACE_ID, _pad4(piece[4:]))
    assert out == rec and f == []
    assert j.feed_raw_data(3, 9, 0x1234, piece[4:]) == (None, [])


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300), st.integers(16, 80))
def test_split_join_round_trip(rec, max_piece):
    j = C.TracePieceJoiner()
    outs = [j.feed(1, i, _pad4(p)) for i, p in enumerate(C.trace_pieces(rec, max_piece))]
    assert [o for o, _ in outs if o is not None] == [rec]
    assert all(f == [] for _, f in outs)


@settings(max_examples=100, deadline=2000)
@given(st.lists(st.tuples(st.integers(0, 2), st.binary(max_size=40)), max_size=20))
def test_joiner_random_input_never_raises(feeds):
    j = C.TracePieceJoiner()
    for pid, buf in feeds:
        out, f = j.feed(pid, 0, h("74726976") + buf)
        assert all(isinstance(x, Finding) for x in f)
    j.close()


def test_admin_trace_decoder_objects():
    from analysis.emit.admin import AdminTraceDecoder

    dec = AdminTraceDecoder()
    out = []
    # request and completion of METADATA_GET from one thread, the GET pair split in pieces on another
    events = [(10, 1_000, REC_META_REQ), (10, 2_000, REC_META_CPL)]
    for pid, ts, rec in events:
        for piece in C.trace_pieces(rec):
            out += dec.raw_data(pid, ts, struct.unpack_from("<I", piece)[0], _pad4(piece[4:]))
    for i, piece in enumerate(C.trace_pieces(REC_GET_CPL, max_piece=24)):
        out += dec.raw_data(11, 3_000 + i, C.TRACE_ID, _pad4(piece[4:]))
    out += dec.raw_data(11, 9_000, 0x1234, b"\0" * 8)  # someone else's raw_data
    out += dec.close()
    kinds = [o["kind"] for o in out]
    assert kinds[:2] == ["admin_cmd", "admin_result"]
    assert out[1]["result"] == {"size": 185} and out[1]["latency_ns"] == 1_000 and out[1]["ts_ns"] == 2_000
    get = next(o for o in out if o["kind"] == "admin_result" and o["tag"] == 2)
    assert get["ts_ns"] == 3_000 and get["latency_ns"] is None and get["result"]["parts"] == 2
    assert [o["part_type_name"] for o in out if o["kind"] == "dev_part"] == ["PCI_COMMON_CFG", "DEVICE_STATUS"]
    assert "admin_completion_unmatched" in [o["code"] for o in out if o["kind"] == "finding"]


def test_admin_objects_dev_parts_set_and_cap_get():
    from analysis.emit.admin import admin_objects

    set_req = h("1000 0100 000000000000000000000000 0100000000000000"   # DEV_PARTS_SET, VF 1
                "0000 0000 01000000"                                     # object 1
                "0201 00 00 12000000 00000000 02000000 0300"             # num_queues = 3
                "0301 00 00 0000000000000000 01000000 0f")               # DEVICE_STATUS
    rec = C.request_record(44, "0001:02:03.4", set_req, 5)
    assert rec.owner == 0x0001021C and rec.opcode == 0x10  # 1 << 16 | 2 << 8 | 3 << 3 | 4
    objs = list(admin_objects(rec))
    assert objs[0]["kind"] == "admin_cmd" and objs[0]["owner"] == "0001:02:03.4"
    assert objs[0]["data"] == {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS",
                               "resource_obj_id": 1, "parts": 2, "parts_offset": 32, "parts_length": 35}
    parts = [o for o in objs if o["kind"] == "dev_part"]
    assert [(p["admin_tag"], p["offset"], p["part_type_name"]) for p in parts] == \
        [(44, 32, "PCI_COMMON_CFG"), (44, 50, "DEVICE_STATUS")]
    # DEVICE_CAP_GET for a flow-filter capability: the result decodes against the request's id
    req = C.request_record(3, 0, h("0800 0000 000000000000000000000000 0000000000000000 0008 000000000000"))
    cpl = C.completion_record(3, 0, 0x8, h("0000 0000 00000000 0102030400000000"))
    objs = list(admin_objects(cpl, req))
    assert objs[0]["result"] == {"raw": "0102030400000000"}
    assert [o["code"] for o in objs if o["kind"] == "finding"] == ["admin_unknown_subtype"]
    objs = list(admin_objects(cpl))  # unpaired: subtype 0 = DEV_PARTS_CAP
    assert objs[0]["result"] == {"get_parts_resource_objects_limit": 1, "set_parts_resource_objects_limit": 2,
                                 "surplus_bytes": 6}
