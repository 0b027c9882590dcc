# SPDX-License-Identifier: GPL-2.0-only
"""Streaming TCP reassembly per direction (qemu-migration-stream.md §1.3).

Each TCP direction is turned into a byte stream whose offset 0 is the byte
after the SYN (or, when the capture starts after the SYN, the first payload
byte seen).  Bytes reach the direction's :class:`StreamConsumer` as soon as
they are contiguous; data that arrives ahead of a hole waits in a reorder
buffer bounded by ``window`` bytes.  A hole becomes a gap (``consumer.gap``,
exact byte range, end exclusive) when

* the reorder buffer overflows (the hole is declared lost),
* the segment that left the hole was cut by the snap length and the data
  after the hole has arrived (a retransmission would be cut the same way),
* the capture ends: holes before buffered data, and the missing tail up to
  the highest byte the capture proves was sent (a segment's IP length, a
  FIN's sequence number, or the peer's ACK).

Retransmitted bytes are dropped and counted; where they overlap data already
held (a ring of the last ``history`` delivered bytes, and the reorder
buffer) they are compared, and bytes that differ are a finding (the first
copy wins, as on the receiving host).  Sequence numbers are unwrapped to
64-bit stream offsets, so streams larger than 4 GiB and ISNs near 2^32 work.

Decisions where the spec is silent are in docs/capture.md; the result types and
the per-direction state are in :mod:`dissect.capture.tcp_state`.
"""
from __future__ import annotations

import heapq
import os
from typing import Iterable

from dissect.capture import link as L
from dissect.capture.flows import CLASSIFY_BYTES, classify
from dissect.capture.reader import CaptureReader, RawPacket
from dissect.capture.tcp_state import (_M32, ConsumerFactory, Direction, FlowInfo, FlowStats,
                                       ReassemblyResult, StreamConsumer, _Dir, _Flow)
from dissect.common.findings import Finding

__all__ = ["Reassembler", "reassemble", "WINDOW", "HISTORY", "Direction", "StreamConsumer", "FlowInfo",
           "FlowStats", "ReassemblyResult", "ConsumerFactory"]

_SYN, _FIN, _RST, _ACK = L.TCP_SYN, L.TCP_FIN, L.TCP_RST, L.TCP_ACK

#: Default reorder window per direction (bytes buffered ahead of a hole).
WINDOW = 8 << 20
#: Default size of the ring of delivered bytes used to check retransmissions.
HISTORY = 512 << 10


class Reassembler:
    """Feed packets with :meth:`packet`, then call :meth:`close`."""

    def __init__(self, consumer_factory: ConsumerFactory | None = None, *, window: int = WINDOW,
                 history: int = HISTORY, check_overlaps: bool = True) -> None:
        self.factory = consumer_factory
        self.window = window
        self.history = history if check_overlaps else 0
        self.flows: list[_Flow] = []
        # (src, sport, dst, dport) -> (flow, direction of that packet)
        self.table: dict[tuple, tuple[_Flow, _Dir]] = {}
        self.findings: list[Finding] = []
        self.notes: dict[str, list[int]] = {}  # note -> [count, first file offset]
        self.packets = 0

    # -- input --------------------------------------------------------------

    def packet(self, ts_ns: int, linktype: int, data: bytes | memoryview, file_offset: int | None = None) -> None:
        """One packet through the generic path."""
        d = self._packet(ts_ns, linktype, data, file_offset)
        if d is not None:
            # Refresh the inlined path's view of this direction.
            d.fast = (d.state == 1 and d.base is not None and not d.pending and d.flow.client_fixed
                      and (not self.history or (d.ring is not None and len(d.ring) == self.history)))
            if d.base is not None:
                d.expect = (d.base + d.nxt) & _M32

    def _packet(self, ts_ns: int, linktype: int, data: bytes | memoryview,
                file_offset: int | None) -> "_Dir | None":
        self.packets += 1
        seg = L.parse_tcp(linktype, data)
        if seg is None:
            return
        if seg.__class__ is str:
            rec = self.notes.get(seg)  # type: ignore[arg-type]
            if rec is None:
                self.notes[seg] = [1, file_offset]  # type: ignore[index]
            else:
                rec[0] += 1
            return
        ver, src, dst, sport, dport, seq, ack, flags, p, plen = seg  # type: ignore[misc]
        hit = self.table.get((src, sport, dst, dport))
        if hit is None or (flags & _SYN and not flags & _ACK and self._is_new_connection(hit, seq)):
            hit = self._new_flow(ver, src, sport, dst, dport, ts_ns, flags)
        fl, d = hit
        st = fl.stats
        st.packets += 1
        st.last_ts_ns = ts_ns
        if flags & _ACK:
            d.ack_out = ack
        if flags & (_SYN | _FIN | _RST):
            if flags & _SYN:
                st.syn_seen = True
                if d.base is None:
                    d.base = (seq + 1) & _M32
                seq = (seq + 1) & _M32
            if flags & _RST:
                st.rst_seen = True
            if flags & _FIN:
                st.fin_seen = True
        if not plen:
            if flags & _FIN and d.base is not None:
                d.fin_off = d.unwrap(seq)
                if d.fin_off > d.max_end:
                    d.max_end = d.fin_off
            if (flags & _RST or (d.fin_off is not None and d.peer.fin_off is not None)) and d.ring is not None:
                # Connection over: retransmissions are no longer expected, so the
                # rings go (a capture of many connections keeps little per flow).
                d.ring = d.peer.ring = None
                d.ring_from, d.peer.ring_from = d.ring_len, d.peer.ring_len
            return d
        if not fl.client_fixed:
            fl.client_fixed = True
            if d is fl.s2c:  # the first payload came from the side we took for the server
                self._swap(fl)
        if d.base is None:
            d.base = seq
        off = d.unwrap(seq)
        end_decl = off + plen
        if end_decl > d.max_end:
            d.max_end = end_decl
        if flags & _FIN and end_decl > (d.fin_off or 0):
            d.fin_off = end_decl
        cap = len(data) - p
        if cap > plen:
            cap = plen
        if cap <= 0:
            if plen:
                d.trunc_hole = (off, end_decl) if off == d.nxt else d.trunc_hole
                self._note("tcp_segment_truncated", file_offset)
            return d
        payload = memoryview(data)[p:p + cap] if data.__class__ is not memoryview else data[p:p + cap]
        if cap < plen:
            self._note("tcp_segment_truncated", file_offset)
        nxt = d.nxt
        if off == nxt and not d.pending:
            self._deliver(d, off, payload, ts_ns)
            d.nxt = off + cap
            if cap < plen:
                d.trunc_hole = (off + cap, end_decl)
            return d
        self._segment(d, off, payload, plen, ts_ns, file_offset)
        return d

    def feed(self, records: Iterable[tuple]) -> None:
        """Feed ``(ts_ns, linktype, data, orig_len, interface, file_offset)`` tuples
        (:meth:`CaptureReader.records` or :class:`RawPacket`); the common
        packets take the inlined path of :mod:`dissect.capture.fastpath`."""
        from dissect.capture import fastpath

        fastpath.feed(self, records)

    def feed_pcap(self, reader: CaptureReader) -> None:
        """Reassemble a whole pcap file with the fused record walk of
        :mod:`dissect.capture.fastpath`."""
        from dissect.capture import fastpath

        fastpath.feed_pcap(self, reader)

    def feed_pcapng(self, reader: CaptureReader) -> None:
        """Reassemble a whole pcapng file with the fused block walk of
        :mod:`dissect.capture.fastpath_ng`."""
        from dissect.capture import fastpath_ng

        fastpath_ng.feed_pcapng(self, reader)

    def _note(self, code: str, file_offset: int | None) -> None:
        rec = self.notes.get(code)
        if rec is None:
            self.notes[code] = [1, file_offset]  # type: ignore[list-item]
        else:
            rec[0] += 1

    def _is_new_connection(self, hit: tuple[_Flow, _Dir], seq: int) -> bool:
        """A bare SYN on a known 4-tuple starts a new connection unless it repeats the ISN."""
        fl, d = hit
        if d.base is None:
            return False
        if ((seq + 1) & _M32) == d.base and d.nxt == 0 and not d.pending:
            return False  # retransmitted SYN
        return True

    def _new_flow(self, ver: int, src: bytes, sport: int, dst: bytes, dport: int, ts: int,
                  flags: int) -> tuple[_Flow, _Dir]:
        fl = _Flow(len(self.flows), ts)
        fl.ip_version = ver
        a = L.format_endpoint(ver, src, sport)
        b = L.format_endpoint(ver, dst, dport)
        if flags & _SYN and flags & _ACK:  # SYN-ACK first: the receiver opened the connection
            a, b = b, a
            fwd, rev = fl.s2c, fl.c2s
            fl.client_fixed = True
        else:
            fwd, rev = fl.c2s, fl.s2c
            fl.client_fixed = bool(flags & _SYN)
        fl.stats.client = fl.info.client = a
        fl.stats.server = fl.info.server = b
        self.flows.append(fl)
        self.table[(src, sport, dst, dport)] = (fl, fwd)
        self.table[(dst, dport, src, sport)] = (fl, rev)
        return fl, fwd

    def _swap(self, fl: _Flow) -> None:
        """Re-orient a flow whose client was guessed from a payload-less packet."""
        fl.c2s, fl.s2c = fl.s2c, fl.c2s
        fl.c2s.name, fl.s2c.name = "c2s", "s2c"
        st = fl.stats
        st.client, st.server = st.server, st.client
        fl.info.client, fl.info.server = st.client, st.server
        # The table maps each 4-tuple to its direction object, which kept its
        # packets; only the names moved.

    # -- ordering -------------------------------------------------------------

    def _segment(self, d: _Dir, off: int, payload: memoryview, plen: int, ts: int,
                 file_offset: int | None) -> None:
        cap = len(payload)
        end = off + cap
        nxt = d.nxt
        if end <= nxt:
            self._retransmitted(d, off, payload, file_offset)
            return
        if off < nxt:
            if off < 0 and nxt == 0 and not d.flow.stats.syn_seen:
                d.before_start += -off
            else:
                self._retransmitted(d, off, payload[:nxt - off], file_offset)
            payload = payload[nxt - off:]
            off = nxt
        if off == nxt:
            self._deliver(d, off, payload, ts)
            d.nxt = end
            if cap < plen:
                d.trunc_hole = (end, end + (plen - cap))
            if d.pending:
                self._drain(d)
            return
        # Ahead of a hole.
        th = d.trunc_hole
        if th is not None and th[0] == nxt and off >= th[1]:
            # The hole was left by a segment the snap length cut: it will not be filled.
            self._gap(d, nxt, th[1])
            d.trunc_hole = None
            if off == d.nxt:
                self._segment(d, off, payload, plen, ts, file_offset)
                return
        # A held segment that is itself cut leaves a hole found by overflow or close.
        self._hold(d, off, payload, ts, file_offset)
        while d.pending_bytes > self.window and d.pending:
            first = d.heap[0]
            self.findings.append(Finding(
                "warning", "tcp_reorder_window_overflow",
                f"{d.pending_bytes} bytes buffered ahead of a hole at stream offset {d.nxt}; "
                f"declaring {d.nxt}..{first} lost", d.nxt,
                {"flow": d.flow.stats.flow, "direction": d.name, "file_offset": file_offset}))
            self._gap(d, d.nxt, first)
            self._drain(d)

    def _hold(self, d: _Dir, off: int, payload: memoryview, ts: int, file_offset: int | None) -> None:
        old = d.pending.get(off)
        if old is not None:
            held = old[0]
            n = min(len(held), len(payload))
            self._compare(d, off, held[:n], payload[:n], file_offset)
            d.flow.stats.retransmitted_bytes += n
            if len(payload) > len(held):
                self._hold(d, off + len(held), payload[len(held):], ts, file_offset)
            return
        d.pending[off] = (bytes(payload), ts, file_offset)
        heapq.heappush(d.heap, off)
        d.pending_bytes += len(payload)

    def _drain(self, d: _Dir) -> None:
        heap, pending = d.heap, d.pending
        while heap:
            off = heap[0]
            if off > d.nxt:
                th = d.trunc_hole
                if th is not None and th[0] == d.nxt and off >= th[1]:
                    d.trunc_hole = None
                    self._gap(d, d.nxt, th[1])
                    continue
                return
            heapq.heappop(heap)
            data, ts, fo = pending.pop(off)
            d.pending_bytes -= len(data)
            end = off + len(data)
            if end <= d.nxt:
                self._retransmitted(d, off, memoryview(data), fo)
                continue
            mv = memoryview(data)
            if off < d.nxt:
                self._retransmitted(d, off, mv[:d.nxt - off], fo)
                mv = mv[d.nxt - off:]
            self._deliver(d, d.nxt, mv, ts)
            d.nxt = end

    def _retransmitted(self, d: _Dir, off: int, payload: memoryview, file_offset: int | None) -> None:
        n = len(payload)
        d.flow.stats.retransmitted_bytes += n
        ring = d.ring
        if ring is None or n == 0:
            return
        size = len(ring)
        lo = max(off, d.ring_from, d.ring_len - size)
        hi = min(off + n, d.ring_len)
        if lo >= hi:
            return
        # The ring holds stream offsets [ring_len - size, ring_len) at index offset % size.
        held = bytearray()
        a = lo
        while a < hi:
            i = a % size
            k = min(hi - a, size - i)
            held += ring[i:i + k]
            a += k
        self._compare(d, lo, held, payload[lo - off:hi - off], file_offset)

    def _compare(self, d: _Dir, off: int, held: bytes | bytearray | memoryview,
                 new: bytes | memoryview, file_offset: int | None) -> None:
        if held == new:
            return
        hb, nb = bytes(held), bytes(new)
        first = next(i for i in range(len(hb)) if hb[i] != nb[i])
        last = next(i for i in range(len(hb) - 1, -1, -1) if hb[i] != nb[i])
        diff = sum(1 for x, y in zip(hb, nb) if x != y)
        d.flow.stats.overlap_mismatch_bytes += diff
        self.findings.append(Finding(
            "error", "tcp_overlap_mismatch",
            f"{diff} bytes of a retransmitted/overlapping segment differ from the data already held "
            f"(stream offsets {off + first}..{off + last + 1}); the first copy is kept", off + first,
            {"flow": d.flow.stats.flow, "direction": d.name, "start": off + first, "end": off + last + 1,
             "file_offset": file_offset}))

    # -- output ---------------------------------------------------------------

    def _grow_ring(self, d: _Dir, end: int) -> memoryview:
        """Give ``d`` a ring big enough for stream offsets up to ``end`` (powers of
        two up to ``history``), keeping what the old one held: a short flow
        never costs the full ring, so thousands of flows stay cheap."""
        size = 4096
        while size < end and size < self.history:
            size <<= 1
        size = min(size, self.history)
        new = memoryview(bytearray(size))  # mv slice assignment is faster than bytearray's
        old = d.ring
        if old is not None:
            osz = len(old)
            a = max(d.ring_from, d.ring_len - osz, d.ring_len - size)
            while a < d.ring_len:
                i, j = a % osz, a % size
                k = min(d.ring_len - a, osz - i, size - j)
                new[j:j + k] = old[i:i + k]
                a += k
        d.ring = new
        return new

    def _deliver(self, d: _Dir, off: int, data: memoryview, ts: int) -> None:
        n = len(data)
        d.delivered += n
        ring = d.ring
        if self.history:
            if ring is None or (len(ring) < self.history and off + n > len(ring)):
                ring = self._grow_ring(d, off + n)
            size = len(ring)
            if n >= size:
                tail = data[n - size:]
                i = (off + n - size) % size
                ring[i:] = tail[:size - i]
                ring[:i] = tail[size - i:]
            else:
                i = off % size
                if i + n <= size:
                    ring[i:i + n] = data
                else:
                    ring[i:] = data[:size - i]
                    ring[:n - (size - i)] = data[size - i:]
            d.ring_len = off + n
        if d.state == 1:
            c = d.consumer
            if c is not None:
                if d.skip and d.skip >= n:  # inside the consumer's skip hint
                    d.skip -= n
                else:
                    d.skip = c.data(off, data, ts) or 0
            return
        if d.state == 2:
            return
        # First bytes of this direction: gather enough to classify the flow.
        if not d.head and n >= CLASSIFY_BYTES:
            self._open(d, bytes(data[:CLASSIFY_BYTES]), off)
            if d.consumer is not None:
                d.skip = d.consumer.data(off, data, ts) or 0
            return
        if not d.head:
            d.head_off, d.head_ts = off, ts
        d.head += data
        if len(d.head) >= CLASSIFY_BYTES:
            self._flush_head(d)

    @staticmethod
    def _unskip(d: _Dir) -> None:
        """Tell the consumer how far the stream went while its skip hint was honoured
        (an empty ``data`` at the next offset), before a gap or the end."""
        if d.skip:
            d.skip = 0
            d.consumer.data(d.nxt, b"", d.flow.stats.last_ts_ns)  # type: ignore[union-attr]

    def _flush_head(self, d: _Dir) -> None:
        head = bytes(d.head)
        d.head = bytearray()
        self._open(d, head, d.head_off)
        if d.consumer is not None and head:
            d.skip = d.consumer.data(d.head_off, head, d.head_ts) or 0

    def _open(self, d: _Dir, first: bytes, off: int) -> None:
        fl = d.flow
        if d.name == "c2s" and off == 0 and first:
            fl.stats.role = fl.info.role = classify(first)
            fl.stats.head = first[:CLASSIFY_BYTES]
        d.state = 1
        fl.info.syn_seen = fl.stats.syn_seen
        if self.factory is not None:
            d.consumer = self.factory(fl.info, d.name)  # type: ignore[arg-type]

    def _gap(self, d: _Dir, start: int, end: int) -> None:
        if end <= start:
            return
        if d.state == 0:
            if d.head:
                self._flush_head(d)
            else:
                self._open(d, b"", start)
        st = d.flow.stats
        st.gaps.append({"direction": d.name, "start": start, "end": end})
        self.findings.append(Finding(
            "error", "tcp_gap", f"flow {st.flow} {d.name}: bytes {start}..{end} ({end - start}) "
                                "missing from the capture", start,
            {"flow": st.flow, "direction": d.name, "start": start, "end": end}))
        if d.consumer is not None:
            self._unskip(d)
            d.consumer.gap(start, end)
        d.nxt = end
        d.trunc_hole = None
        d.ring_from = end  # ring positions of the missing bytes hold older data

    def close(self) -> ReassemblyResult:
        """Flush every direction: declare the remaining holes, close consumers."""
        for fl in self.flows:
            for d in (fl.c2s, fl.s2c):
                while d.pending:
                    self._gap(d, d.nxt, d.heap[0])
                    self._drain(d)
                tail = d.max_end
                if d.fin_off is not None and d.fin_off > tail:
                    tail = d.fin_off
                if d.peer.ack_out is not None and d.base is not None:
                    acked = d.unwrap(d.peer.ack_out)
                    if d.fin_off is not None and acked == d.fin_off + 1:
                        acked -= 1  # the FIN's sequence number is no data
                    if acked > tail:
                        tail = acked  # the peer acknowledged bytes the capture never showed
                if tail > d.nxt and d.base is not None:
                    self._gap(d, d.nxt, tail)
                if d.head:
                    self._flush_head(d)
                if d.consumer is not None:
                    self._unskip(d)
                    d.consumer.close()
                d.state = 2
            fl.stats.c2s_bytes = fl.c2s.delivered
            fl.stats.s2c_bytes = fl.s2c.delivered
            if fl.c2s.before_start or fl.s2c.before_start:
                self.findings.append(Finding(
                    "warning", "tcp_data_before_capture_start",
                    f"flow {fl.stats.flow}: {fl.c2s.before_start + fl.s2c.before_start} bytes precede the "
                    "first segment seen (no SYN captured) and were not delivered", None,
                    {"flow": fl.stats.flow}))
        for code, (count, first) in self.notes.items():
            self.findings.append(Finding(*_NOTE_FINDINGS.get(code, ("warning", code)), _note_message(code, count),
                                         first, {"count": count}))
        return ReassemblyResult([fl.stats for fl in self.flows], list(self.findings), self.packets)


_NOTE_FINDINGS = {
    L.NOTE_TRUNCATED: ("warning", "packet_truncated_header"),
    L.NOTE_FRAGMENT: ("warning", "ip_fragment_not_reassembled"),
    L.NOTE_BAD_IP: ("warning", "ip_bad_header"),
    L.NOTE_BAD_TCP: ("warning", "tcp_bad_header"),
    L.NOTE_LINKTYPE: ("warning", "unsupported_linktype"),
    "tcp_segment_truncated": ("info", "tcp_segment_truncated"),
}

_NOTE_TEXT = {
    L.NOTE_TRUNCATED: "packets too short for their link/IP/TCP headers (snap length?) were skipped",
    L.NOTE_FRAGMENT: "IP fragments were seen; fragments are not reassembled, their TCP data is a gap",
    L.NOTE_BAD_IP: "packets with an invalid IP header were skipped",
    L.NOTE_BAD_TCP: "packets with an invalid TCP header were skipped",
    L.NOTE_LINKTYPE: "packets of a link type migtrace does not decode were skipped",
    "tcp_segment_truncated": "TCP segments cut by the snap length; their missing bytes are gaps",
}


def _note_message(code: str, count: int) -> str:
    return f"{count} packet(s): {_NOTE_TEXT.get(code, code)} (offset: first such record)"


def reassemble(path: str | os.PathLike | CaptureReader | Iterable[RawPacket], consumer_factory: ConsumerFactory | None = None,
               *, window: int = WINDOW, history: int = HISTORY,
               check_overlaps: bool = True) -> ReassemblyResult:
    """Reassemble every TCP flow of a capture file, of a :class:`CaptureReader`
    (one over a pipe or a growing file included) or of an iterable of packets.

    ``consumer_factory(flow, direction)`` is called when a direction first
    has data; it returns the direction's :class:`StreamConsumer` or None to
    ignore it.  The result lists the flows in order of their first packet and
    the reader's findings followed by the reassembly's.
    """
    r = Reassembler(consumer_factory, window=window, history=history, check_overlaps=check_overlaps)
    if isinstance(path, (str, os.PathLike, CaptureReader)):
        reader = path if isinstance(path, CaptureReader) else CaptureReader(path)
        if reader.source is not None:
            # A pipe or a growing file: the generic record walk (no map), whose
            # packets take fastpath.feed's inlined path as they arrive.
            r.feed(reader.records())
        elif reader.format == "pcap":
            r.feed_pcap(reader)
        elif reader.format == "pcapng":
            r.feed_pcapng(reader)
        else:
            r.feed(reader.records())
        res = r.close()
        res.findings[:0] = reader.findings
        res.linktypes = list(reader.linktypes)
        return res
    r.feed(path)
    return r.close()
