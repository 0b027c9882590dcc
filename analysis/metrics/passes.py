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

from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.load_qmp import iteration_boundaries
from analysis.metrics.selection import qemu_events, stream_capture

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration
    from dissect.qemu.pages import PageLog

_PART = 2  # section type of a PART section (qemu-migration-stream.md §3)


def segment_starts(block_ids: np.ndarray, pages: np.ndarray) -> np.ndarray:
    """Start indices of the greedy split of the sends (block_ids[i], pages[i]) into segments
    without a repeated page — :func:`greedy_segments` in O(n log n) with NumPy.

    With prev[i] the previous send of the same page (-1 if none), send i repeats a page of the
    segment starting at s iff prev[i] >= s (then i > s), so the segment after the one starting at
    s starts at f(s) = min{i : prev[i] >= s}.  Each i is the next send of at most one j, so
    g[j] = i (j = prev[i]) is a plain scatter and f is its suffix minimum.
    """
    n = len(pages)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((pages, block_ids))  # stable: equal pages keep their send order
    sb, sp = block_ids[order], pages[order]
    same = (sb[1:] == sb[:-1]) & (sp[1:] == sp[:-1])
    g = np.full(n + 1, n, dtype=np.int64)
    g[order[:-1][same]] = order[1:][same]
    f = np.minimum.accumulate(g[::-1])[::-1]
    starts = [0]
    while (nxt := int(f[starts[-1]])) < n:
        starts.append(nxt)
    return np.asarray(starts, dtype=np.int64)


def log_passes(log: "PageLog") -> dict[str, Any]:
    """The greedy split of one capture's page sends: ``segments`` over all sends;
    ``precopy_segments`` over the sends before the end of the last main-channel RAM PART section
    (None without one); ``lower_bound`` of the pre-copy iterations = max(pre-copy segments,
    segments - 1 (the last sync is the stop-copy one), 1); ``segment_starts_ns`` the capture time
    of each segment's first send (None in an untimed stream file)."""
    n = len(log.addrs)
    pages = np.frombuffer(log.addrs, dtype=np.uint64) >> np.uint64(12) if n else np.zeros(0, np.uint64)
    ids: dict[Any, int] = {}
    ks = np.asarray([k for k, _ in log.blocks] + [n], dtype=np.int64)
    names = np.asarray([-1] + [ids.setdefault(name, len(ids)) for _, name in log.blocks], dtype=np.int64)
    # block of each send: -1 before the first block record (a damaged stream), then each record's
    # block up to the next one (records are appended at nondecreasing send indices)
    block_ids = np.repeat(names, np.diff(np.concatenate([[0], ks])))
    starts = segment_starts(block_ids, pages)
    parts = [k for k, t in log.sections if t == _PART]
    cut = parts[-1] if parts else None
    pre = int(np.searchsorted(starts, cut, side="left")) if cut is not None else None
    segs = int(len(starts))
    times: list[int | None] = [None] * segs
    if log.marks:
        # a mark (k, t): the sends from k on arrived in bytes captured at t (until the next mark)
        mk = np.asarray([k for k, _ in log.marks], dtype=np.int64)
        j = np.searchsorted(mk, starts, side="right") - 1
        times = [log.marks[int(x)][1] if x >= 0 else None for x in j]
    return {"sends": n, "segments": segs, "precopy_segments": pre,
            "lower_bound": max(pre or 0, segs - 1, 1) if n else None,
            "segment_starts_ns": times, "precopy_segment_starts_ns": times[:pre] if pre is not None else times}


def greedy_segments(keys: list[Any]) -> list[int]:
    """Start indices of the greedy split of ``keys`` into segments without repeats
    (the definition :func:`segment_starts` implements in bulk; for tests and notebooks)."""
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
        ev["stream"] = {k: v for k, v in est.items() if not k.endswith("starts_ns") and k != "capture"}
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
    logs = getattr(m, "page_passes", None) or {}
    cap = stream_capture(m)
    log = logs.get(cap) if cap is not None else None
    if log is None and logs:
        cap, log = next(iter(logs.items()))
    if log is None or not len(log.addrs):
        return None
    cache = getattr(m, "_passes_cache", None)
    if cache is None or cache[0] is not log:
        cache = (log, dict(log_passes(log), capture=cap))
        m._passes_cache = cache  # type: ignore[attr-defined]
    return cache[1]


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
        # capture times on the capture's own clock; the common clock adds its alignment offset
        off = next((a.offset_ns for a in m.alignment if a.capture == est["capture"]), 0)
        return [t + off for t in est["precopy_segment_starts_ns"] if t is not None], "stream"
    return [], None
