# SPDX-License-Identifier: GPL-2.0-only
"""pcap and pcapng on-disk structures, declared once for reader and writer.

pcap: https://www.tcpdump.org/manpages/pcap-savefile.5.html (and
draft-ietf-opsawg-pcap).  pcapng: draft-ietf-opsawg-pcapng.  Plain
``struct.Struct`` objects, because the reader applies them per packet.
Each factory takes the byte-order prefix (``"<"`` or ``">"``) because both
formats are written in the writer's native order and say so in a magic.
"""
from __future__ import annotations

import struct
from functools import lru_cache

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB = 0x00000001
PCAPNG_OPB = 0x00000002  # obsolete Packet Block
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
IF_TSRESOL = 9
IF_TSOFFSET = 14

LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in host order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108  # OpenBSD loopback: address family in network order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_USER0 = 147
LINKTYPE_USER15 = 162


@lru_cache(maxsize=None)
def pcap_file_header(bo: str) -> struct.Struct:
    """magic, version_major, version_minor, thiszone, sigfigs, snaplen, network."""
    return struct.Struct(bo + "IHHiIII")


@lru_cache(maxsize=None)
def pcap_record_header(bo: str) -> struct.Struct:
    """ts_sec, ts_frac (µs or ns by magic), incl_len, orig_len."""
    return struct.Struct(bo + "IIII")


@lru_cache(maxsize=None)
def pcapng_block_header(bo: str) -> struct.Struct:
    """block_type, block_total_length."""
    return struct.Struct(bo + "II")


@lru_cache(maxsize=None)
def pcapng_shb_body(bo: str) -> struct.Struct:
    """byte_order_magic, major, minor, section_length (-1: unknown)."""
    return struct.Struct(bo + "IHHq")


@lru_cache(maxsize=None)
def pcapng_idb_body(bo: str) -> struct.Struct:
    """linktype, reserved, snaplen."""
    return struct.Struct(bo + "HHI")


@lru_cache(maxsize=None)
def pcapng_epb_body(bo: str) -> struct.Struct:
    """interface_id, ts_high, ts_low, captured_len, original_len."""
    return struct.Struct(bo + "IIIII")


@lru_cache(maxsize=None)
def pcapng_opb_body(bo: str) -> struct.Struct:
    """interface_id (u16), drops_count (u16), ts_high, ts_low, captured_len, original_len."""
    return struct.Struct(bo + "HHIIII")


@lru_cache(maxsize=None)
def pcapng_spb_body(bo: str) -> struct.Struct:
    """original_len."""
    return struct.Struct(bo + "I")


@lru_cache(maxsize=None)
def pcapng_option_header(bo: str) -> struct.Struct:
    """option code, option length (value padded to 4)."""
    return struct.Struct(bo + "HH")


def pad4(n: int) -> int:
    return (n + 3) & ~3


def tsresol_units_per_second(value: int) -> int:
    """Decode an ``if_tsresol`` byte: MSB clear → 10^-v, set → 2^-(v & 0x7f)."""
    if value & 0x80:
        return 1 << (value & 0x7F)
    return 10 ** value
