# SPDX-License-Identifier: GPL-2.0-only
"""Findings: what a decoder could not decode, or noticed, reported as data.

A decoder never raises on bad input; it returns or yields :class:`Finding`
objects next to what it did decode.  :class:`DecodeError` is the one
exception type the project documents: it is raised only by strict,
single-unit entry points (``parse_strict``-style helpers) and by the CLI's
usage checks, never from the streaming decoders.

Finding codes are snake_case and stable; docs/findings.md lists them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

Severity = Literal["error", "warning", "info"]

_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass(slots=True)
class Finding:
    severity: Severity
    code: str
    message: str
    offset: int | None = None
    context: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The contract's ``finding`` object (json-lines.md)."""
        obj: dict[str, Any] = {
            "kind": "finding",
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "offset": self.offset,
        }
        for k, v in self.context.items():
            obj.setdefault(k, v)
        return obj

    def with_context(self, **ctx: Any) -> "Finding":
        merged = dict(ctx)
        merged.update(self.context)
        return Finding(self.severity, self.code, self.message, self.offset, merged)

    def shifted(self, delta: int) -> "Finding":
        """The same finding with its offset moved into an enclosing stream."""
        off = None if self.offset is None else self.offset + delta
        return Finding(self.severity, self.code, self.message, off, dict(self.context))

    def __str__(self) -> str:
        where = "" if self.offset is None else f" @{self.offset}"
        return f"{self.severity}: {self.code}{where}: {self.message}"


def worst(findings: Iterable[Finding]) -> Severity | None:
    """The highest severity among ``findings`` (None when there are none)."""
    best: Severity | None = None
    for f in findings:
        if best is None or _RANK[f.severity] > _RANK[best]:
            best = f.severity
    return best


class DecodeError(ValueError):
    """The project's documented decode error.

    Carries the :class:`Finding` that describes the failure so callers that
    catch it can still report an offset.
    """

    def __init__(self, finding: Finding):
        super().__init__(str(finding))
        self.finding = finding
