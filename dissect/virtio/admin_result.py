# SPDX-License-Identifier: GPL-2.0-only
"""Virtio 1.4 admin commands: ``command_specific_result`` layers (completion side).

Spec: virtio 1.4 (``v1.4-cs01``) ``admin.tex`` and the command files, as in
``shared/spec/virtio-admin.md`` §7.  Offsets are relative to
``command_specific_result`` (offset 8 of the device-writable part).

A result decodes against its request: :func:`result_layer` maps (opcode,
subtype) to the layer, where subtype is the request field that selects the
layout: the ``type`` of DEV_PARTS_METADATA_GET / DEV_PARTS_GET (as the
admin-capture header carries it), and, when the request is known, the
capability ``id`` of DEVICE_CAP_GET and the ``resource_obj_type`` of
RESOURCE_OBJ_QUERY (the capture header carries 0 for those, which is the
device-parts capability / object, the only ones the spec lays out).
"""
from __future__ import annotations

from scapy.fields import (
    ByteEnumField,
    ByteField,
    FieldLenField,
    FieldListField,
    LEIntField,
    LELongField,
    PacketListField,
    StrField,
    StrFixedLenField,
)
from scapy.packet import Packet

from dissect.virtio.admin_hdr import (  # noqa: F401  (dispatch re-exported)
    QUERY_RESULT_LAYERS,
    RESULT_LAYERS,
    bind_result,
    has_result,
    result_layer,
    CAP_ID_LIST_QUERY,
    DEV_PARTS_GET,
    DEV_PARTS_METADATA_GET,
    DEVICE_CAP_GET,
    LEGACY_COMMON_CFG_READ,
    LEGACY_DEV_CFG_READ,
    LEGACY_NOTIFY_INFO,
    LIST_QUERY,
    MAX_HDRS,
    MAX_ITEMS,
    OPCODES,
    AdminLayer,
    _rest,
    resource_obj_query_opcode,
)
from dissect.virtio.admin_data import (
    DEV_PARTS_CAP,
    MAX_BITMAP_WORDS,
    METADATA_COUNT,
    METADATA_LIST,
    METADATA_SIZE,
    RESOURCE_OBJ_DEV_PARTS,
    VirtioAdminCmdList,
    VirtioDevPartsCap,
    VirtioResourceObjDevParts,
)
from dissect.virtio.parts import VirtioDevPart, VirtioDevPartHdr

# --- enums ---------------------------------------------------------------------

#: ``VIRTIO_ADMIN_CMD_NOTIFY_INFO_FLAGS_*``; flag 2 is ``OWNER_MEM`` in Linux and
#: "member device" in its comment and the spec, printed ``MEMBER_DEV`` (§11.2).
NOTIFY_INFO_FLAGS: dict[int, str] = {0: "END", 1: "OWNER_DEV", 2: "MEMBER_DEV"}
MAX_NOTIFY_INFO = 4


# --- 7.2 legacy ----------------------------------------------------------------

class VirtioAdminLegacyRdResult(AdminLayer):
    """``u8 data[]``: the registers read; length = result length."""

    name = "virtio_admin_cmd_legacy_rd_result"
    fields_desc = [StrField("data", b"")]


class VirtioAdminNotifyInfo(AdminLayer):
    """``struct virtio_admin_cmd_notify_info_data`` (16 bytes)."""

    name = "virtio_admin_cmd_notify_info_data"
    min_len = 16
    fields_desc = [
        ByteEnumField("flags", 0, NOTIFY_INFO_FLAGS),
        ByteField("bar", 0),
        StrFixedLenField("padding", b"\0" * 6, 6),
        LELongField("offset", 0),
    ]


class VirtioAdminNotifyInfoResult(AdminLayer):
    """``virtio_admin_cmd_notify_info_result``: 4 entries of 16 bytes."""

    name = "virtio_admin_cmd_notify_info_result"
    min_len = 16 * MAX_NOTIFY_INFO
    fields_desc = [
        PacketListField("entries", [], VirtioAdminNotifyInfo,
                        length_from=lambda p: 16 * MAX_NOTIFY_INFO, max_count=MAX_NOTIFY_INFO),
    ]


# --- 7.3 CAP_ID_LIST_QUERY -----------------------------------------------------

class VirtioAdminCapIdList(VirtioAdminCmdList):
    """``le64 supported_caps[]``: bit n = capability id n."""

    name = "virtio_admin_cmd_query_cap_id_result"
    bitmap_field = "supported_caps"
    fields_desc = [
        FieldListField("supported_caps", [], LELongField("", 0),
                       length_from=lambda p: min(_rest(p, 0, 8), 8 * MAX_BITMAP_WORDS),
                       max_count=MAX_BITMAP_WORDS),
    ]


# --- 7.7 DEV_PARTS_METADATA_GET ------------------------------------------------

class VirtioAdminDevPartsMetadataSize(AdminLayer):
    """``parts_size``: maximum size in bytes of all device parts."""

    name = "virtio_admin_cmd_dev_parts_metadata_result.parts_size"
    min_len = 8
    fields_desc = [LEIntField("size", 0), StrFixedLenField("reserved", b"\0" * 4, 4)]


class VirtioAdminDevPartsMetadataCount(AdminLayer):
    """``hdr_list_count``: how many headers a LIST request returns."""

    name = "virtio_admin_cmd_dev_parts_metadata_result.hdr_list_count"
    min_len = 8
    fields_desc = [LEIntField("count", 0), StrFixedLenField("reserved", b"\0" * 4, 4)]


class VirtioAdminDevPartsMetadataList(AdminLayer):
    """``hdr_list``: ``count`` then ``count`` bare part headers (no values).

    The list is bounded by both ``count`` and the bytes present; a count the
    buffer cannot hold is reported by the decoder, never allocated.
    """

    name = "virtio_admin_cmd_dev_parts_metadata_result.hdr_list"
    min_len = 8
    hdr_list_offset = 8
    hdr_list_name = "hdrs"
    fields_desc = [
        FieldLenField("count", None, count_of="hdrs", fmt="<I"),
        StrFixedLenField("reserved", b"\0" * 4, 4),
        PacketListField("hdrs", [], VirtioDevPartHdr,
                        length_from=lambda p: min(p.count * 16, _rest(p, 8, 16), 16 * MAX_HDRS),
                        max_count=MAX_HDRS),
    ]


# --- 7.8 DEV_PARTS_GET ---------------------------------------------------------

class VirtioAdminDevPartsGetResult(AdminLayer):
    """``virtio_admin_cmd_dev_parts_get_result``: ``struct virtio_dev_part parts[]``.

    No count: the result length (used length - 8) delimits the list.
    """

    name = "virtio_admin_cmd_dev_parts_get_result"
    parts_offset = 0
    fields_desc = [
        PacketListField("parts", [], VirtioDevPart, length_from=lambda p: _rest(p, 0),
                        max_count=MAX_ITEMS),
    ]


bind_result(LIST_QUERY, VirtioAdminCmdList)
bind_result(LEGACY_COMMON_CFG_READ, VirtioAdminLegacyRdResult)
bind_result(LEGACY_DEV_CFG_READ, VirtioAdminLegacyRdResult)
bind_result(LEGACY_NOTIFY_INFO, VirtioAdminNotifyInfoResult)
bind_result(CAP_ID_LIST_QUERY, VirtioAdminCapIdList)
bind_result(DEVICE_CAP_GET, VirtioDevPartsCap, DEV_PARTS_CAP)
bind_result(DEV_PARTS_METADATA_GET, VirtioAdminDevPartsMetadataSize, METADATA_SIZE)
bind_result(DEV_PARTS_METADATA_GET, VirtioAdminDevPartsMetadataCount, METADATA_COUNT)
bind_result(DEV_PARTS_METADATA_GET, VirtioAdminDevPartsMetadataList, METADATA_LIST)
bind_result(DEV_PARTS_GET, VirtioAdminDevPartsGetResult)
QUERY_RESULT_LAYERS[RESOURCE_OBJ_DEV_PARTS] = VirtioResourceObjDevParts
