# SPDX-License-Identifier: GPL-2.0-only
"""Builders: the bytes QEMU writes, piece by piece (qemu-migration-stream.md).

Composable pieces for generated captures, tests and the simulator; each
returns ``bytes`` exactly as QEMU puts them on the wire (all integers
big-endian).  :mod:`dissect.qemu.build_migration` composes them into whole
migrations of a QEMU profile.

Pieces:

* stream records — :func:`file_header`, :func:`configuration`,
  :func:`section_start` / :func:`section_part` / :func:`section_end` /
  :func:`section_full` (with :func:`footer`), :func:`command` and its
  helpers, :func:`eof`, :func:`vmdesc_trailer`;
* RAM — :class:`RamWriter` (setup record, zero/normal/XBZRLE/compressed
  pages with CONTINUE tracking, EOS, MULTIFD_FLUSH);
* VFIO — :func:`vfio_marker`, :func:`vfio_data_chunk`, the per-phase
  payloads :func:`vfio_setup_payload`, :func:`vfio_precopy_payload`,
  :func:`vfio_stopcopy_payload`, :func:`vfio_config_payload`, and
  :func:`vfio_pci_config_blob`;
* multifd — :func:`multifd_init`, :func:`multifd_ram_packet`,
  :func:`multifd_device_state_packet`;
* return path — :func:`rp_message`, :func:`rp_pong`, :func:`rp_shut`,
  :func:`rp_switchover_ack`.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from dissect.qemu import wire as W


# ---- stream records ----------------------------------------------------------
def file_header(version: int = W.QEMU_VM_FILE_VERSION) -> bytes:
    """``QEVM`` + be32 version (§3)."""
    return W.FILE_HEADER.pack(W.QEMU_VM_FILE_MAGIC, version)


def _cstr8(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > 255:
        raise ValueError("counted strings are at most 255 bytes")
    return bytes([len(b)]) + b


def subsection(name: str, version_id: int, body: bytes) -> bytes:
    """A VMSD subsection: 0x05, u8 name length, name, be32 version, fields (§7)."""
    return bytes([W.QEMU_VM_SUBSECTION]) + _cstr8(name) + W.BE32.pack(version_id) + body


def configuration(machine_type: str = "pc-q35-9.2", *, target_page_bits: int | None = None,
                  capabilities: Sequence[str] | None = None, uuid: bytes | None = None) -> bytes:
    """The CONFIGURATION record (§5): 0x07, be32 len, machine type, optional subsections."""
    name = machine_type.encode()
    out = bytes([W.QEMU_VM_CONFIGURATION]) + W.BE32.pack(len(name)) + name
    if target_page_bits is not None:
        out += subsection("configuration/target-page-bits", 1, W.BE32.pack(target_page_bits))
    if capabilities:
        out += subsection("configuration/capabilities", 1,
                          W.BE32.pack(len(capabilities)) + b"".join(_cstr8(c) for c in capabilities))
    if uuid is not None:
        if len(uuid) != 16:
            raise ValueError("uuid is 16 bytes")
        out += subsection("configuration/uuid", 1, uuid)
    return out


def footer(section_id: int) -> bytes:
    """Section footer: 0x7e + be32 section_id (§6.3)."""
    return W.FOOTER.pack(W.QEMU_VM_SECTION_FOOTER, section_id)


def _full_header(stype: int, section_id: int, idstr: str, instance_id: int, version_id: int) -> bytes:
    return (bytes([stype]) + W.SECTION_ID.pack(section_id) + _cstr8(idstr)
            + W.SECTION_TAIL.pack(instance_id, version_id))


def section_start(section_id: int, idstr: str, instance_id: int, version_id: int, payload: bytes,
                  *, with_footer: bool = True) -> bytes:
    """QEMU_VM_SECTION_START (§6.1)."""
    return (_full_header(W.QEMU_VM_SECTION_START, section_id, idstr, instance_id, version_id) + payload
            + (footer(section_id) if with_footer else b""))


def section_full(section_id: int, idstr: str, instance_id: int, version_id: int, payload: bytes,
                 *, with_footer: bool = True) -> bytes:
    """QEMU_VM_SECTION_FULL (§6.1)."""
    return (_full_header(W.QEMU_VM_SECTION_FULL, section_id, idstr, instance_id, version_id) + payload
            + (footer(section_id) if with_footer else b""))


def section_part(section_id: int, payload: bytes, *, with_footer: bool = True) -> bytes:
    """QEMU_VM_SECTION_PART (§6.2)."""
    return (bytes([W.QEMU_VM_SECTION_PART]) + W.SECTION_ID.pack(section_id) + payload
            + (footer(section_id) if with_footer else b""))


def section_end(section_id: int, payload: bytes, *, with_footer: bool = True) -> bytes:
    """QEMU_VM_SECTION_END (§6.2)."""
    return (bytes([W.QEMU_VM_SECTION_END]) + W.SECTION_ID.pack(section_id) + payload
            + (footer(section_id) if with_footer else b""))


def command(cmd: int, payload: bytes = b"") -> bytes:
    """QEMU_VM_COMMAND: 0x08, be16 cmd, be16 len, payload (§8)."""
    return bytes([W.QEMU_VM_COMMAND]) + W.COMMAND_HDR.pack(cmd, len(payload)) + payload


def open_return_path() -> bytes:
    return command(W.MIG_CMD_OPEN_RETURN_PATH)


def ping(value: int) -> bytes:
    return command(W.MIG_CMD_PING, W.BE32.pack(value))


def switchover_start() -> bytes:
    """MIG_CMD_SWITCHOVER_START (10.0+, §8)."""
    return command(W.MIG_CMD_SWITCHOVER_START)


def postcopy_advise(ram_pagesize_summary: int | None = None, target_page_size: int = 4096) -> bytes:
    if ram_pagesize_summary is None:
        return command(W.MIG_CMD_POSTCOPY_ADVISE)
    return command(W.MIG_CMD_POSTCOPY_ADVISE, W.BE64.pack(ram_pagesize_summary) + W.BE64.pack(target_page_size))


def postcopy_ram_discard(block: str, ranges: Iterable[tuple[int, int]]) -> bytes:
    body = b"\x00" + _cstr8(block) + b"\x00" + b"".join(W.BE64.pack(s) + W.BE64.pack(n) for s, n in ranges)
    return command(W.MIG_CMD_POSTCOPY_RAM_DISCARD, body)


def recv_bitmap(block: str) -> bytes:
    return command(W.MIG_CMD_RECV_BITMAP, _cstr8(block))


def packaged(blob: bytes) -> bytes:
    """MIG_CMD_PACKAGED with its nested stream; the blob is not counted in ``len`` (§8)."""
    return command(W.MIG_CMD_PACKAGED, W.BE32.pack(len(blob))) + blob


def eof() -> bytes:
    return bytes([W.QEMU_VM_EOF])


def vmdesc_json(desc: dict[str, Any]) -> bytes:
    """The JSON as QEMU's json writer prints it (separators ``", "`` and ``": "``)."""
    return json.dumps(desc, separators=(", ", ": ")).encode()


def vmdesc_trailer(desc: dict[str, Any]) -> bytes:
    """QEMU_VM_VMDESCRIPTION: 0x06, be32 length, JSON (§9); the EOF byte is separate."""
    raw = vmdesc_json(desc)
    return bytes([W.QEMU_VM_VMDESCRIPTION]) + W.VMDESC_LEN.pack(len(raw)) + raw


# ---- RAM -------------------------------------------------------------------------
class RamWriter:
    """RAM page records of one channel (§11): tracks the last block for CONTINUE."""

    def __init__(self, page_size: int = W.DEFAULT_PAGE_SIZE) -> None:
        self.page_size = page_size
        self.last_block: str | None = None

    def _hdr(self, block: str, offset: int, flags: int) -> bytes:
        if offset % self.page_size:
            raise ValueError("page offsets are page aligned")
        if block == self.last_block:
            return W.BE64.pack(offset | flags | W.RAM_SAVE_FLAG_CONTINUE)
        self.last_block = block
        return W.BE64.pack(offset | flags) + _cstr8(block)

    def setup(self, blocks: Sequence[tuple[str, int]], *, multifd_flush: bool = False,
              block_page_sizes: dict[str, int] | None = None) -> bytes:
        """START payload: MEM_SIZE with the block list, optional MULTIFD_FLUSH, EOS (§11.3)."""
        total = sum(n for _, n in blocks)
        out = [W.BE64.pack(total | W.RAM_SAVE_FLAG_MEM_SIZE)]
        for name, used in blocks:
            out.append(_cstr8(name) + W.BE64.pack(used))
            if block_page_sizes and name in block_page_sizes:
                out.append(W.BE64.pack(block_page_sizes[name]))
        if multifd_flush:
            out.append(self.multifd_flush())
        out.append(self.eos())
        self.last_block = None
        return b"".join(out)

    def zero_page(self, block: str, offset: int) -> bytes:
        return self._hdr(block, offset, W.RAM_SAVE_FLAG_ZERO) + b"\x00"

    def normal_page(self, block: str, offset: int, data: bytes) -> bytes:
        if len(data) != self.page_size:
            raise ValueError(f"a page is {self.page_size} bytes")
        return self._hdr(block, offset, W.RAM_SAVE_FLAG_PAGE) + data

    def xbzrle_page(self, block: str, offset: int, encoded: bytes) -> bytes:
        return (self._hdr(block, offset, W.RAM_SAVE_FLAG_XBZRLE) + bytes([W.ENCODING_FLAG_XBZRLE])
                + W.BE16.pack(len(encoded)) + encoded)

    def compressed_page(self, block: str, offset: int, zdata: bytes) -> bytes:
        """COMPRESS_PAGE (≤ 9.0 only)."""
        return self._hdr(block, offset, W.RAM_SAVE_FLAG_COMPRESS_PAGE) + W.BE32.pack(len(zdata)) + zdata

    def hook(self) -> bytes:
        return W.BE64.pack(W.RAM_SAVE_FLAG_HOOK)

    def eos(self) -> bytes:
        return W.BE64.pack(W.RAM_SAVE_FLAG_EOS)

    def multifd_flush(self) -> bytes:
        return W.BE64.pack(W.RAM_SAVE_FLAG_MULTIFD_FLUSH)


# ---- VFIO --------------------------------------------------------------------------
def vfio_marker(value: int) -> bytes:
    """A be64 VFIO_MIG_FLAG_* marker (§10.3)."""
    return W.BE64.pack(value)


def vfio_data_chunk(data: bytes) -> bytes:
    """DEV_DATA_STATE, be64 size, data: one ``vfio_save_block`` (§10.4)."""
    return vfio_marker(W.VFIO_MIG_FLAG_DEV_DATA_STATE) + W.BE64.pack(len(data)) + data


def vfio_setup_payload() -> bytes:
    """START payload of ``vfio_save_setup``: DEV_SETUP_STATE, END_OF_STATE."""
    return vfio_marker(W.VFIO_MIG_FLAG_DEV_SETUP_STATE) + vfio_marker(W.VFIO_MIG_FLAG_END_OF_STATE)


def vfio_precopy_payload(data: bytes | None, *, init_data_sent: bool = False) -> bytes:
    """PART payload of ``vfio_save_iterate`` (8.1+): zero or one chunk, then
    DEV_INIT_DATA_SENT (switchover-ack, once) or END_OF_STATE."""
    out = vfio_data_chunk(data) if data else b""
    term = W.VFIO_MIG_FLAG_DEV_INIT_DATA_SENT if init_data_sent else W.VFIO_MIG_FLAG_END_OF_STATE
    return out + vfio_marker(term)


def split_chunks(data: bytes, buffer_size: int = W.VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE) -> list[bytes]:
    """``data`` as successive ``read()`` results of at most ``buffer_size`` bytes."""
    return [data[i:i + buffer_size] for i in range(0, len(data), buffer_size)]


def vfio_stopcopy_payload(data: bytes, *, buffer_size: int = W.VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE) -> bytes:
    """END payload of ``vfio_save_complete_precopy``: chunks until read() returns 0, END_OF_STATE."""
    return b"".join(vfio_data_chunk(c) for c in split_chunks(data, buffer_size)) + \
        vfio_marker(W.VFIO_MIG_FLAG_END_OF_STATE)


def vfio_config_payload(config: bytes) -> bytes:
    """FULL payload of ``vfio_save_state``: DEV_CONFIG_STATE, config, END_OF_STATE (§10.4)."""
    return vfio_marker(W.VFIO_MIG_FLAG_DEV_CONFIG_STATE) + config + vfio_marker(W.VFIO_MIG_FLAG_END_OF_STATE)


def vfio_pci_config_blob(*, vendor: int = 0x1AF4, device: int = 0x1041, msix_entries: int = 10,
                         config_size: int = 4096, seed: int = 0) -> bytes:
    """A plausible ``VFIOPCIDevice`` VMSD payload (§10.7): PCI config space,
    4 × be32 IRQ state, MSI-X table (16 bytes per entry) and PBA.

    The exact inner layout is UNVERIFIED in the spec; decoders keep the
    blob as bytes, so only its length and content-independence matter.
    """
    cfg = bytearray(config_size)
    cfg[0:2] = vendor.to_bytes(2, "little")
    cfg[2:4] = device.to_bytes(2, "little")
    cfg[4:6] = (0x0406).to_bytes(2, "little")  # memory + bus master, INTx disabled
    cfg[8] = 1
    cfg[0x0A:0x0C] = (0x0200).to_bytes(2, "little")  # class: ethernet
    cfg[0x2C:0x30] = (0x00011AF4).to_bytes(4, "little")
    irq = W.BE32.pack(0) * 4
    table = bytearray()
    for i in range(msix_entries):
        addr = 0xFEE00000 + ((seed + i) % 4) * 0x1000
        table += addr.to_bytes(8, "little") + (0x4020 + i).to_bytes(4, "little") + (0).to_bytes(4, "little")
    pba = bytes(((msix_entries + 63) // 64) * 8)
    return bytes(cfg) + irq + bytes(table) + pba


# ---- multifd ---------------------------------------------------------------------------
def multifd_init(uuid: bytes, channel: int) -> bytes:
    """MultiFDInit_t (64 bytes, §12.1)."""
    return W.MULTIFD_INIT.pack(W.MULTIFD_MAGIC, W.MULTIFD_VERSION, uuid, channel, bytes(7), bytes(32))


def multifd_ram_packet(*, packet_num: int, ramblock: str = "", normal_offsets: Sequence[int] = (),
                       zero_offsets: Sequence[int] = (), page_data: bytes = b"", flags: int = 0,
                       pages_alloc: int | None = None, slots: int = 128, next_packet_size: int | None = None,
                       layout: str = "9.0") -> bytes:
    """A RAM packet (§12.3): 320-byte fixed part, ``slots`` be64 offsets (``MULTIFD_PACKET_SIZE /
    page size``: QEMU's fixed packet length; normal first, then zero; unused slots 0), then the
    page data.

    ``pages_alloc`` defaults to ``slots`` (what 7.2–10.x RAM packets carry); 9.2+/10.x SYNC packets
    carry 0 there with the full array.  ``layout="7.2"`` has no zero pages (bytes 32..35 unused).
    The data is written only when there are normal pages, as QEMU does; a packet without
    normal pages may carry any ``next_packet_size`` (QEMU repeats a stale one).
    """
    if layout == "7.2" and zero_offsets:
        raise ValueError("the 7.2 layout has no zero pages")
    if pages_alloc is None:
        pages_alloc = slots
    n = len(normal_offsets) + len(zero_offsets)
    if n > slots or (n and n > pages_alloc):
        raise ValueError("more pages than the packet holds")
    if next_packet_size is None:
        next_packet_size = len(page_data)
    name = ramblock.encode()
    if len(name) > 255:
        raise ValueError("ramblock names are at most 255 bytes")
    fixed = W.MULTIFD_HDR.pack(W.MULTIFD_MAGIC, W.MULTIFD_VERSION, flags) + W.MULTIFD_RAM.pack(
        pages_alloc, len(normal_offsets), next_packet_size, packet_num, len(zero_offsets), 0, bytes(24),
        name.ljust(256, b"\0"))
    offs = list(normal_offsets) + list(zero_offsets) + [0] * (slots - n)
    return fixed + b"".join(W.BE64.pack(o) for o in offs) + (page_data if normal_offsets else b"")


def multifd_device_state_packet(idstr: str, instance_id: int, idx: int, data: bytes, *,
                                config: bool = False, flags: int = W.MULTIFD_FLAG_DEVICE_STATE) -> bytes:
    """A 10.x device-state packet (§12.4) carrying a VFIODeviceStatePacket (§10.6)."""
    name = idstr.encode()
    if len(name) > 255:
        raise ValueError("idstr is at most 255 bytes")
    inner = W.VFIO_DEVICE_STATE_PACKET.pack(W.VFIO_DEVICE_STATE_PACKET_VER_CURRENT, idx,
                                            W.VFIO_DEVICE_STATE_CONFIG_STATE if config else 0) + data
    return (W.MULTIFD_HDR.pack(W.MULTIFD_MAGIC, W.MULTIFD_VERSION, flags)
            + W.MULTIFD_DEVSTATE.pack(name.ljust(256, b"\0"), instance_id, len(inner)) + inner)


# ---- return path -------------------------------------------------------------------------
def rp_message(mtype: int, payload: bytes = b"") -> bytes:
    """A return-path message: be16 type, be16 len, payload (§13)."""
    return W.RP_HDR.pack(mtype, len(payload)) + payload


def rp_pong(value: int) -> bytes:
    return rp_message(W.MIG_RP_MSG_PONG, W.BE32.pack(value))


def rp_shut(status: int = 0) -> bytes:
    return rp_message(W.MIG_RP_MSG_SHUT, W.BE32.pack(status))


def rp_switchover_ack() -> bytes:
    return rp_message(W.MIG_RP_MSG_SWITCHOVER_ACK)


def rp_req_pages(start: int, length: int, block: str | None = None) -> bytes:
    if block is None:
        return rp_message(W.MIG_RP_MSG_REQ_PAGES, W.BE64.pack(start) + W.BE32.pack(length))
    return rp_message(W.MIG_RP_MSG_REQ_PAGES_ID, W.BE64.pack(start) + W.BE32.pack(length) + _cstr8(block))
