# SPDX-License-Identifier: GPL-2.0-only
"""Admin commands as plain dicts (the contract's ``admin_cmd`` / ``admin_result``).

Spec: ``shared/spec/virtio-admin.md`` §3.5 (decoder input model and the
warnings it recommends), §6 (status), §11 (conflicts); contract:
``shared/contract/json-lines.md`` (``admin_cmd.data``, ``admin_result.result``).

:func:`decode_request` and :func:`decode_result` never raise on bad bytes:
every problem is a :class:`~dissect.common.findings.Finding` with the offset
in the buffer given, and everything else is still decoded.  Short
structures read as zero-filled (spec §3.3.2).  Finding codes: docs/admin.md.
"""
from __future__ import annotations

from typing import Any

from scapy.config import conf
from scapy.fields import Field, FieldListField, FlagsField, PacketListField
from scapy.packet import NoPayload, Packet, Padding, Raw

from dissect.common.fields import compile_layer
from dissect.common.findings import Finding
from dissect.virtio import admin_hdr as A
from dissect.virtio import admin_data as D
from dissect.virtio import admin_result as R
from dissect.virtio.admin_flat import put_field, short_buffer, surplus, walk_fast
from dissect.virtio.parts_fast import HDR, decode_parts, part_type_name, selector_object

AdminDict = dict[str, Any]

#: Fixed layers are flattened by :func:`dissect.virtio.admin_flat.walk_fast`
#: (no scapy packet per command); False: every layer through scapy.  The
#: tests run every case both ways.
FAST = True


# --- helpers ---------------------------------------------------------------------

def _hdr_dict(raw: bytes) -> dict[str, Any]:
    """A bare ``virtio_dev_part_hdr`` as the contract's dev_part header fields."""
    pt, fl, rsv, sel, ln = HDR.unpack_from(raw, 0)
    return {"part_type": pt, "part_type_name": part_type_name(pt), "flags": fl,
            "optional": bool(fl & 1), "selector": selector_object((0, pt, fl, sel, ln, b"")),
            "length": ln}


def _field_len(layer: Packet, f: Field) -> int:
    return len(f.addfield(layer, b"", layer.getfieldval(f.name)))


def _layer_fields(layer: Packet, offset: int, out: AdminDict, findings: list[Finding]) -> None:
    """Add the contract fields of one dissected admin layer to ``out``."""
    pos = offset
    for f in layer.fields_desc:
        v = layer.getfieldval(f.name)
        size = _field_len(layer, f)
        name = f.name
        if isinstance(f, FieldListField) and isinstance(layer, D.VirtioAdminCmdList) and not name.startswith(
                ("reserved", "padding")):
            bits = D.bitmap_bits(v)
            if isinstance(layer, R.VirtioAdminCapIdList):
                out["cap_ids"] = bits
                out["cap_id_names"] = [D.CAP_IDS.get(b) for b in bits]
            else:
                out["opcodes"] = bits
                out["opcode_names"] = [A.OPCODES.get(b) for b in bits]
            out[name] = [int(w) for w in v]
        elif isinstance(f, PacketListField) and not name.startswith(("reserved", "padding")):
            _list_field(layer, f, v, pos, out, findings)
        else:
            put_field(layer.name, f, v, pos, out, findings)
        pos += size


def _list_field(layer: Packet, f: PacketListField, items: list[Packet], pos: int,
                out: AdminDict, findings: list[Finding]) -> None:
    name = f.name
    good = [p for p in items if not isinstance(p, conf.raw_layer)]
    if name == "parts":
        out["parts"] = len(good)
        out["parts_offset"] = pos
        out["parts_length"] = sum(len(p) for p in items)
    elif name == "entries":
        entries = []
        p_off = pos
        for e in good:
            d: AdminDict = {}
            _layer_fields(e, p_off, d, findings)
            entries.append(d)
            p_off += 16
        out[name] = entries
    else:  # bare part-header lists (hdr_list, hdrs): filled by _dissect's fast path
        out[name] = [_hdr_dict(bytes(p)) for p in good]


def _walk(first: Packet, offset: int, findings: list[Finding], what: str) -> AdminDict:
    """Flatten a chain of admin layers (data or result) into one dict."""
    out: AdminDict = {}
    layer = first
    prev: Packet | None = None
    pos = offset
    while not isinstance(layer, NoPayload):
        if isinstance(layer, Padding):
            surplus(bytes(layer.load), pos, out, findings, what)
            break
        if isinstance(layer, Raw):
            raw_name = getattr(prev, "raw_name", "raw") if prev is not None else "raw"
            out[raw_name] = bytes(layer.load).hex()
            break
        if isinstance(layer, A.AdminLayer) and layer.zero_filled:
            findings.append(short_buffer(layer.name, layer.zero_filled, pos))
        _layer_fields(layer, pos, out, findings)
        pos += len(layer.self_build()) - (layer.zero_filled if isinstance(layer, A.AdminLayer) else 0)
        prev, layer = layer, layer.payload
    return out


def _dissect_layer(cls: type[Packet], head: bytes, min_len: int, offset: int, findings: list[Finding],
                   what: str) -> AdminDict | None:
    """The declarative path: ``head`` dissected by scapy and flattened (None: undecodable)."""
    try:
        if head:
            layer = cls(head)
        else:
            layer = cls(b"\0" * min_len) if min_len else cls()
            layer.zero_filled = min_len
    except Exception as e:  # a malformed layer must not escape as a traceback
        findings.append(Finding("error", "admin_undecodable",
                                f"{what} does not decode as {cls.name} ({type(e).__name__}); kept raw",
                                offset))
        return None
    return _walk(layer, offset, findings, what)


def _dissect(cls: type[Packet], buf: bytes, offset: int, findings: list[Finding],
             what: str, parts_findings: bool = True) -> AdminDict:
    """Dissect ``buf`` with ``cls`` and flatten it; empty input reads as zero-filled.

    Layers that end in a device-parts list (``parts_offset``) take the fixed
    prefix from scapy and the parts from the fast path
    (:func:`dissect.virtio.parts_fast.decode_parts`): a DEV_PARTS_GET result
    holds hundreds of parts and no scapy packet is built per part.
    """
    min_len = getattr(cls, "min_len", 0)
    parts_at = getattr(cls, "parts_offset", None)
    hdrs_at = getattr(cls, "hdr_list_offset", None)
    split = parts_at if parts_at is not None else hdrs_at
    head = buf if split is None else buf[:split]
    fast = walk_fast(cls, head, offset, what) if FAST else None
    if fast is not None:
        out, more = fast
        findings.extend(more)
    else:
        out = _dissect_layer(cls, head, min_len, offset, findings, what)
        if out is None:
            return {"raw": buf.hex()}
    if parts_at is not None:
        parts, stop, pf = decode_parts(buf[parts_at:], offset + parts_at)
        out["parts"] = len(parts)
        out["parts_offset"] = offset + parts_at
        out["parts_length"] = max(len(buf) - parts_at, 0)
        if parts_findings:
            findings.extend(pf)
    elif hdrs_at is not None:
        rest = buf[hdrs_at:]
        name = cls.hdr_list_name
        count = out.get("count") if name == "hdrs" else None
        out[name], used = _hdr_list(rest, count, offset + hdrs_at, findings)
        if len(rest) > used:
            out["surplus_bytes"] = len(rest) - used
            if any(rest[used:]):
                findings.append(Finding(
                    "info", "admin_surplus_bytes",
                    f"{len(rest) - used} bytes after the header list are not zero "
                    "(a device ignores them)", offset + hdrs_at + used))
    return out


def _hdr_list(buf: bytes, count: int | None, offset: int,
              findings: list[Finding]) -> tuple[list[dict[str, Any]], int]:
    """Bare part headers of a header list, without a scapy packet per header.

    Bounded by the bytes present, by ``count`` when the structure has one,
    and by :data:`~dissect.virtio.admin.MAX_HDRS`.
    """
    n = len(buf) // 16
    if count is not None:
        n = min(n, count)
    if n > A.MAX_HDRS:
        findings.append(Finding("warning", "admin_list_truncated",
                                f"{n} part headers; only the first {A.MAX_HDRS} are decoded", offset))
        n = A.MAX_HDRS
    return [_hdr_dict(buf[i:i + 16]) for i in range(0, 16 * n, 16)], 16 * n


def _header(cls: type[A.AdminLayer], buf: bytes) -> dict[str, Any]:
    """The fixed command header or status, zero-filled when short (spec §3.3.2)."""
    size = cls.min_len
    head = buf[:size].ljust(size, b"\0")  # scapy would take an empty buffer as the defaults
    if FAST:
        return _HEADERS[cls](head)[0]
    layer = cls(head)
    return {f.name: layer.getfieldval(f.name) for f in layer.fields_desc}


_HEADERS = {cls: compile_layer(cls).decode for cls in (A.VirtioAdminCmd, A.VirtioAdminCmdResult)}


# --- requests --------------------------------------------------------------------

def decode_request(buf: bytes | bytearray | memoryview, *,
                   parts_findings: bool = True) -> tuple[AdminDict, list[Finding]]:
    """Decode a device-readable part: header + command data.

    Returns ``({opcode, opcode_name, group_type, group_type_name,
    group_member_id, data}, findings)``; ``data`` is the contract's
    ``admin_cmd.data``.  Offsets in findings are relative to ``buf``.
    ``parts_findings=False`` leaves the findings about the carried device
    parts to the caller (the emitter gets them with the ``dev_part`` lines).
    """
    buf = bytes(buf)
    findings: list[Finding] = []
    if len(buf) < 24:
        findings.append(Finding("error", "admin_short_header",
                                f"request is {len(buf)} bytes, the header alone is 24; "
                                "read as zero-filled", len(buf), {"missing": 24 - len(buf)}))
    elif len(buf) % 8:
        findings.append(Finding("warning", "admin_length_unaligned",
                                f"device-readable part is {len(buf)} bytes, not a multiple of 8 "
                                "(Linux sizes some commands to the C struct)", None))
    hdr = _header(A.VirtioAdminCmd, buf)
    opcode, group, member = int(hdr["opcode"]), int(hdr["group_type"]), int(hdr["group_member_id"])
    out: AdminDict = {
        "opcode": opcode, "opcode_name": A.opcode_name(opcode),
        "group_type": group, "group_type_name": A.GROUP_TYPES.get(group),
        "group_member_id": member,
    }
    if any(hdr["reserved1"]):
        findings.append(Finding("warning", "admin_reserved_nonzero",
                                f"reserved1 is not zero ({hdr['reserved1'].hex()})", 4, {"field": "reserved1"}))
    _check_opcode(opcode, findings)
    _check_group(opcode, group, member, findings)
    data = buf[24:]
    cls = D.DATA_LAYERS.get(opcode)
    if cls is not None:
        out["data"] = _dissect(cls, data, 24, findings, "command data", parts_findings)
    elif opcode in A.OPCODES:  # defined with no data
        out["data"] = {}
        if data:
            out["data"]["surplus_bytes"] = len(data)
            if any(data):
                findings.append(Finding("info", "admin_surplus_bytes",
                                        f"{A.OPCODES[opcode]} has no data; {len(data)} non-zero bytes ignored", 24))
    else:
        out["data"] = {"raw": data.hex()} if data else {}
    _check_request(opcode, out, len(data), findings)
    return out, findings


def _check_opcode(opcode: int, findings: list[Finding]) -> None:
    if opcode in (0xB, 0xC):
        other = "MODIFY" if A.OPCODES[opcode].endswith("QUERY") else "QUERY"
        findings.append(Finding(
            "info", "admin_opcode_ambiguous",
            f"opcode {opcode:#x}: spec table = {'QUERY' if opcode == 0xB else 'MODIFY'}, spec text = "
            f"{'MODIFY' if opcode == 0xB else 'QUERY'}; decoded as {A.OPCODES[opcode]} "
            f"({A.resource_obj_reading()} reading), could be {other}", 0, {"opcode": opcode}))
    elif opcode not in A.OPCODES:
        label = f"UNASSIGNED({opcode:#x})" if opcode == 0x12 else f"{opcode:#x}"
        rng = ("reserved for commands using struct virtio_admin_cmd" if opcode < 0x8000
               else "reserved, possibly a different structure")
        findings.append(Finding("warning", "admin_unknown_opcode",
                                f"opcode {label} is not defined in virtio 1.4 ({rng}); data kept raw",
                                0, {"opcode": opcode}))


def _check_group(opcode: int, group: int, member: int, findings: list[Finding]) -> None:
    if group not in A.GROUP_TYPES:
        findings.append(Finding("warning", "admin_unknown_group_type",
                                f"group_type {group:#x} is reserved", 2, {"group_type": group}))
        return
    want = A.OPCODE_GROUP.get(opcode)
    if want is not None and group != want:
        findings.append(Finding("warning", "admin_group_mismatch",
                                f"{A.OPCODES[opcode]} is defined for group {A.GROUP_TYPES[want]}, "
                                f"sent for {A.GROUP_TYPES[group]}", 2, {"group_type": group}))
    if group == A.GROUP_TYPE_SELF or opcode in (A.LIST_QUERY, A.LIST_USE):
        if member != 0:
            findings.append(Finding("warning", "admin_member_id_unexpected",
                                    f"group_member_id {member} should be 0 here", 16))
    elif (group == A.GROUP_TYPE_SRIOV and member == 0 and opcode in A.OPCODES
          and A.OPCODE_GROUP.get(opcode) != A.GROUP_TYPE_SELF):
        findings.append(Finding("warning", "admin_member_id_unexpected",
                                "group_member_id 0 for an SR-IOV member command (VF numbers start at 1)", 16))


def _check_request(opcode: int, out: AdminDict, data_len: int, findings: list[Finding]) -> None:
    data = out["data"]
    if opcode in (0xB, 0xC):
        # Shape heuristic (spec §11.1): QUERY data is exactly 16 bytes; MODIFY carries more.
        shape = "QUERY" if data_len <= 16 else "MODIFY"
        out["opcode_shape_guess"] = shape
        if not A.OPCODES[opcode].endswith(shape):
            findings.append(Finding("warning", "admin_opcode_shape_mismatch",
                                    f"opcode {opcode:#x} decoded as {A.OPCODES[opcode]}, but {data_len} "
                                    f"bytes of data look like {shape} (heuristic)", 24))
    if "type" in data and data.get("type_name") is None and opcode in (A.DEV_PARTS_METADATA_GET, A.DEV_PARTS_GET):
        findings.append(Finding("warning", "admin_unknown_subtype",
                                f"{A.OPCODES[opcode]} type {data['type']} is not defined", 32))
    if opcode in (A.RESOURCE_OBJ_CREATE, 0xB, 0xC) and data.get("flags"):
        findings.append(Finding("warning", "admin_reserved_nonzero",
                                f"resource object flags {data['flags']:#x} must be 0", 32, {"field": "flags"}))
    if data.get("resource_obj_type_name", "") is None:
        findings.append(Finding("info", "admin_unknown_resource_obj_type",
                                f"resource object type {data['resource_obj_type']:#x} is not laid out "
                                "by the spec; specific data kept raw", 24))
    if opcode in (A.DEVICE_CAP_GET, A.DRIVER_CAP_SET) and data.get("id") != D.DEV_PARTS_CAP:
        what = "data" if opcode == A.DRIVER_CAP_SET else "result"
        findings.append(Finding("info", "admin_unknown_cap_id",
                                f"capability {data.get('id', 0):#x} ({data.get('id_name') or 'unassigned'}) "
                                f"{what} is not laid out by the spec; kept raw", 24))
    if opcode == A.DEV_MODE_SET:
        data["stopped"] = bool(data.get("flags", 0) & D.DEV_MODE_F_STOPPED)


def request_subtype(opcode: int, data: AdminDict) -> int:
    """The request field that selects the result layout (admin-capture.md ``subtype``).

    DEV_PARTS_METADATA_GET / DEV_PARTS_GET: ``type``.  For DEVICE_CAP_GET the
    capability ``id`` and for RESOURCE_OBJ_QUERY the object type, which the
    capture header leaves 0 (see admin_result's docstring).
    """
    if opcode in (A.DEV_PARTS_METADATA_GET, A.DEV_PARTS_GET):
        return int(data.get("type", 0))
    if opcode == A.DEVICE_CAP_GET:
        return int(data.get("id", 0))
    if opcode in (0xB, 0xC):
        return int(data.get("resource_obj_type", 0))
    return 0


# --- results ---------------------------------------------------------------------

def decode_result(buf: bytes | bytearray | memoryview, opcode: int, subtype: int = 0, *,
                  parts_findings: bool = True) -> tuple[AdminDict, list[Finding]]:
    """Decode a device-writable part (status + result, truncated to the used length).

    ``opcode``/``subtype`` come from the request (:func:`request_subtype`).
    Returns ``({opcode, opcode_name, status, status_name, status_qualifier,
    status_qualifier_name, result}, findings)``; ``result`` is the contract's
    ``admin_result.result``.
    """
    buf = bytes(buf)
    findings: list[Finding] = []
    if len(buf) < 8:
        findings.append(Finding("error", "admin_short_header",
                                f"completion is {len(buf)} bytes, the status alone is 8; "
                                "read as zero-filled", len(buf), {"missing": 8 - len(buf)}))
    st = _header(A.VirtioAdminCmdResult, buf)
    status, qual = int(st["status"]), int(st["status_qualifier"])
    out: AdminDict = {
        "opcode": opcode, "opcode_name": A.opcode_name(opcode),
        "status": status, "status_name": A.STATUS.get(status),
        "status_qualifier": qual, "status_qualifier_name": A.STATUS_QUALIFIERS.get(qual),
    }
    if status not in A.STATUS:
        findings.append(Finding("warning", "admin_unknown_status",
                                f"status {status} is not defined (a driver treats it like EINVAL)", 0,
                                {"status": status}))
    if qual not in A.STATUS_QUALIFIERS:
        findings.append(Finding("warning", "admin_unknown_qualifier",
                                f"status_qualifier {qual:#x} is reserved (treated like INVALID_COMMAND)", 2,
                                {"status_qualifier": qual}))
    if status == A.STATUS_OK and qual != 0:
        findings.append(Finding("warning", "admin_qualifier_with_ok",
                                f"status OK with status_qualifier {qual:#x} (must be 0)", 2))
    if status == 17:
        out["status_note"] = "EEXIST (value UNVERIFIED)"
    if any(st["reserved2"]):
        findings.append(Finding("warning", "admin_reserved_nonzero",
                                f"reserved2 is not zero ({st['reserved2'].hex()})", 4, {"field": "reserved2"}))
    if opcode not in A.OPCODES:
        findings.append(Finding("warning", "admin_unknown_opcode",
                                f"result of undefined opcode {opcode:#x}; kept raw", None, {"opcode": opcode}))
    res = buf[8:]
    cls = R.result_layer(opcode, subtype)
    if cls is not None and (res or status == A.STATUS_OK):
        out["result"] = _dissect(cls, res, 8, findings, "command result", parts_findings)
    else:
        out["result"] = {}
        known = opcode in A.OPCODES
        if res and known and R.has_result(opcode):
            out["result"]["raw"] = res.hex()
            findings.append(Finding("warning", "admin_unknown_subtype",
                                    f"{A.OPCODES[opcode]} result layout for subtype {subtype} is not "
                                    "defined; kept raw", 8, {"subtype": subtype}))
        elif res and known and not any(res):
            out["result"]["surplus_bytes"] = len(res)  # zeros past the structure are allowed
        elif res and known:
            out["result"]["raw"] = res.hex()
            findings.append(Finding("warning", "admin_unexpected_result",
                                    f"{A.OPCODES[opcode]} has no result, {len(res)} bytes present", 8))
        elif res:
            out["result"]["raw"] = res.hex()
    _check_result(opcode, status, out["result"], findings)
    return out, findings


def _check_result(opcode: int, status: int, result: AdminDict, findings: list[Finding]) -> None:
    if opcode == A.LIST_QUERY and status == A.STATUS_OK and "opcodes" in result:
        missing = [b for b in (0, 1) if b not in result["opcodes"]]
        if missing:
            findings.append(Finding("warning", "admin_list_query_bits_missing",
                                    f"LIST_QUERY result lacks opcode bit(s) {missing} (always set per spec)", 8))
    if "hdrs" in result and "count" in result and result["count"] != len(result["hdrs"]):
        findings.append(Finding("error", "admin_list_count_mismatch",
                                f"metadata count {result['count']} but {len(result['hdrs'])} headers present",
                                16 + 16 * len(result["hdrs"]), {"count": result["count"]}))


def decode_linux_result(status: bytes, result: bytes, res_size: int, opcode: int, subtype: int = 0, *,
                        size_includes_status: bool = False) -> tuple[AdminDict, list[Finding]]:
    """Decode a completion known only as Linux's status buffer, result buffer and result size.

    Spec §3.4/§3.5, §10.2: Linux 6.13.0–6.15.2 (before ``9ef41ebf``,
    CVE-2025-38314) reported the whole used length, status included, as the
    result size; ``size_includes_status=True`` subtracts those 8 bytes.  The
    result is cut to the size (never extended past the buffer) and decoded
    like a device-writable part.
    """
    findings: list[Finding] = []
    size = res_size - 8 if size_includes_status else res_size
    if size < 0:
        findings.append(Finding("warning", "admin_result_size_invalid",
                                f"result size {res_size} is below the 8-byte status it includes", None))
        size = 0
    if size > len(result):
        findings.append(Finding("error", "admin_result_size_invalid",
                                f"result size {size} exceeds the {len(result)}-byte result buffer", None,
                                {"missing": size - len(result)}))
    d, more = decode_result(bytes(status[:8]) + bytes(result[:size]), opcode, subtype)
    if size_includes_status:
        d["result_size_bug"] = True  # kernel 6.13.0-6.15.2 semantics applied
    return d, findings + more
