# SPDX-License-Identifier: GPL-2.0-only
"""The pcapng walk of :class:`dissect.capture.reader.CaptureReader` (draft-ietf-opsawg-pcapng:
sections, interfaces with their link type, ``if_tsresol`` and ``if_tsoffset``; EPB, SPB and
the obsolete PB; other blocks skipped), a base class of the reader.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, BinaryIO, Iterator, NamedTuple

from dissect.capture import formats as F
from dissect.capture.limits import _NS, CHUNK, MAX_RECORD, MAX_RESYNC, _size, refill
from dissect.capture.source import StreamSource

if TYPE_CHECKING:
    from dissect.capture.reader import RawPacket


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    units: int  # timestamp units per second (if_tsresol)
    offset_ns: int  # if_tsoffset, in ns


class PcapngResume(NamedTuple):
    """The pcapng walker's state at a block boundary: what a fused block loop
    (:func:`dissect.capture.fastpath_ng.feed_pcapng`) hands over with the
    offset of the block it did not take."""
    bo: str  # byte order of the current section
    section_ifaces: list  # section-local interface id -> file-wide number
    ifaces: list  # file-wide _Interface list
    last_ts: int  # timestamp of the last packet (Simple Packet Blocks get it)
    spb_noted: bool  # pcapng_spb_no_timestamp already reported
    count: int  # packets handed out so far


class PcapngWalk:
    """The pcapng walker and its block helpers (state and findings are the reader's)."""

    # -- pcapng ---------------------------------------------------------------

    def _pcapng(self, f: BinaryIO, start: int | None = None,
                resume: PcapngResume | None = None) -> Iterator[RawPacket]:
        try:
            size = _size(f)
            keep = getattr(f, "keep_from", None)
            bo = "<"
            bh = F.pcapng_block_header(bo)
            u32 = struct.Struct(bo + "I")
            epb = F.pcapng_epb_body(bo)
            section_ifaces: list[int] = []  # section-local id -> file-wide interface number
            ifaces: list[_Interface] = []  # file-wide
            buf = b""
            mv = memoryview(buf)
            base = 0
            i = 0
            n = 0
            last_ts = 0
            spb_noted = False
            count = 0
            unknown_types: set[int] = set()
            if start is not None and resume is not None:
                # unknown_types stays empty: the fused loop hands over at the first
                # unknown block type, so none has been reported yet.
                bo, section_ifaces, ifaces, last_ts, spb_noted, count = resume
                bh = F.pcapng_block_header(bo)
                u32 = struct.Struct(bo + "I")
                epb = F.pcapng_epb_body(bo)
                f.seek(start)
                base = start
            while True:
                if n - i < 12:
                    got = refill(f, buf, i, base, CHUNK, keep)
                    if got:
                        buf, mv, base, i, n = got
                        continue
                    if n - i:
                        self._finding("error", "pcapng_truncated_block",
                                      f"file ends inside a block header ({n - i} bytes)", base + i)
                    break
                if buf[i:i + 4] == b"\x0a\x0d\x0d\x0a":
                    magic = buf[i + 8:i + 12]
                    if magic == b"\x4d\x3c\x2b\x1a":
                        bo = "<"
                    elif magic == b"\x1a\x2b\x3c\x4d":
                        bo = ">"
                    else:
                        self._finding("error", "pcapng_bad_byte_order_magic",
                                      f"section header with byte-order magic {bytes(magic).hex()}", base + i)
                        pos = self._pcapng_resync(f, base + i + 4, size, bo)
                        if pos is None:
                            break
                        f.seek(pos)
                        buf, mv, base, i, n = b"", memoryview(b""), pos, 0, 0
                        continue
                    bh = F.pcapng_block_header(bo)
                    u32 = struct.Struct(bo + "I")
                    epb = F.pcapng_epb_body(bo)
                    section_ifaces = []
                btype, total = bh.unpack_from(buf, i)
                if total < 12 or total & 3 or total > MAX_RECORD:
                    self._finding("error", "pcapng_bad_block_length",
                                  f"block type 0x{btype:x} with total length {total}; resynchronising", base + i)
                    pos = self._pcapng_resync(f, base + i + 4, size, bo)
                    if pos is None:
                        break
                    f.seek(pos)
                    buf, mv, base, i, n = b"", memoryview(b""), pos, 0, 0
                    continue
                end = i + total
                if end > n:
                    # a body cut by the chunk; tests/test_capture_reader_chunks.py holds small chunks equal to one read
                    got = refill(f, buf, i, base, min(max(CHUNK, end - n), max(size - f.tell(), 0)), keep)
                    if got:
                        buf, mv, base, i, n = got
                        continue
                    # Cut inside this block.
                    self._finding("error", "pcapng_truncated_block",
                                  f"file ends inside a block of type 0x{btype:x}: {n - i} of {total} bytes present",
                                  base + i, missing=total - (n - i))
                    if btype in (F.PCAPNG_EPB, F.PCAPNG_OPB) and n - i >= 28:
                        pkt = self._pcapng_packet(btype, bo, buf, mv, i, n, ifaces, section_ifaces, base,
                                                  cut=True)
                        if pkt is not None:
                            count += 1
                            yield pkt
                    break
                if u32.unpack_from(buf, end - 4)[0] != total:
                    self._finding("error", "pcapng_block_length_mismatch",
                                  f"block type 0x{btype:x}: leading length {total} differs from trailing "
                                  f"length {u32.unpack_from(buf, end - 4)[0]}; resynchronising", base + i)
                    pos = self._pcapng_resync(f, base + i + 4, size, bo)
                    if pos is None:
                        break
                    f.seek(pos)
                    buf, mv, base, i, n = b"", memoryview(b""), pos, 0, 0
                    continue
                if btype == F.PCAPNG_EPB:
                    # Hot path, inlined.
                    iface, hi, lo, cap, orig = epb.unpack_from(buf, i + 8)
                    if iface < len(section_ifaces) and cap <= total - 32:
                        g = section_ifaces[iface]
                        itf = ifaces[g]
                        ts = (hi << 32) | lo
                        ts_ns = (ts if itf.units == _NS else ts * _NS // itf.units) + itf.offset_ns
                        last_ts = ts_ns
                        count += 1
                        yield (ts_ns, itf.linktype, mv[i + 28:i + 28 + cap], orig, g, base + i)
                    else:
                        pkt = self._pcapng_packet(btype, bo, buf, mv, i, end, ifaces, section_ifaces, base)
                        if pkt is not None:
                            last_ts = pkt[0]
                            count += 1
                            yield pkt
                elif btype == F.PCAPNG_SHB:
                    if total < 28:
                        self._finding("error", "pcapng_bad_block_length",
                                      f"section header block of {total} bytes (minimum 28)", base + i)
                elif btype == F.PCAPNG_IDB:
                    if total < 20:
                        self._finding("error", "pcapng_bad_block_length",
                                      f"interface description block of {total} bytes (minimum 20)", base + i)
                    else:
                        self._add_interface(bo, mv[i:end], base + i, ifaces, section_ifaces)
                elif btype == F.PCAPNG_OPB:
                    pkt = self._pcapng_packet(btype, bo, buf, mv, i, end, ifaces, section_ifaces, base)
                    if pkt is not None:
                        last_ts = pkt[0]
                        count += 1
                        yield pkt
                elif btype == F.PCAPNG_SPB:
                    if not section_ifaces:
                        self._finding("error", "pcapng_no_interface",
                                      "simple packet block before any interface description block", base + i)
                    elif total < 16:
                        self._finding("error", "pcapng_bad_block_length",
                                      f"simple packet block of {total} bytes", base + i)
                    else:
                        g = section_ifaces[0]
                        itf = ifaces[g]
                        orig = F.pcapng_spb_body(bo).unpack_from(buf, i + 8)[0]
                        cap = min(orig, total - 16)
                        if itf.snaplen:
                            cap = min(cap, itf.snaplen)
                        if not spb_noted:
                            spb_noted = True
                            self._note_spb(base + i)
                        count += 1
                        yield (last_ts, itf.linktype, mv[i + 12:i + 12 + cap], orig, g, base + i)
                elif btype not in _KNOWN_SKIPPED and btype not in unknown_types:
                    unknown_types.add(btype)
                    self._finding("info", "pcapng_unknown_block",
                                  f"skipped block type 0x{btype:08x} (first of its type)", base + i)
                i = end
            self.packet_count = count
        finally:
            f.close()

    def _add_interface(self, bo: str, blk: memoryview, off: int, ifaces: list[_Interface],
                       section_ifaces: list[int]) -> _Interface:
        """Register the Interface Description Block ``blk`` (at file offset ``off``,
        at least 20 bytes, lengths checked) as the next interface of the section."""
        itf = self._idb(bo, blk, off)
        section_ifaces.append(len(ifaces))
        ifaces.append(itf)
        self.linktypes.append(itf.linktype)
        self.snaplens.append(itf.snaplen)
        return itf

    def _note_spb(self, off: int) -> None:
        self._finding("info", "pcapng_spb_no_timestamp",
                      "simple packet blocks carry no timestamp; they get the timestamp "
                      "of the preceding packet", off)

    def _idb(self, bo: str, blk: memoryview, off: int) -> _Interface:
        linktype, _res, snaplen = F.pcapng_idb_body(bo).unpack_from(blk, 8)
        units = 1_000_000
        offset_ns = 0
        oh = F.pcapng_option_header(bo)
        p = 16
        end = len(blk) - 4
        while p + 4 <= end:
            code, length = oh.unpack_from(blk, p)
            if code == F.OPT_ENDOFOPT:
                break
            if p + 4 + length > end:
                self._finding("warning", "pcapng_bad_option",
                              f"interface option {code} of length {length} runs past its block", off + p)
                break
            if code == F.IF_TSRESOL and length >= 1:
                v = blk[p + 4]
                if (v & 0x7F) > 63 or (not v & 0x80 and v > 18):
                    self._finding("warning", "pcapng_bad_tsresol",
                                  f"if_tsresol {v} out of range; using microseconds", off + p)
                else:
                    units = F.tsresol_units_per_second(v)
            elif code == F.IF_TSOFFSET and length >= 8:
                offset_ns = struct.unpack_from(bo + "q", blk, p + 4)[0] * _NS
            p += 4 + F.pad4(length)
        return _Interface(linktype, snaplen, units, offset_ns)

    def _pcapng_packet(self, btype: int, bo: str, buf: bytes, mv: memoryview, i: int, end: int,
                       ifaces: list[_Interface], section_ifaces: list[int], base: int,
                       cut: bool = False) -> tuple | None:
        """EPB/OPB slow path: validated, also used for a block ``cut`` by the end of the file
        (whose missing bytes the caller has reported)."""
        if btype == F.PCAPNG_EPB:
            iface, hi, lo, cap, orig = F.pcapng_epb_body(bo).unpack_from(buf, i + 8)
        else:
            iface, _drops, hi, lo, cap, orig = F.pcapng_opb_body(bo).unpack_from(buf, i + 8)
        if iface >= len(section_ifaces):
            self._finding("error", "pcapng_no_interface",
                          f"packet block for interface {iface}, but the section declares "
                          f"{len(section_ifaces)}", base + i, interface=iface)
            return None
        room = end - (i + 28) - (0 if cut else 4)
        if cut and cap > room:
            orig = max(orig, cap)
            cap = max(room, 0)
        elif cap > room:
            self._finding("error", "pcapng_bad_captured_length",
                          f"captured length {cap} exceeds the {max(room, 0)} bytes the block holds",
                          base + i, missing=cap - max(room, 0))
            orig = max(orig, cap)
            cap = max(room, 0)
        g = section_ifaces[iface]
        itf = ifaces[g]
        ts = (hi << 32) | lo
        ts_ns = (ts if itf.units == _NS else ts * _NS // itf.units) + itf.offset_ns
        return (ts_ns, itf.linktype, mv[i + 28:i + 28 + cap], orig, g, base + i)

    def _pcapng_resync(self, f: BinaryIO, start: int, size: int, bo: str) -> int | None:
        """Next offset holding a consistent block (a known type whose trailing length
        matches).  Every byte offset is tried: inserted or deleted bytes break
        the 4-byte alignment of everything after them."""
        bh = F.pcapng_block_header(bo)
        u32 = struct.Struct(bo + "I")
        bad = start - 4
        if isinstance(f, StreamSource):
            size = _size(f, bad + MAX_RESYNC + MAX_RECORD + 16)
        pos = bad + 4
        limit = min(size, bad + MAX_RESYNC)
        while pos + 12 <= limit:
            f.seek(pos)
            window = f.read(min(CHUNK, limit - pos) + 12)
            last = len(window) - 12
            j = 0
            while j <= last:
                btype, total = bh.unpack_from(window, j)
                if window[j:j + 4] == b"\x0a\x0d\x0d\x0a":
                    return self._skipped(bad, pos + j)
                if (btype in _RESYNC_TYPES and 12 <= total <= MAX_RECORD and not total & 3
                        and pos + j + total <= size):
                    f.seek(pos + j + total - 4)
                    tail = f.read(4)
                    if len(tail) == 4 and u32.unpack(tail)[0] == total:
                        return self._skipped(bad, pos + j)
                j += 1
            pos += last + 1
        self._finding("error", "pcapng_resync_failed",
                      "no valid block found after the bad one; rest of the file ignored",
                      bad, skipped=size - bad)
        return None


#: Block types skipped without a finding: NRB, ISB, DSB, systemd journal export,
#: custom blocks.  (pcapng draft, "Block Type Codes".)
_KNOWN_SKIPPED = frozenset({0x00000004, 0x00000005, 0x0000000A, 0x00000009, 0x00000BAD, 0x40000BAD})
_RESYNC_TYPES = frozenset({F.PCAPNG_IDB, F.PCAPNG_EPB, F.PCAPNG_SPB, F.PCAPNG_OPB, 0x4, 0x5, 0xA})
