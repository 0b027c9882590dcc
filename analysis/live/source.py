# SPDX-License-Identifier: GPL-2.0-only
"""Opening a live capture: ``-`` (standard input) or a file followed as it grows.

:class:`LiveCapture` owns the raw source, the :class:`StreamSource` the
capture reader walks, the reader, SIGINT handling (the first ^C ends the
input as if it had ended there, so the summary of what was read is still
printed; a second one interrupts) and the "has the migration ended" test
``--follow`` stops on.
"""
from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from typing import Any, BinaryIO, Iterator

from analysis.live.args import STDIN_NAME
from dissect.capture.reader import CaptureReader
from dissect.capture.source import FollowRaw, PipeRaw, StreamSource
from dissect.capture.source_compressed import DecompressingRaw, open_raw
from dissect.common.findings import Finding
from dissect.qemu.session import CaptureResult
from dissect.qemu.midstream import Midstream
from dissect.qemu.stream import StreamParser

#: After the migration's end, the file must not grow for this long before ``--follow`` stops.
LINGER = 1.0
#: The first bytes a pcap/pcapng must start with.
_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")


class NotACapture(Exception):
    """The live input does not start like a pcap or pcapng (a usage error)."""


class LiveCapture:
    """A pcap/pcapng read as a stream: standard input (``capture == "-"``), a
    followed file (``follow``: polled for growth until the migration ended and
    the file stopped growing, ``idle_timeout`` seconds without growth, or
    SIGINT), a capturing subprocess' output (``fd``: ends like a followed
    file), or a finished file read front to back (``watch FILE``)."""

    def __init__(self, capture: str, *, follow: bool = False, idle_timeout: float | None = None,
                 linger: float = LINGER, poll: float = 0.05, fd: int | None = None,
                 tee: BinaryIO | None = None) -> None:
        self.result = CaptureResult()
        self.reassembler: Any = None  # set by reassemble_live
        self.interrupted = False
        self.name = capture
        if fd is not None:  # a capturing subprocess' output (watch --interface): ends with the migration
            self.raw: Any = PipeRaw(fd, done=self.migration_ended, linger=linger,
                                                    idle_timeout=idle_timeout)
        elif capture == STDIN_NAME:
            self.raw = PipeRaw(sys.stdin.fileno())
        elif follow:
            self.raw = FollowRaw(capture, poll=poll, idle_timeout=idle_timeout, linger=linger,
                                 done=self.migration_ended)
        else:  # a finished file, read as a stream (watch: units in arrival order)
            self._fd = os.open(capture, os.O_RDONLY)
            self.raw = PipeRaw(self._fd)
        # a compressed pipe or file (zstd, gzip, xz, bzip2) is read as its decompressed bytes
        self.raw = open_raw(self.raw)
        self.source = StreamSource(self.raw, self.name, tee=tee)
        head = self.source.peek(4)
        if head not in _MAGICS:
            fmt = self.raw.compression
            after = f" after {fmt} decompression" if fmt else ""
            why = "; ".join(f.message for f in self.raw.findings)
            raise NotACapture((f"empty input{after}" if not head else
                               f"input does not start like a pcap or pcapng{after} (first bytes {head.hex()})")
                              + (f" ({why})" if why else ""))
        self.reader = CaptureReader(self.source)

    def close(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None

    @property
    def format(self) -> str:
        return self.reader.format or "pcap"

    def migration_ended(self) -> bool:
        """The main channel's QEMU stream reached its EOF marker (the return path's
        SHUT and the FINs follow within the linger time) — or, when only TCP is
        reassembled (``flows``, ``extract``), the main flow saw a FIN or RST."""
        for p in self.result.parsers.values():
            if isinstance(p, Midstream):  # a main channel picked up after its start
                p = p.parser
            if isinstance(p, StreamParser) and p.eof_offset is not None:
                return True
        r = self.reassembler
        return r is not None and any(fl.stats.role == "main" and (fl.stats.fin_seen or fl.stats.rst_seen)
                                     for fl in r.flows)

    @property
    def compression(self) -> dict[str, Any]:
        """The ``summary`` fields of a compressed input (as for a compressed file), else none."""
        r = self.raw
        if not isinstance(r, DecompressingRaw):
            return {}
        return {"compression": r.compression, "compressed_bytes": r.compressed_bytes,
                "decompressed_bytes": r.decompressed_bytes}

    def end_findings(self) -> list[Finding]:
        """What the user should know about how the input ended (decompression's findings first)."""
        out = list(self.raw.findings)
        if self.interrupted:
            out.append(Finding("info", "capture_interrupted",
                               f"input ended by SIGINT after {self.source.consumed} bytes; "
                               "what was read is decoded", self.source.consumed, {}))
        elif self.raw.idle_ended:
            out.append(Finding("info", "capture_idle_timeout",
                               f"the file did not grow for {self.raw.idle_timeout} s "
                               f"(--idle-timeout); stopped after {self.source.consumed} bytes",
                               self.source.consumed, {}))
        return out

    @contextmanager
    def sigint_ends_input(self) -> Iterator[None]:
        """Within: the first SIGINT ends the input (a waiting read returns at once)."""

        def handler(signum: int, frame: Any) -> None:
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self.raw.stop()

        try:
            old = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave SIGINT alone
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)


def follow_problem(capture: str) -> str | None:
    """Why ``capture`` cannot be followed (None when it can)."""
    if capture == STDIN_NAME:
        return None
    if not os.path.exists(capture):
        return "no such file"
    if not os.path.isfile(capture):
        return "not a regular file"
    return None
