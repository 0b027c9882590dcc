# SPDX-License-Identifier: GPL-2.0-only
"""The inlined paths of :class:`dissect.capture.tcp.Reassembler`.

A capture of millions of packets is decoded in Python, so the per-packet
work is what sets the speed: here the common packet — in-order data or a
pure ACK of a known flow over Ethernet / Linux cooked (v1, v2) IPv4 with a
20-byte header or IPv6 without extension headers — is handled with one
struct unpack from the link layer's EtherType to the TCP flags, a dict
lookup and a few attribute updates.  Everything else goes through
``Reassembler.packet`` (the generic, per-packet path of tcp.py), and for
pcap files the record walk of the reader is fused in as well, handing over
to ``CaptureReader.records(start=...)`` at the first unusual record.
tests/test_capture_reassembly.py checks that these paths and the generic
one give identical streams, flow statistics and findings.
"""
from __future__ import annotations

import mmap
import os
import struct
from typing import TYPE_CHECKING, Iterable

from dissect.capture import formats as F
from dissect.capture.reader import CHUNK, MAX_RECORD, CaptureReader, pcap_params

if TYPE_CHECKING:
    from dissect.capture.tcp import Reassembler

# madvise is there on Linux/BSD; without it the map is used as is (RSS then
# includes the file pages read).  _DROP: mapped bytes kept resident behind the
# record being read before they are released.
_ADVISE = hasattr(mmap.mmap, "madvise") and hasattr(mmap, "MADV_DONTNEED") and hasattr(mmap, "MADV_SEQUENTIAL")
_DROP = 16 << 20
_KEEP = 1 << 20  # released only this far behind the record being read

# Link types of the inlined path: (unpack_from, bytes needed, IP header offset).
# One big-endian struct from the link layer's EtherType to the TCP flags:
# EtherType, IPv4 version/IHL, total length, flags/fragment offset, protocol,
# source, destination (IHL 5 only), then sport, dport, seq, ack, data offset, flags.
_FAST = {
    lt: (struct.Struct("!" + (f"{et_at}x" if et_at else "") + "H" + (f"{ip - et_at - 2}x" if ip - et_at - 2 else "")
                       + "BxH2xHxB2x4s4sHHIIBB").unpack_from, ip + 40, ip)
    for lt, et_at, ip in ((F.LINKTYPE_ETHERNET, 12, 14), (F.LINKTYPE_LINUX_SLL, 14, 16),
                          (F.LINKTYPE_LINUX_SLL2, 0, 20))
}

# The same with the IPv4 addresses and ports as one 12-byte string (IHL 5: source,
# destination, sport, dport are contiguous): feed_pcap looks flows up by it, which
# spares building and hashing a 4-tuple per packet.
_FAST_RAW = {
    lt: struct.Struct("!" + (f"{et_at}x" if et_at else "") + "H" + (f"{ip - et_at - 2}x" if ip - et_at - 2 else "")
                      + "BxH2xHxB2x12sIIBB").unpack_from
    for lt, et_at, ip in ((F.LINKTYPE_ETHERNET, 12, 14), (F.LINKTYPE_LINUX_SLL, 14, 16),
                          (F.LINKTYPE_LINUX_SLL2, 0, 20))
}

# The same for IPv6 (no extension headers): payload length, next header,
# source, destination, then the TCP fields.
_FAST6 = {
    lt: struct.Struct("!" + f"{ip + 4}x" + "HBx16s16sHHIIBB").unpack_from
    for lt, ip in ((F.LINKTYPE_ETHERNET, 14), (F.LINKTYPE_LINUX_SLL, 16), (F.LINKTYPE_LINUX_SLL2, 20))
}


def feed(r: Reassembler, records: Iterable[tuple]) -> None:
    """Feed ``(ts_ns, linktype, data, orig_len, interface, file_offset)`` tuples
    (:meth:`CaptureReader.records` or :class:`RawPacket`).

    In-order data and pure ACKs of known Ethernet/Linux-cooked flows (IPv4
    with a 20-byte header, IPv6 without extension headers) take an inlined path; every other packet goes through :meth:`packet`.
    tests/test_capture_reassembly.py checks both paths give the same result.
    """
    table = r.table
    slow = r.packet
    history = r.history
    fast = _FAST
    n = 0
    # As in feed_pcap: IPv4 flows by their raw address/port bytes, a cache of
    # ``table`` emptied whenever the generic path ran.
    raw_tab: dict[bytes, tuple] = {}
    from_be = int.from_bytes
    last_lt = spec = unpack_raw = None
    for rec in records:
        ts, lt, data, _orig, _iface, foff = rec
        if lt != last_lt:
            last_lt = lt
            spec = fast.get(lt)
            unpack_raw = _FAST_RAW.get(lt)
        if spec is None or len(data) < spec[1]:
            slow(ts, lt, data, foff)
            raw_tab.clear()
            continue
        et, vihl, total, frag, proto, key, seq, ack, doff, flags = unpack_raw(data, 0)  # type: ignore[misc]
        if et == 0x0800:
            if vihl != 0x45 or proto != 6 or frag & 0x3FFF or flags & 0x07 or doff < 0x50:
                slow(ts, lt, data, foff)
                raw_tab.clear()
                continue
            hl = (doff >> 4) << 2
            plen = total - 20 - hl
            p = spec[2] + 20 + hl
            hit = raw_tab.get(key)
            if hit is None:
                hit = table.get((key[:4], from_be(key[8:10], "big"), key[4:8], from_be(key[10:], "big")))
                if hit is not None:
                    raw_tab[key] = hit
        elif et == 0x86DD and len(data) >= spec[2] + 60:
            # IPv6 without extension headers, TCP right after the 40-byte header.
            plen, nh, src, dst, sport, dport, seq, ack, doff, flags = _FAST6[lt](data, 0)
            if nh != 6 or flags & 0x07 or doff < 0x50 or not plen:
                slow(ts, lt, data, foff)
                raw_tab.clear()
                continue
            hl = (doff >> 4) << 2
            plen -= hl
            p = spec[2] + 40 + hl
            hit = table.get((src, sport, dst, dport))
        else:
            slow(ts, lt, data, foff)
            raw_tab.clear()
            continue
        if hit is None:
            slow(ts, lt, data, foff)
            raw_tab.clear()
            continue
        # The in-order delivery below is copied, deliberately (hot loop, no call per packet), into
        # feed_pcap and fastpath_ng.feed_pcapng.  Held equal to the generic Reassembler.packet by
        # tests/test_capture_reassembly.py::test_fast_path_equals_per_packet_path.
        fl, d = hit
        if plen:
            if plen < 0 or seq != d.expect or not d.fast or len(data) < p + plen:
                slow(ts, lt, data, foff)
                raw_tab.clear()
                continue
            n += 1
            st = fl.stats
            st.packets += 1
            st.last_ts_ns = ts
            if flags & 0x10:
                d.ack_out = ack
            off = d.nxt
            e = off + plen
            payload = data[p:p + plen]
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
            n += 1
            st = fl.stats
            st.packets += 1
            st.last_ts_ns = ts
            if flags & 0x10:
                d.ack_out = ack
    r.packets += n

def feed_pcap(r: Reassembler, reader: CaptureReader) -> None:
    """Reassemble a whole pcap file: the record walk fused with :meth:`feed`'s
    inlined path (no per-packet tuple or generator step).

    Only the common case is handled here: a record that looks implausible,
    a file that ends inside a record, a link type without an inlined path
    or a non-zero ``thiszone`` hands over to ``reader.records(start=...)``
    and :meth:`feed` from that record on, so findings and results are
    those of the generic path (tests/test_capture_reassembly.py checks).
    """
    from dissect.capture.reader import CHUNK, MAX_RECORD, pcap_params

    with open(reader.path, "rb", buffering=0) as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            feed(r, reader.records())
            return
        bo, lt, mult, frac_limit, zone_ns = pcap_params(hdr)
        spec = _FAST.get(lt)
        if spec is None or zone_ns:
            feed(r, reader.records())
            return
        _, need, ipo = spec
        unpack4 = _FAST_RAW[lt]
        unpack6 = _FAST6[lt]
        # raw IPv4 addresses+ports -> (flow, direction); a cache of ``table`` emptied
        # whenever the generic path ran (it may add or replace flows).
        raw_tab: dict[bytes, tuple] = {}
        from_be = int.from_bytes
        psec = -1
        sns = 0
        rec_unpack = F.pcap_record_header(bo).unpack_from
        size = os.fstat(f.fileno()).st_size
        try:
            # The file is mapped, not read: no copy into 4 MiB chunks and no chunk
            # joins; payload views stay valid (the map lives while they do).
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            feed(r, reader.records())
            return
        if _ADVISE:
            mm.madvise(mmap.MADV_SEQUENTIAL)
        dropped = 0
        table = r.table
        slow = r.packet
        history = r.history
        ns = 1_000_000_000
        year = 86400 * 366
        lo_sec, hi_sec = 0, 0xFFFFFFFF
        buf = mm
        mv = memoryview(mm)
        # i: file offset of the next record; n: end of the bytes the generic reader
        # would hold at this point (it reads CHUNK at a time and moves its
        # timestamp plausibility window at every read: mirrored for equal findings).
        i = n = 24
        count = 0
        packets0 = r.packets  # every record goes to the generic path (which counts it) or is counted here
        sec = 0
        handover: int | None = None
        centre: int | None = None  # the plausibility window's centre, handed over too
        prev_rec: int | None = None
        while True:
            if n - i < 16:
                if n >= size:
                    if n - i:
                        handover = i
                    break
                n = n + CHUNK if n + CHUNK < size else size
                if count:
                    centre = sec
                    lo_sec, hi_sec = sec - year, sec + year
                if _ADVISE and i - dropped > _DROP:
                    # Pages behind us leave the resident set (views into them re-read
                    # the file if touched): RSS does not grow with the capture.
                    cut = (i - _KEEP) & ~(mmap.PAGESIZE - 1)
                    if cut > dropped:
                        mm.madvise(mmap.MADV_DONTNEED, dropped, cut - dropped)
                        dropped = cut
                continue
            sec, frac, incl, _orig = rec_unpack(buf, i)
            if incl > MAX_RECORD or frac >= frac_limit or sec < lo_sec or sec > hi_sec:
                handover = i
                break
            j = i + 16
            end = j + incl
            if end > n:
                more = min(max(CHUNK, end - n), max(size - n, 0))
                if not more:
                    handover = i
                    break
                n += more
                if count:  # as the reader does: the window follows the record being read
                    centre = sec
                    lo_sec, hi_sec = sec - year, sec + year
                if _ADVISE and i - dropped > _DROP:
                    cut = (i - _KEEP) & ~(mmap.PAGESIZE - 1)
                    if cut > dropped:
                        mm.madvise(mmap.MADV_DONTNEED, dropped, cut - dropped)
                        dropped = cut
                continue
            count += 1
            prev_rec = i
            if sec != psec:
                psec = sec
                sns = sec * ns
            ts = sns + frac * mult
            if incl < need:
                slow(ts, lt, mv[j:end], i)
                raw_tab.clear()
                i = end
                continue
            et, vihl, total, frag, proto, key, seq, ack, doff, flags = unpack4(buf, j)
            if et == 0x0800:
                if vihl != 0x45 or proto != 6 or frag & 0x3FFF or flags & 0x07 or doff < 0x50:
                    slow(ts, lt, mv[j:end], i)
                    raw_tab.clear()
                    i = end
                    continue
                hl = (doff >> 4) << 2
                plen = total - 20 - hl
                p = j + ipo + 20 + hl
                hit = raw_tab.get(key)
                if hit is None:
                    hit = table.get((key[:4], from_be(key[8:10], "big"), key[4:8], from_be(key[10:], "big")))
                    if hit is not None:
                        raw_tab[key] = hit
            elif et == 0x86DD and incl >= ipo + 60:
                plen, nh, src, dst, sport, dport, seq, ack, doff, flags = unpack6(buf, j)
                if nh != 6 or flags & 0x07 or doff < 0x50 or not plen:
                    slow(ts, lt, mv[j:end], i)
                    raw_tab.clear()
                    i = end
                    continue
                hl = (doff >> 4) << 2
                plen -= hl
                p = j + ipo + 40 + hl
                hit = table.get((src, sport, dst, dport))
            else:
                slow(ts, lt, mv[j:end], i)
                raw_tab.clear()
                i = end
                continue
            if hit is None:
                slow(ts, lt, mv[j:end], i)
                raw_tab.clear()
                i = end
                continue
            # feed()'s in-order delivery, copied on purpose (hot loop).  Held equal to the generic path
            # by tests/test_capture_reassembly.py::test_fused_pcap_loop_equals_generic_path (also
            # ::test_fused_pcap_loop_hands_over_on_bad_input, ::test_fused_pcap_loop_small_chunks_and_page_release).
            fl, d = hit
            if plen:
                pe = p + plen
                if plen < 0 or seq != d.expect or not d.fast or end < pe:
                    slow(ts, lt, mv[j:end], i)
                    raw_tab.clear()
                    i = end
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
            i = end
        r.packets = packets0 + count
    if handover is not None:
        feed(r, reader.records(start=handover, last_sec=centre, prev_record=prev_rec))
