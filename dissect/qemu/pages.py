# SPDX-License-Identifier: GPL-2.0-only
"""An optional tap on the RAM pages a migration sends: the address of every page, main channel
and multifd channels alike, in the order the capture delivers them.

Used by the analysis to estimate pre-copy passes from a capture alone (a page sent twice
implies a dirty-bitmap sync between the two sends; docs/analysis.md).  The tap is off unless
a :class:`PageLog` is given to ``decode_capture`` / ``decode_stream_file``; the formats stay
defined in ``ram.py`` (page headers, §11) and ``multifd.py`` / ``wire.py`` (packets, §12.3).
The RAM walk is a hot loop, so the log is columnar: one array append per page; block changes,
capture times and section ends are recorded only where they change.
"""
from __future__ import annotations

import struct
from array import array
from typing import Any

from dissect.qemu import wire as W
from dissect.qemu.multifd import MultifdParser

#: More offsets than this in one packet is not a page list (multifd packets hold 512 KiB of pages).
MAX_PAGES = 1 << 16


class PageLog:
    """The page sends of one capture, in capture order.

    ``addrs[i]``: the address of send i in its RAMBlock (as the page header or the multifd
    offset array gives it); ``blocks``: (first send index, RAMBlock idstr) at every change;
    ``marks``: (first send index, capture ts_ns) at every change of time; ``sections``:
    (send index, section type) at the end (EOS) of every main-channel RAM section.
    """

    def __init__(self) -> None:
        self.addrs = array("Q")
        self.blocks: list[tuple[int, str | None]] = []
        self.marks: list[tuple[int, int]] = []
        self.sections: list[tuple[int, int]] = []
        self._block: Any = object()
        self._ts: int | None = None

    def block(self, name: str | None) -> None:
        if name != self._block:
            self._block = name
            self.blocks.append((len(self.addrs), name))

    def mark(self, ts_ns: int | None) -> None:
        if ts_ns and ts_ns != self._ts:
            self._ts = ts_ns
            self.marks.append((len(self.addrs), ts_ns))

    def end_of_section(self, section_type: int) -> None:
        self.sections.append((len(self.addrs), section_type))


def tap_stream(parser: Any, log: PageLog) -> None:
    """Route a main-channel ``StreamParser``'s pages to ``log`` (and the capture time of the
    bytes they arrive in)."""
    parser.ram.page_log = log
    data = parser.data

    def timed(offset: int, chunk: Any, ts_ns: int) -> Any:
        log.mark(ts_ns)
        return data(offset, chunk, ts_ns)

    parser.data = timed


class TappedMultifdParser(MultifdParser):
    """A multifd channel parser that also logs the page offsets of each RAM packet.

    The offsets (normal pages first, then 9.0+ zero pages, §12.3) follow the 320-byte fixed
    part; the packet is decoded by :class:`MultifdParser` unchanged, the tap only reads the
    used offset slots once the parser accepted the packet.
    """

    def __init__(self, *args: Any, page_log: PageLog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.page_log = page_log

    def _parse(self, b: Any, p: int, end: int, base: int) -> int:
        if self._lost or not self._init_done or end - p < W.MULTIFD_RAM_FIXED:
            return super()._parse(b, p, end, base)
        magic, version, flags = W.MULTIFD_HDR.unpack_from(b, p)
        if magic != W.MULTIFD_MAGIC or version != W.MULTIFD_VERSION or flags & W.MULTIFD_FLAG_DEVICE_STATE:
            return super()._parse(b, p, end, base)
        fields = W.MULTIFD_RAM.unpack_from(b, p + W.MULTIFD_HDR.size)
        normal, zero, ramblock = fields[1], fields[4], fields[-1]
        n = normal + zero
        if not 0 < n <= MAX_PAGES:
            return super()._parse(b, p, end, base)
        if end - p < W.MULTIFD_RAM_FIXED + 8 * n:
            return -p - 1  # hold until the used offset slots are here
        q = super()._parse(b, p, end, base)
        if q > p + 1 and not self._lost:
            log = self.page_log
            log.mark(self._ts)
            log.block(W.cstr(ramblock))
            log.addrs.extend(struct.unpack_from(f">{n}Q", b, p + W.MULTIFD_RAM_FIXED))
        return q
