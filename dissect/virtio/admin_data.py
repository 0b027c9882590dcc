# SPDX-License-Identifier: GPL-2.0-only
"""Virtio 1.4 admin commands: ``command_specific_data`` layers (request side).

Spec: virtio 1.4 (``v1.4-cs01``) ``admin.tex``,
``admin-cmds-legacy-interface.tex``, ``admin-cmds-capabilities.tex``,
``admin-cmds-resource-objects.tex``, ``admin-cmds-device-parts.tex``; layouts
as tabulated in ``shared/spec/virtio-admin.md`` §7.  Offsets are relative to
``command_specific_data`` (offset 24 of the device-readable part).

Every layer builds what it parses.  Fixed structures shorter on the wire
read as zero-filled (:class:`dissect.virtio.admin.AdminLayer`); bytes after a
fixed structure become scapy ``Padding`` (the driver pads to 8 bytes).
The bindings to :class:`~dissect.virtio.admin.VirtioAdminCmd` by opcode are
at the bottom.
"""
from __future__ import annotations

from scapy.fields import (
    ByteEnumField,
    ByteField,
    FieldListField,
    FlagsField,
    LEIntField,
    LELongField,
    LEShortEnumField,
    PacketListField,
    StrField,
    StrFixedLenField,
)
from scapy.packet import Packet, bind_layers

from dissect.virtio.admin_hdr import (
    CAP_ID_LIST_QUERY,
    DEV_MODE_SET,
    DEV_PARTS_GET,
    DEV_PARTS_METADATA_GET,
    DEV_PARTS_SET,
    DEVICE_CAP_GET,
    DRIVER_CAP_SET,
    LEGACY_COMMON_CFG_READ,
    LEGACY_COMMON_CFG_WRITE,
    LEGACY_DEV_CFG_READ,
    LEGACY_DEV_CFG_WRITE,
    LIST_USE,
    MAX_HDRS,
    MAX_ITEMS,
    RESOURCE_OBJ_CREATE,
    RESOURCE_OBJ_DESTROY,
    AdminLayer,
    VirtioAdminCmd,
    _rest,
)
from dissect.virtio.parts import VirtioDevPart, VirtioDevPartHdr

# --- enums -------------------------------------------------------------------

#: Capability ids (spec §7.3), prefix removed.
CAP_IDS: dict[int, str] = {
    0x0000: "DEV_PARTS_CAP",
    0x0800: "NET_FF_RESOURCE_CAP",
    0x0801: "NET_FF_SELECTOR_CAP",
    0x0802: "NET_FF_ACTION_CAP",
    0x0803: "NET_IPSEC_RESOURCE_CAP",
    0x0804: "NET_IPSEC_SA_CAP",
}
DEV_PARTS_CAP = 0x0000

#: Resource object types (spec §7.6), prefix removed.
RESOURCE_OBJ_TYPES: dict[int, str] = {
    0x000: "DEV_PARTS",
    0x200: "NET_FF_GROUP",
    0x201: "NET_FF_CLASSIFIER",
    0x202: "NET_FF_RULE",
    0x203: "NET_IPSEC_OUTB_SA",
    0x204: "NET_IPSEC_INB_SA",
}
RESOURCE_OBJ_DEV_PARTS = 0x000

#: ``VIRTIO_RESOURCE_OBJ_DEV_PARTS_TYPE_*``.
DEV_PARTS_OBJ_TYPES: dict[int, str] = {0: "GET", 1: "SET"}

#: ``VIRTIO_ADMIN_CMD_DEV_PARTS_METADATA_TYPE_*`` (type 2 is also spelled ``_HDR``).
METADATA_TYPES: dict[int, str] = {0: "SIZE", 1: "COUNT", 2: "LIST"}
METADATA_SIZE, METADATA_COUNT, METADATA_LIST = 0, 1, 2

#: ``VIRTIO_ADMIN_CMD_DEV_PARTS_GET_TYPE_*``.
GET_TYPES: dict[int, str] = {0: "SELECTED", 1: "ALL"}
GET_SELECTED, GET_ALL = 0, 1

#: ``VIRTIO_ADMIN_CMD_DEV_MODE_F_*`` (bit numbers; spec also spells ``_FLAGS_STOPPED``).
DEV_MODE_FLAGS = ["STOPPED"]
DEV_MODE_F_STOPPED = 0x01


# --- 7.1 struct virtio_admin_cmd_list ------------------------------------------

#: Opcodes and capability ids are le16, so a bitmap has at most 1024 meaningful
#: le64 words; bytes beyond them are surplus (reported when non-zero), which
#: keeps a hostile multi-megabyte bitmap from becoming millions of list items.
MAX_BITMAP_WORDS = 65536 // 64


class VirtioAdminCmdList(AdminLayer):
    """``le64 device_admin_cmd_opcodes[]``: bit n of element n/64 = opcode n.

    Also the LIST_QUERY result.  :meth:`bits` / :meth:`from_bits` convert
    between the bitmap and a list of opcodes.
    """

    name = "virtio_admin_cmd_list"
    fields_desc = [
        FieldListField("device_admin_cmd_opcodes", [], LELongField("", 0),
                       length_from=lambda p: min(_rest(p, 0, 8), 8 * MAX_BITMAP_WORDS),
                       max_count=MAX_BITMAP_WORDS),
    ]
    bitmap_field = "device_admin_cmd_opcodes"

    def bits(self) -> list[int]:
        return bitmap_bits(getattr(self, self.bitmap_field))

    @classmethod
    def from_bits(cls, bits: list[int]) -> "VirtioAdminCmdList":
        return cls(**{cls.bitmap_field: bits_bitmap(bits)})


def bitmap_bits(words: list[int]) -> list[int]:
    """Set bit numbers of a ``le64[]`` bitmap, ascending."""
    out = []
    for i, w in enumerate(words):
        base = i * 64
        while w:
            low = w & -w
            out.append(base + low.bit_length() - 1)
            w ^= low
    return out


def bits_bitmap(bits: list[int]) -> list[int]:
    """``le64[]`` bitmap with ``bits`` set, ``DIV_ROUND_UP(max + 1, 64)`` words (min 1)."""
    words = [0] * (max(bits, default=0) // 64 + 1)
    for b in bits:
        words[b // 64] |= 1 << (b % 64)
    return words


# --- 7.2 legacy interface ------------------------------------------------------

class VirtioAdminLegacyWrData(AdminLayer):
    """``virtio_admin_cmd_legacy_wr_data``: offset, reserved, registers (LEGACY_*_CFG_WRITE)."""

    name = "virtio_admin_cmd_legacy_wr_data"
    min_len = 8
    fields_desc = [
        ByteField("offset", 0),
        StrFixedLenField("reserved", b"\0" * 7, 7),
        StrField("registers", b""),
    ]


class VirtioAdminLegacyRdData(AdminLayer):
    """``virtio_admin_cmd_legacy_rd_data``: the first register to read (LEGACY_*_CFG_READ)."""

    name = "virtio_admin_cmd_legacy_rd_data"
    min_len = 1
    fields_desc = [ByteField("offset", 0)]


# --- 7.4 / 7.5 capabilities ----------------------------------------------------

class VirtioAdminCapGetData(AdminLayer):
    """``virtio_admin_cmd_cap_get_data`` (DEVICE_CAP_GET)."""

    name = "virtio_admin_cmd_cap_get_data"
    min_len = 8
    fields_desc = [
        LEShortEnumField("id", 0, CAP_IDS),
        StrFixedLenField("reserved", b"\0" * 6, 6),
    ]


class VirtioAdminCapSetData(AdminLayer):
    """``virtio_admin_cmd_cap_set_data`` (DRIVER_CAP_SET): id + ``cap_specific_data``.

    The capability data is the payload, bound by ``id``
    (:class:`VirtioDevPartsCap` for DEV_PARTS_CAP, raw otherwise).
    """

    name = "virtio_admin_cmd_cap_set_data"
    min_len = 8
    raw_name = "cap_specific_data"
    fields_desc = [
        LEShortEnumField("id", 0, CAP_IDS),
        StrFixedLenField("reserved", b"\0" * 6, 6),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return s, b""


class VirtioDevPartsCap(AdminLayer):
    """``struct virtio_dev_parts_cap`` (2 bytes): the device-parts object limits."""

    name = "virtio_dev_parts_cap"
    min_len = 2
    fields_desc = [
        ByteField("get_parts_resource_objects_limit", 0),
        ByteField("set_parts_resource_objects_limit", 0),
    ]


# --- 7.6 resource objects ------------------------------------------------------

class VirtioAdminResourceObjCmdHdr(AdminLayer):
    """``struct virtio_admin_cmd_resource_obj_cmd_hdr`` (8 bytes; RESOURCE_OBJ_DESTROY data).

    The spec's ``type``/``id`` are named ``resource_obj_type``/``resource_obj_id``
    (the contract's names) so that they don't clash with the ``type`` fields
    that follow the header in the device-parts commands.
    """

    name = "virtio_admin_cmd_resource_obj_cmd_hdr"
    min_len = 8
    fields_desc = [
        LEShortEnumField("resource_obj_type", RESOURCE_OBJ_DEV_PARTS, RESOURCE_OBJ_TYPES),
        StrFixedLenField("reserved_hdr", b"\0" * 2, 2),
        LEIntField("resource_obj_id", 0),
    ]


class VirtioAdminResourceObjData(AdminLayer):
    """CREATE / MODIFY / QUERY data: header, ``le64 flags`` (0), object-specific data.

    ``virtio_admin_cmd_resource_obj_create_data`` and ``..._modify_data`` share
    this layout; QUERY's data is the same 16 bytes without the specific data,
    so one layer serves 0xa, 0xb and 0xc whichever reading of §11.1 holds.
    The specific data is the payload, bound by ``resource_obj_type``.
    """

    name = "virtio_admin_cmd_resource_obj_data"
    min_len = 16
    raw_name = "resource_obj_specific_data"
    fields_desc = VirtioAdminResourceObjCmdHdr.fields_desc + [
        LELongField("flags", 0),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return s, b""


class VirtioResourceObjDevParts(AdminLayer):
    """``struct virtio_resource_obj_dev_parts`` (8 bytes): GET or SET object."""

    name = "virtio_resource_obj_dev_parts"
    min_len = 8
    fields_desc = [
        ByteEnumField("type", 0, DEV_PARTS_OBJ_TYPES),
        StrFixedLenField("reserved", b"\0" * 7, 7),
    ]


# --- 7.7 - 7.10 device parts ---------------------------------------------------

class VirtioAdminDevPartsMetadataData(AdminLayer):
    """``virtio_admin_cmd_dev_parts_metadata_data`` (16 bytes)."""

    name = "virtio_admin_cmd_dev_parts_metadata_data"
    min_len = 16
    fields_desc = VirtioAdminResourceObjCmdHdr.fields_desc + [
        ByteEnumField("type", METADATA_SIZE, METADATA_TYPES),
        StrFixedLenField("reserved", b"\0" * 7, 7),
    ]


class VirtioAdminDevPartsGetData(AdminLayer):
    """``virtio_admin_cmd_dev_parts_get_data``: 16 bytes + ``hdr_list[]`` (SELECTED)."""

    name = "virtio_admin_cmd_dev_parts_get_data"
    min_len = 16
    hdr_list_offset = 16
    hdr_list_name = "hdr_list"
    fields_desc = VirtioAdminResourceObjCmdHdr.fields_desc + [
        ByteEnumField("type", GET_ALL, GET_TYPES),
        StrFixedLenField("reserved", b"\0" * 7, 7),
        PacketListField("hdr_list", [], VirtioDevPartHdr,
                        length_from=lambda p: min(_rest(p, 16, 16), 16 * MAX_HDRS), max_count=MAX_HDRS),
    ]


class VirtioAdminDevPartsSetData(AdminLayer):
    """``virtio_admin_cmd_dev_parts_set_data``: header + ``struct virtio_dev_part parts[]``."""

    name = "virtio_admin_cmd_dev_parts_set_data"
    min_len = 8
    parts_offset = 8
    fields_desc = VirtioAdminResourceObjCmdHdr.fields_desc + [
        PacketListField("parts", [], VirtioDevPart,
                        length_from=lambda p: _rest(p, 8), max_count=MAX_ITEMS),
    ]


class VirtioAdminDevModeSetData(AdminLayer):
    """``virtio_admin_cmd_dev_mode_set_data``: ``u8 flags``, bit 0 = STOPPED."""

    name = "virtio_admin_cmd_dev_mode_set_data"
    min_len = 1
    fields_desc = [FlagsField("flags", 0, 8, DEV_MODE_FLAGS)]


# --- bindings: VirtioAdminCmd.opcode -> data layer -----------------------------
# LIST_QUERY, LEGACY_NOTIFY_INFO and CAP_ID_LIST_QUERY carry no data.

bind_layers(VirtioAdminCmd, VirtioAdminCmdList, opcode=LIST_USE)
bind_layers(VirtioAdminCmd, VirtioAdminLegacyWrData, opcode=LEGACY_COMMON_CFG_WRITE)
bind_layers(VirtioAdminCmd, VirtioAdminLegacyRdData, opcode=LEGACY_COMMON_CFG_READ)
bind_layers(VirtioAdminCmd, VirtioAdminLegacyWrData, opcode=LEGACY_DEV_CFG_WRITE)
bind_layers(VirtioAdminCmd, VirtioAdminLegacyRdData, opcode=LEGACY_DEV_CFG_READ)
bind_layers(VirtioAdminCmd, VirtioAdminCapGetData, opcode=DEVICE_CAP_GET)
bind_layers(VirtioAdminCmd, VirtioAdminCapSetData, opcode=DRIVER_CAP_SET)
bind_layers(VirtioAdminCmd, VirtioAdminResourceObjData, opcode=RESOURCE_OBJ_CREATE)
bind_layers(VirtioAdminCmd, VirtioAdminResourceObjData, opcode=0xB)  # QUERY or MODIFY (§11.1)
bind_layers(VirtioAdminCmd, VirtioAdminResourceObjData, opcode=0xC)  # MODIFY or QUERY (§11.1)
bind_layers(VirtioAdminCmd, VirtioAdminResourceObjCmdHdr, opcode=RESOURCE_OBJ_DESTROY)
bind_layers(VirtioAdminCmd, VirtioAdminDevPartsMetadataData, opcode=DEV_PARTS_METADATA_GET)
bind_layers(VirtioAdminCmd, VirtioAdminDevPartsGetData, opcode=DEV_PARTS_GET)
bind_layers(VirtioAdminCmd, VirtioAdminDevPartsSetData, opcode=DEV_PARTS_SET)
bind_layers(VirtioAdminCmd, VirtioAdminDevModeSetData, opcode=DEV_MODE_SET)
bind_layers(VirtioAdminCapSetData, VirtioDevPartsCap, id=DEV_PARTS_CAP)
bind_layers(VirtioAdminResourceObjData, VirtioResourceObjDevParts, resource_obj_type=RESOURCE_OBJ_DEV_PARTS)

#: opcode -> data layer (the bindings above, for callers that need the class).
DATA_LAYERS: dict[int, type[Packet]] = {
    fval["opcode"]: cls for fval, cls in VirtioAdminCmd.payload_guess if "opcode" in fval
}

#: Opcodes defined with no ``command_specific_data``.
NO_DATA = frozenset({0x0, 0x6, CAP_ID_LIST_QUERY})
