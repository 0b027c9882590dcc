# SPDX-License-Identifier: GPL-2.0-only
"""Pre-copy iterations as QEMU counts them: passes over dirty memory, one per dirty-bitmap
sync (json-lines.md ``migration_summary``: ``precopy_iterations`` = ``dirty_syncs`` - 1).

Methods, best first (docs/analysis.md "Pre-copy iterations"):

- ``trace``: ``migration_bitmap_sync_end`` events of the source's QEMU trace (one per sync:
  the setup sync, one per pre-copy pass boundary, the stop-copy sync);
- ``qmp``: ``dirty-sync-count`` of QEMU's final ``query-migrate`` / ``info migrate`` (a saved
  reply, HMP text, or the last poll of a query-migrate time series);
- ``stream``: estimated from the capture alone, a LOWER BOUND.  QEMU sends a page only when
  its bit in the migration bitmap is set, clears the bit when it sends the page, and sets bits
  only in a sync; so a page sent twice implies a sync between the two sends.  The fewest
  syncs that explain the ordered page sends is the number of segments of a greedy split
  (a new segment at every page already sent in the current one), which is optimal for this
  kind of split.  Passes in which the guest dirtied no page that the previous pass had sent
  are invisible, hence a lower bound.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from analysis.load_qmp import iteration_boundaries
from analysis.metrics.selection import qemu_events, stream_capture

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

#: Page index = address >> 12 (every target page is at least 4 KiB).  Dense per-block arrays
#: up to this many pages (256 GiB of 4 KiB pages, 128 MiB of uint16); farther addresses (a
#: damaged stream) go to a dict, so no allocation is sized by an untrusted address.
DENSE_PAGES = 1 << 26
#: Segment ids are stored as uint16; a capture with more segments stops being tracked.
MAX_SEGMENTS = 0xFFFF


@dataclass
class PassTracker:
    """Online greedy split of the page sends of one capture (the ``page_log`` of
    :mod:`dissect.qemu.pages`): a new segment starts at every page already sent in the
    current segment."""

    sends: int = 0
    segment: int = 0
    #: (send index, capture ts_ns or None) of each segment's first send
    starts: list[tuple[int, int | None]] = field(default_factory=list)
    #: sends before the end (EOS) of the last main-channel RAM PART section, and its ts
    precopy_sends: int | None = None
    precopy_end_ts: int | None = None
    saturated: bool = False
    _dense: dict[str, array] = field(default_factory=dict, repr=False)
    _sparse: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)

    def __call__(self, flow: int | None, block: str | None, addr: int | None, ts: int | None,
                 where: str | None) -> None:
        if block is None:
            if where == "PART":
                self.precopy_sends, self.precopy_end_ts = self.sends, ts
            return
        if self.saturated or addr is None:
            return
        i = addr >> 12
        if i < DENSE_PAGES:
            a = self._dense.get(block)
            if a is None:
                a = self._dense[block] = array("H")
            if i >= len(a):
                a.frombytes(bytes(2 * (min(max(i + 1, 2 * len(a), 4096), DENSE_PAGES) - len(a))))
            seen = a[i]
        else:
            a = None
            seen = self._sparse.get((block, i), 0)
        if self.segment == 0 or seen == self.segment:
            if self.segment >= MAX_SEGMENTS:
                self.saturated = True
                return
            self.segment += 1
            self.starts.append((self.sends, ts))
        if a is not None:
            a[i] = self.segment
        else:
            self._sparse[(block, i)] = self.segment
        self.sends += 1

    def result(self) -> dict[str, Any]:
        """``segments`` over all sends; ``precopy_segments`` over the sends before the end of
        the last RAM PART section (pre-copy; None without one); ``lower_bound`` of the
        pre-copy iterations: max(precopy segments, segments - 1 (the last sync is the
        stop-copy one), 1 when pages were sent)."""
        pre = None
        if self.precopy_sends is not None:
            pre = sum(1 for k, _ in self.starts if k < self.precopy_sends)
        bound = None
        if self.sends and not self.saturated:
            bound = max(pre or 0, self.segment - 1, 1)
        return {"sends": self.sends, "segments": self.segment, "precopy_segments": pre,
                "lower_bound": bound, "segment_starts_ns": [t for _, t in self.starts],
                "precopy_end_ns": self.precopy_end_ts, "saturated": self.saturated}


def greedy_segments(keys: list[Any]) -> list[int]:
    """Start indices of the greedy split of ``keys`` into segments without repeats
    (the definition :class:`PassTracker` implements online; for tests and notebooks)."""
    starts: list[int] = []
    seen: set[Any] = set()
    for i, k in enumerate(keys):
        if not starts or k in seen:
            starts.append(i)
            seen = set()
        seen.add(k)
    return starts


def _trace_syncs(m: "Migration") -> list[int]:
    ev = qemu_events(m, "migration_bitmap_sync_end")
    return [int(t) for t in ev["ts_ns"].dropna()] if len(ev) else []


def _qmp_syncs(m: "Migration") -> tuple[int | None, str | None]:
    st = m.qemu_stats.get("source", {})
    n = st.get("dirty_sync_count")
    if n is None:
        return None, None
    status = st.get("status")
    if status is not None and status != "completed":
        return None, f"QEMU's counters were saved in state {status!r}, not completed"
    return int(n), st.get("format")


def precopy_iterations(m: "Migration") -> dict[str, Any]:
    """``precopy_iterations``, ``precopy_iterations_method``, ``dirty_syncs`` and the evidence
    of every method that had data (``precopy_iterations_evidence``)."""
    ev: dict[str, Any] = {}
    syncs = _trace_syncs(m)
    if syncs:
        ev["trace_dirty_syncs"] = len(syncs)
    qmp, fmt = _qmp_syncs(m)
    if qmp is not None:
        ev["qmp_dirty_syncs"] = qmp
        ev["qmp_source"] = fmt
    elif fmt:
        ev["qmp_unused"] = fmt
    est = stream_estimate(m)
    if est is not None:
        ev["stream"] = {k: v for k, v in est.items() if k != "segment_starts_ns"}
    out: dict[str, Any] = {"precopy_iterations": None, "precopy_iterations_method": None, "dirty_syncs": None,
                           "precopy_iterations_evidence": ev}
    # a trace of the whole migration holds at least the setup and the stop-copy syncs
    if len(syncs) >= 2:
        out.update(precopy_iterations=len(syncs) - 1, precopy_iterations_method="trace", dirty_syncs=len(syncs))
    elif qmp is not None and qmp >= 1:
        out.update(precopy_iterations=qmp - 1, precopy_iterations_method="qmp", dirty_syncs=qmp)
    elif est is not None and est["lower_bound"] is not None:
        out.update(precopy_iterations=est["lower_bound"], precopy_iterations_method="stream")
    return out


def stream_estimate(m: "Migration") -> dict[str, Any] | None:
    """The page-repeat estimate of the primary stream capture (None without page sends)."""
    trackers = getattr(m, "page_passes", None) or {}
    cap = stream_capture(m)
    tr = trackers.get(cap) if cap is not None else None
    if tr is None and trackers:
        tr = next(iter(trackers.values()))
    if tr is None or not tr.sends:
        return None
    return tr.result()


def pass_starts(m: "Migration") -> tuple[list[int], str | None]:
    """Start times (common clock) of the pre-copy passes and the method that gave them:
    the trace's sync ends (all but the stop-copy one), the query-migrate series (a pass started
    after the poll before the one where ``dirty-sync-count`` grew: one poll interval of
    uncertainty), or
    the first send of each greedy segment of the stream (pre-copy segments only)."""
    syncs = _trace_syncs(m)
    if len(syncs) >= 2:
        return syncs[:-1], "trace"
    q = getattr(m, "qmp", None)
    if q is not None and len(q):
        src = q[q["side"] != "destination"]
        b = iteration_boundaries(src)
        if len(b):
            done = src[src["status"] == "completed"]
            if len(done):  # the stop-copy sync is not a pre-copy pass
                b = b[b["ts_ns"] < int(done["ts_ns"].iloc[0])]
            return [int(t) for t in b["after_ts_ns"]], "qmp"
    est = stream_estimate(m)
    if est is not None:
        starts = [t for t in est["segment_starts_ns"] if t is not None]
        if est["precopy_end_ns"] is not None:
            starts = [t for t in starts if t <= est["precopy_end_ns"]]
        return starts, "stream"
    return [], None
