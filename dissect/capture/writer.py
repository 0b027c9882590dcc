# SPDX-License-Identifier: GPL-2.0-only
"""pcap and pcapng writers (the simulator, the admin capture and tests use them).

Timestamps are integer nanoseconds since the epoch.  The pcap writer uses
the nanosecond magic by default; the pcapng writer gives every interface an
``if_tsresol`` of 9 (ns) unless told otherwise.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

from dissect.capture import formats as F


class PcapWriter:
    """Classic pcap; ``nanosecond`` picks the 0xa1b23c4d magic."""

    def __init__(self, f: BinaryIO, linktype: int, *, snaplen: int = 262144,
                 nanosecond: bool = True, byteorder: str = "<") -> None:
        self._f = f
        self._bo = byteorder
        self._ns = nanosecond
        self._rec = F.pcap_record_header(byteorder)
        magic = F.PCAP_MAGIC_NS if nanosecond else F.PCAP_MAGIC_US
        f.write(F.pcap_file_header(byteorder).pack(magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts_ns: int, data: bytes, orig_len: int | None = None) -> None:
        sec, frac = divmod(ts_ns, 1_000_000_000)
        if not self._ns:
            frac //= 1000
        self._f.write(self._rec.pack(sec, frac, len(data), len(data) if orig_len is None else orig_len))
        self._f.write(data)


def _options(bo: str, opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    hdr = F.pcapng_option_header(bo)
    out = bytearray()
    for code, value in opts:
        out += hdr.pack(code, len(value)) + value + b"\0" * (F.pad4(len(value)) - len(value))
    out += hdr.pack(F.OPT_ENDOFOPT, 0)
    return bytes(out)


class PcapngWriter:
    """pcapng with one section; call :meth:`new_section` to start another."""

    def __init__(self, f: BinaryIO, *, byteorder: str = "<", comment: str | None = None) -> None:
        self._f = f
        self._bo = byteorder
        self._bh = F.pcapng_block_header(byteorder)
        self._epb = F.pcapng_epb_body(byteorder)
        self._u32 = struct.Struct(byteorder + "I")
        self._resol: list[int] = []
        self.new_section(comment)

    def _block(self, btype: int, body: bytes) -> None:
        total = 12 + len(body)
        self._f.write(self._bh.pack(btype, total))
        self._f.write(body)
        self._f.write(self._u32.pack(total))

    def new_section(self, comment: str | None = None) -> None:
        """Write a Section Header Block; interfaces of earlier sections end here."""
        opts = [(F.OPT_COMMENT, comment.encode())] if comment else []
        body = F.pcapng_shb_body(self._bo).pack(F.PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1) + _options(self._bo, opts)
        self._block(F.PCAPNG_SHB, body)
        self._resol = []

    def add_interface(self, linktype: int, *, snaplen: int = 0, tsresol: int = 9,
                      name: str | None = None) -> int:
        """Write an Interface Description Block; returns its interface id."""
        opts: list[tuple[int, bytes]] = []
        if name:
            opts.append((2, name.encode()))  # if_name
        opts.append((F.IF_TSRESOL, bytes([tsresol])))
        body = F.pcapng_idb_body(self._bo).pack(linktype, 0, snaplen) + _options(self._bo, opts)
        self._block(F.PCAPNG_IDB, body)
        self._resol.append(F.tsresol_units_per_second(tsresol))
        return len(self._resol) - 1

    def write(self, ts_ns: int, data: bytes, *, interface: int = 0,
              orig_len: int | None = None, comment: str | None = None) -> None:
        """Write an Enhanced Packet Block."""
        units = self._resol[interface]
        ts = ts_ns * units // 1_000_000_000
        body = (self._epb.pack(interface, ts >> 32, ts & 0xFFFFFFFF, len(data),
                               len(data) if orig_len is None else orig_len)
                + data + b"\0" * (F.pad4(len(data)) - len(data))
                + _options(self._bo, [(F.OPT_COMMENT, comment.encode())] if comment else []))
        self._block(F.PCAPNG_EPB, body)

    def write_simple(self, data: bytes, orig_len: int | None = None) -> None:
        """Write a Simple Packet Block (no timestamp; interface 0)."""
        body = (F.pcapng_spb_body(self._bo).pack(len(data) if orig_len is None else orig_len)
                + data + b"\0" * (F.pad4(len(data)) - len(data)))
        self._block(F.PCAPNG_SPB, body)

    def write_obsolete(self, ts_ns: int, data: bytes, *, interface: int = 0) -> None:
        """Write an obsolete Packet Block (type 2), which old tools still emit."""
        units = self._resol[interface]
        ts = ts_ns * units // 1_000_000_000
        body = (F.pcapng_opb_body(self._bo).pack(interface, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
                + data + b"\0" * (F.pad4(len(data)) - len(data)))
        self._block(F.PCAPNG_OPB, body)
