# SPDX-License-Identifier: GPL-2.0-only
"""The pieces a trace.dat layout is read with and into (:mod:`dissect.ftrace.layout`):
a bounds-checked cursor, and the option, instance and CPU-stream records.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class _Short(Exception):
    """Internal: a read ran past the available bytes."""


class _Cursor:
    """Bounds-checked reads from a buffer (bytes, mmap or decompressed section)."""

    __slots__ = ("buf", "pos", "end", "base", "e")

    def __init__(self, buf, pos: int, end: int, base: int, big: bool):
        self.buf, self.pos, self.end, self.base = buf, pos, min(end, len(buf)), base
        self.e = ">" if big else "<"

    @property
    def file_offset(self) -> int:
        return self.base + self.pos

    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise _Short(n)
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return b

    def num(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big" if self.e == ">" else "little")

    def cstr(self) -> bytes:
        """A NUL-terminated string's bytes (the reader decodes them: ``TraceDatLayout._text``)."""
        buf = self.buf
        idx = buf.find(b"\0", self.pos, self.end)
        if idx < 0:
            raise _Short(0)
        s = bytes(buf[self.pos:idx])
        self.pos = idx + 1
        return s


@dataclass(slots=True)
class Option:
    """One option as stored: id, name, parsed value (raw bytes for unknown ids), file offset."""

    id: int
    name: str
    value: Any
    raw: bytes
    offset: int | None


@dataclass(slots=True)
class CpuStream:
    cpu: int
    offset: int
    size: int


@dataclass(slots=True)
class Instance:
    """One ring buffer: the top level (``name == ""``) or a named instance."""

    name: str
    clock: str | None
    page_size: int
    cpus: list[CpuStream] = field(default_factory=list)
    compressed: bool = False
    section_offset: int | None = None
