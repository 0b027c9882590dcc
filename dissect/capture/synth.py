# SPDX-License-Identifier: GPL-2.0-only
"""Generated TCP captures: handshake, MSS segmentation, ACKs, FIN (RFC 9293).

:func:`write_tcp_capture` turns application writes into the packets a
capture on the wire would hold, with correct sequence and acknowledgement
numbers and valid IPv4 header and TCP checksums, so that tshark and
:mod:`dissect.capture.tcp` both accept it.  Flows are interleaved by
timestamp, and writes may come from a generator: a multi-gigabyte capture
is produced without holding it in memory.  Generated captures are never
"real" (traces/README.md says which files are which).
"""
from __future__ import annotations

import heapq
import ipaddress
import os
import struct
from dataclasses import dataclass
from typing import Iterable, Iterator

from dissect.capture import formats as F
from dissect.capture import link as L
from dissect.capture.writer import PcapngWriter, PcapWriter

Write = tuple[int, str, bytes]  # (ts_ns, "c2s" | "s2c", data)


@dataclass
class SynthFlow:
    """One connection: endpoints ``"ip:port"`` (IPv6 as ``"[addr]:port"``)
    and its application writes in timestamp order."""
    client: str
    server: str
    writes: Iterable[Write]
    isn_client: int = 0x1000
    isn_server: int = 0x8000
    handshake: bool = True
    fin: bool = True
    #: Spacing of the segments of one write (ns).
    segment_interval_ns: int = 1000
    #: The receiver acknowledges every this many segments (and each write's last).
    ack_every: int = 2


def _endpoint(s: str) -> tuple[int, bytes, int]:
    host, _, port = s.rpartition(":")
    host = host.strip("[]")
    addr = ipaddress.ip_address(host)
    return addr.version, addr.packed, int(port)


_ETH_HDR = struct.Struct("!6s6sH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_SLL2 = struct.Struct("!HHIHBB8s")
_SLL = struct.Struct("!HHH8sH")
_MAC_C = bytes.fromhex("020000000001")
_MAC_S = bytes.fromhex("020000000002")


def _csum_fold(n: int) -> int:
    """Internet checksum of a big-endian integer built from 16-bit words
    (2^16 ≡ 1 mod 0xffff, so the ones'-complement sum is a modulo)."""
    s = n % 0xFFFF
    return (~(s or 0xFFFF)) & 0xFFFF if n else 0xFFFF


def _checksum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    return _csum_fold(int.from_bytes(data, "big"))


class _FrameBuilder:
    def __init__(self, linktype: int, ver: int, csum: bool) -> None:
        self.linktype = linktype
        self.ver = ver
        self.csum = csum
        self.ip_id = 0

    def frame(self, src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
              payload: bytes, from_client: bool) -> bytes:
        tcp = bytearray(_TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                                  65535, 0, 0))
        if self.csum:
            if self.ver == 4:
                pseudo = src + dst + struct.pack("!BBH", 0, 6, 20 + len(payload))
            else:
                pseudo = src + dst + struct.pack("!IxxxB", 20 + len(payload), 6)
            struct.pack_into("!H", tcp, 16, _checksum(pseudo + bytes(tcp) + payload))
        if self.ver == 4:
            self.ip_id = (self.ip_id + 1) & 0xFFFF
            ip = bytearray(_IPV4.pack(0x45, 0, 20 + 20 + len(payload), self.ip_id, 0x4000, 64, 6, 0, src, dst))
            if self.csum:
                struct.pack_into("!H", ip, 10, _checksum(bytes(ip)))
            et = L.ETH_P_IPV4
        else:
            ip = _IPV6.pack(6 << 28, 20 + len(payload), 6, 64, src, dst)
            et = L.ETH_P_IPV6
        lt = self.linktype
        if lt == F.LINKTYPE_ETHERNET:
            l2 = _ETH_HDR.pack(_MAC_S if from_client else _MAC_C, _MAC_C if from_client else _MAC_S, et)
        elif lt == F.LINKTYPE_LINUX_SLL2:
            l2 = _SLL2.pack(et, 0, 1, 1, 0 if not from_client else 4, 6,
                            (_MAC_C if from_client else _MAC_S) + b"\0\0")
        elif lt == F.LINKTYPE_LINUX_SLL:
            l2 = _SLL.pack(0 if not from_client else 4, 1, 6, (_MAC_C if from_client else _MAC_S) + b"\0\0", et)
        elif lt == F.LINKTYPE_NULL:
            l2 = struct.pack("<I", 2 if self.ver == 4 else 24)
        elif lt == F.LINKTYPE_LOOP:
            l2 = struct.pack(">I", 2 if self.ver == 4 else 24)
        elif lt in (F.LINKTYPE_RAW, F.LINKTYPE_IPV4, F.LINKTYPE_IPV6):
            l2 = b""
        else:
            raise ValueError(f"write_tcp_capture cannot build link type {lt}")
        return b"".join((l2, ip, tcp, payload))


def _flow_packets(fl: SynthFlow, mss: int, linktype: int, csum: bool, order: int) -> Iterator[tuple[int, int, int, bytes]]:
    """(ts_ns, flow order, sequence, frame) of one connection, in time order."""
    vc, ac, pc = _endpoint(fl.client)
    vs, as_, ps = _endpoint(fl.server)
    if vc != vs:
        raise ValueError(f"{fl.client} and {fl.server} are not the same IP version")
    fb = _FrameBuilder(linktype, vc, csum)
    n = 0
    seq = {"c2s": fl.isn_client, "s2c": fl.isn_server}
    if fl.handshake:
        seq = {"c2s": fl.isn_client + 1, "s2c": fl.isn_server + 1}

    def pkt(ts: int, direction: str, flags: int, payload: bytes = b"") -> tuple[int, int, int, bytes]:
        nonlocal n
        n += 1
        c = direction == "c2s"
        other = "s2c" if c else "c2s"
        frame = fb.frame(ac if c else as_, as_ if c else ac, pc if c else ps, ps if c else pc,
                         seq[direction], seq[other], flags, payload, c)
        return ts, order, n, frame

    ts = None
    unacked = {"c2s": 0, "s2c": 0}
    for wts, direction, data in fl.writes:
        if direction not in ("c2s", "s2c"):
            raise ValueError(f"direction must be 'c2s' or 's2c', not {direction!r}")
        if ts is None and fl.handshake:
            t0 = wts - 3000
            n += 1
            yield t0, order, n, fb.frame(ac, as_, pc, ps, fl.isn_client, 0, L.TCP_SYN, b"", True)
            n += 1
            yield t0 + 1000, order, n, fb.frame(as_, ac, ps, pc, fl.isn_server, fl.isn_client + 1,
                                                L.TCP_SYN | L.TCP_ACK, b"", False)
            yield pkt(t0 + 2000, "c2s", L.TCP_ACK)
        # Packets of one flow stay in time order even if a write's segments
        # run past the next write's timestamp.
        ts = wts if ts is None or wts > ts else ts
        other = "s2c" if direction == "c2s" else "c2s"
        mv = memoryview(data)
        for i in range(0, len(data), mss):
            piece = bytes(mv[i:i + mss])
            last = i + mss >= len(data)
            yield pkt(ts, direction, L.TCP_ACK | (L.TCP_PSH if last else 0), piece)
            seq[direction] += len(piece)
            unacked[direction] += 1
            ts += fl.segment_interval_ns
            if last or unacked[direction] >= fl.ack_every:
                unacked[direction] = 0
                yield pkt(ts, other, L.TCP_ACK)
                ts += 1
    if ts is None:
        return
    if fl.fin:
        yield pkt(ts + 1000, "c2s", L.TCP_FIN | L.TCP_ACK)
        seq["c2s"] += 1
        yield pkt(ts + 2000, "s2c", L.TCP_FIN | L.TCP_ACK)
        seq["s2c"] += 1
        yield pkt(ts + 3000, "c2s", L.TCP_ACK)


def write_tcp_capture(path: str | os.PathLike, flows: Iterable[SynthFlow | dict], *, fmt: str = "pcapng",
                      mss: int = 1448, linktype: int = F.LINKTYPE_ETHERNET, checksums: bool = True,
                      snaplen: int = 262144) -> int:
    """Write the packets of ``flows`` (interleaved by timestamp) to ``path``.

    ``flows`` are :class:`SynthFlow` objects or dicts with the same keys
    (``client``, ``server``, ``writes`` of ``(ts_ns, direction, bytes)``).
    ``fmt`` is ``"pcapng"``, ``"pcap"`` (ns) or ``"pcap-us"``.  Returns the
    number of packets written.
    """
    specs = [f if isinstance(f, SynthFlow) else SynthFlow(**f) for f in flows]
    streams = [_flow_packets(f, mss, linktype, checksums, i) for i, f in enumerate(specs)]
    count = 0
    with open(path, "wb", buffering=1 << 20) as out:
        if fmt == "pcapng":
            w = PcapngWriter(out)
            w.add_interface(linktype, snaplen=snaplen, tsresol=9)
            write = w.write
        elif fmt in ("pcap", "pcap-us"):
            w = PcapWriter(out, linktype, snaplen=snaplen, nanosecond=fmt == "pcap")
            write = w.write
        else:
            raise ValueError(f"fmt must be 'pcapng', 'pcap' or 'pcap-us', not {fmt!r}")
        for ts, _order, _n, frame in heapq.merge(*streams, key=lambda p: (p[0], p[1], p[2])):
            write(ts, frame)
            count += 1
    return count
