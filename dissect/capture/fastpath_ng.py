# SPDX-License-Identifier: GPL-2.0-only
"""The fused, mapped block loop for pcapng files (draft-ietf-opsawg-pcapng).

The pcapng twin of :func:`dissect.capture.fastpath.feed_pcap`: the file is
mapped, its blocks are walked in place and the common Enhanced Packet Block
goes straight into :mod:`dissect.capture.fastpath`'s inlined TCP path (one
unpack from the link layer's EtherType to the TCP flags, a dict lookup, a
few attribute updates) with no per-packet tuple or generator step.

Taken here, exactly as :meth:`CaptureReader._pcapng <dissect.capture.reader.CaptureReader>`
takes them when nothing is wrong: Section Header Blocks (byte order per
section; a new one starts a new section whose interfaces are new), Interface
Description Blocks (per-interface link type, snaplen, ``if_tsresol`` in
both its 10^-n and 2^-n forms, ``if_tsoffset``; parsed by the reader's own
code, so its option findings are the reader's), Enhanced Packet Blocks,
Simple Packet Blocks, and the block types the reader skips silently (ISB,
NRB, DSB, ...).  Packets of link types without an inlined path go through
``Reassembler.packet`` one by one, as :func:`~dissect.capture.fastpath.feed`
sends them.

Anything else — a block of an unknown type or the obsolete Packet Block, a
block length that is implausible or disagrees with the trailing copy, a
block cut by the end of the file, a packet for an undeclared interface or
longer than its block, a bad byte-order magic — hands over to
``CaptureReader.records(start=..., resume=...)`` and ``feed`` from that
block on, with the walker state reached (byte order, interfaces, last
timestamp, packet count), so findings, resynchronisation and results are
those of the generic path.  tests/test_capture_pcapng_fast.py holds both
paths equal.
"""
from __future__ import annotations

import mmap
import os
import struct
from typing import TYPE_CHECKING

from dissect.capture import fastpath as FP
from dissect.capture import formats as F
from dissect.capture.reader import _KNOWN_SKIPPED, MAX_RECORD, CaptureReader, PcapngResume

if TYPE_CHECKING:
    from dissect.capture.tcp import Reassembler

_NS = 1_000_000_000
_SHB_MAGIC = b"\x0a\x0d\x0d\x0a"
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"
# Block lengths the plain-EPB test accepts: a multiple of 4 below the largest
# power of two <= MAX_RECORD (one AND; MAX_RECORD itself goes to the generic
# walker, which is never wrong, only slower).
_BAD_TOTAL = 0xFFFFFFFF & ~((1 << (MAX_RECORD.bit_length() - 1)) - 4)


def _structs(bo: str) -> tuple:
    """Per byte order: block header + EPB body up to the captured length in one
    unpack (28 bytes; original_len not needed), block header, u32 (trailing
    length), SPB body."""
    epb = F.pcapng_block_header(bo).format + F.pcapng_epb_body(bo).format[1:-1] + "4x"
    return (struct.Struct(epb).unpack_from,
            F.pcapng_block_header(bo).unpack_from, struct.Struct(bo + "I").unpack_from,
            F.pcapng_spb_body(bo).unpack_from)


def _timebase(units: int, offset_ns: int) -> tuple[int, int, int]:
    """(multiplier or 0, units, offset): ``ts * NS // units`` is ``ts * (NS // units)``
    exactly when ``units`` divides 10^9 (µs, ns, ms, 2^-n for n <= 9)."""
    return (_NS // units if units <= _NS and not _NS % units else 0), units, offset_ns


def feed_pcapng(r: Reassembler, reader: CaptureReader) -> None:
    """Reassemble a whole pcapng file: the block walk fused with the inlined TCP
    path; hands over to the generic reader + :func:`~dissect.capture.fastpath.feed`
    at the first unusual block (see the module docstring)."""
    if reader.format != "pcapng":
        FP.feed(r, reader.records())
        return
    with open(reader.path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # empty file, or not mappable
            FP.feed(r, reader.records())
            return
        if FP._ADVISE:
            mm.madvise(mmap.MADV_SEQUENTIAL)
        buf = mm
        mv = memoryview(mm)
        dropped = 0
        release_at = FP._DROP
        table = r.table
        slow = r.packet
        history = r.history
        from_be = int.from_bytes
        fast4 = FP._FAST_RAW
        fast6 = FP._FAST6
        fastspec = FP._FAST
        maxrec = MAX_RECORD
        bad_total = _BAD_TOTAL
        # raw IPv4 addresses+ports -> (flow, direction); a cache of ``table`` emptied
        # whenever the generic path ran (it may add or replace flows).
        raw_tab: dict[bytes, tuple] = {}
        bo = "<"
        hdr, bh, u32, spb = _structs(bo)
        ifaces: list = []  # file-wide _Interface list (the reader's)
        section_ifaces: list[int] = []  # section-local id -> file-wide number
        sec: list[tuple] = []  # section-local id -> (number, link type, multiplier, units, offset)
        nsec = 0
        cur = -1  # section-local interface the cached fields below are for
        g = lt = mult = units = offns = need = ipo = hbase = 0
        phi = -1
        unpack4 = unpack6 = None
        spb_noted = False
        ts = 0  # the last packet's timestamp (Simple Packet Blocks get it)
        count = 0
        packets0 = r.packets  # every packet goes to the generic path (which counts it) or is counted here
        handover: int | None = None
        i = 0
        lim = size - 28  # a block starting here or before holds a full EPB header
        while True:
            if i > release_at and FP._ADVISE:
                # Pages behind us leave the resident set (views into them re-read
                # the file if touched): RSS does not grow with the capture.
                cut = (i - FP._KEEP) & ~(mmap.PAGESIZE - 1)
                if cut > dropped:
                    mm.madvise(mmap.MADV_DONTNEED, dropped, cut - dropped)
                    dropped = cut
                release_at = i + FP._DROP
            if i <= lim:
                btype, total, iface, hi, lo, cap = hdr(buf, i)
                end = i + total
                # The reader's own plain-EPB test (its hot path), nothing looser.
                if (btype == 6 and iface < nsec and cap <= total - 32 and not total & bad_total
                        and end <= size and u32(buf, end - 4)[0] == total):
                    if iface != cur:
                        cur = iface
                        g, lt, mult, units, offns = sec[iface]
                        phi = -1
                        spec = fastspec.get(lt)
                        need, ipo = (spec[1], spec[2]) if spec else (1 << 62, 0)
                        unpack4 = fast4.get(lt)
                        unpack6 = fast6.get(lt)
                    if mult:  # the high word's share computed once per 2^32 units
                        if hi != phi:
                            phi = hi
                            hbase = (hi << 32) * mult + offns
                        ts = hbase + lo * mult
                    else:
                        ts = (hi << 32 | lo) * _NS // units + offns
                    count += 1
                    blk = i
                    i = end
                    j = blk + 28
                    de = j + cap
                    if cap < need:
                        slow(ts, lt, mv[j:de], blk)
                        raw_tab.clear()
                        continue
                    et, vihl, tlen, frag, proto, key, seq, ack, doff, flags = unpack4(buf, j)  # type: ignore[misc]
                    if et == 0x0800:
                        if vihl != 0x45 or proto != 6 or frag & 0x3FFF or flags & 0x07 or doff < 0x50:
                            slow(ts, lt, mv[j:de], blk)
                            raw_tab.clear()
                            continue
                        hl = (doff >> 4) << 2
                        plen = tlen - 20 - hl
                        p = j + ipo + 20 + hl
                        hit = raw_tab.get(key)
                        if hit is None:
                            hit = table.get((key[:4], from_be(key[8:10], "big"), key[4:8], from_be(key[10:], "big")))
                            if hit is not None:
                                raw_tab[key] = hit
                    elif et == 0x86DD and cap >= ipo + 60:
                        plen, nh, src, dst, sport, dport, seq, ack, doff, flags = unpack6(buf, j)  # type: ignore[misc]
                        if nh != 6 or flags & 0x07 or doff < 0x50 or not plen:
                            slow(ts, lt, mv[j:de], blk)
                            raw_tab.clear()
                            continue
                        hl = (doff >> 4) << 2
                        plen -= hl
                        p = j + ipo + 40 + hl
                        hit = table.get((src, sport, dst, dport))
                    else:
                        slow(ts, lt, mv[j:de], blk)
                        raw_tab.clear()
                        continue
                    if hit is None:
                        slow(ts, lt, mv[j:de], blk)
                        raw_tab.clear()
                        continue
                    # fastpath.feed()'s in-order delivery, copied on purpose (hot loop).  Held equal to the
                    # generic path by tests/test_capture_pcapng_fast.py::test_real_captures_as_pcapng and
                    # ::test_mutations_equal_generic_path.
                    fl, d = hit
                    if plen:
                        pe = p + plen
                        if plen < 0 or seq != d.expect or not d.fast or de < pe:
                            slow(ts, lt, mv[j:de], blk)
                            raw_tab.clear()
                            continue
                        st = fl.stats
                        st.packets += 1
                        st.last_ts_ns = ts
                        if flags & 0x10:
                            d.ack_out = ack
                        off = d.nxt
                        e = off + plen
                        payload = mv[p:pe]
                        if history and (k := off % history) + plen > history:
                            r._deliver(d, off, payload, ts)  # the ring wraps: generic copy
                        else:
                            d.delivered += plen
                            if history:
                                d.ring[k:k + plen] = payload  # type: ignore[index]
                                d.ring_len = e
                            c = d.consumer
                            if c is not None:
                                sk = d.skip
                                if sk >= plen:
                                    d.skip = sk - plen  # the consumer does not need these bytes (its hint)
                                else:
                                    d.skip = c.data(off, payload, ts) or 0
                        d.nxt = e
                        d.expect = (seq + plen) & 0xFFFFFFFF
                    else:
                        st = fl.stats
                        st.packets += 1
                        st.last_ts_ns = ts
                        if flags & 0x10:
                            d.ack_out = ack
                    continue
            # -- any other block, or the file's tail ------------------------------
            if i + 12 > size:
                if i < size:
                    handover = i  # the reader reports the cut block header
                break
            if buf[i:i + 4] == _SHB_MAGIC:
                bom = buf[i + 8:i + 12]
                nbo = "<" if bom == _BOM_LE else ">" if bom == _BOM_BE else None
                if nbo is None:
                    handover = i
                    break
                nst = _structs(nbo)
                _, total = nst[1](buf, i)
                end = i + total
                if total < 28 or total & 3 or total > maxrec or end > size or nst[2](buf, end - 4)[0] != total:
                    handover = i
                    break
                bo = nbo
                hdr, bh, u32, spb = nst
                section_ifaces = []
                sec = []
                nsec = 0
                cur = -1
                i = end
                continue
            btype, total = bh(buf, i)
            end = i + total
            if total < 12 or total & 3 or total > maxrec or end > size or u32(buf, end - 4)[0] != total:
                handover = i
                break
            if btype == F.PCAPNG_IDB and total >= 20:
                itf = reader._add_interface(bo, mv[i:end], i, ifaces, section_ifaces)
                sec.append((section_ifaces[-1], itf.linktype, *_timebase(itf.units, itf.offset_ns)))
                nsec += 1
            elif btype == F.PCAPNG_SPB and nsec and total >= 16:
                gi = section_ifaces[0]
                itf = ifaces[gi]
                sorig = spb(buf, i + 8)[0]
                scap = min(sorig, total - 16)
                if itf.snaplen:
                    scap = min(scap, itf.snaplen)
                if not spb_noted:
                    spb_noted = True
                    reader._note_spb(i)
                count += 1
                slow(ts, itf.linktype, mv[i + 12:i + 12 + scap], i)
                raw_tab.clear()
            elif btype not in _KNOWN_SKIPPED:
                # EPB the plain test refused, obsolete PB, unknown type, short IDB/SPB.
                handover = i
                break
            i = end
        r.packets = packets0 + count
        if handover is None:
            reader.packet_count = count
    if handover is not None:
        FP.feed(r, reader.records(start=handover,
                                  resume=PcapngResume(bo, section_ifaces, ifaces, ts, spb_noted, count)))
