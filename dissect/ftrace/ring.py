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
from dataclasses import dataclass, field

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
    """All data records of one CPU stream, as parallel lists (offsets into ``buf``)."""

    cpu: int
    buf: bytes | memoryview
    ts: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    lost: int = 0
    lost_unknown: int = 0
    pages: int = 0
    findings: list[Finding] = field(default_factory=list)


def walk_cpu(buf, start: int, size: int, page_size: int, layout: PageLayout, big: bool,
             cpu: int, file_offset_of=None, instance: str | None = None) -> CpuRecords:
    """Walk the pages in ``buf[start:start+size]``.

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
    end_all = min(start + size, len(buf))
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
            if any(bytes(buf[page:page + page_size])):
                findings.append(Finding("warning", "page_no_header",
                                        "page header is zero but the page holds data; page skipped",
                                        where(page), dict(ctx)))
            else:
                findings.append(Finding("warning", "zeroed_page", "page is all zero; skipped",
                                        where(page), dict(ctx)))
            page += page_size
            continue
        if commit & ~(COMMIT_MASK | MISSING_EVENTS | MISSING_STORED) & ((1 << (8 * lsize)) - 1):
            findings.append(Finding("warning", "bad_commit",
                                    f"commit 0x{commit:x} has unknown bits set", where(page + layout.commit_offset),
                                    dict(ctx)))
        if length > cap or page + data_off + length > pend:
            avail = pend - page - data_off
            findings.append(Finding("error", "bad_commit",
                                    f"commit says {length} data bytes, the page holds at most {avail}; "
                                    "decoding what fits", where(page + layout.commit_offset), dict(ctx)))
            length = max(0, min(length, avail))
        if commit & MISSING_EVENTS:
            if commit & MISSING_STORED and page + data_off + length + lsize <= pend:
                n = (u64(buf, page + data_off + length)[0] if lsize == 8
                     else u32(buf, page + data_off + length)[0])
                out.lost += n
                findings.append(Finding("warning", "lost_events", f"{n} events lost before this page",
                                        where(page), dict(ctx, count=n)))
            else:
                out.lost_unknown += 1
                findings.append(Finding("warning", "lost_events",
                                        "events lost before this page (count not stored)",
                                        where(page), dict(ctx, count=None)))
        if last_ts is not None and page_ts < last_ts:
            findings.append(Finding("warning", "time_backwards",
                                    f"page timestamp {page_ts} is before the previous event {last_ts}",
                                    where(page), dict(ctx)))
        ts = page_ts
        i = page + data_off
        end = i + length
        while i + 4 <= end:
            h = u32(buf, i)[0]
            if big:
                tl, delta = h >> 27, h & 0x7FFFFFF
            else:
                tl, delta = h & 0x1F, h >> 5
            if 0 < tl <= 28:
                ts += delta
                n = tl << 2
                if i + 4 + n > end:
                    findings.append(Finding("error", "truncated_event",
                                            f"event of {n} bytes runs past the page's data", where(i), dict(ctx)))
                    break
                ts_list.append(ts)
                off_list.append(i + 4)
                len_list.append(n)
                i += 4 + n
            elif tl == 0:
                if i + 8 > end:
                    findings.append(Finding("error", "truncated_event", "length word past the page's data",
                                            where(i), dict(ctx)))
                    break
                ln = u32(buf, i + 4)[0]
                n = ((ln - 4) + 3) & ~3 if ln >= 4 else -1
                if n < 0 or i + 8 + n > end:
                    findings.append(Finding("error", "truncated_event",
                                            f"long event length {ln} does not fit the page's data",
                                            where(i), dict(ctx)))
                    break
                ts += delta
                ts_list.append(ts)
                off_list.append(i + 8)
                len_list.append(n)
                i += 8 + n
            elif tl == 29:
                if delta == 0:
                    break  # rest of the page unused
                if i + 8 > end:
                    break
                ln = u32(buf, i + 4)[0]
                if ln < 4 or i + 4 + ln > end:
                    findings.append(Finding("error", "bad_padding",
                                            f"discarded event length {ln} does not fit the page",
                                            where(i), dict(ctx)))
                    break
                i += 4 + ln
            elif tl == 30:
                if i + 8 > end:
                    findings.append(Finding("error", "truncated_event", "time extend past the page's data",
                                            where(i), dict(ctx)))
                    break
                ts += (u32(buf, i + 4)[0] << 27) + delta
                i += 8
            else:  # 31: absolute timestamp
                if i + 8 > end:
                    findings.append(Finding("error", "truncated_event", "time stamp past the page's data",
                                            where(i), dict(ctx)))
                    break
                ts = ((u32(buf, i + 4)[0] << 27) | delta) | (ts & ~((1 << 59) - 1))
                i += 8
        last_ts = ts
        page += page_size
    return out
