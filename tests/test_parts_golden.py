# SPDX-License-Identifier: GPL-2.0-only
"""Golden vectors for device parts, written by hand from device-parts.md.

Each vector is literal bytes (header | value) and the expected decoded
part; every test runs through both code paths (``parts_path`` fixture).
"""
from __future__ import annotations

import pytest

from dissect.virtio.parts_fast import decode_parts
from tests.test_parts_paths import parts_path  # noqa: F401  (the two-path fixture)


def hx(s: str) -> bytes:
    return bytes.fromhex(s.replace("|", " "))


# device-parts.md §11, the 185-byte worked example.
WORKED_EXAMPLE = hx(
    "00 01 01 00 00 00 00 00 00 00 00 00 10 00 00 00 | 23 80 c7 00 0b 00 00 00 00 00 00 00 00 00 00 00"
    "01 01 00 00 00 00 00 00 00 00 00 00 08 00 00 00 | 23 00 47 00 03 00 00 00"
    "02 01 00 00 12 00 00 00 00 00 00 00 02 00 00 00 | 03 00"
    "03 01 00 00 00 00 00 00 00 00 00 00 01 00 00 00 | 0f"
    "04 01 00 00 00 00 00 00 00 00 00 00 20 00 00 00 | 00 01 01 00 01 00 00 00 00 00 45 23 01 00 00 00"
    "                                                   00 10 45 23 01 00 00 00 00 20 45 23 01 00 00 00"
    "05 01 00 00 00 00 00 00 00 00 00 00 08 00 00 00 | 00 00 00 00 00 00 00 00"
    "00 02 00 00 01 01 00 00 00 00 00 00 06 00 00 00 | 52 54 00 12 34 56")

Z8 = b"\x00" * 8


def test_worked_example(parts_path):
    parts, stop = parts_path.decode(WORKED_EXAMPLE)
    assert len(WORKED_EXAMPLE) == 0xB9 and stop == 0xB9
    assert [p["offset"] for p in parts] == [0x00, 0x20, 0x38, 0x4A, 0x5B, 0x8B, 0xA3]
    assert [p["part_type"] for p in parts] == [0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x200]
    assert [p["flags"] for p in parts] == [1, 0, 0, 0, 0, 0, 0]
    assert [p["length"] for p in parts] == [16, 8, 2, 1, 32, 8, 6]
    assert parts[0]["value"] == {
        "bits": [0, 1, 5, 15, 16, 17, 18, 22, 23, 32, 33, 35],
        "names": ["VIRTIO_NET_F_CSUM", "VIRTIO_NET_F_GUEST_CSUM", "VIRTIO_NET_F_MAC",
                  "VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_STATUS", "VIRTIO_NET_F_CTRL_VQ",
                  "VIRTIO_NET_F_CTRL_RX", "VIRTIO_NET_F_MQ", "VIRTIO_NET_F_CTRL_MAC_ADDR",
                  "VIRTIO_F_VERSION_1", "VIRTIO_F_ACCESS_PLATFORM", "VIRTIO_F_IN_ORDER"]}
    assert parts[1]["value"]["bits"] == [0, 1, 5, 16, 17, 18, 22, 32, 33]
    assert parts[2]["selector_object"] == {"offset": 18}
    assert parts[2]["value"] == {"field": "num_queues", "value": 3}
    assert parts[3]["selector_object"] == {}
    assert parts[3]["value"] == {"value": 0x0F, "names": ["ACKNOWLEDGE", "DRIVER", "DRIVER_OK", "FEATURES_OK"]}
    assert parts[4]["selector_object"] == {"vq_index": 0}
    assert parts[4]["value"] == {"queue_size": 256, "vector": 1, "enabled": 1, "queue_desc": 0x123450000,
                                 "queue_driver": 0x123451000, "queue_device": 0x123452000}
    assert parts[5]["value"] == {"queue_notify_off": 0, "queue_notif_config_data": 0}
    assert parts[6]["selector_object"] == {"class": 1, "command": 1, "class_name": "MAC",
                                           "command_name": "MAC_ADDR_SET"}
    assert parts[6]["value"] == {"mac": "52:54:00:12:34:56"}


def test_worked_example_rebuilds(parts_path):
    assert parts_path.rebuild(WORKED_EXAMPLE) == WORKED_EXAMPLE


# (bytes, selector object, value object) — one part each.
SINGLE = {
    "drv_features_two_words_bit64": (
        hx("01 01 00 00 00 00 00 00 00 00 00 00 10 00 00 00 | 00 00 00 00 01 00 00 00 01 00 00 00 00 00 00 00"),
        {}, {"bits": [32, 64], "names": ["VIRTIO_F_VERSION_1", "VIRTIO_NET_F_RSS_CONTEXT"]}),
    "features_unknown_bit_names": (
        hx("00 01 01 00 00 00 00 00 00 00 00 00 08 00 00 00 | 10 00 00 00 00 04 00 00"),
        {}, {"bits": [4, 42], "names": ["BIT4", "BIT42"]}),
    "pci_u8_device_status": (
        hx("02 01 00 00 14 00 00 00 00 00 00 00 01 00 00 00 | 0f"),
        {"offset": 20}, {"field": "device_status", "value": 15}),
    "pci_u16_config_msix_vector": (
        hx("02 01 00 00 10 00 00 00 00 00 00 00 02 00 00 00 | ff ff"),
        {"offset": 16}, {"field": "config_msix_vector", "value": 0xFFFF}),
    "pci_u32_device_feature_select": (
        hx("02 01 00 00 00 00 00 00 00 00 00 00 04 00 00 00 | 01 00 00 00"),
        {"offset": 0}, {"field": "device_feature_select", "value": 1}),
    "pci_u64_queue_desc": (
        hx("02 01 00 00 20 00 00 00 00 00 00 00 08 00 00 00 | 00 10 00 00 01 00 00 00"),
        {"offset": 32}, {"field": "queue_desc", "value": 0x100001000}),
    "pci_wrong_length_raw": (
        hx("02 01 00 00 12 00 00 00 00 00 00 00 04 00 00 00 | 03 00 00 00"),
        {"offset": 18}, {"raw": "03000000"}),
    "pci_not_a_field_start_raw": (
        hx("02 01 00 00 13 00 00 00 00 00 00 00 01 00 00 00 | 07"),
        {"offset": 19}, {"raw": "07"}),
    "status_failed_needs_reset": (
        hx("03 01 00 00 00 00 00 00 00 00 00 00 01 00 00 00 | c1"),
        {}, {"value": 0xC1, "names": ["ACKNOWLEDGE", "DEVICE_NEEDS_RESET", "FAILED"]}),
    "vq_cfg_index_5": (
        hx("04 01 00 00 05 00 00 00 00 00 00 00 20 00 00 00 | 00 04 06 00 01 00 00 00"
           "00 00 00 40 00 00 00 00 00 10 00 40 00 00 00 00 00 20 00 40 00 00 00 00"),
        {"vq_index": 5}, {"queue_size": 1024, "vector": 6, "enabled": 1, "queue_desc": 0x40000000,
                          "queue_driver": 0x40001000, "queue_device": 0x40002000}),
    "vq_cfg_short_raw": (
        hx("04 01 00 00 01 00 00 00 00 00 00 00 04 00 00 00 | 00 01 01 00"),
        {"vq_index": 1}, {"raw": "00010100"}),
    "vq_notify_index_0x0102": (
        hx("05 01 00 00 02 01 00 00 00 00 00 00 08 00 00 00 | 07 00 2a 00 00 00 00 00"),
        {"vq_index": 0x102}, {"queue_notify_off": 7, "queue_notif_config_data": 42}),
    "vq_notify_longer_excess": (
        hx("05 01 00 00 03 00 00 00 00 00 00 00 0a 00 00 00 | 01 00 02 00 00 00 00 00 ee ff"),
        {"vq_index": 3}, {"queue_notify_off": 1, "queue_notif_config_data": 2, "excess": "eeff"}),
    "unknown_common_type_raw": (
        hx("06 01 00 00 01 02 03 04 05 06 07 08 02 00 00 00 | aa bb"),
        {"raw": "0102030405060708"}, {"raw": "aabb"}),
    "reserved_type_0x0600_raw": (
        hx("00 06 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
        {"raw": "0000000000000000"}, {"raw": ""}),
    # virtio-net CVQ parts: all 13 (class, command) layouts of §8.2.
    "net_rx_promisc_on": (
        hx("00 02 00 00 00 00 00 00 00 00 00 00 01 00 00 00 | 01"),
        {"class": 0, "command": 0, "class_name": "RX", "command_name": "RX_PROMISC"}, {"on": True}),
    "net_rx_allmulti_off": (
        hx("00 02 00 00 00 01 00 00 00 00 00 00 01 00 00 00 | 00"),
        {"class": 0, "command": 1, "class_name": "RX", "command_name": "RX_ALLMULTI"}, {"on": False}),
    "net_rx_alluni_on": (
        hx("00 02 00 00 00 02 00 00 00 00 00 00 01 00 00 00 | 01"),
        {"class": 0, "command": 2, "class_name": "RX", "command_name": "RX_ALLUNI"}, {"on": True}),
    "net_rx_nomulti_on": (
        hx("00 02 00 00 00 03 00 00 00 00 00 00 01 00 00 00 | 01"),
        {"class": 0, "command": 3, "class_name": "RX", "command_name": "RX_NOMULTI"}, {"on": True}),
    "net_rx_nouni_off": (
        hx("00 02 00 00 00 04 00 00 00 00 00 00 01 00 00 00 | 00"),
        {"class": 0, "command": 4, "class_name": "RX", "command_name": "RX_NOUNI"}, {"on": False}),
    "net_rx_nobcast_on": (
        hx("00 02 00 00 00 05 00 00 00 00 00 00 01 00 00 00 | 01"),
        {"class": 0, "command": 5, "class_name": "RX", "command_name": "RX_NOBCAST"}, {"on": True}),
    "net_mac_table_set": (
        hx("00 02 00 00 01 00 00 00 00 00 00 00 1a 00 00 00 | 01 00 00 00 52 54 00 12 34 56"
           "02 00 00 00 33 33 00 00 00 01 01 00 5e 00 00 fb"),
        {"class": 1, "command": 0, "class_name": "MAC", "command_name": "MAC_TABLE_SET"},
        {"unicast": ["52:54:00:12:34:56"], "multicast": ["33:33:00:00:00:01", "01:00:5e:00:00:fb"]}),
    "net_mac_addr_set": (
        hx("00 02 00 00 01 01 00 00 00 00 00 00 06 00 00 00 | aa bb cc dd ee ff"),
        {"class": 1, "command": 1, "class_name": "MAC", "command_name": "MAC_ADDR_SET"},
        {"mac": "aa:bb:cc:dd:ee:ff"}),
    "net_vlan_table": (
        hx("00 02 00 00 02 00 00 00 00 00 00 00 04 00 00 00 | 64 00 c8 00"),
        {"class": 2, "command": 0, "class_name": "VLAN", "command_name": "VLAN_ADD"},
        {"vlans": [100, 200]}),
    "net_announce_ack": (
        hx("00 02 00 00 03 00 00 00 00 00 00 00 00 00 00 00"),
        {"class": 3, "command": 0, "class_name": "ANNOUNCE", "command_name": "ANNOUNCE_ACK"}, {}),
    "net_mq_vq_pairs_set": (
        hx("00 02 00 00 04 00 00 00 00 00 00 00 02 00 00 00 | 04 00"),
        {"class": 4, "command": 0, "class_name": "MQ", "command_name": "MQ_VQ_PAIRS_SET"},
        {"virtqueue_pairs": 4}),
    "net_mq_rss_config": (
        hx("00 02 00 00 04 01 00 00 00 00 00 00 17 00 00 00 | 3f 00 00 00 03 00 00 00"
           "00 00 01 00 02 00 03 00 04 00 04 de ad be ef"),
        {"class": 4, "command": 1, "class_name": "MQ", "command_name": "MQ_RSS_CONFIG"},
        {"hash_types": 0x3F, "indirection_table": [0, 1, 2, 3], "unclassified_queue": 0,
         "max_tx_vq": 4, "hash_key": "deadbeef"}),
    "net_mq_hash_config": (
        hx("00 02 00 00 04 02 00 00 00 00 00 00 0f 00 00 00 | 12 00 00 00 00 00 00 00 00 00 00 00 02 ab cd"),
        {"class": 4, "command": 2, "class_name": "MQ", "command_name": "MQ_HASH_CONFIG"},
        {"hash_types": 0x12, "hash_key": "abcd"}),
    # inconsistent net values stay raw
    "net_rx_empty_raw": (
        hx("00 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
        {"class": 0, "command": 0, "class_name": "RX", "command_name": "RX_PROMISC"}, {"raw": ""}),
    "net_not_a_part_selector_raw": (
        hx("00 02 00 00 05 00 00 00 00 00 00 00 08 00 00 00 | 01 00 00 00 00 00 00 00"),
        {"class": 5, "command": 0, "class_name": "GUEST_OFFLOADS", "command_name": "GUEST_OFFLOADS_SET"},
        {"raw": "0100000000000000"}),
    "net_mac_table_overrun_raw": (
        hx("00 02 00 00 01 00 00 00 00 00 00 00 08 00 00 00 | 05 00 00 00 00 00 00 00"),
        {"class": 1, "command": 0, "class_name": "MAC", "command_name": "MAC_TABLE_SET"},
        {"raw": "0500000000000000"}),
    "net_rss_key_overrun_raw": (
        hx("00 02 00 00 04 01 00 00 00 00 00 00 0d 00 00 00 | 01 00 00 00 00 00 00 00 00 00 00 00 09"),
        {"class": 4, "command": 1, "class_name": "MQ", "command_name": "MQ_RSS_CONFIG"},
        {"raw": "01000000000000000000000009"}),
}


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_single_part(parts_path, name):
    buf, sel, value = SINGLE[name]
    parts, stop = parts_path.decode(buf)
    assert stop == len(buf)
    assert len(parts) == 1
    p = parts[0]
    assert p["offset"] == 0
    assert p["part_type"] == int.from_bytes(buf[:2], "little")
    assert p["length"] == len(buf) - 16
    assert p["selector"] == buf[4:12]
    assert p["selector_object"] == sel
    assert p["value"] == value
    assert parts_path.rebuild(buf) == buf


def test_all_thirteen_net_layouts_covered():
    sels = {(v[1]["class"], v[1]["command"]) for k, v in SINGLE.items()
            if k.startswith("net_") and "raw" not in v[2]}
    assert len(sels) == 13


def test_parts_split_exactly_back_to_back(parts_path):
    order = ["vq_cfg_index_5", "net_announce_ack", "vq_notify_longer_excess", "net_mq_rss_config"]
    buf = b"".join(SINGLE[n][0] for n in order)
    parts, stop = parts_path.decode(buf)
    assert stop == len(buf)
    assert [p["offset"] for p in parts] == [0, 48, 64, 90]
    assert [p["value"] for p in parts] == [SINGLE[n][2] for n in order]


# ------------------------------------------------------------ leftovers


def test_trailer_is_not_a_part(parts_path):
    buf = WORKED_EXAMPLE + hx("de ad be ef 00 11 22 33")
    parts, stop = parts_path.decode(buf)
    assert len(parts) == 7 and stop == 0xB9
    _p, _s, findings = decode_parts(buf, base_offset=16)
    assert [(f.severity, f.code, f.offset) for f in findings] == [("warning", "parts_trailer_8", 16 + 0xB9)]
    assert "6.13.0" in findings[0].message and "6.15.2" in findings[0].message
    assert "CVE-2025-38314" in findings[0].message
    assert findings[0].context["trailer"] == "deadbeef00112233"
    assert parts_path.rebuild(buf) == buf


def test_truncated_header(parts_path):
    buf = WORKED_EXAMPLE + hx("00 01 00 00 00")
    parts, stop = parts_path.decode(buf)
    assert len(parts) == 7 and stop == 0xB9
    _p, _s, findings = decode_parts(buf)
    assert [(f.severity, f.code, f.offset, f.context["missing"]) for f in findings] == \
        [("error", "part_truncated_header", 0xB9, 11)]


def test_truncated_value(parts_path):
    buf = WORKED_EXAMPLE + hx("04 01 00 00 01 00 00 00 00 00 00 00 20 00 00 00 | 00 01 01")
    parts, stop = parts_path.decode(buf)
    assert len(parts) == 7 and stop == 0xB9
    _p, _s, findings = decode_parts(buf)
    assert [(f.severity, f.code, f.offset, f.context["missing"]) for f in findings] == \
        [("error", "part_truncated_value", 0xB9, 29)]


def test_empty_and_memoryview_input():
    assert decode_parts(b"") == ([], 0, [])
    parts, stop, f = decode_parts(memoryview(bytearray(WORKED_EXAMPLE)))
    assert len(parts) == 7 and stop == 0xB9 and f == []
    assert bytes(parts[6].value) == hx("52 54 00 12 34 56")


def test_header_only_list_layer():
    from dissect.virtio.parts import VirtioDevPartHdrList

    buf = hx("00 01 01 00 00 00 00 00 00 00 00 00 10 00 00 00"
             "02 01 00 00 12 00 00 00 00 00 00 00 02 00 00 00"
             "05 01 00 00 07 00 00 00 00 00 00 00 08 00 00 00")
    lst = VirtioDevPartHdrList(buf)
    assert [(h.part_type, h.length) for h in lst.headers] == [(0x100, 16), (0x102, 2), (0x105, 8)]
    assert lst.headers[1].cfg_offset == 18 and lst.headers[2].vq_index == 7
    assert bytes(lst) == buf
