# SPDX-License-Identifier: GPL-2.0-only
"""``struct virtiovf_migration_header`` as a scapy layer.

Spec: shared/spec/vfio-virtio-stream.md §3.1 (Linux
drivers/vfio/pci/virtio/common.h).  A DEVICE_DATA record's payload is the
raw DEV_PARTS_GET(ALL) result, so tag 0 is bound to the device-parts list.
For streams use :mod:`dissect.vfio.stream` (incremental, bounded memory);
this layer is for presentation, building and tests.
"""
from __future__ import annotations

import struct

from scapy.fields import FlagsField, LEIntEnumField, LELongField, PacketListField
from scapy.packet import Packet, bind_layers

from dissect.common.fields import compile_layer
from dissect.virtio.parts import VirtioDevPartList

TAG_DEVICE_DATA = 0
FLAGS_TAG_OPTIONAL = 0x1
#: ``VIRTIOVF_MIGF_HEADER_TAG_*`` with the prefix removed.
TAGS: dict[int, str] = {TAG_DEVICE_DATA: "DEVICE_DATA"}
#: Above this the target kernel fails the header with -ENOMEM (MAX_LOAD_SIZE).
MAX_LOAD_SIZE = 0xFFFFFFFF


class VirtiovfMigrationHeader(Packet):
    """16-byte record header; the payload is the next ``record_size`` bytes."""

    name = "virtiovf_migration_header"
    fields_desc = [
        LELongField("record_size", None),
        FlagsField("flags", 0, -32, ["TAG_OPTIONAL"]),
        LEIntEnumField("tag", TAG_DEVICE_DATA, TAGS),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.record_size is None:
            pkt = struct.pack("<Q", len(pay)) + pkt[8:]
        return pkt + pay

    def extract_padding(self, s: bytes):
        n = self.record_size or 0
        return s[:n], s[n:]


#: record_size, flags, tag: compiled from the layer for the streaming splitter.
HDR: struct.Struct = compile_layer(VirtiovfMigrationHeader).struct
HDR_LEN = HDR.size

bind_layers(VirtiovfMigrationHeader, VirtioDevPartList, tag=TAG_DEVICE_DATA)


def _next_record(pkt, lst, cur, remain):
    return VirtiovfMigrationHeader if len(remain) >= HDR_LEN else None


class VirtiovfStream(Packet):
    """A whole (small) stream: records back to back; a partial header stays Raw."""

    name = "virtiovf_stream"
    fields_desc = [PacketListField("records", [], next_cls_cb=_next_record, max_count=1 << 32)]
