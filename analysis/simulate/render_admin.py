# SPDX-License-Identifier: GPL-2.0-only
"""Admin captures of a simulated run (shared/contract/admin-capture.md).

Each admin command of the model becomes a request record (the 24-byte
``virtio_admin_cmd`` header + data, as Linux builds it: virtio-admin.md
§9.2) and a completion record (8-byte status + result, truncated to the
used length), built with engineer A's scapy layers and written with A's
pcapng writer.  Source and destination PFs are separate captures (they are
separate hosts).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from scapy.packet import Raw

from dissect.virtio import admin as A
from dissect.virtio.admin_capture import AdminRecord, completion_record, request_record, write_admin_pcapng
from dissect.virtio.admin_data import (VirtioAdminDevModeSetData, VirtioAdminDevPartsGetData,
                                       VirtioAdminDevPartsMetadataData, VirtioAdminDevPartsSetData,
                                       VirtioAdminResourceObjCmdHdr, VirtioAdminResourceObjData,
                                       VirtioResourceObjDevParts)
from dissect.virtio.admin_result import VirtioAdminDevPartsMetadataSize

from analysis.simulate.timeline import DST_OWNER, SRC_OWNER, AdminCmd

#: contract name -> opcode, from the admin layers' one table (the model names commands by it)
OPCODES = {name: op for op, name in A.OPCODES.items()}
GET_ALL = 1
METADATA_SIZE = 0


def request_bytes(c: AdminCmd) -> tuple[bytes, int]:
    """The device-readable part Linux sends for ``c`` and the record subtype."""
    op = OPCODES[c.opcode]
    hdr = A.VirtioAdminCmd(opcode=op, group_type=A.GROUP_TYPE_SRIOV, group_member_id=c.vf + 1)
    obj = c.obj_id or 0
    subtype = 0
    if op == A.RESOURCE_OBJ_CREATE:
        pkt = hdr / VirtioAdminResourceObjData(resource_obj_id=obj) / VirtioResourceObjDevParts(type=c.obj_op or 0)
    elif op == A.RESOURCE_OBJ_DESTROY:
        pkt = hdr / VirtioAdminResourceObjCmdHdr(resource_obj_id=obj)
    elif op == A.DEV_PARTS_METADATA_GET:
        pkt = hdr / VirtioAdminDevPartsMetadataData(resource_obj_id=obj, type=METADATA_SIZE)
        subtype = METADATA_SIZE
    elif op == A.DEV_PARTS_GET:
        pkt = hdr / VirtioAdminDevPartsGetData(resource_obj_id=obj, type=GET_ALL)
        subtype = GET_ALL
    elif op == A.DEV_PARTS_SET:
        pkt = hdr / VirtioAdminDevPartsSetData(resource_obj_id=obj) / Raw(c.parts or b"")
    else:  # DEV_MODE_SET: Linux's 1-byte data (readable part 25 bytes)
        pkt = hdr / VirtioAdminDevModeSetData(flags=c.mode_flags or 0)
    return bytes(pkt), subtype


def completion_bytes(c: AdminCmd) -> bytes:
    """Status header + result up to the used length."""
    st = A.VirtioAdminCmdResult(status=c.status, status_qualifier=c.qualifier)
    if c.status:
        return bytes(st)
    if c.opcode == "DEV_PARTS_METADATA_GET":
        return bytes(st / VirtioAdminDevPartsMetadataSize(size=c.size or 0))
    if c.opcode == "DEV_PARTS_GET":
        return bytes(st) + (c.parts or b"")
    return bytes(st)


def admin_records(cmds: Iterable[AdminCmd], side: str, clock_ns: int) -> list[AdminRecord]:
    owner = SRC_OWNER if side == "source" else DST_OWNER
    recs: list[AdminRecord] = []
    for c in cmds:
        if c.side != side:
            continue
        req, subtype = request_bytes(c)
        op = OPCODES[c.opcode]
        recs.append(request_record(c.tag, owner, req, clock_ns + c.ts_ns, subtype=subtype))
        recs.append(completion_record(c.tag, owner, op, completion_bytes(c), clock_ns + c.done_ns,
                                      subtype=subtype))
    recs.sort(key=lambda r: (r.ts_ns, r.direction == 0))
    return recs


def write_admin(path: Path, cmds: Iterable[AdminCmd], side: str, clock_ns: int) -> Path:
    write_admin_pcapng(path, admin_records(cmds, side, clock_ns))
    return path
