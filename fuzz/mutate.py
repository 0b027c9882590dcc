# SPDX-License-Identifier: GPL-2.0-only
"""Byte mutators: what an attacker tries on a file format, stacked 1-4 at a time.

Deterministic: the input of execution ``i`` of a campaign is
``mutate(seeds, Random(f"{base}:{i}"), dictionary)``, so a hang that kills
the worker is rebuilt from its number alone.
"""
from __future__ import annotations

import random
import struct

_BOUNDARY = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
             0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF]
_WIDTH = {1: "B", 2: "H", 4: "I", 8: "Q"}
_TEXTY = [b"\x00", b"\n", b"\r", b"\t", b" ", b"\x80", b"\xff", b"\xc3", b"\xc3\xa9", b"\xed\xa0\x80",
          b"\xf0\x9f\x98\x80", b"\\", b"%", b"-1", b"99999999999999999999", b"."]


def _pos(rng: random.Random, n: int) -> int:
    # half the time near the start: headers and length fields live there
    if n <= 0:
        return 0
    if rng.random() < 0.5:
        return rng.randrange(min(n, 256))
    return rng.randrange(n)


def _flip(b: bytearray, rng: random.Random, seeds, dic) -> None:
    if b:
        i = _pos(rng, len(b))
        b[i] ^= 1 << rng.randrange(8)


def _byte(b: bytearray, rng: random.Random, seeds, dic) -> None:
    if b:
        b[_pos(rng, len(b))] = rng.randrange(256)


def _boundary(b: bytearray, rng: random.Random, seeds, dic) -> None:
    w = rng.choice((1, 2, 4, 8))
    if len(b) < w:
        return
    i = _pos(rng, len(b) - w + 1) & ~(w - 1) if rng.random() < 0.7 else _pos(rng, len(b) - w + 1)
    i = min(i, len(b) - w)
    v = rng.choice(_BOUNDARY) & ((1 << 8 * w) - 1)
    if rng.random() < 0.3:
        v = (v + rng.choice((-1, 1))) & ((1 << 8 * w) - 1)
    b[i:i + w] = struct.pack(rng.choice("<>") + _WIDTH[w], v)


def _insert(b: bytearray, rng: random.Random, seeds, dic) -> None:
    i = rng.randrange(len(b) + 1)
    if dic and rng.random() < 0.5:
        piece = rng.choice(dic)
    elif rng.random() < 0.5:
        piece = rng.choice(_TEXTY)
    else:
        piece = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 17)))
    b[i:i] = piece


def _delete(b: bytearray, rng: random.Random, seeds, dic) -> None:
    if b:
        i = rng.randrange(len(b))
        del b[i:i + rng.choice((1, 1, 2, 4, 8, 16, 64, 512, 4096))]


def _duplicate(b: bytearray, rng: random.Random, seeds, dic) -> None:
    if b:
        i = rng.randrange(len(b))
        n = rng.choice((4, 16, 64, 256, 1500, 4096))
        j = rng.randrange(len(b) + 1)
        b[j:j] = b[i:i + n]


def _splice(b: bytearray, rng: random.Random, seeds, dic) -> None:
    other = rng.choice(seeds)
    if other and b:
        i = rng.randrange(len(b))
        j = rng.randrange(len(other))
        b[i:] = other[j:j + rng.randrange(1, 8192)] + b[i:]


def _truncate(b: bytearray, rng: random.Random, seeds, dic) -> None:
    if b:
        del b[rng.randrange(len(b)):]


def _overwrite_dict(b: bytearray, rng: random.Random, seeds, dic) -> None:
    piece = rng.choice(dic) if dic else rng.choice(_TEXTY)
    if len(b) >= len(piece):
        i = rng.randrange(len(b) - len(piece) + 1)
        b[i:i + len(piece)] = piece


MUTATORS = [_flip, _flip, _byte, _boundary, _boundary, _insert, _delete, _duplicate, _splice, _truncate,
            _overwrite_dict]


def mutate(seeds: list[bytes], rng: random.Random, dictionary: list[bytes] = ()) -> bytes:
    """A mutated copy of one seed (1-4 stacked mutations); sometimes the seed itself."""
    b = bytearray(rng.choice(seeds))
    if rng.random() < 0.01:
        return bytes(b)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        rng.choice(MUTATORS)(b, rng, seeds, list(dictionary))
    return bytes(b)
