# SPDX-License-Identifier: GPL-2.0-only
"""Streaming pcap / pcapng readers (no scapy on the per-packet path).

Formats: pcap-savefile(5) / draft-ietf-opsawg-pcap (µs and ns magics, both
byte orders) and draft-ietf-opsawg-pcapng (several sections, several
interfaces each with its own link type, ``if_tsresol`` and ``if_tsoffset``;
EPB, SPB and the obsolete PB; every other block type is skipped).  Structs
come from :mod:`dissect.capture.formats`.

The file is read in large chunks; each packet's ``data`` is a memoryview
slice of an immutable chunk, so it stays valid after the reader moves on and
no per-packet copy is made.  Lengths read from the file are never used to
size an allocation: a record can only ever be as large as the bytes the file
actually holds, and records longer than :data:`MAX_RECORD` are treated as
corrupt.  Bad records become :class:`~dissect.common.findings.Finding`
objects with file offsets; the reader resynchronises on the next plausible
record and keeps going.

``RawPacket.interface`` is a file-wide interface number: pcapng interfaces
are numbered across sections in the order of their IDBs (so it indexes
:attr:`CaptureReader.linktypes`); a pcap has the single interface 0.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO, Iterator, NamedTuple

from dissect.capture import formats as F
from dissect.capture.source import StreamSource
from dissect.common.findings import Finding

#: Largest record (pcap) or block (pcapng) accepted; anything longer is corrupt.
#: Loopback captures hold frames of up to 256 KiB (snaplen 262144); 16 MiB
#: leaves room for GRO/TSO super-frames without trusting garbage lengths.
MAX_RECORD = 16 << 20
#: Read size.  Big reads keep the per-packet cost at a slice and an unpack.
CHUNK = 4 << 20
#: How far a resynchronisation scan looks before giving up on the file.
MAX_RESYNC = 64 << 20

_NS = 1_000_000_000
_YEAR = 86400 * 366


class RawPacket(NamedTuple):
    ts_ns: int
    linktype: int
    data: memoryview
    orig_len: int
    interface: int
    offset: int  # file offset of the record (pcap record header / pcapng block)


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


class CaptureReader:
    """Reader for one pcap or pcapng file.

    ``packets()`` streams :class:`RawPacket`; ``findings`` collects what was
    wrong with the file (filled while iterating); ``linktypes`` lists the link
    type of every interface seen so far (complete after iteration; for pcap
    available at once).
    """

    def __init__(self, path: str | os.PathLike | StreamSource) -> None:
        self.source: StreamSource | None = None
        if isinstance(path, StreamSource):
            # A pipe or a growing file (dissect.capture.source): walked by the
            # same code, its first bytes peeked, never mapped.
            self.source = path
            self.path = path.name
        else:
            self.path = os.fspath(path)
        self.findings: list[Finding] = []
        self.linktypes: list[int] = []
        self.snaplens: list[int] = []
        self.format: str | None = None
        self.packet_count = 0
        head = self._head(4)
        if head in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            self.format = "pcap"
            hdr = self._head(24)
            if len(hdr) == 24:
                bo = "<" if head in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
                _, _, _, _, _, snap, net = F.pcap_file_header(bo).unpack(hdr)
                self.linktypes.append(net & 0xFFFF)
                self.snaplens.append(snap)
        elif head == b"\x0a\x0d\x0d\x0a":
            self.format = "pcapng"

    def _head(self, n: int) -> bytes:
        if self.source is not None:
            return self.source.peek(n)
        with open(self.path, "rb") as f:
            return f.read(n)

    def _finding(self, severity: str, code: str, message: str, offset: int | None, **ctx) -> None:
        self.findings.append(Finding(severity, code, message, offset, ctx))  # type: ignore[arg-type]

    def packets(self) -> Iterator[RawPacket]:
        """The packets as :class:`RawPacket`."""
        new = tuple.__new__
        for t in self.records():
            yield new(RawPacket, t)

    def records(self, start: int | None = None, last_sec: int | None = None,
                prev_record: int | None = None, resume: PcapngResume | None = None) -> Iterator[tuple]:
        """The packets as plain tuples with :class:`RawPacket`'s fields (faster:
        building a NamedTuple per packet costs more than reading it).

        ``start`` (pcap only) resumes at the record at that file offset: the
        TCP layer's fused pcap loop hands over to this reader there when it
        meets anything unusual; ``last_sec`` is the timestamp (seconds) its
        plausibility window was centred on, ``prev_record`` the offset of the
        record before ``start``.  For pcapng, ``start`` with ``resume`` (both
        or neither) resumes at the block at that offset with the walker state
        the fused pcapng loop had reached."""
        if self.format == "pcap":
            return self._opened(self._pcap, start, last_sec, prev_record)
        if self.format == "pcapng":
            return self._opened(self._pcapng, start, resume)
        self._finding("error", "capture_unknown_format",
                      "not a pcap or pcapng file (magic not recognised)", 0)
        return iter(())

    def _opened(self, walk, *args):
        """The walker's generator over the opened file (no extra generator layer
        per packet: the walker closes the file when it finishes)."""
        if self.source is not None:
            return walk(self.source, *args)
        f = open(self.path, "rb", buffering=0)
        return walk(f, *args)

    # -- pcap -----------------------------------------------------------------

    def _pcap(self, f: BinaryIO, start: int | None = None, last_sec: int | None = None,
              prev_record: int | None = None) -> Iterator[tuple]:
        try:
            hdr = f.read(24)
            if len(hdr) < 24:
                self._finding("error", "pcap_truncated_header",
                              f"file ends inside the 24-byte pcap header ({len(hdr)} bytes)", 0)
                return
            bo, linktype, mult, frac_limit, zone_ns = pcap_params(hdr)
            unpack = F.pcap_record_header(bo).unpack_from
            size = _size(f)
            keep = getattr(f, "keep_from", None)  # a stream keeps what the buffer may seek back to
            # A record longer than the snap length is legal in practice (some
            # writers set snaplen 65535 yet store 64 KiB+ loopback frames);
            # only MAX_RECORD is a hard limit.
            max_rec = MAX_RECORD
            buf = b""
            mv = memoryview(buf)
            base = 24  # file offset of buf[0]
            if start is not None and start > 24:
                f.seek(start)
                base = start
            i = 0
            n = 0
            ns = _NS
            # Timestamps must stay within a year of the last good record's; the
            # window moves at every refill, not per packet (cheaper, as loose).
            lo_sec, hi_sec = 0, 0xFFFFFFFF
            prev_sec: int | None = None
            if last_sec is not None:
                prev_sec = last_sec
                lo_sec, hi_sec = last_sec - _YEAR, last_sec + _YEAR
            resynced = False
            prev_off = prev_record
            count = 0
            while True:
                if n - i < 16:
                    more = f.read(CHUNK)
                    if more:
                        buf = buf[i:] + more
                        base += i
                        i = 0
                        n = len(buf)
                        mv = memoryview(buf)
                        if keep is not None:
                            keep(base)
                        if count and not resynced:  # sec: the last record parsed, a plausible one
                            prev_sec = sec
                            lo_sec, hi_sec = sec - _YEAR, sec + _YEAR
                        resynced = False
                        continue
                    if n - i:
                        self._finding("error", "pcap_truncated_record",
                                      f"file ends inside a record header ({n - i} of 16 bytes)",
                                      base + i, missing=16 - (n - i))
                    break
                sec, frac, incl, orig = unpack(buf, i)
                if incl > max_rec or frac >= frac_limit or sec < lo_sec or sec > hi_sec:
                    # Corrupt header: find the next plausible record.
                    self._finding("error", "pcap_bad_record_header",
                                  f"implausible record header (incl_len {incl}, orig_len {orig}, "
                                  f"ts {sec}.{frac}); the previous record's length may be wrong; "
                                  "resynchronising", base + i, previous_record=prev_off)
                    pos = self._pcap_resync(f, base + i + 1, unpack, frac_limit, max_rec, prev_sec)
                    if pos is None:
                        break
                    f.seek(pos)
                    buf, mv, base, i, n = b"", memoryview(b""), pos, 0, 0
                    resynced = True  # `sec` is the bad header's: keep the old window
                    continue
                end = i + 16 + incl
                if end > n:
                    # Never read more than the file holds: incl is untrusted.
                    more = f.read(min(max(CHUNK, end - n), max(size - f.tell(), 0)))
                    if more:
                        buf = buf[i:] + more
                        base += i
                        i = 0
                        n = len(buf)
                        mv = memoryview(buf)
                        if keep is not None:
                            keep(base)
                        if count and not resynced:  # sec: the last record parsed, a plausible one
                            prev_sec = sec
                            lo_sec, hi_sec = sec - _YEAR, sec + _YEAR
                        resynced = False
                        continue
                    # File cut inside the packet data: hand out what there is,
                    # keeping orig_len, so the missing tail is a measurable gap.
                    have = n - i - 16
                    self._finding("error", "pcap_truncated_record",
                                  f"file ends inside a record: {have} of {incl} captured bytes present",
                                  base + i, missing=incl - have)
                    count += 1
                    yield ((sec * _NS + frac * mult) + zone_ns, linktype, mv[i + 16:n],
                                    max(orig, incl), 0, base + i)
                    break
                prev_off = base + i
                count += 1
                yield (sec * ns + frac * mult + zone_ns, linktype, mv[i + 16:end], orig, 0, prev_off)
                i = end
            self.packet_count = count
        finally:
            f.close()

    def _pcap_resync(self, f: BinaryIO, start: int, unpack, frac_limit: int, max_rec: int,
                     prev_sec: int | None) -> int | None:
        """Offset of the next record whose header and successor look valid, or None."""
        size = _size(f, start + MAX_RESYNC + MAX_RECORD + 32)
        limit = min(size, start + MAX_RESYNC)

        def plausible(h: bytes | memoryview, at: int) -> tuple[bool, int]:
            sec, frac, incl, orig = unpack(h, at)
            ok = (incl <= max_rec and frac < frac_limit and orig >= incl and incl > 0
                  and (prev_sec is None or prev_sec - 86400 <= sec <= prev_sec + 86400))
            return ok, incl

        pos = start
        while pos + 16 <= limit:
            f.seek(pos)
            window = f.read(min(CHUNK, limit - pos) + 16)
            last = len(window) - 16
            j = 0
            while j <= last:
                ok, incl = plausible(window, j)
                if ok:
                    nxt = pos + j + 16 + incl
                    if nxt == size:
                        return self._skipped(start - 1, pos + j)
                    if nxt + 16 <= size:
                        f.seek(nxt)
                        h2 = f.read(16)
                        if len(h2) == 16 and plausible(h2, 0)[0]:
                            return self._skipped(start - 1, pos + j)
                j += 1
            pos += max(last + 1, 1)
        self._finding("error", "pcap_resync_failed",
                      f"no valid record found in the {limit - start + 1} bytes after the bad header; "
                      "rest of the file ignored", start - 1, skipped=size - start + 1)
        return None

    def _skipped(self, bad: int, good: int) -> int:
        self._finding("error", "capture_bytes_skipped",
                      f"skipped {good - bad} bytes of the file ({bad}..{good}) to the next valid record",
                      bad, start=bad, end=good)
        return good

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
                    more = f.read(CHUNK)
                    if more:
                        buf = buf[i:] + more
                        base += i
                        i = 0
                        n = len(buf)
                        mv = memoryview(buf)
                        if keep is not None:
                            keep(base)
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
                    more = f.read(min(max(CHUNK, end - n), max(size - f.tell(), 0)))
                    if more:
                        buf = buf[i:] + more
                        base += i
                        i = 0
                        n = len(buf)
                        mv = memoryview(buf)
                        if keep is not None:
                            keep(base)
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


def _size(f, upto: int | None = None) -> int:
    """The file's size; for a stream, its length once it ended (read ahead to
    ``upto`` first, as a resynchronisation needs) or a size no offset reaches."""
    if isinstance(f, StreamSource):
        return f.size(upto)
    return os.fstat(f.fileno()).st_size


def pcap_params(hdr: bytes) -> tuple[str, int, int, int, int]:
    """From a 24-byte pcap file header: byte order, link type, ns per timestamp
    fraction unit, fraction limit, and the ``thiszone`` correction in ns."""
    bo = "<" if hdr[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    magic, _vmaj, _vmin, thiszone, _sig, _snaplen, network = F.pcap_file_header(bo).unpack(hdr)
    if magic == F.PCAP_MAGIC_NS:
        return bo, network & 0xFFFF, 1, _NS, thiszone * _NS
    return bo, network & 0xFFFF, 1000, 1_000_000, thiszone * _NS


def iter_packets(path: str | os.PathLike) -> Iterator[RawPacket]:
    """Stream the packets of a pcap or pcapng file (findings are dropped; use
    :class:`CaptureReader` to get them)."""
    return CaptureReader(path).packets()
