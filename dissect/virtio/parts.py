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
through :mod:`dissect.virtio.parts_fast`, whose header struct is compiled
from ``_HDR_FIELDS`` (the raw ``selector`` view standing for the union) and
whose value decoders are compiled from the value layers
(:mod:`dissect.virtio.values`).
"""
from __future__ import annotations

import struct
from typing import Any

from scapy.fields import (ByteEnumField, ByteField, ConditionalField, FlagsField, LEIntEnumField,
                          LEIntField, LEShortEnumField, LEShortField, PacketListField, StrFixedLenField)
from scapy.packet import Packet, Raw

from dissect.virtio import names as N
from dissect.virtio import values as V
from dissect.virtio.names import PART_TYPES  # noqa: F401  (re-exported: INTERFACES.md)
from dissect.virtio.value_layers import MAX_ITEMS as _MAX_ITEMS
from dissect.virtio.values import VALUE_LAYERS  # noqa: F401  (re-exported)

_Z6 = b"\x00" * 6
_Z8 = b"\x00" * 8
HDR_LEN = N.HDR_LEN


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


def _name_part_type(part_type: int, name: str) -> None:
    fld = _HDR_FIELDS[0]
    fld.i2s[part_type] = name
    fld.s2i[name] = part_type


V.NAME_HOOKS.append(_name_part_type)


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
            layer = V.empty_value_layer(self.part_type, self.raw_selector())
            if layer is not None:
                self.add_payload(layer(_internal=1, _underlayer=self))
                return
        super().do_dissect_payload(s)

    def guess_payload_class(self, payload: bytes):
        return V.layer_for(self.part_type, self.raw_selector(), payload) or Raw

    def mysummary(self) -> str:
        return self.sprintf("%part_type% len=%length%")

    def value_object(self) -> dict[str, Any]:
        """The contract's ``dev_part.value`` (json-lines.md) from the value layer."""
        return V.packet_value_object(self.payload, self.raw_selector())


# Value layers are declared in value_layers / netparts and registered in values;
# re-exported here because users and tests import them with the part layers.
from dissect.virtio.netparts import (NetAnnounceAckValue, NetHashConfigValue,  # noqa: E402,F401
                                     NetMacAddrValue, NetMacTableValue, NetMqVqPairsValue,
                                     NetRssConfigValue, NetRxValue, NetVlanTableValue)
from dissect.virtio.value_layers import (DeviceStatusValue, DevFeaturesValue, PciCommonCfgU8,  # noqa: E402,F401
                                         PciCommonCfgU16, PciCommonCfgU32, PciCommonCfgU64,
                                         VqCfgValue, VqNotifyCfgValue, pci_common_cfg_value_class)


def _next_part(pkt, lst, cur, remain):
    # Stop before a part that does not fit (DP-01/DP-02) or the 8-byte trailer
    # (DP-14): those bytes stay a Raw payload of the list instead of a bogus part.
    if len(remain) < HDR_LEN:
        return None
    length = struct.unpack_from("<I", remain, 12)[0]
    return VirtioDevPart if HDR_LEN + length <= len(remain) else None


def _next_hdr(pkt, lst, cur, remain):
    return VirtioDevPartHdr if len(remain) >= HDR_LEN else None


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
