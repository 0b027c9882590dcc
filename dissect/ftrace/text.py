# SPDX-License-Identifier: GPL-2.0-only
"""Readers of text traces: tracefs ``trace``/``trace_pipe``, ``trace-cmd report``, QEMU's log backend.

Spec: trace-dat.md §7 (print/raw_data), §8 (text forms), §9 (clocks);
qemu-trace-events.md §1.2 (log backend).  Each reader yields the same
:class:`~dissect.ftrace.event.Event` objects as the trace.dat reader, with
the precision the text carries, plus :class:`Finding` s for lines it cannot
read (with line number and byte offset) and for lost events.

What text keeps and what it loses (decisions, docs/trace-events.md):

- Timestamps: tracefs and default ``trace-cmd report`` print microseconds,
  rounded to nearest (the kernel and trace-cmd add 500 ns before dividing);
  ``report -t`` prints nanoseconds.  ``ts_ns`` is the printed value scaled
  to ns; ``precision_ns`` on the reader says how fine it is.
- ``print``: ``fields = {ip, buf}`` where ``ip`` is None (text prints the
  symbol, not the address; the symbol stays in ``text``) and ``buf`` the
  marker text plus the ``"\\n"`` the kernel always stores; ``text`` is what
  trace-cmd renders after ``print:``: ``"tracing_mark_write: <text>"``.
  A marker holding a newline continues on the following, unprefixed line
  (tracefs prints it that way); it is joined back.
- ``raw_data``: ``fields = {id, buf}`` (buf bytes, padded to 4 as stored);
  ``text`` in trace-cmd's form ``"# <id> <hex bytes>"``.
- Other events: ``fields`` from ``key=value`` pairs (decimal integers as
  ints); a payload that is not ``key=value`` is kept in ``text``;
  ``system`` is known only for ftrace's own events and ``sched_*``.
- QEMU log lines: ``system "qemu"``, ``event`` = the QEMU event name,
  ``pid`` = the thread id, ``text`` = ``"<event> <args>"`` (the same text
  the ftrace backend would have written), ``ts_ns`` wall clock (None for
  lines without a timestamp prefix).
"""
from __future__ import annotations

import os
import re
from typing import BinaryIO, Iterator

from dissect.common.findings import Finding
from dissect.ftrace.event import Event
from dissect.ftrace.text_base import MAX_LINE_FINDINGS, TextTrace
from dissect.ftrace.text_qemu import _QEMU_RE, QemuLog
from dissect.ftrace.text_report import _REPORT_RE, ReportText
from dissect.ftrace.text_tracefs import _FTRACE_RE, FtraceText
from dissect.ftrace.utf8 import looks_binary

__all__ = ["read_ftrace_text", "read_report_text", "read_qemu_log", "read_text", "TextTrace",
           "FtraceText", "ReportText", "QemuLog", "sniff_text_kind", "looks_binary", "events_for_writer",
           "MAX_LINE_FINDINGS"]


def read_ftrace_text(path: str | os.PathLike | BinaryIO) -> FtraceText:
    """Events and findings of a tracefs ``trace`` / ``trace_pipe`` capture."""
    return FtraceText(path)


def read_report_text(path: str | os.PathLike | BinaryIO) -> ReportText:
    """Events and findings of ``trace-cmd report`` text (``-t`` or not)."""
    return ReportText(path)


def read_qemu_log(path: str | os.PathLike | BinaryIO) -> QemuLog:
    """Events and findings of a QEMU log-backend file."""
    return QemuLog(path)


_READERS = {"ftrace-text": FtraceText, "trace-cmd-report": ReportText, "qemu-log": QemuLog}


def sniff_text_kind(head: bytes) -> str | None:
    """Which text form ``head`` (the first KB of a file) is, or None (also for binary data,
    :func:`looks_binary`)."""
    if looks_binary(head):
        return None
    text = head.decode("utf-8", "backslashreplace")
    lines = [ln for ln in text.splitlines()[:64] if ln.strip()]
    if not lines:
        return None
    first = lines[0].strip()
    if re.match(r"^cpus=\d+$", first) or first.startswith("version ="):
        return "trace-cmd-report"
    if first.startswith("# tracer:"):
        return "ftrace-text"
    body = [ln for ln in lines if not ln.startswith("#")]
    votes = {k: 0 for k in _READERS}
    for ln in body:
        m = _FTRACE_RE.match(ln)
        if m and m.group(1) is not None:
            votes["ftrace-text"] += 1
        m = _REPORT_RE.match(ln)
        if m and m.group(2) is not None and not ln.lstrip().startswith(("tracing_mark_write", "#")):
            votes["trace-cmd-report"] += 1
        m = _QEMU_RE.match(ln)
        if m and (m.group(6) or m.group(8)):
            votes["qemu-log"] += 1
    best = max(votes, key=lambda k: votes[k])
    return best if votes[best] * 2 > len(body) else None


def read_text(path: str | os.PathLike, kind: str | None = None) -> TextTrace:
    """The reader for ``kind`` (detected from the content when None)."""
    if kind is None:
        with open(path, "rb") as f:
            kind = sniff_text_kind(f.read(8192))
        if kind is None:
            raise ValueError(f"{path}: not a known text trace form")
    return _READERS[kind](path)


def events_for_writer(events: Iterator[Event | Finding] | list[Event | Finding],
                      long_size: int = 8) -> Iterator[Event]:
    """Text-read events made ready for :func:`dissect.ftrace.writer.write_trace_dat`.

    Text has the symbol of a print's ``ip``, the binary format an address: a
    marker's ``tracing_mark_write`` becomes the writer's address for it (its
    written kallsyms resolves it back, so ``trace-cmd report`` and
    KernelShark show the same text); findings are dropped.
    """
    from dissect.ftrace.writer import tracing_mark_write_ip

    ip = tracing_mark_write_ip(long_size)
    for ev in events:
        if not isinstance(ev, Event):
            continue
        if ev.event == "print" and not isinstance(ev.fields.get("ip"), int):
            ev = Event(ev.source, ev.ts_ns, ev.cpu, ev.pid, ev.comm, ev.system, ev.event,
                       dict(ev.fields, ip=ip), ev.text, ev.offset, ev.instance)
        yield ev
