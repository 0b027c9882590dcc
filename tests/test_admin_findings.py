# SPDX-License-Identifier: GPL-2.0-only
"""Bad and unusual admin commands: findings, zero-fill, no exceptions, no hangs."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.compat import raw

from dissect.virtio import admin as A
from dissect.virtio.admin import decode_request, decode_result

# every test runs through the compiled walk and through scapy (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("admin_path")


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def by_code(findings, code):
    return next(f for f in findings if f.code == code)


SRIOV_M1 = "0100 000000000000000000000000 0100000000000000"
OK = "0000 0000 00000000"


# --- unknown values are kept and reported --------------------------------------------

def test_unknown_status_and_qualifier():
    d, f = decode_result(h("6300 2000 00000000"), 0x11)  # status 99, qualifier 0x20
    assert (d["status"], d["status_name"], d["status_qualifier"], d["status_qualifier_name"]) == (99, None, 0x20, None)
    assert codes(f) == ["admin_unknown_status", "admin_unknown_qualifier"]
    assert by_code(f, "admin_unknown_status").offset == 0
    assert by_code(f, "admin_unknown_qualifier").offset == 2


def test_qualifier_with_status_ok():
    d, f = decode_result(h("0000 0500 00000000"), 0x11)
    assert d["status_qualifier_name"] == "INVALID_MEMBER"
    assert codes(f) == ["admin_qualifier_with_ok"]


@pytest.mark.parametrize("opcode,label", [(0x12, "UNASSIGNED(0x12)"), (0x13, "0x13"), (0x8001, "0x8001")])
def test_unknown_opcode(opcode, label):
    data = "deadbeef00000000"
    buf = opcode.to_bytes(2, "little") + h(SRIOV_M1 + data)
    d, f = decode_request(buf)
    assert d["opcode"] == opcode and d["opcode_name"] is None
    assert d["data"] == {"raw": data}
    assert codes(f) == ["admin_unknown_opcode"]
    assert label in f[0].message
    r, f = decode_result(h(OK + "0102"), opcode)
    assert r["opcode_name"] is None and r["result"] == {"raw": "0102"}
    assert codes(f) == ["admin_unknown_opcode"]


def test_unknown_group_type_and_member_rules():
    d, f = decode_request(h("0e00 0500 000000000000000000000000 0100000000000000" + "00" * 16))
    assert d["group_type"] == 5 and d["group_type_name"] is None
    assert codes(f) == ["admin_unknown_group_type"]
    # Self-group command with a member id; SR-IOV member command with member 0
    d, f = decode_request(h("0700 0000 000000000000000000000000 0300000000000000"))
    assert codes(f) == ["admin_member_id_unexpected"]
    d, f = decode_request(h("1100 0100 000000000000000000000000 0000000000000000 0100000000000000"))
    assert codes(f) == ["admin_member_id_unexpected"]
    # Capability command sent for the SR-IOV group (what Linux 6.13 did, spec §10.1)
    d, f = decode_request(h("0700 0100 000000000000000000000000 0000000000000000"))
    assert codes(f) == ["admin_group_mismatch"]


def test_reserved_fields_nonzero():
    d, f = decode_request(h("1100 0100 000000000000000000ff0000 0100000000000000 0100000000000000"))
    assert codes(f) == ["admin_reserved_nonzero"] and f[0].offset == 4
    # DEV_MODE_SET reserved flag bits, METADATA_GET reserved bytes
    d, f = decode_request(h("1100" + SRIOV_M1 + "8100000000000000"))
    assert d["data"]["flags_names"] == ["STOPPED"] and codes(f) == ["admin_reserved_nonzero"]
    d, f = decode_request(h("0e00" + SRIOV_M1 + "0000 0000 00000000 00 00000000000001"))
    assert codes(f) == ["admin_reserved_nonzero"] and f[0].offset == 24 + 9
    d, f = decode_result(h("0000 0000 00000001"), 0x11)
    assert codes(f) == ["admin_reserved_nonzero"]


def test_unknown_metadata_and_get_types():
    d, f = decode_request(h("0e00" + SRIOV_M1 + "0000 0000 00000000 07 00000000000000"))
    assert d["data"]["type"] == 7 and d["data"]["type_name"] is None
    assert codes(f) == ["admin_unknown_subtype"]
    r, f = decode_result(h(OK + "0100000000000000"), 0xE, 7)
    assert r["result"] == {"raw": "0100000000000000"} and codes(f) == ["admin_unknown_subtype"]


def test_unexpected_result_bytes():
    r, f = decode_result(h(OK + "0102030400000000"), 0x11)
    assert r["result"] == {"raw": "0102030400000000"} and codes(f) == ["admin_unexpected_result"]
    r, f = decode_result(h(OK + "0000000000000000"), 0x11)  # zero surplus: allowed
    assert r["result"] == {"surplus_bytes": 8} and codes(f) == []


def test_metadata_list_count_beyond_buffer():
    # count claims 1000 headers, one is present: no allocation by count, an error finding
    r, f = decode_result(h(OK + "e8030000 00000000" + "0001 01 00 0000000000000000 08000000"), 0xE, 2)
    assert r["result"]["count"] == 1000 and len(r["result"]["hdrs"]) == 1
    assert codes(f) == ["admin_list_count_mismatch"]


def test_parts_truncated_in_get_result():
    # second part claims 32 value bytes, 2 remain
    buf = h(OK + "0301 00 00 0000000000000000 01000000 0f" + "0401 00 00 0000 000000000000 20000000 0100")
    r, f = decode_result(buf, 0xF, 1)
    assert r["result"]["parts"] == 1 and r["result"]["parts_length"] == 35
    assert codes(f) == ["part_truncated_value"] and f[0].offset == 8 + 17


# --- short buffers read as zero-filled ---------------------------------------------------

def test_short_data_zero_filled():
    # DEV_MODE_SET without its flags byte: flags read as 0 (resume)
    d, f = decode_request(h("1100" + SRIOV_M1))
    assert d["data"] == {"flags": 0, "flags_names": [], "stopped": False}
    assert codes(f) == ["admin_short_buffer"] and by_code(f, "admin_short_buffer").context["missing"] == 1
    # METADATA_GET with 9 of 16 bytes: type present, reserved zero-filled
    d, f = decode_request(h("0e00" + SRIOV_M1 + "0000 0000 05000000 01"))
    assert d["data"]["resource_obj_id"] == 5 and d["data"]["type_name"] == "COUNT"
    assert codes(f) == ["admin_length_unaligned", "admin_short_buffer"]
    assert by_code(f, "admin_short_buffer").offset == 24


def test_short_header_zero_filled():
    d, f = decode_request(h("1100 0100 0000"))
    assert d["opcode_name"] == "DEV_MODE_SET" and d["group_type_name"] == "SRIOV" and d["group_member_id"] == 0
    assert codes(f)[0] == "admin_short_header" and f[0].severity == "error"
    r, f = decode_result(h("1600"), 0x11)
    assert r["status_name"] == "EINVAL" and r["status_qualifier"] == 0
    assert codes(f) == ["admin_short_header"]


def test_short_result_zero_filled():
    r, f = decode_result(h(OK + "b900"), 0xE, 0)  # 2 of 8 bytes of parts_size
    assert r["result"] == {"size": 0xB9}
    assert codes(f) == ["admin_short_buffer"] and f[0].context["missing"] == 6
    r, f = decode_result(h(OK), 0x8, 0)  # DEVICE_CAP_GET OK with no result at all
    assert r["result"] == {"get_parts_resource_objects_limit": 0, "set_parts_resource_objects_limit": 0}
    assert codes(f) == ["admin_short_buffer"]
    r, f = decode_result(h("0c00 0600 00000000"), 0xE, 0)  # ENOMEM: no result expected
    assert r["result"] == {} and codes(f) == []


# --- opcodes 0xb / 0xc (spec §11.1) -------------------------------------------------------

def test_resource_obj_reading_switch():
    query = h("0b00" + SRIOV_M1 + "0000 0000 03000000 0000000000000000")
    modify = h("0b00" + SRIOV_M1 + "0000 0000 03000000 0000000000000000 01 00000000000000")
    d, f = decode_request(query)
    assert d["opcode_name"] == "RESOURCE_OBJ_QUERY" and d["opcode_shape_guess"] == "QUERY"
    assert codes(f) == ["admin_opcode_ambiguous"]
    d, f = decode_request(modify)
    assert d["opcode_shape_guess"] == "MODIFY"
    assert codes(f) == ["admin_opcode_ambiguous", "admin_opcode_shape_mismatch"]
    try:
        A.set_resource_obj_reading("text")
        d, f = decode_request(modify)
        assert d["opcode_name"] == "RESOURCE_OBJ_MODIFY" and codes(f) == ["admin_opcode_ambiguous"]
        r, f = decode_result(h(OK + "01 00000000000000"), 0xC, 0)  # QUERY under the text reading
        assert r["opcode_name"] == "RESOURCE_OBJ_QUERY" and r["result"] == {"type": 1, "type_name": "SET"}
        r, f = decode_result(h(OK), 0xB, 0)
        assert r["opcode_name"] == "RESOURCE_OBJ_MODIFY" and r["result"] == {}
        # the scapy layers follow the switch too
        assert A.VirtioAdminCmd(modify).sprintf("%opcode%") == "RESOURCE_OBJ_MODIFY"
        assert A.VirtioAdminCmd(opcode="RESOURCE_OBJ_QUERY").opcode == 0xC
    finally:
        A.set_resource_obj_reading("table")
    assert A.OPCODES[0xB] == "RESOURCE_OBJ_QUERY"
    assert A.VirtioAdminCmd(query).sprintf("%opcode%") == "RESOURCE_OBJ_QUERY"
    with pytest.raises(ValueError):
        A.set_resource_obj_reading("neither")


# --- random and truncated input ------------------------------------------------------------

@settings(max_examples=300, deadline=2000)
@given(st.binary(max_size=200))
def test_random_requests_never_raise(buf):
    d, f = decode_request(buf)
    assert set(d) >= {"opcode", "opcode_name", "group_type", "group_member_id", "data"}
    assert all(x.severity in ("error", "warning", "info") for x in f)
    A.VirtioAdminCmd(buf)


@settings(max_examples=300, deadline=2000)
@given(st.integers(0, 0x13), st.integers(0, 3), st.binary(max_size=200))
def test_random_results_never_raise(opcode, subtype, buf):
    d, f = decode_result(buf, opcode, subtype)
    assert "result" in d
    A.VirtioAdminCmdResult.for_request(opcode, subtype)(buf)


@settings(max_examples=100, deadline=2000)
@given(st.integers(0, 0x11), st.binary(min_size=0, max_size=64), st.data())
def test_truncated_requests(opcode, tail, data):
    full = opcode.to_bytes(2, "little") + h(SRIOV_M1) + tail
    cut = data.draw(st.integers(0, len(full)))
    d, f = decode_request(full[:cut])
    if cut < 24:
        assert "admin_short_header" in codes(f)
    # every finding offset lies inside (or at the end of) the buffer it describes
    assert all(x.offset is None or 0 <= x.offset <= max(cut, 24) + 64 for x in f)


def test_decoded_short_layer_builds_zero_filled():
    p = A.VirtioAdminCmdResult.for_request(0xE, 0)(h(OK + "b9"))
    assert p.payload.size == 0xB9 and p.payload.zero_filled == 7
    assert raw(p) == h(OK + "b900000000000000")


def test_hostile_lists_are_bounded():
    # 2 MiB of 0x01: a metadata LIST claiming 0x01010101 headers, a GET SELECTED list and a
    # LIST_USE bitmap of that size decode to bounded lists (no scapy packet or dict per claimed item)
    blob = b"\x01" * (2 << 20)
    r, f = decode_result(h(OK + "01010101 00000000") + blob, 0xE, 2)
    assert len(r["result"]["hdrs"]) == A.MAX_HDRS and r["result"]["count"] == 0x01010101
    assert codes(f) == ["admin_list_truncated", "admin_surplus_bytes", "admin_list_count_mismatch"]
    d, f = decode_request(h("0f00" + SRIOV_M1 + "0000 0000 00000000 00 00000000000000") + blob)
    assert len(d["data"]["hdr_list"]) == A.MAX_HDRS
    assert d["data"]["surplus_bytes"] == len(blob) - 16 * A.MAX_HDRS
    d, f = decode_request(h("0100 0100 000000000000000000000000 0000000000000000") + blob)
    assert len(d["data"]["opcodes"]) == 65536 // 64 * 8  # eight bits set per 0x01-filled word
    assert d["data"]["surplus_bytes"] == len(blob) - 8192 and codes(f) == ["admin_surplus_bytes"]


def test_linux_result_size_semantics():
    from dissect.virtio.admin_decode import decode_linux_result

    status = h(OK)
    result = h("b9000000 00000000") + b"\xee" * 8  # the buffer is larger than what the device wrote
    d, f = decode_linux_result(status, result, 8, 0xE, 0)
    assert d["result"] == {"size": 0xB9} and codes(f) == []
    # 6.13.0-6.15.2: res_size = used length incl. the status
    d, f = decode_linux_result(status, result, 16, 0xE, 0, size_includes_status=True)
    assert d["result"] == {"size": 0xB9} and d["result_size_bug"] is True and codes(f) == []
    # read with the wrong semantics the 8 junk bytes show up as surplus
    d, f = decode_linux_result(status, result, 16, 0xE, 0)
    assert d["result"]["surplus_bytes"] == 8 and codes(f) == ["admin_surplus_bytes"]
    d, f = decode_linux_result(status, result, 40, 0xE, 0)
    assert codes(f) == ["admin_result_size_invalid", "admin_surplus_bytes"]
    d, f = decode_linux_result(status, b"", 4, 0x11, 0, size_includes_status=True)
    assert codes(f) == ["admin_result_size_invalid"] and d["result"] == {}
