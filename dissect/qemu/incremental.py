# SPDX-License-Identifier: GPL-2.0-only
"""A small base for incremental ``StreamConsumer`` parsers (return path, multifd).

Subclasses implement ``_parse(b, p, end, base) -> int``: the new position,
or ``-(p + 1)`` to ask for more bytes kept from ``p``; they may set
``self._skip`` to jump over a body that runs past ``end`` without keeping it.
"""
from __future__ import annotations

from typing import Any, Callable

from dissect.common.findings import Finding

#: Most bytes a parser may hold waiting for one unit to complete.
MAX_HOLD = 64 * 1024 * 1024


class IncrementalParser:
    def __init__(self, sink: Callable[[Any], None], *, flow: int | None = None) -> None:
        self.sink = sink
        self.flow = flow
        self.findings: list[Finding] = []
        self._pos = 0
        self._buf = bytearray()
        self._buf_off = 0
        self._skip = 0
        self._ts = 0
        self._first_ts: int | None = None
        self._closed = False
        self._lost = False

    def data(self, offset: int, data: bytes | memoryview, ts_ns: int) -> None:
        if self._closed:
            return
        n = len(data)
        if offset != self._pos:
            if offset > self._pos:
                self.gap(self._pos, offset)
            else:
                cut = self._pos - offset
                if cut >= n:
                    return
                data = memoryview(data)[cut:]
                offset += cut
                n -= cut
        self._pos = offset + n
        if self._skip:
            k = min(self._skip, n)
            self._skip -= k
            if k == n:
                return
            data = memoryview(data)[k:]
            offset += k
        if not self._buf:
            self._ts = ts_ns
        if self._buf:
            self._buf += data
            b: Any = self._buf
            base = self._buf_off
        else:
            b = data
            base = offset
        p = 0
        end = len(b)
        while p < end:
            q = self._parse(b, p, end, base)
            if q < 0:
                p = -q - 1
                break
            p = q
            if self._skip:
                p = end
                break
            if p < end:
                self._ts = ts_ns
        if p < end:
            if end - p > MAX_HOLD:
                self._finding("error", "unit_too_large", f"{end - p} bytes held without completing a unit",
                              base + p)
                self._buf = bytearray()
                self._lost = True
                return
            if b is self._buf:
                if p:
                    del self._buf[:p]  # no views of _buf outlive a call, so resizing is safe
            else:
                self._buf = bytearray(b[p:])
            self._buf_off = base + p
        else:
            self._buf = bytearray()
            self._ts = ts_ns

    def gap(self, start: int, end: int) -> None:
        if self._closed or end <= start:
            return
        n = end - start
        self._pos = max(self._pos, end)
        if self._skip and not self._buf and n <= self._skip:
            self._skip -= n
            self._finding("warning", "stream_gap", f"{n} bytes missing at {start}..{end} inside skipped data",
                          start, gap_end=end)
            return
        self._finding("error", "stream_gap", f"{n} bytes missing at {start}..{end}", start, gap_end=end)
        self._buf = bytearray()
        self._skip = 0
        self._on_gap(end)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._buf or self._skip:
            self._finding("error", "stream_truncated", f"stream ends inside a unit "
                          f"({len(self._buf) + self._skip} bytes pending or missing)",
                          self._buf_off if self._buf else self._pos)
        self._on_close()

    def _finding(self, severity: str, code: str, msg: str, offset: int | None, **ctx: Any) -> None:
        if self.flow is not None:
            ctx.setdefault("flow", self.flow)
        f = Finding(severity, code, msg, offset, ctx)  # type: ignore[arg-type]
        self.findings.append(f)
        self.sink(f)

    # hooks
    def _parse(self, b: Any, p: int, end: int, base: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_gap(self, resume: int) -> None:
        self._lost = True

    def _on_close(self) -> None:
        pass
