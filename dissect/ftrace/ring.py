# SPDX-License-Identifier: GPL-2.0-only
"""The kernel ring-buffer page walk (trace-dat.md §5), in plain ``struct`` code.

This runs once per event, so it is hand-written (no construct): one
``Struct.unpack_from`` per event header, integer arithmetic for the rest.
:mod:`dissect.ftrace.headers` declares the same page and event headers with
construct; the tests hold this walk equal to that declarative twin.

A CPU's data is a run of pages of ``page_size`` bytes.  Each page: u64
timestamp, kernel-long ``commit`` (low 27 bits = data bytes, bit 31 = events
lost before this page, bit 30 = the lost count is stored after the data),
then events.  Event header: ``type_len`` (5 bits) and ``time_delta`` (27
bits); type_len 1–28 = data of type_len×4 bytes, 0 = data with a length
word, 29 = padding, 30 = time extend, 31 = absolute timestamp.
"""
from __future__ import annotations

import re
import struct
import sys
from array import array

import numpy as np
from dataclasses import dataclass, field
from typing import Any

from dissect.common.findings import Finding
from dissect.ftrace.headers import COMMIT_MASK, MISSING_EVENTS, MISSING_STORED


@dataclass(frozen=True, slots=True)
class PageLayout:
    """Where the page header fields sit (from ``events/header_page``)."""

    ts_offset: int = 0
    ts_size: int = 8
    commit_offset: int = 8
    commit_size: int = 8       # the kernel's long size
    data_offset: int = 16

    @classmethod
    def from_header_page(cls, text: str, default_long: int = 8) -> "PageLayout":
        """Parse ``events/header_page``; fall back to the usual layout for missing fields."""
        vals: dict[str, tuple[int, int]] = {}
        for m in re.finditer(r"field:\s*[^;]*?\b(\w+)\s*(?:\[[^\]]*\])?;\s*offset:\s*(\d+);\s*size:\s*(\d+);",
                             text):
            vals.setdefault(m.group(1), (int(m.group(2)), int(m.group(3))))
        ts = vals.get("timestamp", (0, 8))
        commit = vals.get("commit", (8, default_long))
        data = vals.get("data", (commit[0] + commit[1], 0))
        return cls(ts[0], ts[1], commit[0], commit[1], data[0])


@dataclass(slots=True)
class CpuRecords:
    """All data records of one CPU stream, as parallel sequences (offsets into ``buf``).

    ``ts``/``offsets``/``lengths`` are NumPy arrays from :func:`walk_cpu` and
    lists from :func:`walk_cpu_py`; :meth:`lists` gives plain lists either way.
    """

    cpu: int
    buf: bytes | memoryview
    ts: Any = field(default_factory=list)
    offsets: Any = field(default_factory=list)
    lengths: Any = field(default_factory=list)
    lost: int = 0
    lost_unknown: int = 0
    pages: int = 0
    findings: list[Finding] = field(default_factory=list)
    _lists: Any = None

    def __len__(self) -> int:
        return len(self.ts)

    def lists(self) -> tuple[list[int], list[int], list[int]]:
        if self._lists is None:
            conv = [x.tolist() if isinstance(x, np.ndarray) else x for x in (self.ts, self.offsets, self.lengths)]
            self._lists = tuple(conv)
        return self._lists


_U64 = (1 << 64) - 1  # ring-buffer time is a u64: it wraps as the kernel's and libtraceevent's do


def walk_cpu_py(buf, start: int, size: int, page_size: int, layout: PageLayout, big: bool,
                cpu: int, file_offset_of=None, instance: str | None = None) -> CpuRecords:
    """Walk the pages in ``buf[start:start+size]`` one event at a time (the reference walk).

    :func:`walk_cpu_vector` gives the same result with NumPy; :func:`walk_cpu`, what the
    reader calls, takes this one for short streams and for layouts that are not 4-byte
    aligned, and the vector walk otherwise.

    ``file_offset_of(pos)`` maps a position in ``buf`` to a file offset for
    findings (identity when None).  Never raises on bad data: a bad page is
    reported and the walk goes on with the next page.
    """
    out = CpuRecords(cpu, buf)
    ts_list, off_list, len_list = out.ts, out.offsets, out.lengths
    e = ">" if big else "<"
    u32 = struct.Struct(e + "I").unpack_from
    u64 = struct.Struct(e + "Q").unpack_from
    commit_rd = (struct.Struct(e + "Q") if layout.commit_size == 8 else struct.Struct(e + "I")).unpack_from
    ts_rd = (struct.Struct(e + "Q") if layout.ts_size == 8 else struct.Struct(e + "I")).unpack_from
    lsize = layout.commit_size
    data_off = layout.data_offset
    cap = page_size - data_off
    where = file_offset_of or (lambda p: p)
    ctx = {"cpu": cpu} if instance is None else {"cpu": cpu, "instance": instance}
    findings = out.findings
    ts_append, off_append, len_append = ts_list.append, off_list.append, len_list.append
    swap = big != (sys.byteorder == "big")
    assert array("I").itemsize == 4
    end_all = min(start + size, len(buf))
    if page_size <= data_off:
        # (a page of 0 bytes never advanced the walk: a damaged header made it endless)
        findings.append(Finding("error", "bad_page_size",
                                f"page size {page_size} cannot hold the {data_off}-byte page header: "
                                f"CPU {cpu} data not read", where(start), dict(ctx)))
        return out
    if start + size > len(buf):
        findings.append(Finding("error", "cpu_data_truncated",
                                f"CPU {cpu} data claims {size} bytes, {max(0, len(buf) - start)} present",
                                where(start), dict(ctx)))
    last_ts = None
    page = start
    while page + data_off <= end_all:
        pend = min(page + page_size, end_all)
        out.pages += 1
        page_ts = ts_rd(buf, page + layout.ts_offset)[0]
        commit = commit_rd(buf, page + layout.commit_offset)[0]
        length = commit & COMMIT_MASK
        if page_ts == 0 and commit == 0 and page + page_size <= end_all:
            _zero_page(findings, any(bytes(buf[page:page + page_size])), where(page), ctx)
            page += page_size
            continue
        if commit & ~(COMMIT_MASK | MISSING_EVENTS | MISSING_STORED) & ((1 << (8 * lsize)) - 1):
            _unknown_commit_bits(findings, commit, where(page + layout.commit_offset), ctx)
        if length > cap or page + data_off + length > pend:
            avail = pend - page - data_off
            _commit_too_long(findings, length, avail, where(page + layout.commit_offset), ctx)
            length = max(0, min(length, avail))
        if commit & MISSING_EVENTS:
            if commit & MISSING_STORED and page + data_off + length + lsize <= pend:
                n = (u64(buf, page + data_off + length)[0] if lsize == 8
                     else u32(buf, page + data_off + length)[0])
                _lost_events(out, n, where(page), ctx)
            else:
                _lost_events(out, None, where(page), ctx)
        if last_ts is not None and page_ts < last_ts:
            findings.append(Finding("warning", "time_backwards",
                                    f"page timestamp {page_ts} is before the previous event {last_ts}",
                                    where(page), dict(ctx)))
        ts = page_ts
        base = page + data_off
        nw = length >> 2
        # The page's data as a list of u32 words: one C-level conversion per page,
        # then plain list indexing per event (the hot loop).
        words = array("I")
        if nw:
            words.frombytes(buf[base:base + 4 * nw])
            if swap:
                words.byteswap()
        j = 0
        while j < nw:
            h = words[j]
            if big:
                tl, delta = h >> 27, h & 0x7FFFFFF
            else:
                tl, delta = h & 0x1F, h >> 5
            if 0 < tl <= 28:
                if j + 1 + tl > nw:
                    findings.append(Finding("error", "truncated_event",
                                            f"event of {tl * 4} bytes runs past the page's data",
                                            where(base + 4 * j), dict(ctx)))
                    break
                ts = (ts + delta) & _U64
                ts_append(ts)
                off_append(base + 4 * j + 4)
                len_append(tl << 2)
                j += 1 + tl
            elif tl == 0:
                if j + 2 > nw:
                    findings.append(Finding("error", "truncated_event", "length word past the page's data",
                                            where(base + 4 * j), dict(ctx)))
                    break
                ln = words[j + 1]
                n = ((ln - 4) + 3) & ~3 if ln >= 4 else -1
                if n < 0 or 4 * (j + 2) + n > length:
                    findings.append(Finding("error", "truncated_event",
                                            f"long event length {ln} does not fit the page's data",
                                            where(base + 4 * j), dict(ctx)))
                    break
                ts = (ts + delta) & _U64
                ts_append(ts)
                off_append(base + 4 * j + 8)
                len_append(n)
                j += 2 + (n >> 2)
            elif tl == 29:
                if delta == 0 or j + 2 > nw:
                    break  # rest of the page unused
                ln = words[j + 1]
                if ln < 4 or 4 * (j + 1) + ln > length or ln & 3:
                    findings.append(Finding("error", "bad_padding",
                                            f"discarded event length {ln} does not fit the page",
                                            where(base + 4 * j), dict(ctx)))
                    break
                j += 1 + (ln >> 2)
            else:  # 30 time extend, 31 absolute timestamp: one more word
                if j + 2 > nw:
                    findings.append(Finding("error", "truncated_event", "time extend/stamp past the page's data",
                                            where(base + 4 * j), dict(ctx)))
                    break
                if tl == 30:
                    ts = (ts + (words[j + 1] << 27) + delta) & _U64
                else:
                    ts = ((words[j + 1] << 27) | delta) | (ts & ~((1 << 59) - 1))
                j += 2
        last_ts = ts
        page += page_size
    return out


_BIG = 1 << 40  # "no next event": larger than any page


#: Fewer pages than this in a CPU stream: the per-event walk is faster.  The vector walk costs
#: one NumPy step (~50 us on short arrays) per event position in a page whatever the number of
#: pages, the per-event walk ~1 us per event, so they cross near 100 pages whatever the events
#: per page (measured: 94 pages 2.6 vs 2.0 ms, 188 pages 2.9 vs 7.6 ms; the real and corpus
#: trace.dat files, mostly under 100 pages a CPU, walk 2-40x faster per event; benchmarks/README.md,
#: "trace.dat page walk").
VECTOR_MIN_PAGES = 128


def _page_count(start: int, end: int, page_size: int, data_off: int) -> int:
    """Pages that begin in ``[start, end)`` with at least their header present (the last may be
    partial)."""
    if page_size <= 0 or end - start < data_off:
        return 0
    return max(0, (end - start - data_off) // page_size + 1)


def walk_cpu(buf, start: int, size: int, page_size: int, layout: PageLayout, big: bool,
             cpu: int, file_offset_of=None, instance: str | None = None) -> CpuRecords:
    """Walk the pages in ``buf[start:start+size]``: :func:`walk_cpu_vector` for a stream of at least
    :data:`VECTOR_MIN_PAGES` pages, else :func:`walk_cpu_py` with its sequences as NumPy arrays.
    The two give the same records and findings (tests/test_ftrace_dat_golden.py)."""
    npages = _page_count(start, min(start + size, len(buf)), page_size, layout.data_offset)
    if npages >= VECTOR_MIN_PAGES:
        return walk_cpu_vector(buf, start, size, page_size, layout, big, cpu, file_offset_of, instance)
    out = walk_cpu_py(buf, start, size, page_size, layout, big, cpu, file_offset_of, instance)
    if out.ts:
        out.ts = np.array(out.ts, dtype=np.uint64)
        out.offsets = np.array(out.offsets, dtype=np.int64)
        out.lengths = np.array(out.lengths, dtype=np.int64)
    return out


def walk_cpu_vector(buf, start: int, size: int, page_size: int, layout: PageLayout, big: bool,
                    cpu: int, file_offset_of=None, instance: str | None = None) -> CpuRecords:
    """Walk the pages in ``buf[start:start+size]``, all pages at once with NumPy.

    Every 4-byte word of the CPU data is classified as if it were an event
    header, giving the index of the next header; the event chains of all
    pages are then followed in parallel (one NumPy step per event position
    in a page), and the timestamps are one segmented cumulative sum.  Same
    results and findings as :func:`walk_cpu_py`, in the same order.
    """
    data_off = layout.data_offset
    if (page_size % 4 or data_off % 4 or page_size <= data_off or layout.commit_size not in (4, 8)
            or layout.ts_size not in (4, 8)):
        return walk_cpu_py(buf, start, size, page_size, layout, big, cpu, file_offset_of, instance)
    out = CpuRecords(cpu, buf)
    where = file_offset_of or (lambda p: p)
    ctx = {"cpu": cpu} if instance is None else {"cpu": cpu, "instance": instance}
    findings = out.findings
    end_all = min(start + size, len(buf))
    if start + size > len(buf):
        findings.append(Finding("error", "cpu_data_truncated",
                                f"CPU {cpu} data claims {size} bytes, {max(0, len(buf) - start)} present",
                                where(start), dict(ctx)))
    npages = _page_count(start, end_all, page_size, data_off)
    if npages == 0:
        return out
    e = ">" if big else "<"
    nwords = (end_all - start) // 4
    w = np.frombuffer(buf, dtype=e + "u4", count=nwords, offset=start)
    u8 = np.frombuffer(buf, dtype=np.uint8, count=end_all - start, offset=start)
    pstart = np.arange(npages, dtype=np.int64) * page_size          # page offsets relative to start
    lsize = layout.commit_size

    def gather(offs: np.ndarray, width: int) -> np.ndarray:
        idx = offs[:, None] + np.arange(width, dtype=np.int64)[None, :]
        return np.ascontiguousarray(u8[idx]).view(e + ("u8" if width == 8 else "u4")).reshape(-1)

    page_ts = gather(pstart + layout.ts_offset, layout.ts_size).astype(np.uint64)
    commit = gather(pstart + layout.commit_offset, lsize).astype(np.uint64)
    length = (commit & np.uint64(COMMIT_MASK)).astype(np.int64)
    pend = np.minimum(pstart + page_size, end_all - start)             # end of each page's bytes
    avail = pend - pstart - data_off
    # per-page checks, in page order, exactly as the reference walk reports them
    zero = (page_ts == 0) & (commit == 0) & (pstart + page_size <= end_all - start)
    unknown_bits = (commit & ~np.uint64(COMMIT_MASK | MISSING_EVENTS | MISSING_STORED)
                    & np.uint64((1 << (8 * lsize)) - 1)) != 0
    over = (length > page_size - data_off) | (length > avail)
    length = np.where(over, np.maximum(0, np.minimum(length, avail)), length)
    missing = (commit & np.uint64(MISSING_EVENTS)) != 0
    flagged = np.nonzero(zero | unknown_bits | over | missing)[0].tolist()
    skip = np.zeros(npages, dtype=bool)
    for k in flagged:
        page = start + int(pstart[k])
        if zero[k]:
            skip[k] = True
            _zero_page(findings, bool(u8[pstart[k]:pstart[k] + page_size].any()), where(page), ctx)
            continue
        if unknown_bits[k]:
            _unknown_commit_bits(findings, int(commit[k]), where(page + layout.commit_offset), ctx)
        if over[k]:
            raw_len = int(commit[k]) & COMMIT_MASK
            _commit_too_long(findings, raw_len, int(avail[k]), where(page + layout.commit_offset), ctx)
        if missing[k]:
            at = int(pstart[k]) + data_off + int(length[k])
            if int(commit[k]) & MISSING_STORED and at + lsize <= int(pend[k]):
                n = int(gather(np.array([at]), lsize)[0])
                _lost_events(out, n, where(page), ctx)
            else:
                _lost_events(out, None, where(page), ctx)
    out.pages = npages
    live = np.nonzero(~skip)[0]
    # Follow the event chains of all pages in parallel: one NumPy step per
    # event position, on the headers the chains actually reach.
    def fields_at(j: np.ndarray):
        h = w[j].astype(np.int64)
        nj = np.minimum(j + 1, nwords - 1)
        h1 = np.where(j + 1 < nwords, w[nj].astype(np.int64), 0)
        if big:
            return h >> 27, h & 0x7FFFFFF, h1
        return h & 0x1F, h >> 5, h1

    def step_of(t: np.ndarray, d: np.ndarray, h1: np.ndarray) -> np.ndarray:
        ln = ((h1 - 4) + 3) & ~3
        return np.where((t >= 1) & (t <= 28), 1 + t,
               np.where(t == 0, np.where(h1 >= 4, 2 + (ln >> 2), _BIG),
               np.where(t == 29, np.where((d == 0) | (h1 < 4) | (h1 & 3 != 0), _BIG, 1 + (h1 >> 2)), 2)))

    first = (pstart[live] + data_off) // 4
    dend = first + (length[live] >> 2)                               # word index where data ends
    chain: list[tuple[np.ndarray, ...]] = []
    cur, cend, cpage = first, dend, live
    while True:
        ok = cur < cend
        if not ok.all():
            cur, cend, cpage = cur[ok], cend[ok], cpage[ok]
        if len(cur) == 0:
            break
        t, d, h1 = fields_at(cur)
        chain.append((cur, cpage, t, d, h1))
        cur = cur + step_of(t, d, h1)
    if not chain:
        # no event headers at all: page timestamps can still go backwards
        _time_backwards(findings, live, page_ts, None, start, pstart, where, ctx, npages)
        _sort_findings(findings)
        return out
    # Step s holds the s-th element of every page still going, in page order, and a
    # page's chain only moves forward: element (page p, step s) goes to row
    # start[p] + s of the (page, position) order — a scatter, no sort.
    Pc = np.concatenate([c[1] for c in chain])
    counts = np.bincount(Pc, minlength=npages)
    pos = (np.cumsum(counts) - counts)[Pc] + np.repeat(np.arange(len(chain)), [len(c[0]) for c in chain])
    J, T, D, W1 = (np.empty(len(Pc), dtype=np.int64) for _ in range(4))
    for arr, k in ((J, 0), (T, 2), (D, 3), (W1, 4)):
        arr[pos] = np.concatenate([c[k] for c in chain])
    # Temporaries the size of the CPU's events are dropped as soon as they are used:
    # a first call in a fresh process pays for every page its peak touches.
    del chain, pos
    P = np.repeat(np.arange(npages, dtype=Pc.dtype), counts)
    del Pc
    long_j = ((W1 - 4) + 3) & ~3
    pend_w = ((pstart + data_off) // 4 + (length >> 2))[P]            # data end of each element's page
    # the event at J must fit its page's data (a chain element may overrun: it is then the last)
    size_w = np.where((T >= 1) & (T <= 28), 1 + T, np.where(T == 0, 2 + (np.maximum(long_j, 0) >> 2), 2))
    bad_zero = (T == 0) & ((J + 2 > pend_w) | (W1 < 4))
    bad = np.where((T >= 1) & (T <= 28), J + size_w > pend_w,
          np.where(T == 0, bad_zero | (J + size_w > pend_w),
          np.where(T == 29, False, J + 2 > pend_w)))
    pad_bad = (T == 29) & (D != 0) & (J + 2 <= pend_w) & ((W1 < 4) | (W1 & 3 != 0) | (J + 1 + (W1 >> 2) > pend_w))
    del size_w, bad_zero
    for k in np.nonzero(bad | pad_bad)[0].tolist():
        j, t = int(J[k]), int(T[k])
        pos = start + 4 * j
        if pad_bad[k]:
            findings.append(Finding("error", "bad_padding",
                                    f"discarded event length {int(W1[k])} does not fit the page", where(pos),
                                    dict(ctx)))
        elif 1 <= t <= 28:
            findings.append(Finding("error", "truncated_event", f"event of {t * 4} bytes runs past the page's data",
                                    where(pos), dict(ctx)))
        elif t == 0:
            if j + 2 > int(pend_w[k]):
                msg = "length word past the page's data"
            else:
                msg = f"long event length {int(W1[k])} does not fit the page's data"
            findings.append(Finding("error", "truncated_event", msg, where(pos), dict(ctx)))
        else:
            findings.append(Finding("error", "truncated_event", "time extend/stamp past the page's data",
                                    where(pos), dict(ctx)))
    keep = ~bad
    J, P, T, D, W1, long_j = J[keep], P[keep], T[keep], D[keep], W1[keep], long_j[keep]
    del keep, bad, pad_bad, pend_w
    if len(J) == 0:
        _time_backwards(findings, live, page_ts, None, start, pstart, where, ctx, npages)
        _sort_findings(findings)
        return out
    # timestamps: segmented cumulative sum (segments start at each page and each absolute stamp)
    U = np.uint64
    inc = np.where(T <= 28, D, np.where(T == 30, (W1 << 27) + D, 0)).astype(U)
    newpage = np.ones(len(J), dtype=bool)
    newpage[1:] = P[1:] != P[:-1]
    is_abs = T == 31
    seg_start = newpage | is_abs
    abs_val = ((W1.astype(U) << U(27)) | D.astype(U)) | (page_ts[P] & ~U((1 << 59) - 1))
    base = np.where(is_abs, abs_val, page_ts[P])
    inc = np.where(is_abs, U(0), inc)
    csum = np.cumsum(inc, dtype=U)
    seg_idx = np.maximum.accumulate(np.where(seg_start, np.arange(len(J)), 0))
    del seg_start, abs_val
    before = csum[seg_idx] - inc[seg_idx]
    csum -= before
    del before, inc
    ts = base[seg_idx] + csum
    del base, seg_idx, csum
    if is_abs.any():
        _fix_abs_high_bits(ts, P, T, D, W1, page_ts, is_abs)
    if npages > 1:
        lp = np.nonzero(np.append(P[1:] != P[:-1], True))[0]
        last = page_ts.copy()
        last[P[lp]] = ts[lp]
        _time_backwards(findings, live, page_ts, last, start, pstart, where, ctx, npages)
    data = T <= 28
    Jd, Td, Ld = J[data], T[data], long_j[data]
    out.ts = ts[data]
    out.offsets = start + 4 * (Jd + np.where(Td == 0, 2, 1))
    out.lengths = np.where(Td == 0, np.maximum(Ld, 0), Td * 4)
    _sort_findings(findings)
    return out


def _fix_abs_high_bits(ts: np.ndarray, P: np.ndarray, T: np.ndarray, D: np.ndarray, W1: np.ndarray,
                       page_ts: np.ndarray, is_abs: np.ndarray) -> None:
    """An absolute stamp keeps the top 5 bits of the running time before it.

    The vector pass took them from the page timestamp; they differ only when
    time extends carried the running time past a 2**59 boundary (damaged or
    pathological data).  Those pages are redone one element at a time, as the
    reference walk does.
    """
    U = np.uint64
    hi = ~U((1 << 59) - 1)
    prev = np.empty_like(ts)
    prev[0] = page_ts[P[0]]
    prev[1:] = np.where(P[1:] == P[:-1], ts[:-1], page_ts[P[1:]])
    odd = is_abs & ((prev & hi) != (page_ts[P] & hi))
    if not odd.any():
        return
    mask64 = (1 << 64) - 1
    for page in np.unique(P[odd]).tolist():
        run = int(page_ts[page])
        for k in np.nonzero(P == page)[0].tolist():
            t, d, w1 = int(T[k]), int(D[k]), int(W1[k])
            if t <= 28:
                run += d
            elif t == 30:
                run += (w1 << 27) + d
            else:
                run = ((w1 << 27) | d) | (run & ~((1 << 59) - 1))
            ts[k] = run & mask64


def _time_backwards(findings: list[Finding], live: np.ndarray, page_ts: np.ndarray, last: np.ndarray | None,
                    start: int, pstart: np.ndarray, where, ctx: dict, npages: int) -> None:
    """Time going backwards between pages, as the reference walk reports it: a page's
    timestamp below the last time of the previous live page (``last[page]``: its last
    event's, or its own page timestamp when it yielded none; None: no page yielded any)."""
    if npages < 2 or len(live) < 2:
        return
    prev = (page_ts if last is None else last)[live[:-1]]
    for k in np.nonzero(page_ts[live[1:]] < prev)[0].tolist():
        pts, pv = int(page_ts[live[k + 1]]), int(prev[k])
        findings.append(Finding("warning", "time_backwards", f"page timestamp {pts} is before the previous event {pv}",
                                where(start + int(pstart[live[k + 1]])), dict(ctx)))


# The per-page findings, shared by both walks (they must report alike: the tests hold
# walk_cpu equal to walk_cpu_py, findings included).

def _zero_page(findings: list[Finding], has_data: bool, at: int, ctx: dict) -> None:
    if has_data:
        findings.append(Finding("warning", "page_no_header",
                                "page header is zero but the page holds data; page skipped", at, dict(ctx)))
    else:
        findings.append(Finding("warning", "zeroed_page", "page is all zero; skipped", at, dict(ctx)))


def _unknown_commit_bits(findings: list[Finding], commit: int, at: int, ctx: dict) -> None:
    findings.append(Finding("warning", "bad_commit", f"commit 0x{commit:x} has unknown bits set", at, dict(ctx)))


def _commit_too_long(findings: list[Finding], length: int, avail: int, at: int, ctx: dict) -> None:
    findings.append(Finding("error", "bad_commit", f"commit says {length} data bytes, the page holds at most {avail}; "
                            "decoding what fits", at, dict(ctx)))


def _lost_events(out: CpuRecords, n: int | None, at: int, ctx: dict) -> None:
    """Events lost before a page: ``n`` when the page stores the count, else None."""
    if n is None:
        out.lost_unknown += 1
        out.findings.append(Finding("warning", "lost_events", "events lost before this page (count not stored)",
                                    at, dict(ctx, count=None)))
    else:
        out.lost += n
        out.findings.append(Finding("warning", "lost_events", f"{n} events lost before this page",
                                    at, dict(ctx, count=n)))


def _sort_findings(findings: list[Finding]) -> None:
    """Report findings in file order, as the reference walk does."""
    findings.sort(key=lambda f: (f.offset if f.offset is not None else -1))
