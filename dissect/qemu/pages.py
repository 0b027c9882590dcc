# SPDX-License-Identifier: GPL-2.0-only
"""An optional tap on the RAM pages a migration sends: (RAM block, page address) per page,
main channel and multifd channels alike, in the order the capture delivers them.

Used by the analysis to estimate pre-copy passes from a capture alone (a page sent
twice implies a dirty-bitmap sync between the two sends; docs/analysis.md).  The tap
is off unless a ``page_log`` callable is given to ``decode_capture`` /
``decode_stream_file``; the formats themselves stay defined in ``ram.py`` (page
headers, §11) and ``multifd.py`` / ``wire.py`` (packets, §12.3).

``page_log(flow, block, addr, ts_ns, where)``:

- a page: ``block`` its RAMBlock idstr, ``addr`` its offset in the block; ``where`` is
  the main-channel section type (``START``/``PART``/``END``/``FULL``) or ``multifd``;
- the end (EOS) of a main-channel RAM section: ``block`` and ``addr`` are None,
  ``where`` the section's type.

``ts_ns`` is the capture time of the bytes being parsed (None in a stream file).
"""
from __future__ import annotations

import struct
from typing import Any, Callable

from dissect.qemu import wire as W
from dissect.qemu.multifd import MultifdParser

PageLog = Callable[[int | None, str | None, int | None, int | None, str | None], None]

#: More offsets than this in one packet is not a page list (multifd packets hold 512 KiB of pages).
MAX_PAGES = 1 << 16


def tap_stream(parser: Any, page_log: PageLog, flow: int | None) -> None:
    """Route a main-channel ``StreamParser``'s page addresses to ``page_log``."""

    def log(block: str | None, addr: int | None) -> None:
        sec = parser._sec
        where = W.SECTION_TYPES.get(sec.type) if sec is not None else None
        ts = parser._ts
        page_log(flow, block, addr, ts if ts else None, where)

    parser.ram.page_log = log


class TappedMultifdParser(MultifdParser):
    """A multifd channel parser that also reports the page offsets of each RAM packet.

    The offsets (normal pages first, then 9.0+ zero pages, §12.3) follow the 320-byte
    fixed part; the packet is decoded by :class:`MultifdParser` unchanged, the tap only
    reads the used offset slots once the parser accepted the packet.
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
            block = W.cstr(ramblock)
            ts = self._ts if self._ts else None
            for addr in struct.unpack_from(f">{n}Q", b, p + W.MULTIFD_RAM_FIXED):
                self.page_log(self.flow, block, addr, ts, "multifd")
        return q
