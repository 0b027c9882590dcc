# SPDX-License-Identifier: GPL-2.0-only
"""QEMU ``log`` backend text (qemu-trace-events.md §1.2)."""
from __future__ import annotations

import calendar
import re
from datetime import datetime
from typing import Iterator

from dissect.common.findings import Finding
from dissect.ftrace import text_scan as _scan
from dissect.ftrace.event import Event
from dissect.ftrace.text_base import _SCALE, TextTrace

__all__ = ["QemuLog"]

# QEMU log backend: "tid@sec.usec:event args", "<ISO-8601> event args", "event args"
_QEMU_RE = re.compile(
    r"^(?:(?:(\d+)@(\d+)\.(\d+):|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z? )([A-Za-z_][A-Za-z0-9_]*)"
    r"(?: ([^\n]*))?|([a-z][A-Za-z0-9_]*)(?: ([^\n]*))?|([^\n]*))$", re.M)


class QemuLog(TextTrace):
    """QEMU ``log`` backend text (qemu-trace-events.md §1.2)."""

    source = "qemu-log"
    _bulk_parser = staticmethod(_scan.qemu_block)

    def _run(self) -> Iterator[Event | Finding]:
        src = self.source
        iso_cache: dict[str, int] = {}
        scale_of = _SCALE
        for lines, starts in self._line_chunks():
            if lines is None:  # a scanned Block: as it is (dataframe) or as events
                yield self._scanned(*starts)  # type: ignore[misc]
                continue
            for line, here in zip(lines, starts):
                at = line.find("@", 1, 12)
                if at > 0:
                    colon = line.find(":", at)
                    dot = line.find(".", at, colon)
                    name, sp, args = line[colon + 1:].partition(" ")
                    scale = scale_of.get(colon - dot - 1) if dot > 0 else None
                    if scale is not None and name.isidentifier():
                        try:
                            tid = int(line[:at])
                            ts = int(line[at + 1:dot] + line[dot + 1:colon]) * scale
                        except ValueError:
                            tid = -1
                        if tid >= 0:
                            if self.precision_ns is None:
                                self.precision_ns = scale
                            yield Event(src, ts, None, tid, None, "qemu", name, {},
                                        line[colon + 1:], here)
                            continue
                if not line:
                    continue
                m = _QEMU_RE.match(line)
                tid, sec, usec, iso, isofrac, name, args, bname, bargs, other = m.groups()  # type: ignore[union-attr]
                if name is not None and iso is not None:
                    secs = iso_cache.get(iso)
                    if secs is None:
                        try:
                            secs = calendar.timegm(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S").timetuple())
                        except ValueError:
                            f = self._unparsed(line, here, "a QEMU trace line (bad date)")
                            if f is not None:
                                yield f
                            continue
                        iso_cache[iso] = secs
                    scale = scale_of.get(len(isofrac), 1) if isofrac else 1_000_000_000
                    ts = secs * 1_000_000_000 + (int(isofrac) * scale if isofrac else 0)
                    if self.precision_ns is None or scale > self.precision_ns:
                        self.precision_ns = scale
                    yield Event(src, ts, None, None, None, "qemu", name, {},
                                name + " " + args if args is not None else name, here)
                elif name is not None:
                    scale = scale_of.get(len(usec), 1)
                    if self.precision_ns is None:
                        self.precision_ns = scale
                    yield Event(src, int(sec + usec) * scale, None, int(tid), None, "qemu", name, {},
                                name + " " + args if args is not None else name, here)
                elif bname is not None:
                    yield Event(src, None, None, None, None, "qemu", bname, {},  # type: ignore[arg-type]
                                bname + " " + bargs if bargs is not None else bname, here)
                else:
                    f = self._unparsed(line, here, "a QEMU trace line", "info")
                    if f is not None:
                        yield f
