# SPDX-License-Identifier: GPL-2.0-only
"""StreamSource: the file interface CaptureReader walks, over a pipe-like source."""
from __future__ import annotations

import os
import threading
import time

import pytest

from dissect.capture.source import UNKNOWN_SIZE, FollowRaw, PipeRaw, StreamSource


class _Pieces:
    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.piece, self.pos, self.reads = data, piece, 0, 0

    def read(self, n: int) -> bytes:
        self.reads += 1
        b = self.data[self.pos:self.pos + min(n, self.piece)]
        self.pos += len(b)
        return b


DATA = bytes(range(256)) * 64  # 16 KiB


def test_small_reads_are_filled_large_reads_return_what_arrived():
    s = StreamSource(_Pieces(DATA, 10))  # type: ignore[arg-type]
    assert s.peek(24) == DATA[:24] and s.tell() == 0
    assert s.read(16) == DATA[:16]                     # filled across pieces
    assert s.read(100_000) == DATA[16:24]              # the peeked rest (a large read does not wait)
    assert s.read(100_000) == DATA[24:34]              # one piece
    assert s.size() == UNKNOWN_SIZE
    while s.read(1 << 20):
        pass
    assert s.size() == len(DATA) and s.consumed == len(DATA) and s.read(16) == b""


def test_seek_back_within_the_kept_buffer_only():
    s = StreamSource(_Pieces(DATA, 1000))  # type: ignore[arg-type]
    s.read(5000)
    s.keep_from(3000)
    s.read(5000)                                       # trims what lies before 3000
    s.seek(3000)
    assert s.read(16) == DATA[3000:3016]
    with pytest.raises(OSError):
        s.seek(100)
    assert s.seek(14000) == 14000 and s.read(16) == DATA[14000:14016]  # forward: reads on


def test_size_upto_reads_ahead_and_finds_the_end():
    s = StreamSource(_Pieces(DATA, 1000))  # type: ignore[arg-type]
    s.read(100)
    assert s.size(upto=2000) == UNKNOWN_SIZE and s.consumed >= 2000 and s.tell() == 100
    assert s.size(upto=1 << 30) == len(DATA) and s.tell() == 100
    s.seek(100)
    assert s.read(16) == DATA[100:116]


def test_tee_gets_every_byte():
    import io

    tee = io.BytesIO()
    s = StreamSource(_Pieces(DATA, 777), tee=tee)  # type: ignore[arg-type]
    while s.read(4096):
        pass
    assert tee.getvalue() == DATA


def test_pipe_stopped_ends_at_the_next_read():
    """stop() from a signal handler also interrupts a waiting read (tests/test_live_follow.py, ^C)."""
    r, w = os.pipe()
    raw = PipeRaw(r)
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(raw.read(10)))
    t.start()
    time.sleep(0.2)
    assert raw.blocking
    raw.stopped = True
    os.write(w, b"x")  # a plain thread cannot take the signal-time exception: wake it instead
    t.join(5)
    assert got == [b"x"] and raw.read(10) == b""
    os.close(r)
    os.close(w)


def test_pipe_with_end_condition_and_idle_timeout():
    r, w = os.pipe()
    os.write(w, b"abc")
    raw = PipeRaw(r, done=lambda: True, linger=0.2, poll=0.05)
    assert raw.read(10) == b"abc"
    t0 = time.monotonic()
    assert raw.read(10) == b""                         # done, and nothing for linger
    assert 0.15 < time.monotonic() - t0 < 5
    raw2 = PipeRaw(r, idle_timeout=0.2, poll=0.05)
    assert raw2.read(10) == b"" and raw2.idle_ended
    os.close(r)
    os.close(w)


def test_follow_raw_waits_for_growth(tmp_path):
    p = tmp_path / "g.bin"
    p.write_bytes(b"12")
    raw = FollowRaw(str(p), poll=0.02, idle_timeout=3)
    assert raw.read(10) == b"12"

    def grow() -> None:
        time.sleep(0.2)
        with open(p, "ab") as f:
            f.write(b"345")

    threading.Thread(target=grow).start()
    assert raw.read(10) == b"345"                      # waited at the end of the file
    raw.idle_timeout = 0.2
    assert raw.read(10) == b"" and raw.idle_ended
