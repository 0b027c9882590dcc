# SPDX-License-Identifier: GPL-2.0-only
"""Compressed captures: zstd, gzip, xz and bzip2, recognised by content, never by name.

Users compress what they record (``tcpdump -w - | zstd``, ``.pcap.gz``, ``.dat.xz``), and
tshark opens gzip/zstd pcaps itself.  Every capture path goes through :func:`decompressed`,
which streams the decompressed bytes to a temporary file (the readers seek: pcapng blocks,
trace.dat sections, mapped-ram page regions) and yields its path, or the input itself when
it is not compressed.  Detection reads :func:`head`, the first decompressed bytes.

Bad input is a finding with the **compressed** offset where decompression stopped, and
everything decompressed before it is still handed to the decoder:

- ``compressed_truncated`` (error): the file ends inside a frame/member/stream; offset =
  the file size;
- ``compressed_corrupt`` (error): the decompressor refused a byte; offset = that byte (the
  failing read is replayed one byte at a time to find it, and to keep the output before it;
  for zstd it is the last byte of the block or checksum that failed: zstd checks whole
  blocks);
- ``compressed_trailing_data`` (warning): bytes after the last complete frame/member that
  start no new one (the zstd and gzip tools ignore them too); xz stream padding is allowed;
- ``compressed_output_limit`` / ``compressed_disk_space`` (error): a bound below stopped
  the output; offset = the start of the compressed read being decompressed then.

The context of each holds ``compression`` and ``decompressed_offset`` (the decompressed
bytes before the stop: offsets of the decoded units count in the decompressed bytes).

Bounds (decompression bombs): nothing is allocated from a size the file declares; input is
fed in small reads and output taken in pieces of at most :data:`OUT_CHUNK` (zstd's Python
API has no output bound, so it gets 1 KiB of input per call: a 128 KiB zstd block needs at
least 4 input bytes, so one call yields at most 32 MiB).  All-zero 64 KiB blocks become
holes of a sparse file (a mapped-ram file stays as sparse as QEMU wrote it).  The output
stops when the decompressed size would pass :func:`output_limit` (the larger of 1 GiB and
4096 bytes per compressed byte: deflate cannot pass 1032, zstd, xz and bzip2 bombs can, and
the work stays proportional to the input; ``MIGTRACE_DECOMPRESS_LIMIT`` sets an absolute
size) or when the temporary folder's free space would drop below :func:`disk_margin` (the
smaller of 1 GiB and 5 % of that file system; ``MIGTRACE_DECOMPRESS_MARGIN`` overrides).
The temporary folder (``TMPDIR``) is removed on leaving the context, also after an
exception or KeyboardInterrupt.
"""
from __future__ import annotations

import bz2
import lzma
import os
import re
import shutil
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Generator, Iterator

from dissect.common.findings import Finding

#: the compressions :func:`compression_of` recognises
COMPRESSIONS = ("zstd", "gzip", "xz", "bzip2")
#: name suffixes dropped from the temporary file's name (kept only for messages)
SUFFIXES = (".zst", ".zstd", ".gz", ".xz", ".bz2")

OUT_CHUNK = 1 << 20
LIMIT_FLOOR = 1 << 30
LIMIT_RATIO = 4096
MARGIN_MAX = 1 << 30
_IN_CHUNK = 64 << 10
_ZSTD_IN_CHUNK = 1 << 10
_HOLE = 64 << 10
_DISK_CHECK = 16 << 20
_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_WHAT = {"zstd": "frame", "gzip": "member", "xz": "stream", "bzip2": "stream"}


def compression_of(head: bytes) -> str | None:
    """The compression whose magic starts ``head`` (10 bytes decide bzip2), or None."""
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50:
        return "zstd"  # a skippable frame first (pzstd writes one)
    if head[:3] == b"\x1f\x8b\x08":  # method 8 (deflate) is the only one gzip defines
        return "gzip"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    # "BZh" + block size '1'..'9' + the first block's or the end-of-stream magic: text that
    # starts with "BZh1" is not taken for bzip2
    if head[:3] == b"BZh" and len(head) >= 10 and 0x31 <= head[3] <= 0x39 \
            and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bzip2"
    return None


def sniff(path: str | os.PathLike[str]) -> str | None:
    """:func:`compression_of` the first bytes of ``path`` (OSError when unreadable)."""
    with open(path, "rb") as f:
        return compression_of(f.read(10))


class _Member:
    """One zstd frame, gzip member, xz or bzip2 stream: fed input, gives bounded pieces."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        if fmt == "zstd":
            import zstandard

            # zstandard's default window limit (128 MiB) is the zstd tool's: a frame that asks
            # for more is refused (compressed_corrupt), as `zstd -d` refuses it without --memory
            self.d: Any = zstandard.ZstdDecompressor().decompressobj()
        elif fmt == "gzip":
            self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif fmt == "xz":
            self.d = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        else:
            self.d = bz2.BZ2Decompressor()

    @property
    def eof(self) -> bool:
        return bool(self.d.eof)

    def unused(self) -> bytes:
        """Input after the end of this member (from the last :meth:`feed`)."""
        return bytes(self.d.unused_data) if self.eof else b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Output pieces for ``data``; raises the decompressor's error on bad input."""
        d = self.d
        if self.fmt == "zstd":
            out = d.decompress(data)
            for i in range(0, len(out), OUT_CHUNK):
                yield out[i:i + OUT_CHUNK]
            return
        out = d.decompress(data, OUT_CHUNK)
        yield out
        if self.fmt == "gzip":
            # a full piece may leave output pending inside zlib even with no input left
            while not d.eof and (d.unconsumed_tail or len(out) == OUT_CHUNK):
                tail = d.unconsumed_tail
                out = d.decompress(tail, OUT_CHUNK)
                yield out
                if not out and d.unconsumed_tail == tail:
                    break
        else:
            while not d.eof and not d.needs_input:
                out = d.decompress(b"", OUT_CHUNK)
                yield out
                if not out:
                    break


def _errors(fmt: str) -> tuple[type[BaseException], ...]:
    base: tuple[type[BaseException], ...] = (zlib.error, lzma.LZMAError, EOFError, ValueError)
    if fmt == "zstd":
        import zstandard

        return base + (zstandard.ZstdError,)
    return base + (OSError,)  # bz2 reports bad data as OSError("Invalid data stream")


class Stream:
    """The decompressed bytes of an open compressed file, as bounded pieces (:meth:`pieces`).

    ``offset``: the compressed offset of the read being decompressed (after the end: the
    bytes taken); ``out``: decompressed bytes so far; ``findings``: see the module doc."""

    def __init__(self, f: BinaryIO, fmt: str) -> None:
        self.f = f
        self.fmt = fmt
        self.offset = 0
        self.out = 0
        self.findings: list[Finding] = []
        self._errors = _errors(fmt)
        self._step = _ZSTD_IN_CHUNK if fmt == "zstd" else _IN_CHUNK

    def finding(self, severity: str, code: str, message: str, offset: int, **context: Any) -> None:
        ctx = {"compression": self.fmt, "decompressed_offset": self.out, **context}
        self.findings.append(Finding(severity, code, message, offset, ctx))  # type: ignore[arg-type]

    def pieces(self) -> Iterator[bytes]:
        member, start, pending = _Member(self.fmt), 0, b""
        while True:
            if pending:
                data, pending = pending[:self._step], pending[self._step:]
            else:
                data = self.f.read(self._step)
            if not data:
                break
            at = self.offset
            given = 0
            try:
                for out in member.feed(data):
                    if out:
                        given += len(out)
                        self.out += len(out)
                        yield out
            except self._errors as e:
                where = yield from self._salvage(start, at, data, given)
                self.offset = where
                if where is None:  # not seekable (a pipe): the byte is somewhere in this read
                    self.offset = where = at
                    self.finding("error", "compressed_corrupt",
                                 f"{self.fmt} data corrupt in the {len(data)}-byte read at compressed offset "
                                 f"{at} ({e}); the {self.out} bytes decompressed before the error are decoded",
                                 at, located=False, read_length=len(data))
                    return
                self.finding("error", "compressed_corrupt",
                             f"{self.fmt} data corrupt at compressed offset {where} ({e}); the {self.out} "
                             "bytes decompressed before it are decoded", where)
                return
            self.offset = at + len(data)
            if not member.eof:
                continue
            # the member ended inside ``data``: what follows is the next one, or trailing bytes
            rest = member.unused()
            self.offset -= len(rest)
            rest += pending
            pending = b""
            if len(rest) < 10:
                rest += self.f.read(10 - len(rest))
            if not rest:
                return
            if compression_of(rest) != self.fmt:
                self._trailing(rest)
                return
            member, start, pending = _Member(self.fmt), self.offset, rest
        self.finding("error", "compressed_truncated",
                     f"{self.fmt} data ends at compressed offset {self.offset} inside a {_WHAT[self.fmt]}; "
                     f"the {self.out} bytes decompressed before it are decoded", self.offset)

    def _trailing(self, rest: bytes) -> None:
        at, n, zero = self.offset, 0, True
        while rest:
            n += len(rest)
            zero = zero and not rest.strip(b"\0")
            rest = self.f.read(_IN_CHUNK)
        self.offset = at + n
        if zero and self.fmt == "xz" and n % 4 == 0:
            return  # stream padding (xz file format 1.0.4, §2.2)
        self.finding("warning", "compressed_trailing_data",
                     f"{n} bytes after the last complete {self.fmt} {_WHAT[self.fmt]} start no new one; "
                     "ignored", at, length=n)

    def _salvage(self, start: int, at: int, data: bytes, given: int) -> Generator[bytes, None, int | None]:
        """After an error in the read ``data`` at compressed offset ``at``: the output of ``data``
        before the refused byte (a failing call returns nothing, e.g. the last zstd block in the
        call that also reads a bad checksum), and that byte's offset.  The member is decompressed
        again from ``start`` up to ``at`` (output discarded), then ``data`` one byte at a time;
        the first ``given`` bytes of its output were already handed on.  None when ``f`` cannot
        seek (a pipe)."""
        try:
            pos = self.f.tell()
            self.f.seek(start)
        except OSError:
            return None
        i = -1
        try:
            m = _Member(self.fmt)
            left = at - start
            while left > 0:
                chunk = self.f.read(min(left, self._step))
                if not chunk:
                    return at
                left -= len(chunk)
                for _ in m.feed(chunk):
                    pass
            skip = given
            for i in range(len(data)):
                for out in m.feed(data[i:i + 1]):
                    if skip >= len(out):
                        skip -= len(out)
                        continue
                    out, skip = out[skip:], 0
                    self.out += len(out)
                    yield out
                if m.eof:
                    break
        except self._errors:
            return at + max(i, 0)
        finally:
            self.f.seek(pos)
        return at


def _size(text: str | None) -> int | None:
    """Bytes of an environment setting (``123``, ``64M``, ``2G``); None when unset or not a size."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?)i?[bB]?\s*", text or "")
    return int(m.group(1)) * _UNIT[m.group(2).lower()] if m else None


def output_limit(compressed_size: int) -> int:
    """Most decompressed bytes taken from a file of ``compressed_size`` bytes."""
    env = _size(os.environ.get("MIGTRACE_DECOMPRESS_LIMIT"))
    return env if env is not None else max(LIMIT_FLOOR, LIMIT_RATIO * compressed_size)


def disk_margin(folder: str | os.PathLike[str]) -> int:
    """Free space left untouched on the file system of ``folder``."""
    env = _size(os.environ.get("MIGTRACE_DECOMPRESS_MARGIN"))
    if env is not None:
        return env
    st = os.statvfs(folder)
    return min(MARGIN_MAX, st.f_blocks * st.f_frsize // 20)


def _free(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def spool(st: Stream, out: BinaryIO, limit: int, folder: Path) -> int:
    """Write :meth:`Stream.pieces` to ``out`` (zero blocks as holes) within ``limit`` bytes and the
    disk margin of ``folder``; the decompressed size.  A stop is a finding of ``st``."""
    margin = disk_margin(folder)
    size = written = next_check = skip = 0
    pieces = st.pieces()
    try:
        for piece in pieces:
            if size + skip + len(piece) > limit:
                piece = piece[:limit - size - skip]
                stop = True
            else:
                stop = False
            for i in range(0, len(piece), _HOLE):
                n = min(_HOLE, len(piece) - i)
                if piece.count(0, i, i + n) == n:
                    skip += n
                    continue
                if written >= next_check:
                    free = _free(folder)
                    if free - _DISK_CHECK < margin:
                        st.finding("error", "compressed_disk_space",
                                   f"stopped after {size + skip} decompressed bytes: {folder} has {free} bytes "
                                   f"free, the margin kept is {margin} (MIGTRACE_DECOMPRESS_MARGIN)",
                                   st.offset, decompressed_offset=size + skip, free_bytes=free, margin=margin)
                        return _end(out, size + skip)
                    next_check = written + _DISK_CHECK
                if skip:
                    out.seek(skip, os.SEEK_CUR)
                    size, skip = size + skip, 0
                try:
                    out.write(piece[i:i + n])
                except OSError as e:
                    st.finding("error", "compressed_disk_space",
                               f"stopped after {size} decompressed bytes: writing {folder} failed: "
                               f"{e.strerror or e}", st.offset, decompressed_offset=size)
                    return _end(out, size)
                size += n
                written += n
            if stop:
                st.finding("error", "compressed_output_limit",
                           f"stopped at {limit} decompressed bytes, the most taken from this file "
                           "(max(1 GiB, 4096 x its size), or MIGTRACE_DECOMPRESS_LIMIT)", st.offset,
                           decompressed_offset=limit, limit=limit)
                return _end(out, size + skip)
    finally:
        pieces.close()
    return _end(out, size + skip)


def _end(out: BinaryIO, size: int) -> int:
    """Extend ``out`` to ``size`` over a trailing hole."""
    out.truncate(size)
    return size


def _inner_name(path: Path) -> str:
    name = path.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name


@dataclass
class Decompressed:
    """What :func:`decompressed` yields: the file to read and how it was made."""

    path: Path                      # the temporary file, or the input itself when not compressed
    compression: str | None = None  # one of COMPRESSIONS, None when not compressed
    findings: list[Finding] = field(default_factory=list)
    size: int | None = None         # decompressed bytes (None when not compressed)
    compressed_size: int | None = None


@contextmanager
def decompressed(path: str | os.PathLike[str], *, limit: int | None = None,
                 tmpdir: str | os.PathLike[str] | None = None) -> Iterator[Decompressed]:
    """The readable form of the capture ``path``: itself, or its decompressed bytes in a
    temporary file (named like the input without the compression suffix, in a private folder
    removed on exit).  ``limit``: most decompressed bytes (default :func:`output_limit`).
    OSError when ``path`` cannot be read; never an error for bad compressed data."""
    path = Path(path)
    fmt = sniff(path)
    if fmt is None:
        yield Decompressed(path)
        return
    folder = Path(tempfile.mkdtemp(prefix="migtrace-", dir=tmpdir))
    try:
        target = folder / _inner_name(path)
        with open(path, "rb") as f, open(target, "wb") as out:
            csize = os.fstat(f.fileno()).st_size
            st = Stream(f, fmt)
            size = spool(st, out, output_limit(csize) if limit is None else limit, folder)
        yield Decompressed(target, fmt, st.findings, size, csize)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def head(path: str | os.PathLike[str], size: int = 8192, findings: list[Finding] | None = None) -> bytes:
    """The first ``size`` bytes of the capture ``path``, decompressed when it is compressed (as
    far as they decompress: bad data gives a shorter head and its finding in ``findings``,
    never an error)."""
    with open(path, "rb") as f:
        first = f.read(size)
        fmt = compression_of(first)
        if fmt is None:
            return first
        f.seek(0)
        buf = bytearray()
        st = Stream(f, fmt)
        pieces = st.pieces()
        try:
            for piece in pieces:
                buf += piece[:size - len(buf)]
                if len(buf) >= size:
                    break
        finally:
            pieces.close()
        if findings is not None:
            findings.extend(st.findings)
        return bytes(buf)
