# SPDX-License-Identifier: GPL-2.0-only
"""The compiled admin walk (dissect.virtio.admin_flat) against its scapy twin.

The vectors of test_admin_*.py already run both ways (tests/conftest.py
``admin_path``); here both paths meet every admin record of the project's
captures and mutated commands, and the plans are checked to cover the
commands a migration sends (else the fast path would silently be scapy).
"""
from __future__ import annotations

import random

import pytest

from dissect.virtio import admin_data as D
from dissect.virtio import admin_decode
from dissect.virtio import admin_result as R
from dissect.virtio.admin_capture import iter_admin_records
from dissect.virtio.admin_flat import plan, walk_fast
from dissect.common.findings import Finding
from tests.conftest import TRACES

ADMIN_CAPTURES = sorted(TRACES.glob("sim/variants/*/admin-*.pcapng"))


def both(direction: int, opcode: int, subtype: int, buf: bytes):
    """(fast, layer) decodes of one record: dicts and findings as JSON objects."""
    out = []
    before = admin_decode.FAST
    try:
        for fast in (True, False):
            admin_decode.FAST = fast
            if direction == 0:
                d, f = admin_decode.decode_request(buf)
            else:
                d, f = admin_decode.decode_result(buf, opcode, subtype)
            out.append((d, [x.to_json() for x in f]))
    finally:
        admin_decode.FAST = before
    return out


def test_plans_cover_the_migration_commands_and_leave_variable_layers_to_scapy():
    fixed = [D.VirtioAdminCapGetData, D.VirtioAdminCapSetData, D.VirtioDevPartsCap,
             D.VirtioAdminResourceObjCmdHdr, D.VirtioAdminResourceObjData, D.VirtioResourceObjDevParts,
             D.VirtioAdminDevPartsMetadataData, D.VirtioAdminDevPartsGetData, D.VirtioAdminDevPartsSetData,
             D.VirtioAdminDevModeSetData, D.VirtioAdminLegacyRdData, R.VirtioAdminDevPartsMetadataSize,
             R.VirtioAdminDevPartsMetadataCount, R.VirtioAdminDevPartsMetadataList,
             R.VirtioAdminDevPartsGetResult]
    assert [c.__name__ for c in fixed if plan(c) is None] == []
    # a bitmap, register strings and NOTIFY_INFO entries are variable: scapy decodes them
    for c in (D.VirtioAdminCmdList, D.VirtioAdminLegacyWrData, R.VirtioAdminLegacyRdResult,
              R.VirtioAdminNotifyInfoResult, R.VirtioAdminCapIdList):
        assert plan(c) is None, c.__name__
    # a list layer is only compiled where the caller splits its list off (top level)
    assert plan(D.VirtioAdminDevPartsGetData, top=False) is None
    p = plan(D.VirtioAdminDevPartsGetData)
    assert (p.size, p.tail, p.padding) == (16, "hdr_list", True)
    p = plan(D.VirtioAdminCapSetData)
    assert (p.size, p.tail, p.padding) == (8, None, False)


def test_chain_by_payload_guess_with_surplus():
    # DRIVER_CAP_SET data (spec virtio-admin.md §7.4/§7.5): id 0 (VIRTIO_DEV_PARTS_CAP), reserved,
    # then struct virtio_dev_parts_cap {get limit 4, set limit 2} and 6 bytes, one not zero
    data = bytes.fromhex("0000 000000000000" "04 02" "000000000100")
    out, findings = walk_fast(D.VirtioAdminCapSetData, data, 24, "command data")
    assert out == {"id": 0, "id_name": "DEV_PARTS_CAP", "get_parts_resource_objects_limit": 4,
                   "set_parts_resource_objects_limit": 2, "surplus_bytes": 6}
    assert [(f.code, f.offset) for f in findings] == [("admin_surplus_bytes", 34)]
    # an unbound id: the capability data is the payload, kept raw under the layer's raw_name
    out, findings = walk_fast(D.VirtioAdminCapSetData, bytes.fromhex("0900 000000000000 aabb"), 24, "command data")
    assert out == {"id": 9, "id_name": D.CAP_IDS.get(9), "cap_specific_data": "aabb"} and findings == []


def test_short_layer_is_zero_filled_with_the_missing_count():
    out, findings = walk_fast(D.VirtioAdminDevPartsMetadataData, bytes.fromhex("0000 0000 07000000 02"), 24,
                              "command data")
    assert (out["resource_obj_id"], out["type"], out["type_name"]) == (7, 2, "LIST")
    assert [(f.code, f.offset, f.context) for f in findings] == [("admin_short_buffer", 24, {"missing": 7})]


@pytest.mark.skipif(not ADMIN_CAPTURES, reason="traces/sim/variants has no admin captures")
def test_every_admin_record_of_the_captures_decodes_equal():
    n = 0
    for p in ADMIN_CAPTURES:
        for r in iter_admin_records(p):
            if isinstance(r, Finding):
                continue
            fast, layer = both(r.direction, r.opcode, r.subtype, bytes(r.payload))
            assert fast == layer, (p.name, r.tag)
            n += 1
    assert n > 500


def test_mutated_commands_decode_equal():
    from fuzz.mutate import mutate
    from fuzz.targets import targets

    t = targets()["admin-commands"]
    seeds = t.seeds()
    rng = random.Random(14)
    for i in range(3000):
        data = mutate(seeds, rng, t.dictionary)
        if len(data) < 2:
            continue
        direction = 0 if data[0] == 0xFF else 1
        fast, layer = both(direction, data[0], data[1], data[2:])
        assert fast == layer, data.hex()
