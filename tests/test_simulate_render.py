# SPDX-License-Identifier: GPL-2.0-only
"""The simulator's renderers against bytes and text written by hand from the specs.

Admin commands: virtio-admin.md §12 (worked examples, as Linux sends them).
Stream units: qemu-migration-stream.md §6, §8, §10.4, §13, §14.
Trace text: qemu-trace-events.md §1.1 and §2 (format strings per release).
"""
from __future__ import annotations

from analysis.simulate.render_admin import completion_bytes, request_bytes
from analysis.simulate.render_stream import _Encoder
from analysis.simulate.render_trace import qemu_text
from analysis.simulate.timeline import AdminCmd, TraceEvent, Unit
from analysis.simulate.model import build_timeline
from analysis.simulate.profiles import PRESETS

Z = "00"


def _cmd(opcode: str, **kw) -> AdminCmd:
    return AdminCmd("source", 0, 0, opcode, 0, 1000, "test", **kw)


def test_dev_mode_set_stop_as_linux_sends_it() -> None:
    # §12: stop VF 1, readable part 25 bytes
    want = bytes.fromhex("1100" "0100" + Z * 12 + "0100000000000000" + "01")
    req, subtype = request_bytes(_cmd("DEV_MODE_SET", mode_flags=1))
    assert req == want and subtype == 0
    assert request_bytes(_cmd("DEV_MODE_SET", mode_flags=0))[0] == want[:-1] + b"\x00"


def test_create_get_object_and_metadata_and_get_all() -> None:
    hdr = lambda op: bytes.fromhex(op + "0100" + Z * 12 + "0100000000000000")  # noqa: E731
    # §12: create a GET-type device-parts object with id 0 for VF 1 (24 bytes of data)
    assert request_bytes(_cmd("RESOURCE_OBJ_CREATE", obj_id=0, obj_op=0))[0] == hdr("0a00") + bytes(24)
    # §12: METADATA_GET SIZE for object 0: 16 zero bytes; subtype = type SIZE (0)
    assert request_bytes(_cmd("DEV_PARTS_METADATA_GET", obj_id=0)) == (hdr("0e00") + bytes(16), 0)
    # §12: DEV_PARTS_GET ALL for object 0; subtype = type ALL (1)
    assert request_bytes(_cmd("DEV_PARTS_GET", obj_id=0)) == (
        hdr("0f00") + bytes.fromhex("0000000000000000" "0100000000000000"), 1)
    # RESOURCE_OBJ_DESTROY: the 8-byte object header
    assert request_bytes(_cmd("RESOURCE_OBJ_DESTROY", obj_id=3))[0] == hdr("0d00") + bytes.fromhex("0000000003000000")
    # DEV_PARTS_SET: object header + the record payload unchanged
    parts = bytes(range(20))
    assert request_bytes(_cmd("DEV_PARTS_SET", obj_id=0, parts=parts))[0] == hdr("1000") + bytes(8) + parts


def test_completions() -> None:
    # §12: METADATA_GET result, used length 16, size 0xb9
    assert completion_bytes(_cmd("DEV_PARTS_METADATA_GET", size=0xB9)) == bytes.fromhex(
        "0000000000000000" "b900000000000000")
    # §12: a failure status: EINVAL (22) / INVALID_FIELD (3), no result
    bad = _cmd("DEV_PARTS_SET", status=22, qualifier=3)
    assert completion_bytes(bad) == bytes.fromhex("1600030000000000")
    assert completion_bytes(_cmd("DEV_PARTS_GET", parts=b"\x01\x02")) == bytes(8) + b"\x01\x02"
    assert completion_bytes(_cmd("DEV_MODE_SET", mode_flags=1)) == bytes(8)


def _enc(name: str = "default") -> _Encoder:
    return _Encoder(build_timeline(PRESETS[name], 1))


def test_stream_units() -> None:
    enc = _enc()
    idstr = "0000:00:05.0/vfio"
    start = enc.encode(Unit(0, "main", "c2s", "vfio_start", {"section_id": 3, "idstr": idstr}))
    assert start == (bytes.fromhex("01" "00000003" "11") + idstr.encode() + bytes.fromhex(
        "00000000" "00000001" "ffffffffef100003" "ffffffffef100001" "7e00000003"))
    part = enc.encode(Unit(0, "main", "c2s", "vfio_part", {"section_id": 3, "data": b"\xaa\xbb",
                                                            "terminator": "DEV_INIT_DATA_SENT"}))
    assert part == bytes.fromhex("02" "00000003" "ffffffffef100004" "0000000000000002" "aabb"
                                 "ffffffffef100005" "7e00000003")
    empty = enc.encode(Unit(0, "main", "c2s", "vfio_part", {"section_id": 3, "data": None,
                                                             "terminator": "END_OF_STATE"}))
    assert empty == bytes.fromhex("02" "00000003" "ffffffffef100001" "7e00000003")
    assert enc.encode(Unit(0, "main", "c2s", "cmd_open_return_path", {})) == bytes.fromhex("08" "0001" "0000")
    assert enc.encode(Unit(0, "main", "c2s", "cmd_ping", {"value": 1})) == bytes.fromhex("08" "0002" "0004" "00000001")
    assert enc.encode(Unit(0, "main", "c2s", "cmd_switchover_start", {})) == bytes.fromhex("08" "000b" "0000")
    assert enc.encode(Unit(0, "main", "s2c", "rp_pong", {"value": 1})) == bytes.fromhex("0002" "0004" "00000001")
    assert enc.encode(Unit(0, "main", "s2c", "rp_switchover_ack", {})) == bytes.fromhex("0007" "0000")
    assert enc.encode(Unit(0, "main", "s2c", "rp_shut", {"value": 0})) == bytes.fromhex("0001" "0004" "00000000")
    head = enc.encode(Unit(0, "main", "c2s", "header", {"machine": "pc-q35-9.2"}))
    assert head == bytes.fromhex("5145564d" "00000003" "07" "0000000a") + b"pc-q35-9.2"


def test_ram_zero_pages() -> None:
    enc = _enc()
    # two zero pages of pc.ram: the first names the block, the second CONTINUEs (§11.2)
    u = Unit(0, "main", "c2s", "ram_part", {"section_id": 2, "zero": [0, 1], "normal": [], "page_seeds": []})
    assert enc.encode(u) == bytes.fromhex("02" "00000002" "0000000000000002" "06") + b"pc.ram" + bytes.fromhex(
        "00" "0000000000001022" "00" "0000000000000010" "7e00000002")


def test_trace_text_per_release() -> None:
    ev = TraceEvent("source", 0, 1, "x", "vfio_save_iterate",
                    {"name": "0000:3b:00.1", "precopy_init_size": 457, "precopy_dirty_size": 0})
    assert qemu_text(ev, "8.1.5") == "vfio_save_iterate  (0000:3b:00.1) precopy initial size 0x1c9 precopy dirty size 0x0"
    assert qemu_text(ev, "9.2.0") == "vfio_save_iterate  (0000:3b:00.1) precopy initial size 457 precopy dirty size 0"
    st = TraceEvent("source", 0, 1, "x", "vfio_migration_set_state",
                    {"name": "0000:3b:00.1", "new_state": "PRE_COPY", "recover_state": "RUNNING"})
    assert qemu_text(st, "9.2.0") == \
        "vfio_migration_set_state  (0000:3b:00.1) new state PRE_COPY, recover state RUNNING"
    cp = TraceEvent("source", 0, 1, "x", "vmstate_downtime_checkpoint", {"checkpoint": "src-downtime-start"})
    assert qemu_text(cp, "9.2.0") == "vmstate_downtime_checkpoint src-downtime-start"
    assert qemu_text(TraceEvent("source", 0, 1, "x", "savevm_state_iterate", {}), "9.2.0") == "savevm_state_iterate "
