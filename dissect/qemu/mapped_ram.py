# SPDX-License-Identifier: GPL-2.0-only
"""mapped-ram (``file:`` URI + ``mapped-ram`` capability, QEMU >= 9.0): the per-RAMBlock
header, dirty bitmap and page region of a migration file.

Layout (QEMU's migration/ram.c, ``mapped_ram_setup_ramblock`` / ``parse_ramblock_mapped_ram``;
docs/qemu-stream.md):

* In the START section's MEM_SIZE block list, each block's entry (name, ``used_length``,
  optional ``mr->addr``) is followed by a packed ``MappedRamHeader``: be32 ``version``
  (1; the reader refuses > 1), be64 ``page_size`` (the target page size: sizes the
  bitmap), be64 ``bitmap_offset``, be64 ``pages_offset``, 28 bytes.
* ``bitmap_offset`` = file offset right after the header; the bitmap is
  ``BITS_TO_LONGS(used_length / page_size) * sizeof(long)`` bytes, an array of host
  ``unsigned long`` (little-endian 64-bit on the hosts QEMU migrates from, so bit ``i``
  is bit ``i % 8`` of byte ``i / 8``), written at the end of the migration
  (``ram_save_file_bmap``): bit set = the page's data is in the file.
* ``pages_offset`` = ``ROUND_UP(bitmap_offset + bitmap size, 1 MiB)``
  (``MAPPED_RAM_FILE_OFFSET_ALIGNMENT``; the reader only checks page alignment); page
  ``i`` lives at ``pages_offset + i * TARGET_PAGE_SIZE`` (written in place by
  ``qemu_put_buffer_at``; zero pages are never written and clear their bit).
* The stream continues at ``pages_offset + used_length`` with the next block's entry.
* QEMU 11 marks blocks skipped by x-ignore-shared with both offsets 0 (no bitmap, no pages).
"""
from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

MAPPED_RAM_HDR_VERSION = 1
#: MappedRamHeader (packed, big-endian): version, page_size, bitmap_offset, pages_offset.
MAPPED_RAM_HEADER = struct.Struct(">IQQQ")
MAPPED_RAM_FILE_OFFSET_ALIGNMENT = 0x100000
#: Largest bitmap taken from the untrusted header: 256 MiB of bitmap = 8 TiB of 4 KiB pages.
MAX_BITMAP = 256 << 20
#: Bitmap bytes examined at a time (bounds the temporary bit arrays).
BITMAP_STEP = 1 << 20


def bitmap_size(used_length: int, page_size: int) -> int:
    """``BITS_TO_LONGS(num_pages) * sizeof(unsigned long)`` with 64-bit longs."""
    return -(-(used_length // page_size) // 64) * 8


@dataclass
class MappedRegion:
    """One RAMBlock's mapped-ram header and, once walked, what its bitmap says."""

    block: str
    offset: int                      # stream offset of the header
    version: int
    page_size: int                   # from the header (sizes the bitmap)
    bitmap_offset: int
    pages_offset: int
    used_length: int
    target_page_size: int            # locates pages (TARGET_PAGE_BITS, as the reader does)
    num_pages: int = 0
    bitmap_size: int = 0
    region_end: int = 0
    present: int = 0
    tail_bits: int = 0
    bitmap: bytearray = field(default_factory=bytearray)
    run_starts: array = field(default_factory=lambda: array("q"))
    run_lengths: array = field(default_factory=lambda: array("q"))
    entry: dict[str, Any] | None = None

    def header(self) -> dict[str, Any]:
        return {"version": self.version, "page_size": self.page_size, "bitmap_offset": self.bitmap_offset,
                "pages_offset": self.pages_offset, "bitmap_size": self.bitmap_size}

    def finish(self) -> None:
        """Count the set bits of the collected bitmap and find the runs of present pages."""
        self.present, self.tail_bits = _runs(bytes(self.bitmap), self.num_pages, self.run_starts,
                                             self.run_lengths)
        self.bitmap = bytearray()
        if self.entry is not None:
            self.entry["mapped_ram"].update(pages=self.present, runs=len(self.run_starts))

    def units(self, flow: int | None, section_id: int) -> list[dict[str, Any]]:
        """One ``mapped_ram_pages`` unit per run of present pages (location in RAM and file)."""
        ps = self.target_page_size
        return [{"kind": "mapped_ram_pages", "flow": flow, "section_id": section_id, "ramblock": self.block,
                 "offset": s * ps, "file_offset": self.pages_offset + s * ps, "pages": n, "length": n * ps}
                for s, n in zip(self.run_starts, self.run_lengths)]


def read_header(b: Any, r: int, base: int, used_length: int, *, page_size: int = 4096,
                limit: int | None = None, strict: bool = False,
                finding: Callable[..., None] | None = None, block: str = "") -> MappedRegion | None:
    """The MappedRamHeader at ``b[r:r + 28]`` (stream offset ``base + r``).

    ``strict``: only recognise (no findings): version 1, a power-of-two page size, the
    bitmap right after the header and a page-aligned page region after it.  Otherwise
    problems are findings (error ``mapped_ram_header``) and None means the block's region
    cannot be located.
    """
    version, hps, boff, poff = MAPPED_RAM_HEADER.unpack_from(b, r)
    off = base + r
    hdr_end = off + MAPPED_RAM_HEADER.size
    good_ps = 512 <= hps <= 1 << 24 and not hps & (hps - 1)
    if strict:
        if version != MAPPED_RAM_HDR_VERSION or not good_ps or boff != hdr_end:
            return None
        if poff % hps or poff < boff + bitmap_size(used_length, hps):
            return None
        return MappedRegion(block, off, version, hps, boff, poff, used_length, page_size)

    def bad(msg: str) -> None:
        if finding is not None:
            finding("error", "mapped_ram_header", f"ramblock {block}: {msg}", off, ramblock=block)

    if version > MAPPED_RAM_HDR_VERSION or version == 0:
        bad(f"mapped-ram header version {version} (QEMU reads version 1)")
    region = MappedRegion(block, off, version, hps, boff, poff, used_length, page_size)
    if boff == 0 and poff == 0:
        region.region_end = hdr_end  # a block skipped by x-ignore-shared (QEMU 11): nothing stored
        return region
    if not good_ps:
        bad(f"page_size {hps} is not a power of two page size")
        return None
    if hps != page_size and finding is not None:
        finding("warning", "page_size_mismatch", f"ramblock {block}: mapped-ram page_size {hps}, target page "
                f"size {page_size}", off, ramblock=block)
    region.num_pages = used_length // hps
    region.bitmap_size = bitmap_size(used_length, hps)
    if poff % page_size:
        bad(f"pages_offset {poff} is not page aligned (QEMU refuses the block)")
        return None
    if region.bitmap_size > MAX_BITMAP:
        bad(f"a bitmap of {region.bitmap_size} bytes for used_length {used_length}")
        return None
    if boff < hdr_end or boff + region.bitmap_size > poff:
        bad(f"bitmap at {boff}..{boff + region.bitmap_size} is not between the header end {hdr_end} and "
            f"pages_offset {poff}")
        return None
    if limit is not None and boff + region.bitmap_size > limit:
        if finding is not None:
            finding("error", "mapped_ram_truncated", f"ramblock {block}: bitmap at {boff}..{boff + region.bitmap_size} "
                    f"runs past the end of the file ({limit})", off, ramblock=block)
        return None
    # A region running past the end of the file is reported when the stream ends there
    # (mapped_ram_truncated): the bitmap is still read if it is present.
    region.region_end = poff + used_length
    return region


def _runs(bitmap: bytes, num_pages: int, starts: array, lengths: array) -> tuple[int, int]:
    """Set bits among the first ``num_pages`` bits (LSB first): count, runs appended, tail bits."""
    count = 0
    carry = -1  # start of a run still open at the end of the previous step
    nbytes = -(-num_pages // 8)
    for s in range(0, nbytes, BITMAP_STEP):
        chunk = np.frombuffer(bitmap, np.uint8, count=min(BITMAP_STEP, nbytes - s), offset=s)
        bits = np.unpackbits(chunk, bitorder="little")
        first = s * 8
        if first + len(bits) > num_pages:
            bits = bits[:num_pages - first]
        count += int(bits.sum())
        d = np.diff(bits.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
        up = np.flatnonzero(d == 1) + first
        down = np.flatnonzero(d == -1) + first
        last = first + len(bits)
        pairs = list(zip(up.tolist(), down.tolist()))
        if carry >= 0:
            if pairs and pairs[0][0] == first:
                pairs[0] = (carry, pairs[0][1])
            else:
                starts.append(carry)
                lengths.append(first - carry)
            carry = -1
        for u, e in pairs:
            if e == last and last < num_pages:
                carry = u  # the run may continue in the next step
                continue
            starts.append(u)
            lengths.append(e - u)
    tail = np.frombuffer(bitmap, np.uint8)[nbytes:] if len(bitmap) > nbytes else np.zeros(0, np.uint8)
    tail_bits = int(np.unpackbits(tail).sum())
    if num_pages % 8 and nbytes <= len(bitmap):
        tail_bits += int(bitmap[nbytes - 1] >> (num_pages % 8)).bit_count()
    return count, tail_bits
