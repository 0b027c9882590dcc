# SPDX-License-Identifier: GPL-2.0-only
"""Names for device parts: part types, feature bits, status bits, PCI common cfg.

Source: shared/spec/device-parts.md (virtio v1.4-cs01 device-parts.tex,
transport-pci.tex, content.tex, device-types/net/description.tex).  Names
follow the contract's naming rule (json-lines.md): the family prefix is
removed from part-type, status and net-class/command names; feature-bit
names keep their full constant name because the contract's examples do
(``VIRTIO_F_VERSION_1``, ``VIRTIO_NET_F_MQ``).
"""
from __future__ import annotations

# device-parts.md §4 and §8.1 (virtio-net, device id 1).
DEV_FEATURES = 0x0100
DRV_FEATURES = 0x0101
PCI_COMMON_CFG = 0x0102
DEVICE_STATUS = 0x0103
VQ_CFG = 0x0104
VQ_NOTIFY_CFG = 0x0105
NET_CVQ_CFG = 0x0200

#: ``VIRTIO_DEV_PART_*`` / ``VIRTIO_NET_DEV_PART_CVQ_CFG_PART`` with prefixes removed.
PART_TYPES: dict[int, str] = {
    DEV_FEATURES: "DEV_FEATURES",
    DRV_FEATURES: "DRV_FEATURES",
    PCI_COMMON_CFG: "PCI_COMMON_CFG",
    DEVICE_STATUS: "DEVICE_STATUS",
    VQ_CFG: "VQ_CFG",
    VQ_NOTIFY_CFG: "VQ_NOTIFY_CFG",
    NET_CVQ_CFG: "NET_CVQ_CFG",
}

#: Part types from here on are device-type specific (device-parts.md §3: 0x0200–0x05FF,
#: virtio-net's is NET_CVQ_CFG); below are the common ones.
DEVICE_TYPE_PARTS = 0x0200
#: virtio-net's device id: the device type the 0x0200+ parts are decoded for.
NET_DEVICE_ID = 1

#: ``VIRTIO_DEV_PART_F_OPTIONAL`` (the define is bit number 0; mask 0x01).
F_OPTIONAL = 0x01

#: Header-size of ``struct virtio_dev_part_hdr``.
HDR_LEN = 16

# device-parts.md §4: fixed value sizes.
VQ_CFG_LEN = 32
VQ_NOTIFY_CFG_LEN = 8
DEVICE_STATUS_LEN = 1

#: ``struct virtio_pci_common_cfg`` (device-parts.md §5): offset -> (field, size).
PCI_COMMON_CFG_FIELDS: dict[int, tuple[str, int]] = {
    0: ("device_feature_select", 4),
    4: ("device_feature", 4),
    8: ("driver_feature_select", 4),
    12: ("driver_feature", 4),
    16: ("config_msix_vector", 2),
    18: ("num_queues", 2),
    20: ("device_status", 1),
    21: ("config_generation", 1),
    22: ("queue_select", 2),
    24: ("queue_size", 2),
    26: ("queue_msix_vector", 2),
    28: ("queue_enable", 2),
    30: ("queue_notify_off", 2),
    32: ("queue_desc", 8),
    40: ("queue_driver", 8),
    48: ("queue_device", 8),
    56: ("queue_notif_config_data", 2),
    58: ("queue_reset", 2),
    60: ("admin_queue_index", 2),
    62: ("admin_queue_num", 2),
}
PCI_COMMON_CFG_BY_NAME: dict[str, int] = {n: off for off, (n, _s) in PCI_COMMON_CFG_FIELDS.items()}

#: Device status bits (device-parts.md §10), bit value -> name.
STATUS_BITS: dict[int, str] = {
    1: "ACKNOWLEDGE",
    2: "DRIVER",
    4: "DRIVER_OK",
    8: "FEATURES_OK",
    16: "SUSPEND",
    64: "DEVICE_NEEDS_RESET",
    128: "FAILED",
}
STATUS_BIT: dict[str, int] = {n: b for b, n in STATUS_BITS.items()}

#: Device-independent feature bits (device-parts.md §9.1).
COMMON_FEATURES: dict[int, str] = {
    24: "VIRTIO_F_NOTIFY_ON_EMPTY",
    27: "VIRTIO_F_ANY_LAYOUT",
    28: "VIRTIO_F_INDIRECT_DESC",
    29: "VIRTIO_F_EVENT_IDX",
    30: "UNUSED",
    32: "VIRTIO_F_VERSION_1",
    33: "VIRTIO_F_ACCESS_PLATFORM",
    34: "VIRTIO_F_RING_PACKED",
    35: "VIRTIO_F_IN_ORDER",
    36: "VIRTIO_F_ORDER_PLATFORM",
    37: "VIRTIO_F_SR_IOV",
    38: "VIRTIO_F_NOTIFICATION_DATA",
    39: "VIRTIO_F_NOTIF_CONFIG_DATA",
    40: "VIRTIO_F_RING_RESET",
    # Spec erratum: 41 lies in the device-type range, but VIRTIO_F_ADMIN_VQ = 41
    # and Linux treats it as a transport bit; a modern VF prints it this way.
    41: "VIRTIO_F_ADMIN_VQ",
    43: "VIRTIO_F_SUSPEND",
}

#: virtio-net feature bits (device-parts.md §9.2).  Legacy-only 41/42
#: (GUEST_RSC4/6) are deliberately absent: on a modern VF 41 is ADMIN_VQ.
NET_FEATURES: dict[int, str] = {
    0: "VIRTIO_NET_F_CSUM", 1: "VIRTIO_NET_F_GUEST_CSUM",
    2: "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS", 3: "VIRTIO_NET_F_MTU",
    5: "VIRTIO_NET_F_MAC", 6: "VIRTIO_NET_F_GSO",
    7: "VIRTIO_NET_F_GUEST_TSO4", 8: "VIRTIO_NET_F_GUEST_TSO6",
    9: "VIRTIO_NET_F_GUEST_ECN", 10: "VIRTIO_NET_F_GUEST_UFO",
    11: "VIRTIO_NET_F_HOST_TSO4", 12: "VIRTIO_NET_F_HOST_TSO6",
    13: "VIRTIO_NET_F_HOST_ECN", 14: "VIRTIO_NET_F_HOST_UFO",
    15: "VIRTIO_NET_F_MRG_RXBUF", 16: "VIRTIO_NET_F_STATUS",
    17: "VIRTIO_NET_F_CTRL_VQ", 18: "VIRTIO_NET_F_CTRL_RX",
    19: "VIRTIO_NET_F_CTRL_VLAN", 20: "VIRTIO_NET_F_CTRL_RX_EXTRA",
    21: "VIRTIO_NET_F_GUEST_ANNOUNCE", 22: "VIRTIO_NET_F_MQ",
    23: "VIRTIO_NET_F_CTRL_MAC_ADDR",
    50: "VIRTIO_NET_F_DEVICE_STATS", 51: "VIRTIO_NET_F_HASH_TUNNEL",
    52: "VIRTIO_NET_F_VQ_NOTF_COAL", 53: "VIRTIO_NET_F_NOTF_COAL",
    54: "VIRTIO_NET_F_GUEST_USO4", 55: "VIRTIO_NET_F_GUEST_USO6",
    56: "VIRTIO_NET_F_HOST_USO", 57: "VIRTIO_NET_F_HASH_REPORT",
    59: "VIRTIO_NET_F_GUEST_HDRLEN", 60: "VIRTIO_NET_F_RSS",
    61: "VIRTIO_NET_F_RSC_EXT", 62: "VIRTIO_NET_F_STANDBY",
    63: "VIRTIO_NET_F_SPEED_DUPLEX", 64: "VIRTIO_NET_F_RSS_CONTEXT",
    65: "VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO", 66: "VIRTIO_NET_F_GUEST_UDP_TUNNEL_GSO_CSUM",
    67: "VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO", 68: "VIRTIO_NET_F_HOST_UDP_TUNNEL_GSO_CSUM",
    69: "VIRTIO_NET_F_OUT_NET_HEADER", 70: "VIRTIO_NET_F_IPSEC",
}

#: All names a virtio-net VF's feature parts can carry (net + common).
FEATURE_NAMES: dict[int, str] = {**NET_FEATURES, **COMMON_FEATURES}
VIRTIO_F_VERSION_1 = {n: b for b, n in COMMON_FEATURES.items()}["VIRTIO_F_VERSION_1"]


def feature_name(bit: int) -> str:
    """Name of a virtio-net VF feature bit; unknown bits print as ``BIT<n>``."""
    return FEATURE_NAMES.get(bit) or f"BIT{bit}"


def status_names(status: int) -> list[str]:
    """Flag names of a device status byte, lowest bit first (unknown: ``BIT<n>``)."""
    out = []
    for i in range(8):
        v = 1 << i
        if status & v:
            out.append(STATUS_BITS.get(v) or f"BIT{i}")
    return out


# device-parts.md §8.2 (virtio-net control classes/commands).
NET_CTRL_CLASSES: dict[int, str] = {
    0: "RX", 1: "MAC", 2: "VLAN", 3: "ANNOUNCE", 4: "MQ",
    5: "GUEST_OFFLOADS", 6: "NOTF_COAL", 7: "HASH_TUNNEL", 8: "STATS",
    9: "VIRTNET_RSS_CTX_CTRL",
}
NET_CTRL_COMMANDS: dict[int, dict[int, str]] = {
    0: {0: "RX_PROMISC", 1: "RX_ALLMULTI", 2: "RX_ALLUNI", 3: "RX_NOMULTI",
        4: "RX_NOUNI", 5: "RX_NOBCAST"},
    1: {0: "MAC_TABLE_SET", 1: "MAC_ADDR_SET"},
    2: {0: "VLAN_ADD", 1: "VLAN_DEL"},
    3: {0: "ANNOUNCE_ACK"},
    4: {0: "MQ_VQ_PAIRS_SET", 1: "MQ_RSS_CONFIG", 2: "MQ_HASH_CONFIG"},
    5: {0: "GUEST_OFFLOADS_SET"},
    6: {0: "NOTF_COAL_TX_SET", 1: "NOTF_COAL_RX_SET", 2: "NOTF_COAL_VQ_SET",
        3: "NOTF_COAL_VQ_GET"},
    7: {0: "HASH_TUNNEL_SET"},
    8: {0: "STATS_QUERY", 1: "STATS_GET"},
}

#: (class, command) pairs that may be a NET_CVQ_CFG part (§8.2), the 13 layouts.
NET_CVQ_ALLOWED: frozenset[tuple[int, int]] = frozenset(
    [(0, c) for c in range(6)] + [(1, 0), (1, 1), (2, 0), (3, 0), (4, 0), (4, 1), (4, 2)])

#: ``VIRTIO_NET_HASH_TYPE_*`` (§8.3), bit value -> name.
HASH_TYPES: dict[int, str] = {
    1 << 0: "IPv4", 1 << 1: "TCPv4", 1 << 2: "UDPv4", 1 << 3: "IPv6",
    1 << 4: "TCPv6", 1 << 5: "UDPv6", 1 << 6: "IP_EX", 1 << 7: "TCP_EX", 1 << 8: "UDP_EX",
}

MQ_VQ_PAIRS_MIN = 1
MQ_VQ_PAIRS_MAX = 0x8000


def net_class_name(cls: int) -> str | None:
    return NET_CTRL_CLASSES.get(cls)


def net_command_name(cls: int, cmd: int) -> str | None:
    return NET_CTRL_COMMANDS.get(cls, {}).get(cmd)
