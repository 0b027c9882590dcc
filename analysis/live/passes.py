# SPDX-License-Identifier: GPL-2.0-only
"""Pre-copy passes counted online, as the pages arrive (``migtrace watch``).

The definition is ``summary``'s stream estimate (analysis/metrics/passes.py,
``greedy_segments``): the page sends split greedily into segments without a
repeated page — a page sent again starts a new pass (QEMU sends a page only
when its dirty bit is set and sets bits only in a sync).  The analysis splits
the whole capture's sends at the end; here each send is placed as it is
decoded, so a pass can be shown as soon as the next one starts.
tests/test_live_passes.py holds both equal.

:class:`LivePasses` is the page tap handed to ``decode_capture(page_log=...)``
(dissect/qemu/pages.py): it takes the columnar ``PageLog`` calls (``block``,
``mark``, ``end_of_section`` and ``addrs.append``/``extend``) and the
per-page call form ``(flow, block, addr, ts_ns, where)`` alike.
"""
from __future__ import annotations

from array import array
from typing import Any, Callable, Iterable

#: Page index = address >> 12 (every target page is at least 4 KiB).  Dense per-block arrays up
#: to this many pages; farther addresses (a damaged stream) go to a dict, so no allocation is
#: sized by an untrusted address.
DENSE_PAGES = 1 << 26
#: Segment ids are stored as uint32.
MAX_SEGMENTS = 0xFFFFFFFF
_PART = 2  # QEMU_VM_SECTION_PART


class _Sends:
    """The ``addrs`` column of the tap: each address is placed at once instead of stored."""

    def __init__(self, owner: "LivePasses") -> None:
        self._send = owner.send

    def append(self, addr: int) -> None:
        self._send(addr)

    def extend(self, addrs: Iterable[int]) -> None:
        send = self._send
        for a in addrs:
            send(a)


class LivePasses:
    """Online greedy split of the page sends of one capture.

    ``on_send(started)`` is called for every send (``started``: it began a new
    segment), ``on_part_end()`` at the end of every main-channel RAM PART
    section (``precopy_sends`` then counts the sends before it).
    """

    def __init__(self, on_send: Callable[[bool], None] | None = None,
                 on_part_end: Callable[[], None] | None = None) -> None:
        self.addrs = _Sends(self)
        self.on_send = on_send
        self.on_part_end = on_part_end
        self.sends = 0
        self.segment = 0
        #: (send index, capture ts_ns or None) of each segment's first send
        self.starts: list[tuple[int, int | None]] = []
        self.precopy_sends: int | None = None
        self.ts_ns: int | None = None
        self._block: str | None = None
        self._dense: dict[str | None, array] = {}
        self._sparse: dict[tuple[str | None, int], int] = {}

    # -- the columnar PageLog form ------------------------------------------

    def block(self, name: str | None) -> None:
        self._block = name

    def mark(self, ts_ns: int | None) -> None:
        if ts_ns:
            self.ts_ns = ts_ns

    def end_of_section(self, section_type: int | str | None) -> None:
        if section_type in (_PART, "PART"):
            self.precopy_sends = self.sends
            if self.on_part_end is not None:
                self.on_part_end()

    # -- the per-page call form ---------------------------------------------

    def __call__(self, flow: int | None, block: str | None, addr: int | None, ts: int | None,
                 where: str | None) -> None:
        self.mark(ts)
        if block is None:
            self.end_of_section(where)
            return
        if addr is not None:
            self._block = block
            self.send(addr)

    # -- the split ----------------------------------------------------------

    def send(self, addr: int) -> None:
        i = addr >> 12
        block = self._block
        if i < DENSE_PAGES:
            a = self._dense.get(block)
            if a is None:
                a = self._dense[block] = array("I")
            if i >= len(a):
                a.frombytes(bytes(4 * (min(max(i + 1, 2 * len(a), 4096), DENSE_PAGES) - len(a))))
            seen = a[i]
        else:
            a = None
            seen = self._sparse.get((block, i), 0)
        started = self.segment == 0 or seen == self.segment
        if started and self.segment < MAX_SEGMENTS:
            self.segment += 1
            self.starts.append((self.sends, self.ts_ns))
        if a is not None:
            a[i] = self.segment
        else:
            self._sparse[(block, i)] = self.segment
        self.sends += 1
        if self.on_send is not None:
            self.on_send(started)

    def result(self) -> dict[str, Any]:
        """As the analysis reports it: ``segments``, ``precopy_segments`` (segments starting before
        the end of the last PART section), ``lower_bound`` = max(precopy segments, segments - 1, 1)."""
        pre = None if self.precopy_sends is None else sum(1 for k, _ in self.starts if k < self.precopy_sends)
        bound = max(pre or 0, self.segment - 1, 1) if self.sends else None
        return {"sends": self.sends, "segments": self.segment, "precopy_segments": pre, "lower_bound": bound}
