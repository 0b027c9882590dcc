# SPDX-License-Identifier: GPL-2.0-only
"""Virtio 1.4 group-administration commands: headers, names and result dispatch.

Spec: virtio 1.4 (``v1.4-cs01``) ``admin.tex`` and the command files it
includes, as summarised in ``shared/spec/virtio-admin.md`` (§3 framing, §4
opcodes, §5 group types, §6 status and qualifiers).  Linux counterpart:
``include/uapi/linux/virtio_pci.h`` (``struct virtio_admin_cmd_hdr``,
``struct virtio_admin_cmd_status``).

A command is a device-readable part (:class:`VirtioAdminCmd`: 24-byte header
+ ``command_specific_data``) and a device-writable part
(:class:`VirtioAdminCmdResult`: 8-byte status + ``command_specific_result``).
This is the base of the admin modules: :mod:`dissect.virtio.admin_data` (data
layers) and :mod:`dissect.virtio.admin_result` (result layers) build on it and
register their layers here; :mod:`dissect.virtio.admin_decode` is the
plain-dict API; :mod:`dissect.virtio.admin` is the facade that loads them all
(nothing inside the package imports the facade, so there is no import cycle).

Opcodes 0xb/0xc: the spec's opcode table says 0xb = QUERY, 0xc = MODIFY; the
command text says the opposite (spec §11.1).  We follow the table by default
and :func:`set_resource_obj_reading` switches to the text's reading; see
docs/admin.md.
"""
from __future__ import annotations

from typing import ClassVar, Literal

from scapy.config import conf
from scapy.fields import LELongField, LEShortEnumField, StrFixedLenField
from scapy.packet import Packet

# --- names (spec constant names, family prefix removed: json-lines.md) -------

OPCODES: dict[int, str] = {
    0x0000: "LIST_QUERY",
    0x0001: "LIST_USE",
    0x0002: "LEGACY_COMMON_CFG_WRITE",
    0x0003: "LEGACY_COMMON_CFG_READ",
    0x0004: "LEGACY_DEV_CFG_WRITE",
    0x0005: "LEGACY_DEV_CFG_READ",
    0x0006: "LEGACY_NOTIFY_INFO",
    0x0007: "CAP_ID_LIST_QUERY",
    0x0008: "DEVICE_CAP_GET",
    0x0009: "DRIVER_CAP_SET",
    0x000A: "RESOURCE_OBJ_CREATE",
    0x000B: "RESOURCE_OBJ_QUERY",   # spec table; the command text says MODIFY (§11.1)
    0x000C: "RESOURCE_OBJ_MODIFY",  # spec table; the command text says QUERY (§11.1)
    0x000D: "RESOURCE_OBJ_DESTROY",
    0x000E: "DEV_PARTS_METADATA_GET",
    0x000F: "DEV_PARTS_GET",
    0x0010: "DEV_PARTS_SET",
    0x0011: "DEV_MODE_SET",
}

# The opcode constants are looked up in OPCODES (the one table; 0xb/0xc have none:
# their names depend on the reading, see below).
_OPCODE_BY_NAME = {v: k for k, v in OPCODES.items()}
LIST_QUERY = _OPCODE_BY_NAME["LIST_QUERY"]
LIST_USE = _OPCODE_BY_NAME["LIST_USE"]
LEGACY_COMMON_CFG_WRITE = _OPCODE_BY_NAME["LEGACY_COMMON_CFG_WRITE"]
LEGACY_COMMON_CFG_READ = _OPCODE_BY_NAME["LEGACY_COMMON_CFG_READ"]
LEGACY_DEV_CFG_WRITE = _OPCODE_BY_NAME["LEGACY_DEV_CFG_WRITE"]
LEGACY_DEV_CFG_READ = _OPCODE_BY_NAME["LEGACY_DEV_CFG_READ"]
LEGACY_NOTIFY_INFO = _OPCODE_BY_NAME["LEGACY_NOTIFY_INFO"]
CAP_ID_LIST_QUERY = _OPCODE_BY_NAME["CAP_ID_LIST_QUERY"]
DEVICE_CAP_GET = _OPCODE_BY_NAME["DEVICE_CAP_GET"]
DRIVER_CAP_SET = _OPCODE_BY_NAME["DRIVER_CAP_SET"]
RESOURCE_OBJ_CREATE = _OPCODE_BY_NAME["RESOURCE_OBJ_CREATE"]
RESOURCE_OBJ_DESTROY = _OPCODE_BY_NAME["RESOURCE_OBJ_DESTROY"]
DEV_PARTS_METADATA_GET = _OPCODE_BY_NAME["DEV_PARTS_METADATA_GET"]
DEV_PARTS_GET = _OPCODE_BY_NAME["DEV_PARTS_GET"]
DEV_PARTS_SET = _OPCODE_BY_NAME["DEV_PARTS_SET"]
DEV_MODE_SET = _OPCODE_BY_NAME["DEV_MODE_SET"]
del _OPCODE_BY_NAME

GROUP_TYPE_SELF = 0
GROUP_TYPE_SRIOV = 1
GROUP_TYPES: dict[int, str] = {
    GROUP_TYPE_SELF: "SELF",   # absent from the 6.13 uapi header; named regardless (§5)
    GROUP_TYPE_SRIOV: "SRIOV",
}

STATUS_OK = 0
STATUS: dict[int, str] = {
    STATUS_OK: "OK",
    6: "ENXIO",
    11: "EAGAIN",
    12: "ENOMEM",
    16: "EBUSY",
    17: "EEXIST",  # value UNVERIFIED: the spec names it but assigns no number (§6.1)
    22: "EINVAL",
    28: "ENOSPC",
}

STATUS_QUALIFIERS: dict[int, str] = {
    0x0000: "OK",
    0x0001: "INVALID_COMMAND",
    0x0002: "INVALID_OPCODE",
    0x0003: "INVALID_FIELD",
    0x0004: "INVALID_GROUP",
    0x0005: "INVALID_MEMBER",
    0x0006: "NORESOURCE",
    0x0007: "TRYAGAIN",
}

#: Opcodes whose command is defined for one group type only (§4).
OPCODE_GROUP: dict[int, int] = {
    LEGACY_NOTIFY_INFO: GROUP_TYPE_SRIOV,
    CAP_ID_LIST_QUERY: GROUP_TYPE_SELF,
    DEVICE_CAP_GET: GROUP_TYPE_SELF,
    DRIVER_CAP_SET: GROUP_TYPE_SELF,
    DEV_PARTS_METADATA_GET: GROUP_TYPE_SRIOV,
    DEV_PARTS_GET: GROUP_TYPE_SRIOV,
    DEV_PARTS_SET: GROUP_TYPE_SRIOV,
    DEV_MODE_SET: GROUP_TYPE_SRIOV,
}

# --- opcodes 0xb / 0xc (spec §11.1) ------------------------------------------

Reading = Literal["table", "text"]
_reading: Reading = "table"


def set_resource_obj_reading(reading: Reading) -> None:
    """Choose which spec text decides opcodes 0xb/0xc.

    ``"table"`` (default): 0xb = RESOURCE_OBJ_QUERY, 0xc = RESOURCE_OBJ_MODIFY
    (the opcode table of ``admin.tex``).  ``"text"``: the reverse (the
    command descriptions of ``admin-cmds-resource-objects.tex``).
    """
    global _reading
    if reading not in ("table", "text"):
        raise ValueError(f"reading must be 'table' or 'text', not {reading!r}")
    _reading = reading
    q, m = (0xB, 0xC) if reading == "table" else (0xC, 0xB)
    OPCODES[q] = "RESOURCE_OBJ_QUERY"
    OPCODES[m] = "RESOURCE_OBJ_MODIFY"
    _OPCODE_S2I.update({"RESOURCE_OBJ_QUERY": q, "RESOURCE_OBJ_MODIFY": m})


_OPCODE_S2I: dict[str, int] = {v: k for k, v in OPCODES.items()}


class OpcodeField(LEShortEnumField):
    """le16 ``opcode`` named from the live :data:`OPCODES` (so the 0xb/0xc switch applies).

    scapy's enum fields copy their dict at class creation; this one reads
    the module's tables instead.
    """

    i2s = property(lambda self: OPCODES, lambda self, v: None)  # type: ignore[assignment]
    s2i = property(lambda self: _OPCODE_S2I, lambda self, v: None)  # type: ignore[assignment]

    def __init__(self, name: str, default: int) -> None:
        super().__init__(name, default, OPCODES)


def resource_obj_reading() -> Reading:
    return _reading


def resource_obj_query_opcode() -> int:
    return 0xB if _reading == "table" else 0xC


def resource_obj_modify_opcode() -> int:
    return 0xC if _reading == "table" else 0xB


def opcode_name(opcode: int) -> str | None:
    """Name of ``opcode`` (None when unassigned, e.g. 0x12: spec §11.2)."""
    return OPCODES.get(opcode)


def owner_str(owner: int) -> str:
    """PCI address ``domain << 16 | bus << 8 | dev << 3 | fn`` as dddd:bb:dd.f."""
    return f"{owner >> 16 & 0xFFFF:04x}:{owner >> 8 & 0xFF:02x}:{owner >> 3 & 0x1F:02x}.{owner & 7}"


def parse_owner(text: str) -> int:
    """Inverse of :func:`owner_str`."""
    dom, bus, rest = text.split(":")
    dev, fn = rest.split(".")
    return int(dom, 16) << 16 | int(bus, 16) << 8 | int(dev, 16) << 3 | int(fn, 16)


# --- base layer ----------------------------------------------------------------

class AdminLayer(Packet):
    """Base of every admin layer: short input reads as zero-filled (spec §3.3.2).

    ``min_len`` is the size of the layer's fixed structure.  A shorter buffer
    is extended with zeros before dissection, as a device treats missing
    readable bytes (and a driver treats writable bytes past the used length);
    :attr:`zero_filled` says by how much, so the decoder can report it.
    :attr:`avail` is the number of bytes this layer was given (after filling),
    which variable-length lists use to take "the rest, in whole elements".
    """

    min_len: ClassVar[int] = 0
    zero_filled: int = 0
    avail: int = 0

    def pre_dissect(self, s: bytes) -> bytes:
        short = self.min_len - len(s)
        if short > 0:
            self.zero_filled = short
            s = bytes(s) + b"\0" * short
        self.avail = len(s)
        return s

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        # Surplus bytes after a fixed structure are padding (the driver pads to 8).
        return b"", s


def _rest(pkt: AdminLayer, fixed: int, elem: int = 1) -> int:
    """Bytes left after ``fixed`` bytes of ``pkt``, rounded down to whole ``elem``s."""
    n = max(pkt.avail - fixed, 0)
    return n - n % elem


#: Bound for list fields: lists are bounded by the buffer, never by a count.
MAX_ITEMS = 1 << 24
#: Most part headers decoded from one header list (METADATA LIST result, GET
#: SELECTED data); a real VF has a few hundred parts.  Bytes beyond are surplus.
MAX_HDRS = 65536


# --- 3.1 struct virtio_admin_cmd_hdr -----------------------------------------

class VirtioAdminCmd(AdminLayer):
    """``struct virtio_admin_cmd_hdr`` (24 bytes) + ``command_specific_data``."""

    name = "virtio_admin_cmd"
    min_len = 24
    fields_desc = [
        OpcodeField("opcode", 0),
        LEShortEnumField("group_type", GROUP_TYPE_SRIOV, GROUP_TYPES),
        StrFixedLenField("reserved1", b"\0" * 12, 12),
        LELongField("group_member_id", 0),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return s, b""


# --- 3.2 struct virtio_admin_cmd_status --------------------------------------

class VirtioAdminCmdResult(AdminLayer):
    """``struct virtio_admin_cmd_status`` (8 bytes) + ``command_specific_result``.

    The result layout depends on the request (opcode; for
    DEV_PARTS_METADATA_GET and DEV_PARTS_GET the request's ``type``; for
    DEVICE_CAP_GET the capability ``id``; for RESOURCE_OBJ_QUERY the object
    type).  That context comes from the enclosing admin-capture header when
    there is one, else from :meth:`for_request`::

        VirtioAdminCmdResult.for_request(DEV_PARTS_METADATA_GET, 0)(buf)
    """

    name = "virtio_admin_cmd_status"
    min_len = 8
    ctx_opcode: ClassVar[int | None] = None
    ctx_subtype: ClassVar[int] = 0
    _bound: ClassVar[dict[tuple[int, int], type]] = {}
    fields_desc = [
        LEShortEnumField("status", STATUS_OK, STATUS),
        LEShortEnumField("status_qualifier", 0, STATUS_QUALIFIERS),
        StrFixedLenField("reserved2", b"\0" * 4, 4),
    ]

    @classmethod
    def for_request(cls, opcode: int, subtype: int = 0) -> type["VirtioAdminCmdResult"]:
        """This layer, bound to the request that selects the result layout."""
        key = (opcode, subtype)
        sub = VirtioAdminCmdResult._bound.get(key)
        if sub is None:
            sub = type(f"VirtioAdminCmdResult_{opcode:x}_{subtype:x}", (VirtioAdminCmdResult,),
                       {"ctx_opcode": opcode, "ctx_subtype": subtype,
                        "__module__": __name__, "__doc__": f"Result of opcode {opcode:#x}/{subtype}."})
            VirtioAdminCmdResult._bound[key] = sub
        return sub

    def context(self) -> tuple[int | None, int]:
        ul = self.underlayer
        if ul is not None and hasattr(ul, "admin_context"):
            return ul.admin_context()
        return self.ctx_opcode, self.ctx_subtype

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return s, b""

    def guess_payload_class(self, payload: bytes) -> type[Packet]:
        opcode, subtype = self.context()
        if opcode is None:
            return conf.raw_layer
        return result_layer(opcode, subtype) or conf.raw_layer


# --- dispatch --------------------------------------------------------------------

#: (opcode, subtype or None for any) -> result layer.
RESULT_LAYERS: dict[tuple[int, int | None], type[Packet]] = {}
#: resource_obj_type -> RESOURCE_OBJ_QUERY result layer (opcode per §11.1 reading).
QUERY_RESULT_LAYERS: dict[int, type[Packet]] = {}


def bind_result(opcode: int, cls: type[Packet], subtype: int | None = None) -> None:
    """Register ``cls`` as the result of ``opcode`` (for one ``subtype`` or all)."""
    RESULT_LAYERS[(opcode, subtype)] = cls


def result_layer(opcode: int, subtype: int = 0) -> type[Packet] | None:
    """The result layer for a request, or None (no result defined / unknown)."""
    if opcode in (0xB, 0xC):
        if opcode != resource_obj_query_opcode():
            return None  # MODIFY has no result
        return QUERY_RESULT_LAYERS.get(subtype)
    return RESULT_LAYERS.get((opcode, subtype)) or RESULT_LAYERS.get((opcode, None))


def has_result(opcode: int) -> bool:
    """True when the spec defines a ``command_specific_result`` for ``opcode``."""
    if opcode in (0xB, 0xC):
        return opcode == resource_obj_query_opcode()
    return any(op == opcode for op, _ in RESULT_LAYERS) or opcode not in OPCODES
