# SPDX-License-Identifier: GPL-2.0-only
"""Golden vectors written by hand from qemu-migration-stream.md (section numbers
in comments); the builders must produce the same bytes and the parsers
must decode them to the values in the tables."""
from __future__ import annotations

import json

import pytest

from dissect.common.findings import Finding
from dissect.qemu import build as B
from dissect.qemu.multifd import MultifdParser
from dissect.qemu.retpath import ReturnPathParser
from dissect.qemu.stream import StreamParser

H = bytes.fromhex

# §3 header + §5 configuration "none" (observed with 7.2 and -machine none)
HEADER = H("5145564d 00000003")
CONFIG_NONE = H("07 00000004 6e6f6e65")
# §6.3 example: START, section 2, "ram", instance 0, version 4 … footer 2
RAM_START_HDR = H("01 00000002 03 72616d 00000000 00000004")
# §11.3 setup record: total 0x1082000 | MEM_SIZE, "pc.ram" 0x1000000, "pc.bios" 0x40000, "/rom" 0x42000, EOS
RAM_SETUP = (H("0000000001082004") + H("06 70632e72616d 0000000001000000")
             + H("07 70632e62696f73 0000000000040000") + H("04 2f726f6d 0000000000042000")
             + H("0000000000000010"))
FOOTER2 = H("7e 00000002")


def parse(data: bytes, *, split: int | None = None, **kw) -> tuple[list, StreamParser]:
    units: list = []
    p = StreamParser(units.append, **kw)
    step = split or len(data) or 1
    for i in range(0, len(data), step):
        p.data(i, data[i:i + step], 1000 * i)
    p.close()
    return units, p


def kinds(units: list, kind: str) -> list[dict]:
    return [u for u in units if isinstance(u, dict) and u["kind"] == kind]


def codes(units: list) -> list[str]:
    return [u.code for u in units if isinstance(u, Finding)]


def test_header_and_configuration_bytes():
    assert B.file_header() == HEADER
    assert B.configuration("none") == CONFIG_NONE
    # §5 subsections: target-page-bits 12, capabilities ["x-ignore-shared"], uuid
    cfg = B.configuration("pc-q35-9.2", target_page_bits=12, capabilities=["x-ignore-shared"],
                          uuid=bytes(range(16)))
    want = (H("07 0000000a") + b"pc-q35-9.2"
            + H("05 1e") + b"configuration/target-page-bits" + H("00000001 0000000c")
            + H("05 1a") + b"configuration/capabilities" + H("00000001 00000001 0f") + b"x-ignore-shared"
            + H("05 12") + b"configuration/uuid" + H("00000001") + bytes(range(16)))
    assert cfg == want
    units, p = parse(HEADER + want + H("00"))
    (c,) = kinds(units, "configuration")
    assert c["machine_type"] == "pc-q35-9.2" and c["target_page_bits"] == 12
    assert c["capabilities"] == ["x-ignore-shared"] and c["uuid"] == bytes(range(16)).hex()
    assert p.ram.ignore_shared


def test_ram_start_section_golden():
    data = HEADER + CONFIG_NONE + RAM_START_HDR + RAM_SETUP + FOOTER2 + H("00")
    assert B.section_start(2, "ram", 0, 4, B.RamWriter().setup(
        [("pc.ram", 0x1000000), ("pc.bios", 0x40000), ("/rom", 0x42000)])) == RAM_START_HDR + RAM_SETUP + FOOTER2
    units, p = parse(data)
    (s,) = kinds(units, "section")
    assert s == {"kind": "section", "flow": None, "offset": 17, "length": len(RAM_START_HDR + RAM_SETUP + FOOTER2),
                 "type": "START", "section_id": 2, "idstr": "ram", "instance_id": 0, "version_id": 4,
                 "ts": 0.0, "ts_ns": 0, "delimited_by": "payload"}
    (r,) = kinds(units, "ram")
    assert r["mem_size"] == 0x1082000
    assert r["ram_blocks"] == [{"idstr": "pc.ram", "used_length": 0x1000000},
                               {"idstr": "pc.bios", "used_length": 0x40000},
                               {"idstr": "/rom", "used_length": 0x42000}]
    assert r["bytes"] == len(RAM_SETUP)
    assert p.footers is True and codes(units) == []


def test_ram_page_flags_golden():
    page = bytes(range(256)) * 16
    payload = (
        H("0000000000000002 06 70632e72616d 00")          # §11.2 observed: zero page @0 of pc.ram
        + H("0000000000001028") + page                     # PAGE|CONTINUE @0x1000
        + H("0000000000002022 00")                         # ZERO|CONTINUE @0x2000
        + H("0000000000000008 07 70632e62696f73") + page   # PAGE @0 of pc.bios (block change)
        + H("0000000000003060 01 0003 aabbcc")             # XBZRLE|CONTINUE, enc 1, len 3
        + H("0000000000004120 00000004 78da0300")          # COMPRESS_PAGE|CONTINUE, be32 len 4
        + H("0000000000000080")                            # HOOK
        + H("0000000000000200")                            # MULTIFD_FLUSH
        + H("0000000000000010"))                           # EOS
    w = B.RamWriter()
    built = (w.zero_page("pc.ram", 0) + w.normal_page("pc.ram", 0x1000, page) + w.zero_page("pc.ram", 0x2000)
             + w.normal_page("pc.bios", 0, page) + w.xbzrle_page("pc.bios", 0x3000, H("aabbcc"))
             + w.compressed_page("pc.bios", 0x4000, H("78da0300")) + w.hook() + w.multifd_flush() + w.eos())
    assert built == payload
    sec = H("02 00000002") + payload + FOOTER2
    stream = HEADER + RAM_START_HDR + RAM_SETUP + FOOTER2 + sec + H("00")
    for split in (None, 1, 3, 1448):
        units, _ = parse(stream, split=split)
        r = kinds(units, "ram")[1]
        assert (r["zero_pages"], r["normal_pages"], r["xbzrle_pages"], r["compressed_pages"]) == (2, 2, 1, 1)
        assert r["blocks"] == {"pc.ram": {"zero_pages": 2, "normal_pages": 1},
                               "pc.bios": {"zero_pages": 0, "normal_pages": 1}}
        assert r["multifd_flushes"] == 1 and r["hooks"] == 1 and r["section_type"] == "PART"
        assert r["bytes"] == len(payload)
        assert codes(units) == ["ram_hook"]


def test_ram_bad_flags_finding_then_footer_resync():
    sec = H("02 00000002") + H("0000000000000001") + H("0000000000000010") + FOOTER2
    units, _ = parse(HEADER + RAM_START_HDR + RAM_SETUP + FOOTER2 + sec + H("00"))
    assert "ram_bad_flags" in codes(units)
    assert [s["type"] for s in kinds(units, "section")] == ["START", "PART"]
    assert kinds(units, "section")[1]["delimited_by"] == "footer"
    assert kinds(units, "eof")


def test_commands_golden():
    data = (HEADER
            + H("08 0001 0000")                          # OPEN_RETURN_PATH
            + H("08 0002 0004 00000001")                 # PING 1
            + H("08 0003 0010 0000000000001000 0000000000001000")  # POSTCOPY_ADVISE
            + H("08 0006 0019 00 06 70632e72616d 00 0000000000002000 0000000000003000")  # RAM_DISCARD
            + H("08 000a 0007 06 70632e72616d")          # RECV_BITMAP "pc.ram"
            + H("08 000b 0000")                          # SWITCHOVER_START (10.0+)
            + H("08 0004 0000") + H("08 0005 0000") + H("08 0008 0000") + H("08 0009 0000")
            + H("00"))
    assert B.open_return_path() + B.ping(1) == H("08 0001 0000 08 0002 0004 00000001")
    assert B.postcopy_ram_discard("pc.ram", [(0x2000, 0x3000)]) == H(
        "08 0006 0019 00 06 70632e72616d 00 0000000000002000 0000000000003000")
    assert B.switchover_start() == H("08 000b 0000")
    units, _ = parse(data)
    cmds = kinds(units, "command")
    assert [(c["cmd"], c["cmd_name"], c["len"]) for c in cmds] == [
        (1, "OPEN_RETURN_PATH", 0), (2, "PING", 4), (3, "POSTCOPY_ADVISE", 16), (6, "POSTCOPY_RAM_DISCARD", 25),
        (10, "RECV_BITMAP", 7), (11, "SWITCHOVER_START", 0), (4, "POSTCOPY_LISTEN", 0), (5, "POSTCOPY_RUN", 0),
        (8, "ENABLE_COLO", 0), (9, "POSTCOPY_RESUME", 0)]
    assert cmds[1]["value"] == 1
    assert cmds[2]["value"] == {"ram_pagesize_summary": 0x1000, "target_page_size": 0x1000}
    assert cmds[3]["value"] == {"version": 0, "block": "pc.ram", "ranges": [[0x2000, 0x3000]]}
    assert cmds[4]["value"] == {"block": "pc.ram"}
    assert codes(units) == []


def test_packaged_nested_stream():
    inner = H("04 00000000 05 74696d6572 00000000 00000002") + H("0102030405060708") + H("7e 00000000") + \
        H("08 0004 0000") + H("00")
    data = HEADER + H("08 0007 0004") + len(inner).to_bytes(4, "big") + inner + H("08 0005 0000")
    assert B.packaged(inner) == data[8:8 + 9 + len(inner)]
    units, _ = parse(data)
    cmds = kinds(units, "command")
    assert cmds[0]["cmd_name"] == "PACKAGED" and cmds[0]["value"] == {"length": len(inner)}
    assert [c["cmd_name"] for c in cmds] == ["PACKAGED", "POSTCOPY_LISTEN", "POSTCOPY_RUN"]
    (s,) = kinds(units, "section")
    assert s["idstr"] == "timer" and s["packaged"] == 1 and s["length"] == 5 + 1 + 5 + 8 + 8 + 5
    assert kinds(units, "eof")[0]["packaged"] == 1


def test_bad_command_findings():
    units, _ = parse(HEADER + H("08 0002 0003 000001") + H("08 0063 0000") + H("00"))
    assert codes(units)[:2] == ["bad_command_length", "unknown_command"]


VFIO_HDR = H("01 00000003 11") + b"0000:00:05.0/vfio" + H("00000000 00000001")


def test_vfio_markers_and_chunks_golden():
    setup = H("ffffffffef100003 ffffffffef100001")                    # §10.4 START
    part = H("ffffffffef100004 0000000000000005 0102030405 ffffffffef100005")  # chunk + INIT_DATA_SENT
    end = H("ffffffffef100004 0000000000000003 060708 ffffffffef100001")
    cfg = H("ffffffffef100002") + b"\x11" * 40 + H("ffffffffef100001")
    assert B.vfio_setup_payload() == setup
    assert B.vfio_precopy_payload(H("0102030405"), init_data_sent=True) == part
    assert B.vfio_stopcopy_payload(H("060708")) == end
    assert B.vfio_config_payload(b"\x11" * 40) == cfg
    data = (HEADER + VFIO_HDR + setup + H("7e 00000003")
            + H("02 00000003") + part + H("7e 00000003")
            + H("03 00000003") + end + H("7e 00000003")
            + H("04 00000003 11") + b"0000:00:05.0/vfio" + H("00000000 00000001") + cfg + H("7e 00000003")
            + H("00"))

    class Sink:
        def __init__(self):
            self.got = []

        def data(self, device, phase, data, ts, offset):
            self.got.append((device, phase, data))
            return []

        def lost(self, device, n, offset):
            return []

        def config(self, device, blob, ts, offset):
            self.got.append((device, "config", blob))
            return []

    for split in (None, 1, 7):
        sink = Sink()
        units, _ = parse(data, split=split, devices=sink)
        marks = kinds(units, "vfio_marker")
        assert [m["marker"] for m in marks] == [
            "DEV_SETUP_STATE", "END_OF_STATE", "DEV_DATA_STATE", "DEV_INIT_DATA_SENT", "DEV_DATA_STATE",
            "END_OF_STATE", "DEV_CONFIG_STATE", "END_OF_STATE"]
        assert marks[0]["value"] == 0xFFFFFFFFEF100003 and marks[0]["device"] == "0000:00:05.0/vfio"
        chunks = kinds(units, "vfio_chunk")
        assert [(c["phase"], c["size"]) for c in chunks] == [("precopy", 5), ("stopcopy", 3), ("config", 40)]
        assert chunks[2]["data"] == "11" * 40
        joined = {}
        for dev, phase, d in sink.got:
            joined[phase] = joined.get(phase, b"") + d
        assert joined == {"precopy": H("0102030405"), "stopcopy": H("060708"), "config": b"\x11" * 40}
        assert [s["type"] for s in kinds(units, "section")] == ["START", "PART", "END", "FULL"]
        assert codes(units) == []


def test_vfio_unknown_marker_finding():
    data = HEADER + VFIO_HDR + H("ffffffffef100009") + H("7e 00000003") + H("00")
    units, _ = parse(data)
    assert "vfio_unknown_marker" in codes(units)
    assert kinds(units, "eof")


def test_eof_vmdesc_and_vmdesc_delimited_full():
    desc = {"page_size": 4096, "devices": [{"name": "timer", "instance_id": 0, "vmsd_name": "timer", "version": 2,
                                            "fields": [{"name": "a", "type": "int64", "size": 8}],
                                            "subsections": [{"vmsd_name": "timer/x", "version": 1,
                                                             "fields": [{"name": "b", "type": "uint8", "size": 1}]}]}]}
    raw = json.dumps(desc, separators=(", ", ": ")).encode()
    # FULL timer whose payload contains a fake footer "7e 00000000" followed by a plausible EOF:
    # only the vmdesc size delimits it correctly.
    body = H("7e00000000 0006 00") + H("05 07") + b"timer/x" + H("00000001") + H("09")
    full = H("04 00000000 05") + b"timer" + H("00000000 00000002") + body + H("7e 00000000")
    data = HEADER + full + H("00") + H("06") + len(raw).to_bytes(4, "big") + raw
    assert B.vmdesc_trailer(desc) == data[len(HEADER) + len(full) + 1:]
    from dissect.qemu.vmdesc import VmDesc
    vd = VmDesc.from_json(raw)
    assert vd.payload_length("timer", 0) == len(body) == 8 + 1 + 1 + 7 + 4 + 1
    units, _ = parse(data, vmdesc=vd)
    (s,) = kinds(units, "section")
    assert s["delimited_by"] == "vmdesc" and s["length"] == len(full)
    (v,) = kinds(units, "vmdesc")
    assert v["page_size"] == 4096 and v["devices"] == 1 and v["offset"] == len(HEADER) + len(full) + 1
    assert codes(units) == []


def test_footer_resync_delimits_full_without_vmdesc():
    full = H("04 00000005 05") + b"timer" + H("00000000 00000002") + H("0102037e00000006 aa") + H("7e 00000005")
    units, p = parse(HEADER + full + H("00"))
    (s,) = kinds(units, "section")
    assert s["delimited_by"] == "footer" and s["length"] == len(full)
    assert p.footer_delimited == [("timer", 0, 0, 9)]


def test_return_path_golden():
    data = (H("0002 0004 00000001")           # PONG 1
            + H("0007 0000")                  # SWITCHOVER_ACK (8.1+)
            + H("0004 000c 0000000000002000 00001000")  # REQ_PAGES
            + H("0003 0013 0000000000003000 00001000 06 70632e72616d")  # REQ_PAGES_ID
            + H("0005 0007 06 70632e72616d") + H("0000000000000002 ff00") + H("0123456789abcdef")  # RECV_BITMAP
            + H("0006 0004 00000003")         # RESUME_ACK
            + H("0063 0002 abcd")             # unknown type 99
            + H("0001 0004 00000000"))        # SHUT 0
    assert B.rp_pong(1) + B.rp_switchover_ack() == data[:12]
    assert B.rp_req_pages(0x2000, 0x1000) == H("0004 000c 0000000000002000 00001000")
    assert B.rp_shut(0) == data[-8:]
    for split in (None, 1, 5):
        units: list = []
        p = ReturnPathParser(units.append, flow=3)
        step = split or len(data)
        for i in range(0, len(data), step):
            p.data(i, data[i:i + step], 5)
        p.close()
        msgs = kinds(units, "rp_message")
        assert [(m["type_name"], m["len"], m["value"]) for m in msgs] == [
            ("PONG", 4, 1), ("SWITCHOVER_ACK", 0, None), ("REQ_PAGES", 12, {"start": 0x2000, "len": 0x1000}),
            ("REQ_PAGES_ID", 19, {"start": 0x3000, "len": 0x1000, "id": "pc.ram"}),
            ("RECV_BITMAP", 7, {"block": "pc.ram"}), ("RESUME_ACK", 4, 3), (None, 2, {"raw": "abcd"}),
            ("SHUT", 4, 0)]
        assert msgs[0]["offset"] == 0 and msgs[-1]["offset"] == len(data) - 8 and msgs[0]["flow"] == 3
        assert codes(units) == ["rp_unknown_type"]


MF_INIT = H("11223344 00000001") + bytes(range(16)) + H("01") + bytes(7) + bytes(32)


def _mf_fixed(flags, alloc, normal, nxt, num, zero, block):
    return (H("11223344 00000001") + flags.to_bytes(4, "big") + alloc.to_bytes(4, "big")
            + normal.to_bytes(4, "big") + nxt.to_bytes(4, "big") + num.to_bytes(8, "big")
            + zero.to_bytes(4, "big") + bytes(4) + bytes(24) + block.ljust(256, b"\0"))


def test_multifd_golden():
    page = b"\x5a" * 4096
    # Every RAM packet has MULTIFD_PACKET_SIZE / 4096 = 128 offset slots (QEMU's fixed packet_len).
    # 9.0+ RAM packet: pages_alloc 128, 1 normal @0x1000, 2 zero @0x2000 @0x3000 (§12.3)
    p1 = (_mf_fixed(0, 128, 1, 4096, 7, 2, b"pc.ram") + H("0000000000001000 0000000000002000 0000000000003000")
          + bytes(8 * 125) + page)
    # 7.2 SYNC packet: no pages, stale next_packet_size, no data (real 7.2 behaviour)
    p2 = _mf_fixed(1, 128, 0, 4096, 8, 0, b"pc.ram") + bytes(8 * 128)
    # 10.x device-state packet: idstr, instance 0, size 12 + 3, VFIODeviceStatePacket v0 idx 5 (§12.4, §10.6)
    p3 = (H("11223344 00000001 00000040") + b"0000:00:05.0/vfio".ljust(256, b"\0") + H("00000000 0000000f")
          + H("00000000 00000005 00000000") + H("aabbcc"))
    assert len(MF_INIT) == 64 and len(p1) == 320 + 1024 + 4096
    assert B.multifd_init(bytes(range(16)), 1) == MF_INIT
    assert B.multifd_ram_packet(packet_num=7, ramblock="pc.ram", normal_offsets=[0x1000],
                                zero_offsets=[0x2000, 0x3000], page_data=page) == p1
    assert B.multifd_ram_packet(packet_num=8, ramblock="pc.ram", flags=1,
                                next_packet_size=4096, layout="7.2") == p2
    assert B.multifd_device_state_packet("0000:00:05.0/vfio", 0, 5, H("aabbcc")) == p3
    data = MF_INIT + p1 + p2 + p3

    class Dev:
        got = []

        def device_state(self, idstr, inst, idx, flags, data, ts, flow, offset):
            self.got.append((idstr, inst, idx, flags, data))
            return []

    for split in (None, 1, 100):
        dev = Dev()
        dev.got = []
        units: list = []
        p = MultifdParser(units.append, flow=2, devices=dev)
        step = split or len(data)
        for i in range(0, len(data), step):
            p.data(i, data[i:i + step], 0)
        p.close()
        pk = kinds(units, "multifd_packet")
        assert [x["type"] for x in pk] == ["init", "ram", "sync", "device_state"]
        assert pk[0]["channel"] == 1 and pk[0]["uuid"] == "00010203-0405-0607-0809-0a0b0c0d0e0f"
        assert (pk[1]["ramblock"], pk[1]["normal_pages"], pk[1]["zero_pages"], pk[1]["packet_num"]) == ("pc.ram", 1, 2, 7)
        assert pk[2]["offset"] == 64 + len(p1) and pk[2]["normal_pages"] == 0
        assert pk[3]["device_state"] == {"idstr": "0000:00:05.0/vfio", "instance_id": 0, "idx": 5, "config": False,
                                         "size": 3}
        assert dev.got == [("0000:00:05.0/vfio", 0, 5, 0, H("aabbcc"))]
        assert (p.normal_pages, p.zero_pages) == (1, 2)
        assert codes(units) == []


@pytest.mark.parametrize("bad", [H("11223344 00000001") + bytes(56) + H("deadbeef 00000001 00000000") + bytes(400)])
def test_multifd_bad_magic(bad):
    units: list = []
    p = MultifdParser(units.append)
    p.data(0, bad, 0)
    p.close()
    assert "multifd_bad_magic" in codes(units)


def test_multifd_device_state_little_endian_prerelease():
    # idx 1 and CONFIG_STATE written little-endian, as the first merged series did (§10.6)
    pkt = (H("11223344 00000001 00000040") + b"0000:00:05.0/vfio".ljust(256, b"\0") + H("00000000 0000000e")
           + H("00000000 01000000 01000000") + H("beef"))

    class Dev:
        got = []

        def device_state(self, idstr, inst, idx, flags, data, ts, flow, offset):
            self.got.append((idx, flags, data))
            return []

    units: list = []
    dev = Dev()
    p = MultifdParser(units.append, devices=dev)
    p.data(0, MF_INIT + pkt, 0)
    p.close()
    assert dev.got == [(1, 1, H("beef"))]
    assert codes(units) == ["vfio_packet_little_endian"]


def test_stream_without_footers_uses_vmdesc(tmp_path):
    """send-section-footer=off (old machine types): sections end with their payload;
    FULL VMSD sections need the vmdesc sizes."""
    from dissect.qemu.session import decode_stream_file
    from dissect.vfio.stream import build_record

    w = B.RamWriter()
    timer = H("0102030405060708")
    desc = {"page_size": 4096, "devices": [{"name": "timer", "instance_id": 0, "vmsd_name": "timer", "version": 2,
                                            "fields": [{"name": "a", "type": "int64", "size": 8}]}]}
    stream = (B.file_header() + B.configuration("pc-0.12")
              + B.section_start(2, "ram", 0, 4, w.setup([("pc.ram", 1 << 20)]), with_footer=False)
              + B.section_start(3, "0000:00:05.0/vfio", 0, 1, B.vfio_setup_payload(), with_footer=False)
              + B.section_part(2, w.zero_page("pc.ram", 0) + w.eos(), with_footer=False)
              + B.section_end(3, B.vfio_stopcopy_payload(build_record(H("aabb"))), with_footer=False)
              + B.section_full(0, "timer", 0, 2, timer, with_footer=False)
              + B.eof() + B.vmdesc_trailer(desc))
    path = tmp_path / "nofooter.mig"
    path.write_bytes(stream)
    objs = [o for o in decode_stream_file(path)]
    secs = [o for o in objs if isinstance(o, dict) and o["kind"] == "section"]
    assert [(s["type"], s["idstr"]) for s in secs] == [("START", "ram"), ("START", "0000:00:05.0/vfio"),
                                                        ("PART", "ram"), ("END", "0000:00:05.0/vfio"),
                                                        ("FULL", "timer")]
    assert secs[-1]["length"] == 1 + 4 + 1 + 5 + 8 + 8 and secs[-1]["delimited_by"] == "vmdesc"
    assert [o.code for o in objs if isinstance(o, Finding)] == ["full_sections_by_vmdesc"]
    chunks = [o for o in objs if isinstance(o, dict) and o["kind"] == "vfio_chunk"]
    assert [(c["phase"], c["size"]) for c in chunks] == [("stopcopy", 18)]

    # without the trailer: each FULL ends where the next plausible record starts
    units2, _ = parse(stream[:stream.index(B.eof() + B.vmdesc_trailer(desc)[:1])] + B.eof())
    full = [u for u in kinds(units2, "section") if u["type"] == "FULL"]
    assert [(f["idstr"], f["length"], f["delimited_by"]) for f in full] == [("timer", 1 + 4 + 1 + 5 + 8 + 8,
                                                                             "next_record")]
    assert "full_sections_by_footer" in codes(units2)


def test_mem_size_block_extras():
    # §11.3: "pc.ram" with a postcopy block page size 0x200000; "pc.bios" without; EOS
    body = (H("0000000000140004") + H("06 70632e72616d 0000000000100000 0000000000200000")
            + H("07 70632e62696f73 0000000000040000") + H("0000000000000010"))
    units, _ = parse(HEADER + H("01 00000002 03 72616d 00000000 00000004") + body + FOOTER2 + H("00"))
    (r,) = kinds(units, "ram")
    assert r["ram_blocks"] == [{"idstr": "pc.ram", "used_length": 0x100000, "page_size": 0x200000},
                               {"idstr": "pc.bios", "used_length": 0x40000}]
    # x-ignore-shared validated in the configuration: one extra is mr->addr (here 0)
    cfg = B.configuration("pc", capabilities=["x-ignore-shared"])
    body2 = H("0000000000100004") + H("06 70632e72616d 0000000000100000 0000000000000000") + H("0000000000000010")
    units, _ = parse(HEADER + cfg + H("01 00000002 03 72616d 00000000 00000004") + body2 + FOOTER2 + H("00"))
    (r,) = kinds(units, "ram")
    assert r["ram_blocks"] == [{"idstr": "pc.ram", "used_length": 0x100000, "addr": 0}]
    assert codes(units) == []
