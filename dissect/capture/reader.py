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
from typing import BinaryIO, Iterator, NamedTuple

from dissect.capture import formats as F
# the limits and the pcapng walk live in limits.py and pcapng_walk.py; their names stay importable from here
from dissect.capture.limits import _NS, _YEAR, CHUNK, MAX_RECORD, MAX_RESYNC, _size, refill  # noqa: F401
from dissect.capture.pcapng_walk import (_KNOWN_SKIPPED, _RESYNC_TYPES, PcapngResume, PcapngWalk,  # noqa: F401
                                         _Interface)
from dissect.capture.source import StreamSource
from dissect.common.findings import Finding


class RawPacket(NamedTuple):
    ts_ns: int
    linktype: int
    data: memoryview
    orig_len: int
    interface: int
    offset: int  # file offset of the record (pcap record header / pcapng block)


class CaptureReader(PcapngWalk):
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
                    got = refill(f, buf, i, base, CHUNK, keep)
                    if got:
                        buf, mv, base, i, n = got
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
                    # Never read more than the file holds: incl is untrusted. A body cut by the chunk;
                    # tests/test_capture_reader_chunks.py holds small chunks equal to one read.
                    got = refill(f, buf, i, base, min(max(CHUNK, end - n), max(size - f.tell(), 0)), keep)
                    if got:
                        buf, mv, base, i, n = got
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
