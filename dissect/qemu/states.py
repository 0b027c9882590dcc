# SPDX-License-Identifier: GPL-2.0-only
"""Shared pieces of the main-channel parser (stream.py and its handler mixins)."""
from __future__ import annotations

# parser states
S_HEADER, S_RECORD, S_RAM, S_VFIO, S_FOOTER, S_SCAN, S_VFIO_CFG, S_FIXED, S_LOST, S_DONE, S_MAPPED = range(11)

#: Bytes we are willing to hold while looking for the end of one FULL section or config blob.
MAX_SCAN = 64 * 1024 * 1024


def ts_seconds(ns: int | None) -> float | None:
    """Capture nanoseconds as the contract's float seconds (None stays None)."""
    return None if ns is None else ns / 1_000_000_000


def stamp(ns: int | None) -> dict[str, float | int | None]:
    """A unit's timestamp fields: the contract's float seconds ``ts`` and the exact integer
    ``ts_ns`` (epoch nanoseconds exceed a float's 53 bits: ``ts`` alone loses up to 256 ns)."""
    return {"ts": None if ns is None else ns / 1_000_000_000, "ts_ns": ns}
