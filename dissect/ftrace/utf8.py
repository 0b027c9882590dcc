# SPDX-License-Identifier: GPL-2.0-only
"""Bytes that are not UTF-8 in the strings of a trace.dat: kept as ``\\xNN``, counted, reported.

The kernel stores comms, marker texts and ``%s`` arguments as raw bytes.  Every
string of an event (char fields, ``__data_loc`` strings, print ``buf``, bprint's
``%s`` arguments) is decoded with the error handler :data:`ERRORS`: Python's
``backslashreplace`` (byte 0xe9 → ``\\xe9``, as the text readers and the JSON
writer render such bytes) that also adds the bytes it replaced to :data:`BAD`.
Valid UTF-8 never reaches the handler, so the decoders pay nothing for it; the
event loop compares one counter per event, and the DataFrame build one per
event type and CPU, and only when it moved do they find which events and
fields held such bytes (:class:`Utf8Report` makes the findings, the same on
both paths).  The counter is process-wide: a decode in another thread can move
it, so a moved counter only starts a check of the event's own bytes, never a
finding by itself.

Metadata strings (cmdlines, options, event formats, …) are not in any hot loop:
:func:`metadata_text` decodes each and reports the ones that are not UTF-8.
:func:`looks_binary` is the text-vs-binary test of detection, which bytes that are
not UTF-8 must not decide.
"""
from __future__ import annotations

import codecs
from typing import Any

from dissect.common.findings import Finding

__all__ = ["ERRORS", "BAD", "bad_count", "looks_binary", "metadata_text", "Utf8Report", "MAX_EVENT_FINDINGS", "RAW_MAX"]

#: the ``errors=`` name of the counting ``backslashreplace`` handler
ERRORS = "migtrace.backslashreplace"
#: bytes that were not UTF-8, summed over every decode with :data:`ERRORS` in this process
BAD = [0]
#: Events reported one by one; the rest are counted in one ``invalid_utf8_events`` finding.
MAX_EVENT_FINDINGS = 100
#: Field values up to this many bytes keep their raw bytes (hex) in the finding.
RAW_MAX = 4096
#: Metadata strings up to this many bytes keep theirs (a name, an option; not a whole section).
META_RAW_MAX = 256


def _counting_backslashreplace(exc: UnicodeError) -> tuple[str, int]:
    if isinstance(exc, UnicodeDecodeError):
        BAD[0] += exc.end - exc.start
    return codecs.backslashreplace_errors(exc)


codecs.register_error(ERRORS, _counting_backslashreplace)


def bad_count(b: bytes) -> tuple[int, int]:
    """(bytes of ``b`` that are not UTF-8, index of the first) — (0, -1) for UTF-8."""
    try:
        b.decode("utf-8")
        return 0, -1
    except UnicodeDecodeError as e:
        first = e.start
    s = b.decode("utf-8", "surrogateescape")
    return sum(1 for ch in s if "\udc80" <= ch <= "\udcff"), first


#: C0 control bytes no text trace is made of (tab, newline, CR, form feed, vertical tab,
#: backspace and ESC do turn up in marker texts).
_CONTROL = bytes(sorted(set(range(32)) - set(b"\t\n\r\f\v\b\x1b")))


def looks_binary(head: bytes) -> bool:
    """Whether ``head`` (the start of a file) is binary data rather than text.

    Bytes that are not UTF-8 do not decide it: a comm or a marker may hold any
    bytes, and ``trace-cmd report`` and tracefs print them raw (``\\xNN`` once
    read).  A NUL does (no text trace holds one; the text readers refuse such
    input with ``text_binary_input``), and so does a head in which more than one
    byte in eight is another C0 control byte.
    """
    if b"\0" in head:
        return True
    return (len(head) - len(head.translate(None, _CONTROL))) * 8 > len(head)


def metadata_text(findings: list[Finding], data: bytes, what: str, at: int | None, **ctx: Any) -> str:
    """A metadata string of the file (cmdlines, options, formats, …) as text.  Bytes that are not
    UTF-8 become ``\\xNN`` as in the events, with an ``invalid_utf8_metadata`` finding at the
    string's offset (``section`` names it, ``column`` the first bad byte, ``count`` the bad bytes)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    n, first = bad_count(data)
    ctx = {"section": what, "column": first, "count": n, "raw": data.hex() if len(data) <= META_RAW_MAX else None,
           **ctx}
    findings.append(Finding("warning", "invalid_utf8_metadata",
                            f"{what}: {n} byte(s) not UTF-8 (first at byte {first}), shown as \\xNN", at, ctx))
    return data.decode("utf-8", "backslashreplace")


class Utf8Report:
    """The ``invalid_utf8`` findings of one file's events, whichever path decodes them.

    Each event (``(stream, record)`` key) is reported once however many passes
    decode it (:meth:`TraceDat.events` and :meth:`TraceDat.dataframe` share
    this): the first MAX_EVENT_FINDINGS one by one, in event order, then one
    ``invalid_utf8_events`` finding (made at the next one, its count kept up to
    date) at the offset of the first event not reported on its own.
    """

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        self.seen: set[tuple[int, int]] = set()
        self.more: Finding | None = None

    def add(self, key: tuple[int, int], offset: int | None, cpu: int, instance: str | None,
            system: str | None, event: str, ts_ns: int, bad: dict[str, bytes]) -> None:
        """One event whose fields ``bad`` ({name: bytes as stored}) hold bytes that are not UTF-8."""
        if key in self.seen or not bad:
            return
        self.seen.add(key)
        if len(self.seen) > MAX_EVENT_FINDINGS:
            if self.more is None:
                self.more = Finding("warning", "invalid_utf8_events", "", offset, {"count": 0})
                self.findings.append(self.more)
            n = self.more.context["count"] = self.more.context["count"] + 1
            self.more.message = (f"{n} more events holding bytes that are not UTF-8 (the first "
                                 f"{MAX_EVENT_FINDINGS} are reported one by one)")
            return
        counts = {k: bad_count(v)[0] for k, v in bad.items()}
        total = sum(counts.values())
        ctx: dict[str, Any] = {"cpu": cpu}
        if instance:
            ctx["instance"] = instance
        ctx.update({"system": system, "event": event, "ts_ns": ts_ns, "fields": list(bad), "count": total,
                    "raw": {k: (v.hex() if len(v) <= RAW_MAX else None) for k, v in bad.items()}})
        name = f"{system}/{event}" if system else event
        self.findings.append(Finding(
            "warning", "invalid_utf8",
            f"{name} on CPU {cpu}: {total} byte(s) not UTF-8 in {', '.join(bad)}, shown as \\xNN", offset, ctx))
