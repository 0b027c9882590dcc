# SPDX-License-Identifier: GPL-2.0-only
"""Values of the device-independent part types (0x0100–0x0105) as scapy layers.

Spec: shared/spec/device-parts.md §4 (value layouts), §5 (``virtio_pci_common_cfg``
fields), §10 (status bits).  These layers are the only declaration of the
layouts: :mod:`dissect.virtio.values` compiles the bulk decoders from them.
"""
from __future__ import annotations

from scapy.fields import ByteField, FieldListField, FlagsField, LEIntField, LELongField, LEShortField, StrFixedLenField
from scapy.packet import Packet, Raw

from dissect.virtio import names as N

#: List fields are bounded by the input bytes (every item takes >= 1 byte), not by
#: scapy's default of 100 items: a 64-pair VF has 270 parts and a 128-entry RSS table.
MAX_ITEMS = 1 << 32


class ValueLayer(Packet):
    """Base of value layers: bytes after the known layout stay as a Raw payload."""

    def guess_payload_class(self, payload: bytes):
        return Raw


class DevFeaturesValue(ValueLayer):
    """DEV_FEATURES / DRV_FEATURES: ``le64 feature_bits[]`` (§4)."""

    name = "virtio_dev_part_features"
    fields_desc = [FieldListField("feature_bits", [0], LELongField("word", 0), max_count=MAX_ITEMS)]

    def bits(self) -> list[int]:
        return [w * 64 + i for w, word in enumerate(self.feature_bits)
                for i in range(64) if word >> i & 1]

    def names(self) -> list[str]:
        return [N.feature_name(b) for b in self.bits()]


class _PciCfg(ValueLayer):
    name = "virtio_pci_common_cfg_field"


class PciCommonCfgU8(_PciCfg):
    fields_desc = [ByteField("value", 0)]


class PciCommonCfgU16(_PciCfg):
    fields_desc = [LEShortField("value", 0)]


class PciCommonCfgU32(_PciCfg):
    fields_desc = [LEIntField("value", 0)]


class PciCommonCfgU64(_PciCfg):
    fields_desc = [LELongField("value", 0)]


PCI_BY_SIZE: dict[int, type[Packet]] = {1: PciCommonCfgU8, 2: PciCommonCfgU16, 4: PciCommonCfgU32,
                                        8: PciCommonCfgU64}


def pci_common_cfg_value_class(offset: int) -> type[Packet]:
    """The value layer for the ``virtio_pci_common_cfg`` field at ``offset`` (§5)."""
    _name, size = N.PCI_COMMON_CFG_FIELDS[offset]
    return PCI_BY_SIZE[size]


_STATUS_FLAGS = [N.STATUS_BITS.get(1 << i, f"BIT{i}") for i in range(8)]


class DeviceStatusValue(ValueLayer):
    """DEVICE_STATUS: the u8 device status (§10)."""

    name = "virtio_dev_part_device_status"
    fields_desc = [FlagsField("status", 0, 8, _STATUS_FLAGS)]


class VqCfgValue(ValueLayer):
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


class VqNotifyCfgValue(ValueLayer):
    """``struct virtio_dev_part_vq_notify_data`` (8 bytes, §4)."""

    name = "virtio_dev_part_vq_notify_data"
    fields_desc = [
        LEShortField("queue_notify_off", 0),
        LEShortField("queue_notif_config_data", 0),
        StrFixedLenField("reserved", b"\x00" * 4, 4),
    ]
