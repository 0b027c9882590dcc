# SPDX-License-Identifier: GPL-2.0-only
"""Device parts as scapy layers (virtio 1.4 ``virtio_dev_part``).

Spec: shared/spec/device-parts.md.  :class:`VirtioDevPartHdr` is the bare
16-byte ``virtio_dev_part_hdr`` (metadata LIST results, GET SELECTED
header lists); :class:`VirtioDevPart` is header + value, with the value
layer chosen by part type and selector.  Both split a buffer exactly
(``extract_padding``), so ``PacketListField("parts", [], VirtioDevPart)``
parses a DEV_PARTS_GET result or a DEVICE_DATA record payload.

The selector union (§2.1) is three views over header bytes 4–11, chosen by
``part_type``: ``cfg_offset``/``cfg_reserved`` for PCI_COMMON_CFG,
``vq_index``/``vq_reserved`` for VQ_CFG and VQ_NOTIFY_CFG,
``cvq_class``/``cvq_command``/``cvq_reserved`` for the virtio-net CVQ part,
and a raw 8-byte ``selector`` for every other type.  Part types 0x0200+ are
device-type specific; migtrace decodes VFs of virtio-net (device id 1), so
0x0200 is the net CVQ part here.

These layers are for presentation, building and tests; bulk work goes
through :mod:`dissect.virtio.parts_fast` (same layouts, see ``value_layout``).
"""
from __future__ import annotations

import struct
from typing import Any

from scapy.fields import (ByteEnumField, ByteField, ConditionalField, FieldListField,
                          FlagsField, LEIntEnumField, LEIntField, LELongField, LEShortEnumField, LEShortField,
                          PacketListField, StrFixedLenField)
from scapy.packet import NoPayload, Packet, Raw

from dissect.virtio import names as N
from dissect.virtio.names import PART_TYPES  # noqa: F401  (re-exported: INTERFACES.md)
from dissect.virtio.parts_fast import HDR_LEN, value_layout

_Z6 = b"\x00" * 6
#: List fields are bounded by the input bytes (every item takes >= 1 byte), not by
#: scapy's default of 100 items: a 64-pair VF has 270 parts and a 128-entry RSS table.
_MAX_ITEMS = 1 << 32
_Z8 = b"\x00" * 8


def _is(*types: int):
    return lambda p: p.part_type in types


_PCI_FIELD_NAMES = {off: name for off, (name, _size) in N.PCI_COMMON_CFG_FIELDS.items()}
_NO_VIEW = (N.PCI_COMMON_CFG, N.VQ_CFG, N.VQ_NOTIFY_CFG, N.NET_CVQ_CFG)

#: ``struct virtio_dev_part_hdr`` (§2) with the selector union (§2.1), declared once.
_HDR_FIELDS = [
    LEShortEnumField("part_type", N.DEV_FEATURES, N.PART_TYPES),
    FlagsField("flags", 0, 8, ["OPTIONAL"]),
    ByteField("reserved", 0),
    ConditionalField(LEIntEnumField("cfg_offset", 0, _PCI_FIELD_NAMES), _is(N.PCI_COMMON_CFG)),
    ConditionalField(LEIntField("cfg_reserved", 0), _is(N.PCI_COMMON_CFG)),
    ConditionalField(LEShortField("vq_index", 0), _is(N.VQ_CFG, N.VQ_NOTIFY_CFG)),
    ConditionalField(StrFixedLenField("vq_reserved", _Z6, 6), _is(N.VQ_CFG, N.VQ_NOTIFY_CFG)),
    ConditionalField(ByteEnumField("cvq_class", 0, N.NET_CTRL_CLASSES), _is(N.NET_CVQ_CFG)),
    ConditionalField(ByteField("cvq_command", 0), _is(N.NET_CVQ_CFG)),
    ConditionalField(StrFixedLenField("cvq_reserved", _Z6, 6), _is(N.NET_CVQ_CFG)),
    ConditionalField(StrFixedLenField("selector", _Z8, 8), lambda p: p.part_type not in _NO_VIEW),
    LEIntField("length", None),
]


class VirtioDevPartHdr(Packet):
    """``struct virtio_dev_part_hdr`` alone (16 bytes, no value)."""

    name = "virtio_dev_part_hdr"
    fields_desc = list(_HDR_FIELDS)

    def raw_selector(self) -> bytes:
        """Header bytes 4–11, whichever view is in use."""
        pt = self.part_type
        if pt == N.PCI_COMMON_CFG:
            return struct.pack("<II", self.cfg_offset, self.cfg_reserved)
        if pt in (N.VQ_CFG, N.VQ_NOTIFY_CFG):
            return struct.pack("<H", self.vq_index) + bytes(self.vq_reserved)
        if pt == N.NET_CVQ_CFG:
            return bytes((self.cvq_class, self.cvq_command)) + bytes(self.cvq_reserved)
        return bytes(self.selector)

    def selector_object(self) -> dict[str, Any]:
        """The contract's ``dev_part.selector`` object."""
        pt = self.part_type
        if pt == N.PCI_COMMON_CFG:
            return {"offset": self.cfg_offset}
        if pt in (N.VQ_CFG, N.VQ_NOTIFY_CFG):
            return {"vq_index": self.vq_index}
        if pt == N.NET_CVQ_CFG:
            c, m = self.cvq_class, self.cvq_command
            return {"class": c, "command": m, "class_name": N.net_class_name(c),
                    "command_name": N.net_command_name(c, m)}
        if pt in (N.DEV_FEATURES, N.DRV_FEATURES, N.DEVICE_STATUS):
            return {}
        return {"raw": bytes(self.selector).hex()}

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            pkt = pkt[:12] + struct.pack("<I", len(pay)) + pkt[16:]
        return pkt + pay

    def extract_padding(self, s: bytes):
        return b"", s


class VirtioDevPart(VirtioDevPartHdr):
    """``struct virtio_dev_part``: header + ``length`` value bytes (value layer by type)."""

    name = "virtio_dev_part"
    fields_desc = list(_HDR_FIELDS)

    def extract_padding(self, s: bytes):
        n = self.length or 0
        return s[:n], s[n:]

    def do_dissect_payload(self, s: bytes) -> None:
        # scapy adds no payload for an empty value; ANNOUNCE_ACK and an empty
        # VLAN table are zero-length values that still have a layout.
        if not s:
            key, _used = value_layout(self.part_type, self.raw_selector(), b"")
            if key in VALUE_LAYERS:
                self.add_payload(VALUE_LAYERS[key](_internal=1, _underlayer=self))
                return
        super().do_dissect_payload(s)

    def guess_payload_class(self, payload: bytes):
        key, _used = value_layout(self.part_type, self.raw_selector(), payload)
        if key == "pci_cfg":
            return _PCI_BY_SIZE[len(payload)]
        return VALUE_LAYERS.get(key, Raw)

    def mysummary(self) -> str:
        return self.sprintf("%part_type% len=%length%")

    def value_object(self) -> dict[str, Any]:
        """The contract's ``dev_part.value`` (json-lines.md) from the value layer."""
        val = self.payload
        if isinstance(val, (Raw, NoPayload)):
            return {"raw": bytes(val).hex()}
        out = _VALUE_OBJECT[type(val)](val, self)
        if not isinstance(val.payload, NoPayload):
            out["excess"] = bytes(val.payload).hex()
        return out


# ----------------------------------------------------------------- values


class _Value(Packet):
    """Base of value layers: bytes after the known layout stay as a Raw payload."""

    def guess_payload_class(self, payload: bytes):
        return Raw


class DevFeaturesValue(_Value):
    """DEV_FEATURES / DRV_FEATURES: ``le64 feature_bits[]`` (§4)."""

    name = "virtio_dev_part_features"
    fields_desc = [FieldListField("feature_bits", [0], LELongField("word", 0), max_count=_MAX_ITEMS)]

    def bits(self) -> list[int]:
        return [w * 64 + i for w, word in enumerate(self.feature_bits)
                for i in range(64) if word >> i & 1]

    def names(self) -> list[str]:
        return [N.feature_name(b) for b in self.bits()]


class _PciCfg(_Value):
    name = "virtio_pci_common_cfg_field"


class PciCommonCfgU8(_PciCfg):
    fields_desc = [ByteField("value", 0)]


class PciCommonCfgU16(_PciCfg):
    fields_desc = [LEShortField("value", 0)]


class PciCommonCfgU32(_PciCfg):
    fields_desc = [LEIntField("value", 0)]


class PciCommonCfgU64(_PciCfg):
    fields_desc = [LELongField("value", 0)]


_PCI_BY_SIZE = {1: PciCommonCfgU8, 2: PciCommonCfgU16, 4: PciCommonCfgU32, 8: PciCommonCfgU64}


def pci_common_cfg_value_class(offset: int) -> type[Packet]:
    """The value layer for the ``virtio_pci_common_cfg`` field at ``offset`` (§5)."""
    _name, size = N.PCI_COMMON_CFG_FIELDS[offset]
    return _PCI_BY_SIZE[size]


_STATUS_FLAGS = [N.STATUS_BITS.get(1 << i, f"BIT{i}") for i in range(8)]


class DeviceStatusValue(_Value):
    """DEVICE_STATUS: the u8 device status (§10)."""

    name = "virtio_dev_part_device_status"
    fields_desc = [FlagsField("status", 0, 8, _STATUS_FLAGS)]


class VqCfgValue(_Value):
    """``struct virtio_dev_part_vq_cfg`` (32 bytes, §4)."""

    name = "virtio_dev_part_vq_cfg"
    fields_desc = [
        LEShortField("queue_size", 0),
        LEShortField("vector", 0),
        LEShortField("enabled", 0),
        LEShortField("reserved", 0),
        LELongField("queue_desc", 0),
        LELongField("queue_driver", 0),
        LELongField("queue_device", 0),
    ]


class VqNotifyCfgValue(_Value):
    """``struct virtio_dev_part_vq_notify_data`` (8 bytes, §4)."""

    name = "virtio_dev_part_vq_notify_data"
    fields_desc = [
        LEShortField("queue_notify_off", 0),
        LEShortField("queue_notif_config_data", 0),
        StrFixedLenField("reserved", b"\x00" * 4, 4),
    ]


from dissect.virtio.netparts import (NetAnnounceAckValue, NetHashConfigValue,  # noqa: E402
                                     NetMacAddrValue, NetMacTableValue, NetMqVqPairsValue,
                                     NetRssConfigValue, NetRxValue, NetVlanTableValue)

#: layout key (``parts_fast.value_layout``) -> value layer.
VALUE_LAYERS: dict[str, type[Packet]] = {
    "features": DevFeaturesValue,
    "status": DeviceStatusValue,
    "vq_cfg": VqCfgValue,
    "vq_notify": VqNotifyCfgValue,
    "net_rx": NetRxValue,
    "net_mac_table": NetMacTableValue,
    "net_mac_addr": NetMacAddrValue,
    "net_vlan": NetVlanTableValue,
    "net_announce": NetAnnounceAckValue,
    "net_mq_pairs": NetMqVqPairsValue,
    "net_rss": NetRssConfigValue,
    "net_hash": NetHashConfigValue,
}


def _next_part(pkt, lst, cur, remain):
    # Stop before a part that does not fit (DP-01/DP-02) or the 8-byte trailer
    # (DP-14): those bytes stay a Raw payload of the list instead of a bogus part.
    if len(remain) < HDR_LEN:
        return None
    length = struct.unpack_from("<I", remain, 12)[0]
    return VirtioDevPart if HDR_LEN + length <= len(remain) else None


def _next_hdr(pkt, lst, cur, remain):
    return VirtioDevPartHdr if len(remain) >= HDR_LEN else None


def _fields(*names: str):
    return lambda v, part: {n: getattr(v, n) for n in names}


#: value layer -> contract value object (same fields as parts_fast.decode_value).
_VALUE_OBJECT = {
    DevFeaturesValue: lambda v, part: {"bits": v.bits(), "names": v.names()},
    PciCommonCfgU8: lambda v, part: {"field": N.PCI_COMMON_CFG_FIELDS[part.cfg_offset][0], "value": v.value},
    DeviceStatusValue: lambda v, part: {"value": int(v.status), "names": N.status_names(int(v.status))},
    VqCfgValue: _fields("queue_size", "vector", "enabled", "queue_desc", "queue_driver", "queue_device"),
    VqNotifyCfgValue: _fields("queue_notify_off", "queue_notif_config_data"),
    NetRxValue: lambda v, part: {"on": bool(v.on)},
    NetMacTableValue: lambda v, part: {"unicast": list(v.unicast), "multicast": list(v.multicast)},
    NetMacAddrValue: _fields("mac"),
    NetVlanTableValue: lambda v, part: {"vlans": list(v.vlans)},
    NetAnnounceAckValue: lambda v, part: {},
    NetMqVqPairsValue: _fields("virtqueue_pairs"),
    NetRssConfigValue: lambda v, part: {
        "hash_types": v.hash_types, "indirection_table": list(v.indirection_table),
        "unclassified_queue": v.unclassified_queue, "max_tx_vq": v.max_tx_vq,
        "hash_key": bytes(v.hash_key).hex()},
    NetHashConfigValue: lambda v, part: {"hash_types": v.hash_types, "hash_key": bytes(v.hash_key).hex()},
}
for _c in (PciCommonCfgU16, PciCommonCfgU32, PciCommonCfgU64):
    _VALUE_OBJECT[_c] = _VALUE_OBJECT[PciCommonCfgU8]


class VirtioDevPartList(Packet):
    """Back-to-back parts: a DEV_PARTS_GET result or a DEVICE_DATA payload.

    Bytes that do not form a complete part (a truncated part, the 8-byte
    CVE-2025-38314 trailer) are left as the Raw payload.
    """

    name = "virtio_dev_parts"
    fields_desc = [PacketListField("parts", [], next_cls_cb=_next_part, max_count=_MAX_ITEMS)]


class VirtioDevPartHdrList(Packet):
    """Back-to-back bare headers (METADATA LIST result, GET SELECTED data)."""

    name = "virtio_dev_part_hdrs"
    fields_desc = [PacketListField("headers", [], next_cls_cb=_next_hdr, max_count=_MAX_ITEMS)]


def parse_parts(buf: bytes) -> list[VirtioDevPart]:
    """Parts of ``buf`` as scapy packets (leftover bytes: see ``parts_fast.decode_parts``)."""
    return list(VirtioDevPartList(bytes(buf)).parts)
