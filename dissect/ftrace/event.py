# SPDX-License-Identifier: GPL-2.0-only
"""The event object every ftrace reader (binary or text) yields."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Source = Literal["trace-dat", "ftrace-text", "trace-cmd-report", "qemu-log"]


@dataclass(slots=True)
class Event:
    """One trace event, with the precision its source carries.

    ``fields`` holds the event's own fields by their format-file names
    (``print``: ``ip``, ``buf``; ``raw_data``: ``id``, ``buf`` as bytes).
    ``text`` is the rendered text of print-like events (print, bprint,
    bputs, and QEMU log lines), else None.  ``offset`` is where the event
    starts in its file, for findings.
    """

    source: Source
    ts_ns: int
    cpu: int | None
    pid: int | None
    comm: str | None
    system: str | None
    event: str
    fields: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    offset: int | None = None
    instance: str | None = None  # trace.dat buffer instance; None = top level

    def to_json(self) -> dict[str, Any]:
        """The contract's ``event`` object, without ``qemu`` (the emitter adds it)."""
        fields = {k: (v.hex() if isinstance(v, (bytes, bytearray, memoryview)) else v)
                  for k, v in self.fields.items()}
        return {
            "kind": "event",
            "source": self.source,
            "ts_ns": self.ts_ns,
            "cpu": self.cpu,
            "pid": self.pid,
            "comm": self.comm,
            "system": self.system,
            "event": self.event,
            "fields": fields,
            "text": self.text,
        }
