# SPDX-License-Identifier: GPL-2.0-only
"""Round trips of every admin layer: build(parse(x)) == x and parse(build(fields)) == fields."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.compat import raw
from scapy.fields import FieldLenField, FieldListField, FlagsField, PacketListField, StrField, StrFixedLenField
from scapy.packet import Packet

from dissect.virtio import admin as A
from dissect.virtio import admin_capture as C
from dissect.virtio import admin_data as D
from dissect.virtio import admin_result as R
from dissect.virtio.parts import VirtioDevPart, VirtioDevPartHdr

# every test runs through the compiled walk and through scapy (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("admin_path")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIXED_LAYERS = [
    A.VirtioAdminCmd, A.VirtioAdminCmdResult, D.VirtioAdminLegacyRdData, D.VirtioAdminCapGetData,
    D.VirtioDevPartsCap, D.VirtioAdminResourceObjCmdHdr, D.VirtioResourceObjDevParts,
    D.VirtioAdminDevPartsMetadataData, D.VirtioAdminDevModeSetData, R.VirtioAdminNotifyInfo,
    R.VirtioAdminNotifyInfoResult, R.VirtioAdminDevPartsMetadataSize, R.VirtioAdminDevPartsMetadataCount,
    C.AdminCaptureHdr,
]
VAR_LAYERS = [
    D.VirtioAdminCmdList, D.VirtioAdminLegacyWrData, D.VirtioAdminCapSetData, D.VirtioAdminResourceObjData,
    D.VirtioAdminDevPartsGetData, D.VirtioAdminDevPartsSetData, R.VirtioAdminLegacyRdResult,
    R.VirtioAdminCapIdList, R.VirtioAdminDevPartsMetadataList, R.VirtioAdminDevPartsGetResult,
]
ALL_LAYERS = FIXED_LAYERS + VAR_LAYERS


def _min_len(cls) -> int:
    return getattr(cls, "min_len", 0) or (16 if cls is C.AdminCaptureHdr else 0)


# A realistic part and a bare header, as byte strings (hand-written, device-parts.md §2).
PART_STATUS = bytes.fromhex("0301 00 00 0000000000000000 01000000 0f".replace(" ", ""))
PART_VQ_NOTIFY = bytes.fromhex("0501 00 00 0300 000000000000 08000000 0300 0300 00000000".replace(" ", ""))
HDR_VQ = bytes.fromhex("0401 00 00 0100 000000000000 20000000".replace(" ", ""))
HDR_FEAT = bytes.fromhex("0001 01 00 0000000000000000 08000000".replace(" ", ""))


def _field_strategy(cls, f) -> st.SearchStrategy:
    if isinstance(f, PacketListField):
        if f.name == "parts":
            return st.lists(st.sampled_from([PART_STATUS, PART_VQ_NOTIFY]), max_size=4).map(
                lambda xs: [VirtioDevPart(x) for x in xs])
        if f.name == "entries":
            return st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 2**64 - 1)),
                            min_size=4, max_size=4).map(
                lambda xs: [R.VirtioAdminNotifyInfo(flags=a, bar=b, offset=c) for a, b, c in xs])
        return st.lists(st.sampled_from([HDR_VQ, HDR_FEAT]), max_size=4).map(
            lambda xs: [VirtioDevPartHdr(x) for x in xs])
    if isinstance(f, FieldListField):
        return st.lists(st.integers(0, 2**64 - 1), max_size=4)
    if isinstance(f, StrFixedLenField):
        n = len(f.addfield(None, b"", b""))
        return st.binary(min_size=n, max_size=n)
    if isinstance(f, StrField):
        return st.binary(max_size=40)
    if isinstance(f, FlagsField):
        return st.integers(0, 255)
    return st.integers(0, 2 ** (8 * f.sz) - 1)


def _fields(cls) -> st.SearchStrategy:
    names = [f.name for f in cls.fields_desc if not isinstance(f, FieldLenField)]
    strats = [_field_strategy(cls, f) for f in cls.fields_desc if not isinstance(f, FieldLenField)]
    return st.tuples(*strats).map(lambda vals: dict(zip(names, vals)))


def _norm(v):
    if isinstance(v, list):
        return [raw(x) if isinstance(x, Packet) else x for x in v]
    if isinstance(v, Packet):
        return raw(v)
    return v


def _values(p: Packet) -> dict:
    return {f.name: _norm(p.getfieldval(f.name)) for f in p.fields_desc}


@pytest.mark.parametrize("cls", ALL_LAYERS, ids=lambda c: c.__name__)
def test_parse_build_fields(cls):
    @SETTINGS
    @given(_fields(cls))
    def check(fields):
        p = cls(**fields)
        again = cls(raw(p))
        want = {k: _norm(v) for k, v in fields.items()}
        got = _values(again)
        for k, v in want.items():
            assert got[k] == v, (k, got[k], v)
        if cls is R.VirtioAdminDevPartsMetadataList:
            assert again.count == len(fields["hdrs"])  # count defaults to the list length
        assert raw(again) == raw(p)
    check()


@pytest.mark.parametrize("cls", ALL_LAYERS, ids=lambda c: c.__name__)
def test_build_parse_bytes(cls):
    lo = _min_len(cls)

    @SETTINGS
    @given(st.binary(min_size=max(lo, 1), max_size=lo + 96))
    def check(x):
        # a payload shorter than its layer (e.g. 1 byte after an admin-capture header) is read
        # as zero-filled (virtio-admin.md §3.3.2) and builds back with those zeros
        p = cls(x)
        filled = sum(getattr(layer, "zero_filled", 0) for layer in p.iterpayloads())
        assert raw(p) == x + bytes(filled)
    check()


def test_short_payload_builds_back_zero_filled():
    # the case hypothesis found: a 16-byte admin-capture header (request of LIST_QUERY, all zero)
    # followed by 1 byte of a 24-byte virtio_admin_cmd_hdr
    p = C.AdminCaptureHdr(bytes(17))
    assert p.payload.zero_filled == 23
    assert raw(p) == bytes(40)


@SETTINGS
@given(st.integers(0, 0x13), st.integers(0, 1), st.binary(max_size=120))
def test_whole_requests_round_trip(opcode, group, data):
    hdr = opcode.to_bytes(2, "little") + group.to_bytes(2, "little") + bytes(12) + (1).to_bytes(8, "little")
    cls = D.DATA_LAYERS.get(opcode)
    # Data shorter than its structure reads (and so builds) zero-filled (spec §3.3.2).
    want = data.ljust(cls.min_len, b"\0") if data and cls is not None else data
    assert raw(A.VirtioAdminCmd(hdr + data)) == hdr + want


@SETTINGS
@given(st.integers(0, 0x13), st.integers(0, 3), st.binary(max_size=120))
def test_whole_completions_round_trip(opcode, subtype, res):
    cls = R.result_layer(opcode, subtype)
    want = res.ljust(getattr(cls, "min_len", 0), b"\0") if res and cls is not None else res
    assert raw(A.VirtioAdminCmdResult.for_request(opcode, subtype)(bytes(8) + res)) == bytes(8) + want


def test_bitmap_helpers():
    assert D.bits_bitmap([0, 1, 17]) == [0x20003]
    assert D.bits_bitmap([64]) == [0, 1]
    assert D.bitmap_bits([0x3E780]) == [7, 8, 9, 10, 13, 14, 15, 16, 17]
    assert raw(D.VirtioAdminCmdList.from_bits([7, 8, 9, 10, 13, 14, 15, 16, 17])) == bytes.fromhex("80e7030000000000")


def test_builders_match_spec_examples():
    # spec §12: stop VF 1
    stop = A.VirtioAdminCmd(opcode=A.DEV_MODE_SET, group_type=1, group_member_id=1) / \
        D.VirtioAdminDevModeSetData(flags="STOPPED")
    assert raw(stop) == bytes.fromhex("11000100" + "00" * 12 + "0100000000000000" + "01")
    # spec §12: create a GET-type device-parts object with id 0
    create = D.VirtioAdminResourceObjData(resource_obj_type=0, resource_obj_id=0) / \
        D.VirtioResourceObjDevParts(type="GET")
    assert raw(create) == bytes(24)
    # spec §12: DRIVER_CAP_SET both limits 4
    cap = D.VirtioAdminCapSetData(id=0) / D.VirtioDevPartsCap(get_parts_resource_objects_limit=4,
                                                              set_parts_resource_objects_limit=4)
    assert raw(cap) == bytes.fromhex("00000000000000000404")
    # metadata LIST result: count follows the list
    lst = R.VirtioAdminDevPartsMetadataList(hdrs=[VirtioDevPartHdr(HDR_FEAT)])
    assert raw(lst) == bytes.fromhex("0100000000000000") + HDR_FEAT


def _scalar_fields(cls):
    return [f for f in cls.fields_desc
            if not f.name.startswith(("reserved", "padding"))
            and not isinstance(f, (PacketListField, FieldListField, StrField, FieldLenField))]


@pytest.mark.parametrize("opcode", sorted(D.DATA_LAYERS), ids=lambda o: A.OPCODES[o])
def test_dict_api_reports_built_fields(opcode):
    """parse(build(fields)) == fields through decode_request's dicts as well."""
    cls = D.DATA_LAYERS[opcode]

    @SETTINGS
    @given(_fields(cls), st.integers(1, 2**64 - 1))
    def check(fields, member):
        pkt = A.VirtioAdminCmd(opcode=opcode, group_type=1, group_member_id=member) / cls(**fields)
        d, _ = A.decode_request(raw(pkt))
        assert (d["opcode"], d["group_type"], d["group_member_id"]) == (opcode, 1, member)
        for f in _scalar_fields(cls):
            assert d["data"][f.name] == fields[f.name], f.name
        if cls is D.VirtioAdminCmdList:
            assert d["data"]["opcodes"] == D.bitmap_bits(fields["device_admin_cmd_opcodes"])
        if cls is D.VirtioAdminLegacyWrData:
            assert d["data"]["registers"] == fields["registers"].hex()
        if cls is D.VirtioAdminDevPartsGetData:
            assert [x["part_type"] for x in d["data"]["hdr_list"]] == [p.part_type for p in fields["hdr_list"]]
        if cls is D.VirtioAdminDevPartsSetData:
            assert d["data"]["parts"] == len(fields["parts"])
    check()


RESULT_CASES = [(op, sub) for (op, sub) in R.RESULT_LAYERS] + [(0xB, 0)]


@pytest.mark.parametrize("opcode,subtype", RESULT_CASES, ids=lambda v: str(v))
def test_dict_api_reports_built_result_fields(opcode, subtype):
    cls = R.result_layer(opcode, subtype or 0)

    @SETTINGS
    @given(_fields(cls))
    def check(fields):
        pkt = A.VirtioAdminCmdResult() / cls(**fields)
        d, _ = A.decode_result(raw(pkt), opcode, subtype or 0)
        assert (d["status"], d["status_name"]) == (0, "OK")
        for f in _scalar_fields(cls):
            assert d["result"][f.name] == fields[f.name], f.name
        if "entries" in fields:
            assert [e["offset"] for e in d["result"]["entries"]] == [e.offset for e in fields["entries"]]
        if "hdrs" in fields:
            assert d["result"]["count"] == len(fields["hdrs"]) == len(d["result"]["hdrs"])
        if "parts" in fields:
            assert d["result"]["parts"] == len(fields["parts"])
    check()
