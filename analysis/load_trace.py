# SPDX-License-Identifier: GPL-2.0-only
"""Trace captures → contract ``event`` units, straight from the readers.

Used by :func:`analysis.load.iter_units` when the trace emitter
(``analysis.emit.trace``) is not available: the same objects the emitter
yields (json-lines.md "Traces": ``Event.to_json()`` plus ``qemu``), built
from F's text readers / E's trace.dat reader and the QEMU trace-event
catalogue (``dissect.qemu.trace_events``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from dissect.common.findings import Finding


def iter_trace_units(path: Path, kind: str) -> Iterator[dict[str, Any]]:
    from dissect.qemu.trace_events import Catalogue

    cat = Catalogue.default()
    if kind == "trace-dat":
        from dissect.ftrace.tracedat import read_trace_dat

        td = read_trace_dat(path)
        items: Any = td.events()
        late = lambda: list(getattr(td, "findings", []) or [])  # noqa: E731
    else:
        from dissect.ftrace.text import read_text

        items = read_text(path, kind)
        late = lambda: []  # noqa: E731
    for e in items:
        if isinstance(e, Finding):
            yield e.to_json()
            continue
        obj = e.to_json()
        q = None
        for text in _candidates(e):
            got = cat.parse(text)
            if got is not None and (q is None or got.matched):
                q = got  # a known event name; args stay empty when no format variant fits
            if q is not None and q.matched:
                break
        obj["qemu"] = {"event": q.event, "args": q.args} if q is not None else None
        yield obj
    for f in late():
        yield f.to_json()


def _candidates(e: Any) -> list[str]:
    """Texts that may hold a QEMU trace line: a print event's buffer (ftrace
    backend, via trace_marker), else the rendered text without the
    ``tracing_mark_write:`` prefix."""
    out = []
    buf = e.fields.get("buf") if isinstance(e.fields, dict) else None
    if isinstance(buf, str):
        out.append(buf.rstrip("\n"))
    if e.text:
        t = e.text
        if t.startswith("tracing_mark_write: "):
            t = t[len("tracing_mark_write: "):]
        out.append(t.rstrip("\n"))
    return out
