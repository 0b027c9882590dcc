# SPDX-License-Identifier: GPL-2.0-only
"""A compressed pipe or growing file read as its decompressed stream (``zstdcat``'s job, done inside).

``cat x.pcap.zst | migtrace decode -`` and ``tcpdump -w - | zstd | ... | migtrace decode -``:
:func:`open_raw` reads the first bytes of a raw source (:mod:`dissect.capture.source`),
and when they are a zstd, gzip, xz or bzip2 magic (:func:`~dissect.capture.compressed.compression_of`)
wraps it in :class:`DecompressingRaw`, whose reads hand on decompressed bytes as the compressed
ones arrive; otherwise the bytes read are handed back first, unchanged.

Decompression is :class:`dissect.capture.compressed.Stream`, the one of compressed files, with
its findings (``compressed_truncated``, ``compressed_corrupt``, ``compressed_trailing_data``) and
the same bounded pieces.  Two differences, because a pipe can neither seek nor be read twice:

- a corrupt byte cannot be located by replaying its member, so ``compressed_corrupt`` gives the
  compressed offset of the read that holds it (reads are at most 1 KiB for zstd, 64 KiB otherwise;
  context ``located: false`` and ``read_length``), and that read's output is not handed on;
- nothing is spooled to disk, so there is no output limit or disk margin: a decompression bomb
  is decoded as it streams, like an equally large uncompressed input, in bounded memory.

An input ended by SIGINT (or ``stop()``) inside a frame is not reported as truncated: the
capture-level ``capture_interrupted`` finding says why it ended.
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol

from dissect.capture.compressed import Stream, compression_of
from dissect.common.findings import Finding

#: bytes read before deciding (bzip2 needs ten)
_SNIFF = 10


class Raw(Protocol):
    stopped: bool
    idle_ended: bool

    def read(self, n: int) -> bytes: ...

    def stop(self) -> None: ...


class PrefixedRaw:
    """An uncompressed raw source whose first bytes were read to sniff it: they come first."""

    def __init__(self, raw: Any, prefix: bytes) -> None:
        self.raw = raw
        self.prefix = prefix
        self.compression: str | None = None
        self.findings: list[Finding] = []

    def read(self, n: int) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix[:n], self.prefix[n:]
            return out
        return self.raw.read(n)

    def __getattr__(self, name: str) -> Any:  # stop, stopped, idle_ended, idle_timeout, ...
        return getattr(self.raw, name)


class _Prefixed(PrefixedRaw):
    """:class:`PrefixedRaw` counting the bytes taken, as the file :class:`Stream` reads (no seek:
    a corrupt byte is then located to its read)."""

    def __init__(self, raw: Raw, prefix: bytes) -> None:
        super().__init__(raw, prefix)
        self.taken = 0

    def read(self, n: int) -> bytes:
        out = super().read(n)
        self.taken += len(out)
        return out

    def tell(self) -> int:
        raise OSError("a pipe cannot seek")  # Stream's salvage then reports the read's offset

    def seek(self, pos: int) -> int:
        raise OSError("a pipe cannot seek")


class DecompressingRaw:
    """The decompressed bytes of a compressed raw source, read as they arrive."""

    def __init__(self, raw: Any, prefix: bytes, fmt: str) -> None:
        self.raw = raw
        self.compression = fmt
        self._file = _Prefixed(raw, prefix)
        self._stream = Stream(self._file, fmt)  # type: ignore[arg-type]
        self._pieces: Iterator[bytes] | None = self._stream.pieces()
        self._buf = b""

    def read(self, n: int) -> bytes:
        while not self._buf and self._pieces is not None:
            try:
                self._buf = next(self._pieces)
            except StopIteration:
                self._pieces = None
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def stop(self) -> None:
        self.raw.stop()

    def __getattr__(self, name: str) -> Any:  # stopped, blocking, idle_ended, idle_timeout
        return getattr(self.raw, name)

    @property
    def findings(self) -> list[Finding]:
        """Where decompression stopped (module doc); an input ended on purpose is not truncated."""
        out = []
        ended = self.raw.stopped or getattr(self.raw, "idle_ended", False)
        for f in self._stream.findings:
            if f.code == "compressed_truncated" and ended:
                continue
            out.append(f)
        return out

    @property
    def compressed_bytes(self) -> int:
        return self._file.taken

    @property
    def decompressed_bytes(self) -> int:
        return self._stream.out


def open_raw(raw: Any) -> PrefixedRaw | DecompressingRaw:
    """``raw`` as the stream to decode: decompressed when its first bytes say it is compressed."""
    prefix = b""
    while len(prefix) < _SNIFF:
        b = raw.read(_SNIFF - len(prefix))
        if not b:
            break
        prefix += b
    fmt = compression_of(prefix)
    return PrefixedRaw(raw, prefix) if fmt is None else DecompressingRaw(raw, prefix, fmt)
