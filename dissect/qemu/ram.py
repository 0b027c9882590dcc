# SPDX-License-Identifier: GPL-2.0-only
"""RAM section payloads walked page by page (qemu-migration-stream.md §11).

This is the hot loop of a large capture: :meth:`RamState.walk` unpacks one
be64 header per page and jumps over page bodies (it never copies or builds
an object per page); counters are kept in locals and folded into the
per-block counters only when the block changes or the walk returns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from dissect.qemu import wire as W
from dissect.qemu.mapped_ram import MappedRegion, read_header

NEED, EOS, BAD, MAPPED = 0, 1, 2, 3

_ZERO = W.RAM_SAVE_FLAG_ZERO
_PAGE = W.RAM_SAVE_FLAG_PAGE
_CONT = W.RAM_SAVE_FLAG_CONTINUE
_XBZ = W.RAM_SAVE_FLAG_XBZRLE
_COMP = W.RAM_SAVE_FLAG_COMPRESS_PAGE
_BLOCKF = W.RAM_BLOCK_FLAGS
_EOS = W.RAM_SAVE_FLAG_EOS
_MEM = W.RAM_SAVE_FLAG_MEM_SIZE
_FLUSH = W.RAM_SAVE_FLAG_MULTIFD_FLUSH
_HOOK = W.RAM_SAVE_FLAG_HOOK
_MAPPED_V1 = b"\0\0\0\1"


@dataclass
class RamSection:
    """Counters of one RAM section (the contract's ``ram`` unit)."""

    section_type: int
    section_id: int
    zero_pages: int = 0
    normal_pages: int = 0
    xbzrle_pages: int = 0
    compressed_pages: int = 0
    multifd_flushes: int = 0
    hooks: int = 0
    bytes: int | None = None
    blocks: dict[str, list[int]] = field(default_factory=dict)
    mem_size: int | None = None
    ram_blocks: list[dict[str, Any]] | None = None


class RamState:
    """RAM decoding state that outlives sections: page size, current block, totals."""

    def __init__(self, page_size: int = W.DEFAULT_PAGE_SIZE) -> None:
        self.set_page_size(page_size)
        self.block: str | None = None
        self.ignore_shared = False
        #: mapped-ram (QEMU >= 9.0): True from the configuration's capabilities (or recognised by
        #: validation), False when the capabilities were announced without it, None unknown.
        self.mapped_ram: bool | None = None
        #: Size of the stream file when known (bounds mapped-ram regions); None for captures.
        self.size_limit: int | None = None
        #: The mapped-ram region the stream parser walks next (set when walk returns MAPPED).
        self.region: MappedRegion | None = None
        self._list: _BlockList | None = None
        self.totals: dict[str, list[int]] = {}
        self._zero = 0
        self._normal = 0
        self.pz = 0
        self.pn = 0
        self.ram_blocks: list[dict[str, Any]] = []
        #: optional tap (dissect/qemu/pages.PageLog): the address of every normal and zero page
        #: sent, block changes and section ends; None = off (the walk then pays one test per page)
        self.page_log: Any = None

    def set_page_size(self, page_size: int) -> None:
        self.page_size = page_size
        self.mask = page_size - 1

    def begin(self, section_type: int, section_id: int) -> RamSection:
        return RamSection(section_type, section_id)

    def flush(self, sec: RamSection) -> None:
        """Fold the pending counts of the current block into ``sec`` and the totals."""
        if self.pz or self.pn:
            self._add(sec, self.block, self.pz, self.pn)
            self.pz = self.pn = 0

    @property
    def zero_pages(self) -> int:
        return self._zero + self.pz

    @property
    def normal_pages(self) -> int:
        return self._normal + self.pn

    def unit(self, sec: RamSection, flow: int | None, section_type: int) -> dict[str, Any]:
        self.flush(sec)
        obj: dict[str, Any] = {
            "kind": "ram", "flow": flow, "section_id": sec.section_id,
            "section_type": W.SECTION_TYPES.get(section_type), "zero_pages": sec.zero_pages,
            "normal_pages": sec.normal_pages, "xbzrle_pages": sec.xbzrle_pages,
            "compressed_pages": sec.compressed_pages, "bytes": sec.bytes,
            "blocks": {k: {"zero_pages": v[0], "normal_pages": v[1]} for k, v in sec.blocks.items()},
            "multifd_flushes": sec.multifd_flushes,
        }
        if sec.hooks:
            obj["hooks"] = sec.hooks
        if sec.mem_size is not None:
            obj["mem_size"] = sec.mem_size
            obj["ram_blocks"] = sec.ram_blocks
        return obj

    def _add(self, sec: RamSection, block: str | None, zero: int, normal: int) -> None:
        key = block if block is not None else "?"
        c = sec.blocks.get(key)
        if c is None:
            c = sec.blocks[key] = [0, 0]
        c[0] += zero
        c[1] += normal
        t = self.totals.get(key)
        if t is None:
            t = self.totals[key] = [0, 0]
        t[0] += zero
        t[1] += normal
        sec.zero_pages += zero
        sec.normal_pages += normal
        self._zero += zero
        self._normal += normal

    def walk(self, sec: RamSection, b: Any, p: int, end: int, base: int,
             finding: Callable[..., None]) -> tuple[int, int, int]:
        """Walk page records in ``b[p:end]``.

        Returns ``(pos, skip, status)``: ``status`` NEED (more bytes needed
        from ``pos``; ``skip`` > 0 means a body runs past ``end`` and that
        many bytes must be skipped first), EOS (the section's payload ended
        at ``pos``) or BAD (undecodable header at ``pos``, finding made).
        """
        if self._list is not None:
            q, st = self._mem_list(sec, b, p, end, base, finding)
            if st != EOS:
                return q, 0, st
            p = q
        unpack = W.BE64.unpack_from
        mask = self.mask
        ps = self.page_size
        block = self.block
        log = self.page_log
        push = None
        if log is not None:
            log.block(block)
            push = log.addrs.append
        zero = normal = 0
        try:
            while True:
                if end - p < 8:
                    return p, 0, NEED
                hdr = unpack(b, p)[0]
                flags = hdr & mask
                if flags & _BLOCKF:
                    q = p + 8
                    if not flags & _CONT:
                        if q >= end:
                            return p, 0, NEED
                        ln = b[q]
                        if q + 1 + ln > end:
                            return p, 0, NEED
                        name = bytes(b[q + 1:q + 1 + ln]).decode("utf-8", "replace")
                        if name != block:
                            self.pz += zero
                            self.pn += normal
                            zero = normal = 0
                            self.block = block
                            self.flush(sec)
                            block = name
                            if log is not None:
                                log.block(name)
                        q += 1 + ln
                    elif block is None:
                        finding("error", "ram_continue_without_block", "RAM_SAVE_FLAG_CONTINUE before any "
                                "block was named", base + p)
                        block = "?"
                    f = flags & ~_CONT
                    if f == _PAGE:
                        normal += 1
                        if push is not None:
                            push(hdr & ~mask)
                        q += ps
                        if q > end:
                            return end, q - end, NEED
                        p = q
                        continue
                    if f == _ZERO:
                        if q >= end:
                            return p, 0, NEED
                        if b[q]:
                            finding("warning", "ram_zero_fill", f"zero page with fill byte 0x{b[q]:02x}", base + q)
                        zero += 1
                        if push is not None:
                            push(hdr & ~mask)
                        p = q + 1
                        continue
                    if f == _XBZ:
                        if end - q < 3:
                            return p, 0, NEED
                        if b[q] != W.ENCODING_FLAG_XBZRLE:
                            finding("error", "ram_xbzrle_encoding", f"XBZRLE encoding flag 0x{b[q]:02x}", base + q)
                            return p, 0, BAD
                        n = W.BE16.unpack_from(b, q + 1)[0]
                        sec.xbzrle_pages += 1
                        q += 3 + n
                    elif f == _COMP:
                        if end - q < 4:
                            return p, 0, NEED
                        n = W.BE32.unpack_from(b, q)[0]
                        if n > 2 * ps + 1024:
                            finding("error", "ram_compressed_length", f"compressed page of {n} bytes", base + q)
                            return p, 0, BAD
                        sec.compressed_pages += 1
                        q += 4 + n
                    else:
                        finding("error", "ram_bad_flags", f"unknown combination of RAM flags 0x{flags:x}", base + p)
                        return p, 0, BAD
                    if q > end:
                        return end, q - end, NEED
                    p = q
                    continue
                f = flags & ~_CONT
                if f == _EOS:
                    if log is not None:
                        log.end_of_section(sec.section_type)
                    return p + 8, 0, EOS
                if f == _FLUSH:
                    sec.multifd_flushes += 1
                    p += 8
                    continue
                if f == _MEM:
                    self._list = _BlockList(hdr & ~mask, base + p)
                    q, st = self._mem_list(sec, b, p + 8, end, base, finding)
                    if st != EOS:
                        return q, 0, st
                    p = q
                    continue
                if f == _HOOK:
                    # RDMA's hook reads its data from the RDMA channel, not from this stream.
                    sec.hooks += 1
                    finding("info", "ram_hook", "RAM_SAVE_FLAG_HOOK (RDMA) in a TCP stream", base + p)
                    p += 8
                    continue
                finding("error", "ram_bad_flags", f"unknown combination of RAM flags 0x{flags:x}", base + p)
                return p, 0, BAD
        finally:
            # Counters of the current block wait in pz/pn until the block or section changes.
            self.pz += zero
            self.pn += normal
            self.block = block

    def _mem_list(self, sec: RamSection, b: Any, q: int, end: int, base: int,
                  finding: Callable[..., None]) -> tuple[int, int]:
        """The setup record's block list (§11.3), entry by entry from ``q``.

        Returns ``(pos, status)``: EOS when the list is complete, NEED (more bytes from
        ``pos``, the start of an unfinished entry; the list state persists), MAPPED (a
        mapped-ram region starts at ``pos``: ``self.region``) or BAD.
        """
        lst = self._list
        assert lst is not None
        mask = self.mask
        while lst.acc < lst.total:
            if q >= end:
                return q, NEED
            ln = b[q]
            if ln == 0:
                finding("error", "ram_block_list", "RAM block list: empty block name before the total was "
                        f"reached ({lst.acc} of {lst.total} bytes)", base + q)
                break
            if end - q < 1 + ln + 8:
                return q, NEED
            name = bytes(b[q + 1:q + 1 + ln]).decode("utf-8", "replace")
            used = W.BE64.unpack_from(b, q + 1 + ln)[0]
            r = q + 1 + ln + 8
            ent: dict[str, Any] = {"idstr": name, "used_length": used}
            if self.mapped_ram is None and not self.ignore_shared:
                # No capabilities announced: a mapped-ram header (be32 version 1 first) is
                # recognised by validation on the first block, which decides for the list.
                if end - r < 4:
                    return q, NEED
                if bytes(b[r:r + 4]) != _MAPPED_V1:
                    self.mapped_ram = False
                elif end - r < 28:
                    return q, NEED
                elif read_header(b, r, base, used, strict=True) is not None:
                    self.mapped_ram = True
                    finding("info", "mapped_ram_detected", "mapped-ram block headers recognised by their "
                            "offsets (the configuration announced no capabilities)", base + r)
                else:
                    self.mapped_ram = False
            if self.mapped_ram:
                if self.ignore_shared:
                    # mapped-ram excludes postcopy: the only optional be64 is mr->addr.
                    if end - r < 8:
                        return q, NEED
                    ent["addr"] = W.BE64.unpack_from(b, r)[0]
                    r += 8
                if end - r < 28:
                    return q, NEED
                region = read_header(b, r, base, used, page_size=self.page_size, limit=self.size_limit,
                                     finding=finding, block=name)
                ent["mapped_ram"] = region.header() if region is not None else None
                lst.blocks.append(ent)
                lst.acc += used
                if region is None:
                    return r, BAD
                r += 28
                if region.region_end > base + r:
                    region.entry = ent
                    self.region = region
                    return r, MAPPED
                q = r
                continue
            # Optional be64 block page size (postcopy), then mr->addr (x-ignore-shared): both
            # start with a 0 byte (a name length never does) and have no RAM flag bits.
            extras = []
            while len(extras) < 2:
                if end - r < 8:
                    return q, NEED
                v = W.BE64.unpack_from(b, r)[0]
                if b[r] != 0 or v & mask:
                    break
                extras.append(v)
                r += 8
            if len(extras) == 2:
                ent["page_size"], ent["addr"] = extras
            elif extras:
                v = extras[0]
                # One extra: the address when x-ignore-shared is validated, else a page size.
                ent["addr" if self.ignore_shared or not v or v & (v - 1) else "page_size"] = v
            lst.blocks.append(ent)
            lst.acc += used
            q = r
        if lst.acc != lst.total and lst.blocks:
            finding("warning", "ram_block_list", f"RAM block lengths add up to {lst.acc}, MEM_SIZE says "
                    f"{lst.total}", lst.offset)
        self._list = None
        self._end_list(sec, lst)
        return q, EOS

    def _end_list(self, sec: RamSection, lst: "_BlockList") -> None:
        sec.mem_size = lst.total
        sec.ram_blocks = lst.blocks
        self.ram_blocks = lst.blocks

    def abandon_list(self, sec: RamSection) -> None:
        """A gap or bad data ended the section inside the block list: keep what was read."""
        if self._list is not None:
            self._end_list(sec, self._list)
            self._list = None
        self.region = None

    def mapped_done(self, sec: RamSection, region: MappedRegion) -> None:
        """Count a walked mapped-ram region into ``sec``: present pages normal, absent pages zero."""
        self.flush(sec)
        self._add(sec, region.block, region.num_pages - region.present, region.present)
        self.region = None


class _BlockList:
    """A MEM_SIZE block list being parsed (with mapped-ram it spans the regions between entries)."""

    __slots__ = ("total", "offset", "acc", "blocks")

    def __init__(self, total: int, offset: int) -> None:
        self.total = total
        self.offset = offset
        self.acc = 0
        self.blocks: list[dict[str, Any]] = []
