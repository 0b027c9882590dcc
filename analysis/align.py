# SPDX-License-Identifier: GPL-2.0-only
"""Clock alignment between the captures of one migration.

pcap timestamps are wall-clock (CLOCK_REALTIME of the capturing host); QEMU
log-backend lines carry wall-clock ``sec.usec`` too; trace.dat and ftrace
text use the trace clock (``local``: nanoseconds since boot) unless the
DATE option (``trace-cmd record --date``, trace-dat.md §4) says how to get
to time of day.  ``qemu-trace-events.md`` §6: QEMU's ftrace backend adds no
time of its own.

Order of methods (the issue's rule): an explicit anchor when present
(``wall-clock``: both clocks are epoch times; ``date-option``: a trace.dat
whose DATE option the reader applied, which puts it on the wall clock), otherwise ``sequence``: the trace's ``vfio_save_block``
data sizes (source) or ``vfio_load_state_device_data`` sizes (destination)
matched to the DEV_DATA_STATE chunk sizes of the stream, falling back to the
order of ``savevm_section_start`` / ``qemu_loadvm_state_section_*`` events
matched to the stream's sections.  The offset is the median difference of the
matched pairs; the residual is the median absolute deviation from it (ns).
"""
from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Sequence

import numpy as np

#: Units per side given to SequenceMatcher (quadratic on repetitive keys).
MAX_MATCH = 1500
#: Timestamps above this (ns) are taken as epoch wall-clock (after 2001-09-09).
WALL_CLOCK_MIN_NS = 1_000_000_000 * 1_000_000_000


@dataclass(slots=True)
class Alignment:
    """How one capture's clock maps onto the common (reference) clock."""

    capture: int
    reference: int | None
    method: str            # reference | wall-clock | date-option | sequence | time-shift | none
    offset_ns: int
    residual_ns: int | None
    matched: int
    basis: str | None = None  # what was matched: chunk-sizes | sections

    def to_json(self) -> dict[str, Any]:
        return {"capture": self.capture, "reference": self.reference, "method": self.method,
                "offset_ns": self.offset_ns, "residual_ns": self.residual_ns,
                "matched": self.matched, "basis": self.basis}


def match_sequences(a_keys: Sequence[Any], a_ts: Sequence[int], b_keys: Sequence[Any],
                    b_ts: Sequence[int], min_match: int = 1) -> tuple[int, int, int] | None:
    """Match two keyed event sequences in order; ``(offset, residual, matched)`` with
    offset = median(b_ts − a_ts) over the matched pairs, or None.

    ``SequenceMatcher`` (no autojunk) finds the longest in-order matches, so a
    trace that lost events or a capture that started late still aligns on
    what both saw.
    """
    if not a_keys or not b_keys:
        return None
    diffs: list[int] = []
    if list(a_keys) == list(b_keys):  # the common case: both saw every unit
        diffs = [int(b) - int(a) for a, b in zip(a_ts, b_ts)]
    else:
        # SequenceMatcher is quadratic on repetitive keys (equal chunk sizes): an offset needs only a
        # few thousand pairs, so match the first MAX_MATCH units of each side
        a_k, b_k = list(a_keys)[:MAX_MATCH], list(b_keys)[:MAX_MATCH]
        sm = SequenceMatcher(None, a_k, b_k, autojunk=False)
        for blk in sm.get_matching_blocks():
            for k in range(blk.size):
                diffs.append(int(b_ts[blk.b + k]) - int(a_ts[blk.a + k]))
    if len(diffs) < min_match:
        return None
    d = np.sort(np.asarray(diffs, dtype=np.int64))
    offset = _int_median(d)
    residual = _int_median(np.sort(np.abs(d - offset)))
    return offset, residual, len(diffs)


def _int_median(sorted_vals: np.ndarray) -> int:
    """Median of int64 values without a float round trip (epoch ns exceed float precision)."""
    n = len(sorted_vals)
    mid = n // 2
    if n % 2:
        return int(sorted_vals[mid])
    return (int(sorted_vals[mid - 1]) + int(sorted_vals[mid])) // 2


def is_wall_clock(ts_ns: Sequence[int]) -> bool:
    return len(ts_ns) > 0 and min(ts_ns) >= WALL_CLOCK_MIN_NS
