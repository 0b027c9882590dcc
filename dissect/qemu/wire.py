# SPDX-License-Identifier: GPL-2.0-only
"""Constants and fixed layouts of QEMU's migration stream.

One definition per format (docs/qemu-stream.md); every value and layout is
taken from ``/work/shared/spec/qemu-migration-stream.md`` (section numbers in
the comments).  Names follow the contract's naming rule: the spec constant
with its family prefix removed.

Each name table is built from the constants (:func:`_names`), so a value is
written once: the constant is the declaration, the table follows from it.
"""
from __future__ import annotations

import struct


def _names(prefix: str, namespace: dict[str, object]) -> dict[int, str]:
    """``{value: name}`` of the ``<prefix><NAME>`` int constants of ``namespace``, in
    declaration order, the prefix removed (the contract's naming rule)."""
    return {v: k[len(prefix):] for k, v in namespace.items()
            if k.startswith(prefix) and type(v) is int}

# §3 file header
QEMU_VM_FILE_MAGIC = 0x5145564D
QEMU_VM_FILE_VERSION = 3
QEMU_VM_FILE_VERSION_COMPAT = 2
FILE_HEADER = struct.Struct(">II")

# §4 record type byte
QEMU_VM_EOF = 0x00
QEMU_VM_SECTION_START = 0x01
QEMU_VM_SECTION_PART = 0x02
QEMU_VM_SECTION_END = 0x03
QEMU_VM_SECTION_FULL = 0x04
QEMU_VM_SUBSECTION = 0x05
QEMU_VM_VMDESCRIPTION = 0x06
QEMU_VM_CONFIGURATION = 0x07
QEMU_VM_COMMAND = 0x08
QEMU_VM_SECTION_FOOTER = 0x7E

_SECTIONS = (QEMU_VM_SECTION_START, QEMU_VM_SECTION_PART, QEMU_VM_SECTION_END, QEMU_VM_SECTION_FULL)
# the section types drop SECTION_ as well (START, not SECTION_START); the footer keeps it
RECORD_TYPES: dict[int, str] = {
    v: n.removeprefix("SECTION_") if v in _SECTIONS else n
    for v, n in _names("QEMU_VM_", {k: v for k, v in globals().items() if not k.startswith("QEMU_VM_FILE_")}).items()
}
SECTION_TYPES: dict[int, str] = {t: RECORD_TYPES[t] for t in _SECTIONS}
#: Section records whose header names the section (id, idstr, instance, version) / gives only its id (§6).
SECTION_NAMED = (QEMU_VM_SECTION_START, QEMU_VM_SECTION_FULL)
SECTION_BY_ID = (QEMU_VM_SECTION_PART, QEMU_VM_SECTION_END)

# §6 section headers: START/FULL = type, be32 id, idstr, be32 instance, be32 version
SECTION_ID = struct.Struct(">I")
SECTION_TAIL = struct.Struct(">II")          # instance_id, version_id after the idstr
FOOTER = struct.Struct(">BI")                # 0x7e, be32 section_id
FOOTER_LEN = 5

# §8 commands: u8 0x08, be16 cmd, be16 len
COMMAND_HDR = struct.Struct(">HH")
MIG_CMD_INVALID = 0
MIG_CMD_OPEN_RETURN_PATH = 1
MIG_CMD_PING = 2
MIG_CMD_POSTCOPY_ADVISE = 3
MIG_CMD_POSTCOPY_LISTEN = 4
MIG_CMD_POSTCOPY_RUN = 5
MIG_CMD_POSTCOPY_RAM_DISCARD = 6
MIG_CMD_PACKAGED = 7
MIG_CMD_ENABLE_COLO = 8
MIG_CMD_POSTCOPY_RESUME = 9
MIG_CMD_RECV_BITMAP = 10
MIG_CMD_SWITCHOVER_START = 11
COMMANDS: dict[int, str] = _names("MIG_CMD_", globals())
#: Payload length each command must have (None = variable).
COMMAND_LEN: dict[int, tuple[int, ...] | None] = {
    MIG_CMD_OPEN_RETURN_PATH: (0,), MIG_CMD_PING: (4,), MIG_CMD_POSTCOPY_ADVISE: (0, 16),
    MIG_CMD_POSTCOPY_LISTEN: (0,), MIG_CMD_POSTCOPY_RUN: (0,), MIG_CMD_POSTCOPY_RAM_DISCARD: None,
    MIG_CMD_PACKAGED: (4,), MIG_CMD_ENABLE_COLO: (0,), MIG_CMD_POSTCOPY_RESUME: (0,),
    MIG_CMD_RECV_BITMAP: None, MIG_CMD_SWITCHOVER_START: (0,),
}

# §13 return path: be16 type, be16 len
RP_HDR = struct.Struct(">HH")
MIG_RP_MSG_INVALID = 0
MIG_RP_MSG_SHUT = 1
MIG_RP_MSG_PONG = 2
MIG_RP_MSG_REQ_PAGES_ID = 3
MIG_RP_MSG_REQ_PAGES = 4
MIG_RP_MSG_RECV_BITMAP = 5
MIG_RP_MSG_RESUME_ACK = 6
MIG_RP_MSG_SWITCHOVER_ACK = 7
RP_MESSAGES: dict[int, str] = _names("MIG_RP_MSG_", globals())
RECV_BITMAP_ENDING = 0x0123456789ABCDEF

# §9 vmdesc trailer: u8 0x06, be32 length, JSON
VMDESC_LEN = struct.Struct(">I")

# §11 RAM
RAM_SAVE_FLAG_FULL = 0x01
RAM_SAVE_FLAG_ZERO = 0x02
RAM_SAVE_FLAG_MEM_SIZE = 0x04
RAM_SAVE_FLAG_PAGE = 0x08
RAM_SAVE_FLAG_EOS = 0x10
RAM_SAVE_FLAG_CONTINUE = 0x20
RAM_SAVE_FLAG_XBZRLE = 0x40
RAM_SAVE_FLAG_HOOK = 0x80
RAM_SAVE_FLAG_COMPRESS_PAGE = 0x100
RAM_SAVE_FLAG_MULTIFD_FLUSH = 0x200
RAM_FLAGS: dict[int, str] = _names("RAM_SAVE_FLAG_", globals())
#: Flags whose record names (or continues) a RAM block.
RAM_BLOCK_FLAGS = RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_XBZRLE | RAM_SAVE_FLAG_COMPRESS_PAGE
ENCODING_FLAG_XBZRLE = 0x1
BE64 = struct.Struct(">Q")
BE32 = struct.Struct(">I")
BE16 = struct.Struct(">H")
DEFAULT_PAGE_SIZE = 4096

# §10.3 VFIO markers (be64)
VFIO_MIG_FLAG_END_OF_STATE = 0xFFFFFFFFEF100001
VFIO_MIG_FLAG_DEV_CONFIG_STATE = 0xFFFFFFFFEF100002
VFIO_MIG_FLAG_DEV_SETUP_STATE = 0xFFFFFFFFEF100003
VFIO_MIG_FLAG_DEV_DATA_STATE = 0xFFFFFFFFEF100004
VFIO_MIG_FLAG_DEV_INIT_DATA_SENT = 0xFFFFFFFFEF100005
VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY = 0xFFFFFFFFEF100006
VFIO_MARKERS: dict[int, str] = _names("VFIO_MIG_FLAG_", globals())
VFIO_MARKER_PREFIX = 0xFFFFFFFFEF100000
VFIO_IDSTR_SUFFIX = "/vfio"
VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE = 1 << 20
#: Phase of VFIO data by the section type carrying it (§10.4).
VFIO_PHASE = {QEMU_VM_SECTION_START: "setup", QEMU_VM_SECTION_PART: "precopy", QEMU_VM_SECTION_END: "stopcopy",
              QEMU_VM_SECTION_FULL: "config"}

# §10.6 VFIODeviceStatePacket (big-endian, packed)
VFIO_DEVICE_STATE_PACKET = struct.Struct(">III")  # version, idx, flags
VFIO_DEVICE_STATE_PACKET_VER_CURRENT = 0
VFIO_DEVICE_STATE_CONFIG_STATE = 0x1

# §12 multifd
MULTIFD_MAGIC = 0x11223344
MULTIFD_VERSION = 1
MULTIFD_FLAG_SYNC = 0x1
MULTIFD_FLAG_COMPRESSION_MASK = 0x1F << 1
MULTIFD_FLAG_DEVICE_STATE = 0x40
MULTIFD_COMPRESSION: dict[int, str] = {0: "NOCOMP", 1: "ZLIB", 2: "ZSTD", 4: "QPL", 8: "UADK", 16: "QATZIP"}
#: MultiFDInit_t: magic, version, uuid[16], id, unused1[7], unused2[4] (64 bytes)
MULTIFD_INIT = struct.Struct(">II16sB7s32s")
#: MultiFDPacketHdr_t: magic, version, flags
MULTIFD_HDR = struct.Struct(">III")
#: MultiFDPacket_t after the header: pages_alloc, normal_pages, next_packet_size,
#: packet_num, zero_pages (9.0+; unused and 0 before), unused32, unused64[3], ramblock[256]
MULTIFD_RAM = struct.Struct(">IIIQII24s256s")
MULTIFD_RAM_FIXED = MULTIFD_HDR.size + MULTIFD_RAM.size  # 320
#: MultiFDPacketDeviceState_t after the header: idstr[256], instance_id, next_packet_size
MULTIFD_DEVSTATE = struct.Struct(">256sII")
MULTIFD_DEVSTATE_FIXED = MULTIFD_HDR.size + MULTIFD_DEVSTATE.size  # 276
MULTIFD_PACKET_SIZE = 512 * 1024


def vfio_marker_name(value: int) -> str | None:
    """Contract name of a VFIO marker value (None when unknown)."""
    return VFIO_MARKERS.get(value)


def is_vfio_idstr(idstr: str) -> bool:
    return idstr.endswith(VFIO_IDSTR_SUFFIX)


def cstr(raw: bytes) -> str:
    """A NUL-padded fixed-size C string (multifd ramblock / idstr)."""
    return bytes(raw).split(b"\0", 1)[0].decode("utf-8", "replace")
