# SPDX-License-Identifier: GPL-2.0-only
"""Link, IP and TCP headers of captured frames: fast struct code, no scapy.

Link types (tcpdump.org "LINK-LAYER HEADER TYPES"): Ethernet (with 802.1Q,
802.1ad/QinQ and the legacy 0x9100 tag), Linux cooked capture v1 (SLL, 16
bytes) and v2 (SLL2, 20 bytes), raw IP (LINKTYPE_RAW, _IPV4, _IPV6), BSD
loopback (LINKTYPE_NULL: 4-byte address family in the *capturing host's*
byte order, so both orders are accepted; LINKTYPE_LOOP: network order).
IPv4 (RFC 791: options skipped, fragments reported, total length 0 as
written for TSO super-frames means "to the end of the frame"), IPv6 (RFC
8200: hop-by-hop, routing, destination-options, fragment and AH extension
headers walked; a jumbogram's zero payload length means "to the end of the
frame"), TCP (RFC 9293).

:func:`parse_tcp` returns a plain tuple (its fields are :class:`TcpSegment`'s)
because it runs once per packet; :class:`TcpSegment` names them for callers
that prefer names.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from dissect.capture import formats as F

ETH_P_IPV4 = 0x0800
ETH_P_IPV6 = 0x86DD
_VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100})

# BSD AF_INET6 differs between systems (24 NetBSD/OpenBSD, 28 FreeBSD, 30
# Darwin); Linux uses 10 but never writes LINKTYPE_NULL with it in practice.
_AF_INET = 2
_AF_INET6 = frozenset({10, 24, 28, 30})

_ETH_TYPE = struct.Struct("!H").unpack_from
# version/ihl, tos, total_len, id, flags/frag_off, ttl, proto, checksum, src, dst
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
# ver/tc/flow, payload_len, next_header, hop_limit, src, dst
_IPV6 = struct.Struct("!IHBB16s16s")
# sport, dport, seq, ack, data_offset/reserved, flags
_TCP = struct.Struct("!HHIIBB")
_U32LE = struct.Struct("<I").unpack_from
_U32BE = struct.Struct(">I").unpack_from

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

#: Notes :func:`parse_tcp` returns (as a str) instead of a segment; the TCP
#: layer counts them into findings.
NOTE_TRUNCATED = "truncated_header"
NOTE_FRAGMENT = "ip_fragment"
NOTE_BAD_IP = "bad_ip_header"
NOTE_BAD_TCP = "bad_tcp_header"
NOTE_LINKTYPE = "unsupported_linktype"


class TcpSegment(NamedTuple):
    """One TCP segment of a frame.

    ``payload_start`` indexes the frame; ``payload_len`` is the payload
    length the IP header declares, which is more than
    ``len(frame) - payload_start`` when the snap length cut the frame.
    """
    ip_version: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    payload_start: int
    payload_len: int


def l3_offset(linktype: int, data: bytes | memoryview) -> tuple[int, int] | str | None:
    """``(ip_version, offset)`` of the IP header in a frame, a note, or None (not IP)."""
    n = len(data)
    if linktype == F.LINKTYPE_ETHERNET:
        if n < 14:
            return NOTE_TRUNCATED
        et = _ETH_TYPE(data, 12)[0]
        off = 14
        while et in _VLAN_TPIDS:
            if n < off + 4:
                return NOTE_TRUNCATED
            et = _ETH_TYPE(data, off + 2)[0]
            off += 4
    elif linktype == F.LINKTYPE_LINUX_SLL:
        if n < 16:
            return NOTE_TRUNCATED
        et = _ETH_TYPE(data, 14)[0]
        off = 16
    elif linktype == F.LINKTYPE_LINUX_SLL2:
        if n < 20:
            return NOTE_TRUNCATED
        et = _ETH_TYPE(data, 0)[0]
        off = 20
    elif linktype in (F.LINKTYPE_RAW, F.LINKTYPE_IPV4, F.LINKTYPE_IPV6):
        if n < 1:
            return NOTE_TRUNCATED
        v = data[0] >> 4
        return (v, 0) if v in (4, 6) else None
    elif linktype == F.LINKTYPE_NULL or linktype == F.LINKTYPE_LOOP:
        if n < 4:
            return NOTE_TRUNCATED
        if linktype == F.LINKTYPE_LOOP:
            af = _U32BE(data, 0)[0]
        else:
            af = _U32LE(data, 0)[0]
            if af > 0xFFFF:  # written big-endian by the capturing host
                af = _U32BE(data, 0)[0]
        if af == _AF_INET:
            return (4, 4)
        if af in _AF_INET6:
            return (6, 4)
        return None
    else:
        return NOTE_LINKTYPE
    if et == ETH_P_IPV4:
        return (4, off)
    if et == ETH_P_IPV6:
        return (6, off)
    return None


_IPV6_EXT = frozenset({0, 43, 60, 51, 44})


def parse_tcp(linktype: int, data: bytes | memoryview) -> tuple | str | None:
    """Decode a frame down to TCP: a :class:`TcpSegment`-shaped tuple, a
    ``NOTE_*`` string for a frame that is IP but cannot give a segment, or
    None for anything that is not TCP."""
    n = len(data)
    # Ethernet + IPv4, the common case, first.
    if linktype == F.LINKTYPE_ETHERNET and n >= 34 and data[12] == 8 and data[13] == 0:
        ver, off = 4, 14
    else:
        r = l3_offset(linktype, data)
        if r is None or r.__class__ is str:
            return r
        ver, off = r  # type: ignore[misc]
    if ver == 4:
        if n < off + 20:
            return NOTE_TRUNCATED
        vihl, _tos, total, _id, frag, _ttl, proto, _ck, src, dst = _IPV4.unpack_from(data, off)
        if proto != 6:
            return None
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20:
            return NOTE_BAD_IP
        if frag & 0x3FFF:  # MF set or a non-zero fragment offset
            return NOTE_FRAGMENT
        ip_end = off + total if total else n  # total 0: TSO super-frame
        if total and total < ihl:
            return NOTE_BAD_IP
        t = off + ihl
    else:
        if n < off + 40:
            return NOTE_TRUNCATED
        _vtf, plen, nh, _hl, src, dst = _IPV6.unpack_from(data, off)
        t = off + 40
        ip_end = t + plen if plen else n  # 0: jumbogram (RFC 2675)
        while nh in _IPV6_EXT:
            if n < t + 8:
                return NOTE_TRUNCATED
            if nh == 44:
                if _ETH_TYPE(data, t + 2)[0] & 0xFFF9:  # offset or M flag
                    return NOTE_FRAGMENT
                nh, t = data[t], t + 8
            elif nh == 51:
                nh, t = data[t], t + (data[t + 1] + 2) * 4
            else:
                nh, t = data[t], t + (data[t + 1] + 1) * 8
        if nh != 6:
            return None
    if n < t + 20:
        return NOTE_TRUNCATED
    sport, dport, seq, ack, doff, flags = _TCP.unpack_from(data, t)
    hl = (doff >> 4) * 4
    if hl < 20 or t + hl > ip_end:
        return NOTE_BAD_TCP
    p = t + hl
    if p > n:
        return NOTE_TRUNCATED
    return (ver, src, dst, sport, dport, seq, ack, flags, p, ip_end - p)


def format_endpoint(ip_version: int, addr: bytes, port: int) -> str:
    """``"ip:port"`` as the contract writes it (IPv6 in brackets)."""
    if ip_version == 6:
        return f"[{ipaddress.IPv6Address(addr)}]:{port}"
    return f"{ipaddress.IPv4Address(addr)}:{port}"
