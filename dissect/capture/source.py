# SPDX-License-Identifier: GPL-2.0-only
"""Captures that are not finished files: a pipe (``-``) or a file still being written.

:class:`CaptureReader <dissect.capture.reader.CaptureReader>` walks a file
with ``read``, ``seek`` (only when it resynchronises after a corrupt record)
and the file's size (to never read past the end).  A pipe has no size and
cannot seek, and a growing file's size is not final, so both are wrapped in
a :class:`StreamSource` that the reader walks with the very same code:

* ``read(n)`` returns what the underlying source has (a pipe read returns as
  soon as some bytes are there, so packets are handed on as they arrive);
* the bytes read are kept from the start of the reader's current buffer on
  (``keep_from``, at most one record plus one read), so the reader's
  resynchronisation can seek back into bytes it already consumed (during a
  resynchronisation that start stays put, so the bytes scanned, up to the
  reader's own limit :data:`~dissect.capture.reader.MAX_RESYNC`, are kept);
* ``size(upto)`` is the total once the source ended, else "unknown" (a
  number no offset reaches); given ``upto`` it first reads ahead to that
  offset, which is what a resynchronisation needs to take the same decisions
  as on the finished file.

Nothing is sized by a length read from the capture: reads are bounded by
the reader's own limits.  The raw sources are :class:`PipeRaw` (a file
descriptor, e.g. standard input) and :class:`FollowRaw` (a regular file
polled for growth, ``tail -f``), both ending on an explicit ``stop()``
(SIGINT) as on an end of input.
"""
from __future__ import annotations

import os
import select
import time
from typing import BinaryIO, Callable

#: "Size unknown": larger than any offset a reader computes.
UNKNOWN_SIZE = 1 << 62
#: Reads up to this size are filled completely (headers); larger ones are not.
SMALL = 1 << 16
#: Largest single read from the raw source.
RAW_READ = 1 << 20


class Stopped(Exception):
    """Raised by a raw source's signal-time stop while it blocks (caught by its ``read``)."""


class PipeRaw:
    """Reads a file descriptor (standard input, a subprocess' output, a file read once);
    a read returns what the pipe holds.

    With ``done``, it also ends when ``done()`` is true and nothing arrived for
    ``linger`` seconds (a ``tcpdump`` that would otherwise run forever); with
    ``idle_timeout``, when nothing arrived for that long.
    """

    def __init__(self, fd: int, *, done: Callable[[], bool] | None = None, linger: float = 1.0,
                 idle_timeout: float | None = None, poll: float = 0.1) -> None:
        self.fd = fd
        self.done = done
        self.linger = linger
        self.idle_timeout = idle_timeout
        self.poll = poll
        self.stopped = False
        self.blocking = False
        self.idle_ended = False

    def read(self, n: int) -> bytes:
        if self.stopped:
            return b""
        self.blocking = True
        try:
            if self.done is not None or self.idle_timeout is not None:
                last = time.monotonic()
                while not select.select([self.fd], [], [], self.poll)[0]:
                    now = time.monotonic()
                    if self.done is not None and self.done() and now - last >= self.linger:
                        return b""
                    if self.idle_timeout is not None and now - last >= self.idle_timeout:
                        self.idle_ended = True
                        return b""
            return os.read(self.fd, n)
        except Stopped:
            return b""
        finally:
            self.blocking = False

    def stop(self) -> None:
        """End the input at the next read; interrupt a read that is waiting (signal handler)."""
        self.stopped = True
        if self.blocking:
            raise Stopped


class FollowRaw:
    """A regular file read as it grows (``tail -f``).

    At the current end it polls every ``poll`` seconds.  It ends when
    ``done()`` is true and the file has not grown for ``linger`` seconds
    (the writer may still append a few packets after the migration's end),
    when it has not grown for ``idle_timeout`` seconds, or on ``stop()``.
    """

    def __init__(self, path: str, *, poll: float = 0.05, idle_timeout: float | None = None,
                 linger: float = 1.0, done: Callable[[], bool] | None = None) -> None:
        self.f = open(path, "rb", buffering=0)
        self.poll = poll
        self.idle_timeout = idle_timeout
        self.linger = linger
        self.done = done
        self.stopped = False
        self.blocking = False
        self.idle_ended = False

    def read(self, n: int) -> bytes:
        last = time.monotonic()
        while not self.stopped:
            b = self.f.read(n)
            if b:
                return b
            now = time.monotonic()
            if self.done is not None and self.done() and now - last >= self.linger:
                break
            if self.idle_timeout is not None and now - last >= self.idle_timeout:
                self.idle_ended = True
                break
            self.blocking = True
            try:
                time.sleep(self.poll)
            except Stopped:
                break
            finally:
                self.blocking = False
        self.f.close()
        return b""

    def stop(self) -> None:
        self.stopped = True
        if self.blocking:
            raise Stopped


class StreamSource:
    """The file-like object :class:`CaptureReader` walks for a pipe or a growing file."""

    def __init__(self, raw: PipeRaw | FollowRaw, name: str = "-", tee: BinaryIO | None = None) -> None:
        self.raw = raw
        self.name = name
        self.tee = tee  # every byte read is also written here (watch's summary reads it back)
        self._chunks: list[bytes] = []  # kept bytes, contiguous, ending at self._end
        self._start = 0  # offset of self._chunks[0][0]
        self._end = 0  # bytes taken from raw so far
        self._pos = 0
        self._eof = False
        self._keep = 0  # the reader's buffer starts here: it may seek back to it

    # -- the file interface the reader uses ---------------------------------

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes.  A small read (a header, at most :data:`SMALL`) is
        filled unless the stream ends, as a file read is; a large one returns
        what has arrived (at least one byte before the end), so a live
        capture's packets are not held back waiting for a full chunk."""
        if n is None or n < 0:
            raise ValueError("StreamSource.read needs a size")
        out = b""
        if self._pos < self._end:
            out = self._slice(self._pos, min(self._pos + n, self._end))
            self._pos += len(out)
            if len(out) == n or n > SMALL:
                return out
        parts = [out]
        need = n - len(out)
        while need > 0:
            b = self._pull(need)
            if not b:
                break
            parts.append(b)
            self._pos += len(b)
            need -= len(b)
            if n > SMALL:
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def keep_from(self, offset: int) -> None:
        """The reader will not seek back before ``offset`` (the start of its buffer)."""
        self._keep = offset

    def seek(self, pos: int) -> int:
        if pos < self._start:
            raise OSError(f"cannot seek back to {pos} in a stream (kept from {self._start})")
        while pos > self._end and not self._eof:
            self._pull(min(pos - self._end, 1 << 20))
        self._pos = min(pos, self._end)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._chunks = []

    def peek(self, n: int) -> bytes:
        """The first ``n`` bytes of the stream (or fewer at its end), without consuming them."""
        while self._end < n and not self._eof:
            self._pull(n - self._end)
        return self._slice(self._start, min(self._start + n, self._end)) if self._start == 0 else b""

    def size(self, upto: int | None = None) -> int:
        """The stream's total length once it ended, else :data:`UNKNOWN_SIZE`; with
        ``upto``, read ahead (and keep) up to that offset first."""
        if upto is not None:
            while self._end < upto and not self._eof:
                self._pull(min(upto - self._end, 1 << 20))
        return self._end if self._eof else UNKNOWN_SIZE

    @property
    def consumed(self) -> int:
        """Bytes taken from the source so far."""
        return self._end

    # -- internals ------------------------------------------------------------

    def _pull(self, n: int) -> bytes:
        if self._eof:
            return b""
        b = self.raw.read(min(max(n, 1), RAW_READ))
        if not b:
            self._eof = True
            return b""
        if self.tee is not None:
            self.tee.write(b)
        self._chunks.append(b)
        self._end += len(b)
        self._trim()
        return b

    def _trim(self) -> None:
        # During a resynchronisation the reader's buffer start stays where the
        # bad record was, so everything read ahead from there is kept.
        floor = min(self._keep, self._pos)
        while self._chunks and self._start + len(self._chunks[0]) <= floor:
            self._start += len(self._chunks.pop(0))

    def _slice(self, a: int, b: int) -> bytes:
        out = []
        off = self._start
        for c in self._chunks:
            e = off + len(c)
            if e > a and off < b:
                out.append(c[max(a - off, 0):min(b, e) - off])
            if e >= b:
                break
            off = e
        return out[0] if len(out) == 1 else b"".join(out)
