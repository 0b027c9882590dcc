# SPDX-License-Identifier: GPL-2.0-only
"""Golden vectors for every admin opcode 0x0-0x11, written by hand from the
tables of shared/spec/virtio-admin.md (§3 framing, §7 layouts, §12 examples).

Each request is ``header | data`` and each completion ``status | result``, as
literal hex.  Header: opcode le16, group_type le16, reserved1[12], member le64.
"""
from __future__ import annotations

import pytest
from scapy.compat import raw

from dissect.virtio import admin as A
from dissect.virtio.admin import VirtioAdminCmd, VirtioAdminCmdResult, decode_request, decode_result

# every test runs through the compiled walk and through scapy (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("admin_path")


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


def codes(findings) -> list[str]:
    return [f.code for f in findings]


# Headers used below (group SRIOV = 1, SELF = 0).
SRIOV_M0 = "0100 000000000000000000000000 0000000000000000"   # after the opcode
SRIOV_M1 = "0100 000000000000000000000000 0100000000000000"
SRIOV_M2 = "0100 000000000000000000000000 0200000000000000"
SELF_M0 = "0000 000000000000000000000000 0000000000000000"
OK = "0000 0000 00000000"


# --- requests: (hex, expected header fields, expected data, expected finding codes) ----

REQUESTS = [
    # 0x0 LIST_QUERY: no data
    ("0000" + SRIOV_M0, (0x0, "LIST_QUERY", 1, 0), {}, []),
    # 0x1 LIST_USE: Linux's VIRTIO_DEV_PARTS_ADMIN_CMD_BITMAP 0x3e780 (spec §8)
    ("0100" + SRIOV_M0 + "80e7030000000000", (0x1, "LIST_USE", 1, 0),
     {"opcodes": [7, 8, 9, 10, 13, 14, 15, 16, 17],
      "opcode_names": ["CAP_ID_LIST_QUERY", "DEVICE_CAP_GET", "DRIVER_CAP_SET", "RESOURCE_OBJ_CREATE",
                       "RESOURCE_OBJ_DESTROY", "DEV_PARTS_METADATA_GET", "DEV_PARTS_GET",
                       "DEV_PARTS_SET", "DEV_MODE_SET"],
      "device_admin_cmd_opcodes": [0x3E780]}, []),
    # 0x2 LEGACY_COMMON_CFG_WRITE: offset 0x12 (legacy device status), one register 0x0f
    ("0200" + SRIOV_M2 + "12 00000000000000 0f", (0x2, "LEGACY_COMMON_CFG_WRITE", 1, 2),
     {"offset": 0x12, "registers": "0f", "registers_length": 1}, ["admin_length_unaligned"]),
    # 0x3 LEGACY_COMMON_CFG_READ: offset 0x12, padded to 8 bytes
    ("0300" + SRIOV_M2 + "12 00000000000000", (0x3, "LEGACY_COMMON_CFG_READ", 1, 2),
     {"offset": 0x12, "surplus_bytes": 7}, []),
    # 0x4 LEGACY_DEV_CFG_WRITE: MAC at offset 0
    ("0400" + SRIOV_M1 + "00 00000000000000 525400123456", (0x4, "LEGACY_DEV_CFG_WRITE", 1, 1),
     {"offset": 0, "registers": "525400123456", "registers_length": 6}, ["admin_length_unaligned"]),
    # 0x5 LEGACY_DEV_CFG_READ: offset 0, the 1 byte Linux sends
    ("0500" + SRIOV_M1 + "00", (0x5, "LEGACY_DEV_CFG_READ", 1, 1), {"offset": 0},
     ["admin_length_unaligned"]),
    # 0x6 LEGACY_NOTIFY_INFO: no data
    ("0600" + SRIOV_M1, (0x6, "LEGACY_NOTIFY_INFO", 1, 1), {}, []),
    # 0x7 CAP_ID_LIST_QUERY: Self group, no data
    ("0700" + SELF_M0, (0x7, "CAP_ID_LIST_QUERY", 0, 0), {}, []),
    # 0x8 DEVICE_CAP_GET: id 0 (DEV_PARTS_CAP) + 6 reserved
    ("0800" + SELF_M0 + "0000 000000000000", (0x8, "DEVICE_CAP_GET", 0, 0),
     {"id": 0, "id_name": "DEV_PARTS_CAP"}, []),
    # 0x9 DRIVER_CAP_SET: spec §12, both limits 4 (10 bytes)
    ("0900" + SELF_M0 + "0000 000000000000 04 04", (0x9, "DRIVER_CAP_SET", 0, 0),
     {"id": 0, "id_name": "DEV_PARTS_CAP", "get_parts_resource_objects_limit": 4,
      "set_parts_resource_objects_limit": 4}, ["admin_length_unaligned"]),
    # 0xa RESOURCE_OBJ_CREATE: spec §12, GET-type device-parts object id 0
    ("0a00" + SRIOV_M1 + "0000 0000 00000000 0000000000000000 00 00000000000000",
     (0xA, "RESOURCE_OBJ_CREATE", 1, 1),
     {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS", "resource_obj_id": 0,
      "flags": 0, "type": 0, "type_name": "GET"}, []),
    # 0xb RESOURCE_OBJ_QUERY (spec table): header + flags only, object id 3
    ("0b00" + SRIOV_M1 + "0000 0000 03000000 0000000000000000", (0xB, "RESOURCE_OBJ_QUERY", 1, 1),
     {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS", "resource_obj_id": 3, "flags": 0},
     ["admin_opcode_ambiguous"]),
    # 0xc RESOURCE_OBJ_MODIFY (spec table): CREATE layout, object 3 becomes SET
    ("0c00" + SRIOV_M1 + "0000 0000 03000000 0000000000000000 01 00000000000000",
     (0xC, "RESOURCE_OBJ_MODIFY", 1, 1),
     {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS", "resource_obj_id": 3,
      "flags": 0, "type": 1, "type_name": "SET"}, ["admin_opcode_ambiguous"]),
    # 0xd RESOURCE_OBJ_DESTROY: header only, id 3
    ("0d00" + SRIOV_M1 + "0000 0000 03000000", (0xD, "RESOURCE_OBJ_DESTROY", 1, 1),
     {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS", "resource_obj_id": 3}, []),
    # 0xe DEV_PARTS_METADATA_GET: spec §12, SIZE for object 0
    ("0e00" + SRIOV_M1 + "0000 0000 00000000 00 00000000000000", (0xE, "DEV_PARTS_METADATA_GET", 1, 1),
     {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS", "resource_obj_id": 0,
      "type": 0, "type_name": "SIZE"}, []),
    # 0xf DEV_PARTS_GET: spec §12, ALL for object 0
    ("0f00" + SRIOV_M1 + "0000 0000 00000000 01 00000000000000", (0xF, "DEV_PARTS_GET", 1, 1),
     {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS", "resource_obj_id": 0,
      "type": 1, "type_name": "ALL", "hdr_list": []}, []),
    # 0xf DEV_PARTS_GET SELECTED: object 2, headers for DEVICE_STATUS and VQ_CFG of queue 1
    ("0f00" + SRIOV_M1 + "0000 0000 02000000 00 00000000000000"
     "0301 00 00 0000000000000000 00000000"
     "0401 00 00 0100 000000000000 00000000", (0xF, "DEV_PARTS_GET", 1, 1),
     {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS", "resource_obj_id": 2,
      "type": 0, "type_name": "SELECTED",
      "hdr_list": [
          {"part_type": 0x103, "part_type_name": "DEVICE_STATUS", "flags": 0, "optional": False,
           "selector": {}, "length": 0},
          {"part_type": 0x104, "part_type_name": "VQ_CFG", "flags": 0, "optional": False,
           "selector": {"vq_index": 1}, "length": 0}]}, []),
    # 0x10 DEV_PARTS_SET: object 1, DEVICE_STATUS = 0x0f and PCI_COMMON_CFG num_queues (offset 18) = 3
    ("1000" + SRIOV_M1 + "0000 0000 01000000"
     "0301 00 00 0000000000000000 01000000 0f"
     "0201 00 00 12000000 00000000 02000000 0300", (0x10, "DEV_PARTS_SET", 1, 1),
     {"resource_obj_type": 0, "resource_obj_type_name": "DEV_PARTS", "resource_obj_id": 1,
      "parts": 2, "parts_offset": 32, "parts_length": 35}, ["admin_length_unaligned"]),
    # 0x11 DEV_MODE_SET: spec §12, stop VF 1 (25 bytes as Linux sends it)
    ("1100" + SRIOV_M1 + "01", (0x11, "DEV_MODE_SET", 1, 1),
     {"flags": 1, "flags_names": ["STOPPED"], "stopped": True}, ["admin_length_unaligned"]),
    # 0x11 DEV_MODE_SET: resume
    ("1100" + SRIOV_M1 + "00", (0x11, "DEV_MODE_SET", 1, 1),
     {"flags": 0, "flags_names": [], "stopped": False}, ["admin_length_unaligned"]),
]


@pytest.mark.parametrize("hexstr,hdr,data,expect", REQUESTS, ids=[f"{r[1][1]}-{i}" for i, r in enumerate(REQUESTS)])
def test_request_vectors(hexstr, hdr, data, expect):
    buf = h(hexstr)
    d, findings = decode_request(buf)
    opcode, name, group, member = hdr
    assert d["opcode"] == opcode and d["opcode_name"] == name
    assert d["group_type"] == group and d["group_type_name"] == ("SRIOV" if group else "SELF")
    assert d["group_member_id"] == member
    assert d["data"] == data
    assert codes(findings) == expect
    # The scapy layers build exactly the bytes they parsed.
    assert raw(VirtioAdminCmd(buf)) == buf


# --- completions: (hex, opcode, subtype, expected status fields, expected result, codes) ----

COMPLETIONS = [
    # 0x0 LIST_QUERY: bits 0, 1 and the 0x3e7fc legacy + device-parts bitmap
    (OK + "ffe7030000000000", 0x0, 0, {"opcodes": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17],
                                       "device_admin_cmd_opcodes": [0x3E7FF]}, []),
    (OK, 0x1, 0, {}, []),
    (OK, 0x2, 0, {}, []),
    # 0x3 LEGACY_COMMON_CFG_READ: the device status register
    (OK + "0f", 0x3, 0, {"data": "0f", "data_length": 1}, []),
    (OK, 0x4, 0, {}, []),
    # 0x5 LEGACY_DEV_CFG_READ: a MAC
    (OK + "525400123456", 0x5, 0, {"data": "525400123456", "data_length": 6}, []),
    # 0x6 LEGACY_NOTIFY_INFO: owner BAR2 @0x3000, member BAR4 @0x1000, END
    (OK + "01 02 000000000000 0030000000000000"
          "02 04 000000000000 0010000000000000"
          "00 00 000000000000 0000000000000000"
          "00 00 000000000000 0000000000000000", 0x6, 0,
     {"entries": [{"flags": 1, "flags_name": "OWNER_DEV", "bar": 2, "offset": 0x3000},
                  {"flags": 2, "flags_name": "MEMBER_DEV", "bar": 4, "offset": 0x1000},
                  {"flags": 0, "flags_name": "END", "bar": 0, "offset": 0},
                  {"flags": 0, "flags_name": "END", "bar": 0, "offset": 0}]}, []),
    # 0x7 CAP_ID_LIST_QUERY: VIRTIO_DEV_PARTS_CAP only
    (OK + "0100000000000000", 0x7, 0, {"cap_ids": [0], "cap_id_names": ["DEV_PARTS_CAP"],
                                       "supported_caps": [1]}, []),
    # 0x8 DEVICE_CAP_GET (id 0): get limit 8, set limit 2
    (OK + "0802", 0x8, 0, {"get_parts_resource_objects_limit": 8, "set_parts_resource_objects_limit": 2}, []),
    (OK, 0x9, 0, {}, []),
    # 0xa CREATE on an existing id: EEXIST (17, value UNVERIFIED), INVALID_FIELD
    ("1100 0300 00000000", 0xA, 0, {}, []),
    # 0xb QUERY (table reading) of a device-parts object: type SET
    (OK + "01 00000000000000", 0xB, 0, {"type": 1, "type_name": "SET"}, []),
    (OK, 0xC, 0, {}, []),
    # 0xd DESTROY of a missing object: ENXIO, INVALID_FIELD
    ("0600 0300 00000000", 0xD, 0, {}, []),
    # 0xe METADATA_GET SIZE: spec §12, size 0xb9
    (OK + "b9000000 00000000", 0xE, 0, {"size": 0xB9}, []),
    # 0xe METADATA_GET COUNT: 7 headers
    (OK + "07000000 00000000", 0xE, 1, {"count": 7}, []),
    # 0xe METADATA_GET LIST: 2 headers: DEV_FEATURES (optional, 8 bytes), VQ_NOTIFY_CFG of queue 2 (8 bytes)
    (OK + "02000000 00000000"
          "0001 01 00 0000000000000000 08000000"
          "0501 00 00 0200 000000000000 08000000", 0xE, 2,
     {"count": 2, "hdrs": [
         {"part_type": 0x100, "part_type_name": "DEV_FEATURES", "flags": 1, "optional": True,
          "selector": {}, "length": 8},
         {"part_type": 0x105, "part_type_name": "VQ_NOTIFY_CFG", "flags": 0, "optional": False,
          "selector": {"vq_index": 2}, "length": 8}]}, []),
    # 0xf DEV_PARTS_GET ALL: DEVICE_STATUS 0x0f, PCI_COMMON_CFG num_queues 3
    (OK + "0301 00 00 0000000000000000 01000000 0f"
          "0201 00 00 12000000 00000000 02000000 0300", 0xF, 1,
     {"parts": 2, "parts_offset": 8, "parts_length": 35}, []),
    (OK, 0x10, 0, {}, []),
    # 0x11 DEV_MODE_SET refused: spec §12 failure status EINVAL / INVALID_FIELD
    ("1600 0300 00000000", 0x11, 0, {}, []),
]


@pytest.mark.parametrize("hexstr,opcode,subtype,result,expect", COMPLETIONS,
                         ids=[f"{c[1]:#x}-{i}" for i, c in enumerate(COMPLETIONS)])
def test_completion_vectors(hexstr, opcode, subtype, result, expect):
    buf = h(hexstr)
    d, findings = decode_result(buf, opcode, subtype)
    assert d["opcode"] == opcode and d["opcode_name"] == A.OPCODES[opcode]
    got = {k: v for k, v in d["result"].items() if k != "opcode_names"}
    assert got == result
    assert codes(findings) == expect
    assert raw(VirtioAdminCmdResult.for_request(opcode, subtype)(buf)) == buf


def test_status_names():
    d, f = decode_result(h("1600 0300 00000000"), 0x11)
    assert (d["status"], d["status_name"], d["status_qualifier"], d["status_qualifier_name"]) == \
        (22, "EINVAL", 3, "INVALID_FIELD")
    d, f = decode_result(h("1100 0300 00000000"), 0xA)
    assert d["status_name"] == "EEXIST" and d["status_note"] == "EEXIST (value UNVERIFIED)"
    d, f = decode_result(h("0600 0300 00000000"), 0xD)
    assert d["status_name"] == "ENXIO"
    for value, name in [(11, "EAGAIN"), (12, "ENOMEM"), (16, "EBUSY"), (28, "ENOSPC")]:
        d, f = decode_result(bytes([value, 0, 6, 0]) + bytes(4), 0x11)
        assert d["status_name"] == name and d["status_qualifier_name"] == "NORESOURCE" and f == []


def test_list_query_result_lacks_bits_0_and_1():
    # Linux's LIST_USE payload clears bits 0/1; a LIST_QUERY *result* must have them.
    d, f = decode_result(h(OK + "80e7030000000000"), 0x0)
    assert d["result"]["opcodes"] == [7, 8, 9, 10, 13, 14, 15, 16, 17]
    assert codes(f) == ["admin_list_query_bits_missing"]
