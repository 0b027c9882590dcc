# SPDX-License-Identifier: GPL-2.0-only
"""Builders: realistic virtio-net VF snapshots and single-part helpers."""
from __future__ import annotations

import pytest

from dissect.virtio import builders as B
from dissect.virtio.parts_fast import decode_parts, decode_value
from dissect.virtio.validate import validate_parts
from tests.test_parts_golden import hx
from tests.test_parts_paths import parts_path  # noqa: F401


def test_vf_64_pairs_shape(parts_path):
    buf = B.virtio_net_vf_blob(64)
    parts, stop = parts_path.decode(buf)
    assert stop == len(buf)
    types = [p["part_type"] for p in parts]
    assert types.count(0x104) == 129 and types.count(0x105) == 129
    assert types[:5] == [0x100, 0x101, 0x102, 0x102, 0x103]
    assert parts[3]["value"] == {"field": "num_queues", "value": 129}
    cvq = [p for p in parts if p["part_type"] == 0x104][-1]
    assert cvq["selector_object"] == {"vq_index": 128} and cvq["value"]["queue_size"] == 64
    rss = [p for p in parts if p["part_type"] == 0x200 and p["selector_object"]["command"] == 1
           and p["selector_object"]["class"] == 4][0]
    assert len(rss["value"]["indirection_table"]) == 128
    assert rss["value"]["indirection_table"][:3] == [0, 1, 2] and rss["value"]["indirection_table"][64] == 0
    assert rss["value"]["max_tx_vq"] == 64 and len(rss["value"]["hash_key"]) == 80
    assert validate_parts(decode_parts(buf)[0], snapshot=True) == []


def test_generation_changes_ring_addresses_only():
    a = B.virtio_net_vf_blob(2, generation=0)
    b = B.virtio_net_vf_blob(2, generation=1)
    assert len(a) == len(b) and a != b


@pytest.mark.parametrize("spec, expected", [
    (B.status_part(0x0F), "03 01 00 00 00 00 00 00 00 00 00 00 01 00 00 00 0f"),
    (B.common_cfg_part("num_queues", 3), "02 01 00 00 12 00 00 00 00 00 00 00 02 00 00 00 03 00"),
    (B.features_part([0, 32]), "00 01 01 00 00 00 00 00 00 00 00 00 08 00 00 00 01 00 00 00 01 00 00 00"),
    (B.features_part([32], driver=True),
     "01 01 00 00 00 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00 01 00 00 00"),
    (B.vq_notify_part(2, 3, 4), "05 01 00 00 02 00 00 00 00 00 00 00 08 00 00 00 03 00 04 00 00 00 00 00"),
    (B.net_mac_addr_part("52:54:00:12:34:56"),
     "00 02 00 00 01 01 00 00 00 00 00 00 06 00 00 00 52 54 00 12 34 56"),
    (B.net_announce_part(), "00 02 00 00 03 00 00 00 00 00 00 00 00 00 00 00"),
    (B.PartSpec(0x103, b"\x0f", length=9), "03 01 00 00 00 00 00 00 00 00 00 00 09 00 00 00 0f"),
])
def test_single_part_bytes(spec, expected):
    assert B.build_parts([spec]) == hx(expected)


def test_rss_table_must_be_power_of_two():
    with pytest.raises(ValueError):
        B.net_rss_part([0, 1, 2])
    assert decode_value(decode_parts(B.build_parts([B.net_rss_part([0] * 8)]))[0][0])["indirection_table"] == [0] * 8
