# SPDX-License-Identifier: GPL-2.0-only
"""Device pre-copy sizes for ``migtrace watch --qemu-log FILE``: the source QEMU's log-backend
file (``-D FILE`` with the ``vfio_*`` trace events enabled), read as it grows.

The sizes are what QEMU's VFIO code reports about each device's pre-copy data
(``VFIO_MIG_GET_PRECOPY_INFO``): ``vfio_save_iterate`` (9.x/10.x: initial and dirty
size), ``vfio_state_pending_exact`` / ``_estimate`` (the same two sizes, 8.1+).  Lines
are typed with the trace-events catalogue (dissect/qemu/trace_events.py).  The log's
``pid@seconds.micro:`` stamps are the host's realtime clock, as tcpdump's packet times on
the same host, so a report belongs to the pass whose window holds its time.
"""
from __future__ import annotations

import re
from collections import deque
from typing import Any

from dissect.qemu.trace_events import parse_event

_EVENTS = ("vfio_save_iterate", "vfio_state_pending_exact", "vfio_state_pending_estimate")
_LINE = re.compile(r"^\d+@(\d+)\.(\d{1,9}):(\w+)(.*)$")
#: Longest line kept while waiting for its newline (a log line is a few hundred bytes).
MAX_LINE = 1 << 16


def _device(trace_name: str, devices: set[str]) -> str:
    """The capture's device name (vmstate idstr, e.g. ``0000:00:05.0/vfio``) for QEMU's
    VFIO device name (``0000:00:05.0``), when the capture has it."""
    for d in devices:
        if d == trace_name or d.split("/", 1)[0] == trace_name:
            return d
    return trace_name


class QemuLogSizes:
    """Follows a QEMU log file; ``upto(ts_ns)`` gives the latest sizes per device at that time."""

    def __init__(self, path: str) -> None:
        self.f = open(path, "rb")
        self._rest = b""
        self._queue: deque[tuple[int, str, int, int]] = deque()  # (ts_ns, device, initial, dirty)
        self.latest: dict[str, dict[str, Any]] = {}
        self.lines = 0

    def poll(self) -> None:
        """Read what was appended (complete lines only)."""
        data = self.f.read()
        if not data:
            return
        data = self._rest + data
        lines = data.split(b"\n")
        self._rest = lines.pop()
        if len(self._rest) > MAX_LINE:
            self._rest = b""
        for raw in lines:
            self._line(raw.decode("utf-8", "replace"))

    def _line(self, line: str) -> None:
        self.lines += 1
        m = _LINE.match(line)
        if m is None or m.group(3) not in _EVENTS:
            return
        sec, frac, name, rest = m.groups()
        ev = parse_event(name + rest)
        if ev is None or not ev.matched:
            return
        a = ev.args
        if "precopy_init_size" not in a or "precopy_dirty_size" not in a:
            return  # the 7.2 forms carry no pre-copy sizes
        ts = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0"))
        self._queue.append((ts, str(a.get("name")), int(a["precopy_init_size"]), int(a["precopy_dirty_size"])))

    def upto(self, ts_ns: int | None, devices: set[str]) -> dict[str, dict[str, Any]] | None:
        """Per device, the last sizes reported at or before ``ts_ns`` (None: nothing reported yet)."""
        self.poll()
        q = self._queue
        while q and (ts_ns is None or q[0][0] <= ts_ns):
            ts, name, init, dirty = q.popleft()
            self.latest[_device(name, devices)] = {"initial": init, "dirty": dirty, "ts_ns": ts}
        return {d: dict(v) for d, v in self.latest.items()} or None

    def close(self) -> None:
        self.f.close()
