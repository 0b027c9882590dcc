# SPDX-License-Identifier: GPL-2.0-only
"""Read sizes and limits of the capture walks (:mod:`dissect.capture.reader`: pcap,
:mod:`dissect.capture.pcapng_walk`: pcapng), and the size of what is being read."""
from __future__ import annotations

import os
from typing import Any, Callable

from dissect.capture.source import StreamSource

#: Largest record (pcap) or block (pcapng) accepted; anything longer is corrupt.
#: Loopback captures hold frames of up to 256 KiB (snaplen 262144); 16 MiB
#: leaves room for GRO/TSO super-frames without trusting garbage lengths.
MAX_RECORD = 16 << 20
#: Read size.  Big reads keep the per-packet cost at a slice and an unpack.
CHUNK = 4 << 20
#: How far a resynchronisation scan looks before giving up on the file.
MAX_RESYNC = 64 << 20

_NS = 1_000_000_000
_YEAR = 86400 * 366


def _size(f, upto: int | None = None) -> int:
    """The file's size; for a stream, its length once it ended (read ahead to
    ``upto`` first, as a resynchronisation needs) or a size no offset reaches."""
    if isinstance(f, StreamSource):
        return f.size(upto)
    return os.fstat(f.fileno()).st_size


def refill(f: Any, buf: bytes, i: int, base: int, want: int,
           keep: Callable[[int], None] | None) -> tuple[bytes, memoryview, int, int, int] | None:
    """Read up to ``want`` more bytes after ``buf[i:]`` (the walk's unconsumed tail at file
    offset ``base + i``): ``(buf, mv, base, i, n)`` of the new buffer, or None at the end.
    Called once per read (``CHUNK``), never per record; ``keep`` tells a stream source where
    the buffer now starts (:class:`~dissect.capture.source.StreamSource`)."""
    more = f.read(want)
    if not more:
        return None
    buf = buf[i:] + more
    base += i
    if keep is not None:
        keep(base)
    return buf, memoryview(buf), base, 0, len(buf)
