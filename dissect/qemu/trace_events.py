# SPDX-License-Identifier: GPL-2.0-only
"""Typed QEMU trace events: a catalogue in QEMU's trace-events syntax.

Spec: qemu-trace-events.md (§1 how backends write events, §1.5 parsing,
§2 VFIO events and their version variants, §3 migration-core events, §4
downtime checkpoints).  The built-in catalogue is the data file
``trace-events-catalogue`` next to this module, written in QEMU's own
``name(type arg, ...) "format"`` syntax with ``# @variant`` / ``# @versions``
comment annotations; :meth:`Catalogue.from_file` reads any QEMU
``trace-events`` / ``trace-events-all`` file the same way.

Text of an event, as both the ftrace and the log backend write it, is
``"<name> " + printf(format, args)``; VFIO formats start with ``" (%s)"``,
so VFIO lines have two spaces after the name.  The ftrace backend cuts a
line at 511 bytes (``MAX_TRACE_STRLEN`` 512 incl. NUL): such a line parses
what it can and is flagged ``truncated``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from dissect.common.findings import Finding
from dissect.qemu.trace_events_format import PRI_MACROS, CompiledFormat

#: The catalogue shipped with migtrace.
CATALOGUE_PATH = Path(__file__).with_name("trace-events-catalogue")

#: The ftrace backend's line limit: snprintf into 512 bytes, so 511 characters.
FTRACE_MAX_LINE = 511

#: ``vmstate_downtime_checkpoint`` values (spec §4); ``src-downtime-stop`` is
#: the name in the 8.2 commit message, accepted as an alias of ``src-downtime-end``.
DOWNTIME_CHECKPOINTS = (
    "src-downtime-start", "src-vm-stopped", "src-iterable-saved", "src-non-iterable-saved",
    "src-downtime-end", "src-downtime-stop",
    "dst-precopy-loadvm-completed", "dst-precopy-bh-enter", "dst-precopy-bh-announced",
    "dst-precopy-bh-vm-started",
    "dst-postcopy-bh-enter", "dst-postcopy-bh-cpu-synced", "dst-postcopy-bh-announced",
    "dst-postcopy-bh-cache-invalidated", "dst-postcopy-bh-vm-started",
)

_DECL = re.compile(
    r"^((?:(?:disable|vcpu|tcg|tcg-trans|tcg-exec)\s+)*)"   # properties
    r"([A-Za-z_][A-Za-z0-9_]*)\((.*?)\)\s*(.*?)\s*$")
_FMT_PIECE = re.compile(r'"((?:[^"\\]|\\.)*)"|(PRI[diouxX](?:8|16|32|64|PTR|MAX))|(\S+)')
_ANNOT = re.compile(r"^#\s*@(variant|versions)\s+(.*?)\s*$")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r", "0": "\0"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class EventDecl:
    """One declaration of an event (one version variant)."""

    name: str
    arg_types: tuple[str, ...]
    arg_names: tuple[str, ...]
    fmt: str                   # the format with string pieces joined and PRI macros expanded
    variant: str | None        # version variant label (None: the only known form)
    versions: str | None       # QEMU release range, e.g. "9.2-"
    properties: tuple[str, ...] = ()
    line: int = 0              # line in its source file

    @property
    def declaration(self) -> str:
        args = ", ".join(f"{t} {n}" if not t.endswith("*") else f"{t}{n}"
                         for t, n in zip(self.arg_types, self.arg_names)) or "void"
        return f"{self.name}({args})"


@dataclass(slots=True)
class QemuEvent:
    """A parsed QEMU trace event line.

    ``args`` is keyed by the declared argument names with numbers as ints.
    ``matched`` is False when the name is known but no variant's format fits
    (args then empty; ``raw`` keeps the text).  ``truncated`` marks a line at
    the ftrace backend's 511-byte limit: its last arguments may be cut.
    """

    event: str
    args: dict[str, Any]
    version_variant: str | None
    raw: str
    truncated: bool = False
    matched: bool = True
    versions: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The contract's ``event.qemu`` object (``event``, ``args``) plus the variant."""
        return {"event": self.event, "args": self.args, "version_variant": self.version_variant,
                "truncated": self.truncated, "matched": self.matched}


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), s)


def _parse_args(argtext: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    argtext = argtext.strip()
    if argtext in ("", "void"):
        return (), ()
    types: list[str] = []
    names: list[str] = []
    for part in argtext.split(","):
        part = part.strip()
        m = re.match(r"^(.*?)([A-Za-z_][A-Za-z0-9_]*)$", part)
        if not m or not m.group(1).strip():
            return None
        types.append(" ".join(m.group(1).split()))
        names.append(m.group(2))
    return tuple(types), tuple(names)


def _parse_format(text: str) -> str | None:
    pieces: list[str] = []
    for m in _FMT_PIECE.finditer(text):
        if m.group(1) is not None:
            pieces.append(_unescape(m.group(1)))
        elif m.group(2) is not None:
            pieces.append(PRI_MACROS[m.group(2)])
        else:
            return None
    return "".join(pieces)


def parse_declarations(text: str, source: str = "<text>") -> tuple[list[EventDecl], list[Finding]]:
    """Declarations of a trace-events file, and findings for lines it cannot read."""
    decls: list[EventDecl] = []
    findings: list[Finding] = []
    variant: str | None = None
    versions: str | None = None
    offset = 0
    for lineno, line in enumerate(text.splitlines(keepends=True), 1):
        here = offset
        offset += len(line.encode("utf-8", "surrogateescape"))
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            a = _ANNOT.match(s)
            if a:
                words = a.group(2).split()
                if a.group(1) == "variant" and words:
                    variant, versions = words[0], (words[1] if len(words) > 1 else None)
                elif a.group(1) == "versions" and words:
                    variant, versions = None, words[0]
            continue
        m = _DECL.match(s)
        parsed = _parse_args(m.group(3)) if m else None
        fmt = _parse_format(m.group(4)) if m else None
        if m is None or parsed is None or fmt is None:
            findings.append(Finding("warning", "trace_events_bad_line",
                                    f"{source}:{lineno}: not a trace-event declaration: {s[:80]!r}",
                                    here, {"line": lineno}))
            variant = versions = None
            continue
        decls.append(EventDecl(m.group(2), parsed[0], parsed[1], fmt, variant, versions,
                               tuple(m.group(1).split()), lineno))
        variant = versions = None
    return decls, findings


class Catalogue:
    """Event declarations by name, compiled into parsers and renderers.

    ``parse`` tries the declarations of an event in file order and returns
    the first that fits.
    """

    def __init__(self, decls: Iterable[EventDecl], source: str = "<decls>",
                 findings: list[Finding] | None = None):
        self.source = source
        self.findings: list[Finding] = list(findings or [])
        self._decls: dict[str, list[EventDecl]] = {}
        for d in decls:
            self._decls.setdefault(d.name, []).append(d)
        # formats are compiled on first use: a trace-events-all has ~5000 events
        self._compiled: dict[str, list[tuple[EventDecl, CompiledFormat]]] = {}

    def _entries(self, name: str) -> list[tuple[EventDecl, CompiledFormat]] | None:
        entries = self._compiled.get(name)
        if entries is not None:
            return entries
        decls = self._decls.get(name)
        if decls is None:
            return None
        entries = []
        for d in decls:
            try:
                entries.append((d, CompiledFormat(d.fmt, d.arg_names, d.arg_types)))
            except (re.error, KeyError) as e:
                self.findings.append(Finding("warning", "trace_events_bad_format",
                                             f"{self.source}:{d.line}: {d.name}: cannot compile format: {e}",
                                             None, {"line": d.line}))
        self._compiled[name] = entries
        return entries

    def compile_all(self) -> list[Finding]:
        """Compile every format now; findings for those that do not compile."""
        for name in self._decls:
            self._entries(name)
        return [f for f in self.findings if f.code == "trace_events_bad_format"]

    # -- construction --------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, source: str = "<text>") -> "Catalogue":
        decls, findings = parse_declarations(text, source)
        return cls(decls, source, findings)

    @classmethod
    def from_file(cls, path: str | Path) -> "Catalogue":
        """A catalogue from a QEMU ``trace-events(-all)`` file or migtrace's own."""
        p = Path(path)
        return cls.from_text(p.read_text(encoding="utf-8", errors="surrogateescape"), str(p))

    @classmethod
    def default(cls) -> "Catalogue":
        """migtrace's built-in catalogue (cached)."""
        return _default()

    # -- queries ---------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._decls

    def __len__(self) -> int:
        return len(self._decls)

    def names(self) -> list[str]:
        return list(self._decls)

    def declarations(self, name: str | None = None) -> list[EventDecl]:
        """All declarations (of one event, or of all in file order)."""
        if name is not None:
            return list(self._decls.get(name, ()))
        return [d for v in self._decls.values() for d in v]

    def variants(self, name: str) -> list[str | None]:
        return [d.variant for d in self._decls.get(name, ())]

    # -- parsing ---------------------------------------------------------------
    def parse(self, text: str) -> QemuEvent | None:
        """Parse one event line ``"<name> <args>"`` (container prefix already stripped).

        None when the first word is not an event of this catalogue.
        """
        if text.endswith("\n"):
            text = text[:-1]
        name, sep, rest = text.partition(" ")
        entries = self._compiled.get(name)
        if entries is None:
            entries = self._entries(name)
            if entries is None:
                return None
        truncated = len(text) >= FTRACE_MAX_LINE or (
            len(text) * 4 >= FTRACE_MAX_LINE and len(text.encode("utf-8", "surrogateescape")) >= FTRACE_MAX_LINE)
        for d, cf in entries:
            args = cf.match(rest)
            if args is not None:
                if truncated and cf.tail_number is not None:
                    args.pop(cf.tail_number, None)  # its digits may run into the cut
                return QemuEvent(name, args, d.variant, rest, truncated, True, d.versions)
        stripped = rest.rstrip()
        if stripped != rest:
            for d, cf in entries:
                args = cf.match(stripped)
                if args is not None:
                    return QemuEvent(name, args, d.variant, rest, truncated, True, d.versions)
        if truncated:
            best: tuple[int, EventDecl, dict[str, Any]] | None = None
            for d, cf in entries:
                got = cf.match_prefix(rest)
                if got is not None and (best is None or got[1] > best[0]):
                    best = (got[1], d, got[0])
            if best is not None:
                return QemuEvent(name, best[2], best[1].variant, rest, True, True, best[1].versions)
        return QemuEvent(name, {}, None, rest, truncated, False)

    # -- rendering -------------------------------------------------------------
    def format(self, event: str, /, variant: str | None = None, *, truncate: bool = False,
               **args: Any) -> str:
        """The text QEMU prints for ``event`` with ``args``: ``"<name> " + printf(fmt)``.

        ``variant`` selects a version variant (default: the newest whose
        argument names are exactly those given, else the first declared).
        ``truncate=True`` applies the ftrace backend's 511-byte cut.
        """
        entries = self._entries(event)
        if not entries:
            raise KeyError(f"unknown trace event {event!r}")
        chosen: CompiledFormat | None = None
        if variant is not None:
            for d, cf in entries:
                if d.variant == variant:
                    chosen = cf
                    break
            if chosen is None:
                raise KeyError(f"{event}: no variant {variant!r} (have {[d.variant for d, _ in entries]})")
        else:
            fitting = [cf for d, cf in entries if set(d.arg_names) == set(args)]
            if not fitting:
                raise TypeError(f"{event}: arguments {sorted(args)} fit no variant "
                                f"({[d.declaration for d, _ in entries]})")
            chosen = _newest(entries, fitting)
        text = f"{event} {chosen.render(args)}"
        if truncate:
            b = text.encode("utf-8")
            if len(b) > FTRACE_MAX_LINE:
                text = b[:FTRACE_MAX_LINE].decode("utf-8", "ignore")
        return text


def _version_key(versions: str | None) -> tuple[int, ...]:
    """Sort key: the first release of a range ("9.2-" → (9, 2); "-7.2" → (0,))."""
    if not versions:
        return (0,)
    first = versions.split("-")[0]
    try:
        return tuple(int(x) for x in first.split(".")) if first else (0,)
    except ValueError:
        return (0,)


def _newest(entries: list[tuple[EventDecl, CompiledFormat]], fitting: list[CompiledFormat]) -> CompiledFormat:
    ranked = [(d, cf) for d, cf in entries if cf in fitting]
    return max(ranked, key=lambda e: _version_key(e[0].versions))[1]


@lru_cache(maxsize=1)
def _default() -> Catalogue:
    return Catalogue.from_file(CATALOGUE_PATH)


def parse_event(text: str) -> QemuEvent | None:
    """Parse with the built-in catalogue."""
    return _default().parse(text)


def format_event(event: str, /, variant: str | None = None, *, truncate: bool = False, **args: Any) -> str:
    """Render with the built-in catalogue (see :meth:`Catalogue.format`)."""
    return _default().format(event, variant, truncate=truncate, **args)
