# SPDX-License-Identifier: GPL-2.0-only
"""virtio-net device-part values (part type 0x0200, NET_CVQ_CFG) as scapy layers.

Spec: shared/spec/device-parts.md §8.2/§8.3 — the value of a net CVQ part has
the format of the control-virtqueue ``command-specific-data`` of its
(class, command) selector.  Thirteen layouts: six RX switches, MAC table,
MAC address, VLAN table, ANNOUNCE_ACK, MQ pairs, RSS config, hash config.
"""
from __future__ import annotations

from scapy.fields import (ByteField, FieldLenField, FieldListField, LEIntField,
                          LEShortField, MACField, StrFixedLenField, StrLenField)
from dissect.virtio import names as N
from dissect.virtio.value_layers import MAX_ITEMS as _MAX_ITEMS
from dissect.virtio.value_layers import ValueLayer as _NetValue


class NetRxValue(_NetValue):
    """VIRTIO_NET_CTRL_RX_* (class 0, commands 0–5): u8 0 off / 1 on."""

    name = "virtio_net_ctrl_rx"
    fields_desc = [ByteField("on", 0)]


class NetMacTableValue(_NetValue):
    """MAC_TABLE_SET (1/0): unicast then multicast ``virtio_net_ctrl_mac`` tables."""

    name = "virtio_net_ctrl_mac_table"
    fields_desc = [
        FieldLenField("unicast_entries", None, count_of="unicast", fmt="<I"),
        FieldListField("unicast", [], MACField("mac", "00:00:00:00:00:00"),
                       count_from=lambda p: p.unicast_entries, max_count=_MAX_ITEMS),
        FieldLenField("multicast_entries", None, count_of="multicast", fmt="<I"),
        FieldListField("multicast", [], MACField("mac", "00:00:00:00:00:00"),
                       count_from=lambda p: p.multicast_entries, max_count=_MAX_ITEMS),
    ]


class NetMacAddrValue(_NetValue):
    """MAC_ADDR_SET (1/1): the 6-byte MAC."""

    name = "virtio_net_ctrl_mac_addr"
    fields_desc = [MACField("mac", "00:00:00:00:00:00")]


class NetVlanTableValue(_NetValue):
    """VLAN_ADD (2/0): the whole VLAN filter table as le16 ids (UNVERIFIED encoding, §8.2)."""

    name = "virtio_net_ctrl_vlan_table"
    fields_desc = [FieldListField("vlans", [], LEShortField("vid", 0), max_count=_MAX_ITEMS)]


class NetAnnounceAckValue(_NetValue):
    """ANNOUNCE_ACK (3/0): no data (length 0 presumed, §8.2)."""

    name = "virtio_net_ctrl_announce_ack"
    fields_desc = []


class NetMqVqPairsValue(_NetValue):
    """MQ_VQ_PAIRS_SET (4/0): le16 virtqueue_pairs (1..0x8000)."""

    name = "virtio_net_ctrl_mq"
    fields_desc = [LEShortField("virtqueue_pairs", 1)]


class NetRssConfigValue(_NetValue):
    """MQ_RSS_CONFIG (4/1): ``struct virtio_net_rss_config`` (§8.3)."""

    name = "virtio_net_rss_config"
    fields_desc = [
        LEIntField("hash_types", 0),
        FieldLenField("indirection_table_mask", None, count_of="indirection_table", fmt="<H",
                      adjust=lambda p, n: n - 1),
        LEShortField("unclassified_queue", 0),
        FieldListField("indirection_table", [0], LEShortField("rss_rq_id", 0),
                       count_from=lambda p: p.indirection_table_mask + 1, max_count=_MAX_ITEMS),
        LEShortField("max_tx_vq", 0),
        FieldLenField("hash_key_length", None, length_of="hash_key", fmt="B"),
        StrLenField("hash_key", b"", length_from=lambda p: p.hash_key_length),
    ]

    def hash_type_names(self) -> list[str]:
        return [n for b, n in N.HASH_TYPES.items() if self.hash_types & b]


class NetHashConfigValue(_NetValue):
    """MQ_HASH_CONFIG (4/2): ``struct virtio_net_hash_config`` (§8.3)."""

    name = "virtio_net_hash_config"
    fields_desc = [
        LEIntField("hash_types", 0),
        StrFixedLenField("reserved", b"\x00" * 8, 8),
        FieldLenField("hash_key_length", None, length_of="hash_key", fmt="B"),
        StrLenField("hash_key", b"", length_from=lambda p: p.hash_key_length),
    ]
