# SPDX-License-Identifier: GPL-2.0-only
"""printf format strings of QEMU trace events: parse, match and render.

Spec: qemu-trace-events.md §1.5 (regex per conversion) and the C printf
rules QEMU's formats rely on (flags, width, precision, length modifiers,
``%p`` printing ``(nil)`` for NULL as glibc does).

A format is compiled once into a :class:`CompiledFormat`: a tuple of
literal / conversion tokens, one anchored regex for the common (complete
line) case, per-argument converters, and a sequential walker used only for
lines the ftrace backend truncated at 511 bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

#: C inttypes.h macros as they expand on the LP64 hosts QEMU runs on.
PRI_MACROS: dict[str, str] = {}
for _conv in "diouxX":
    PRI_MACROS[f"PRI{_conv}8"] = _conv
    PRI_MACROS[f"PRI{_conv}16"] = _conv
    PRI_MACROS[f"PRI{_conv}32"] = _conv
    PRI_MACROS[f"PRI{_conv}64"] = "l" + _conv
    PRI_MACROS[f"PRI{_conv}PTR"] = "l" + _conv
    PRI_MACROS[f"PRI{_conv}MAX"] = "l" + _conv

_CONV = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d*))?(hh|h|ll|l|L|q|j|z|Z|t)?([diouxXeEfFgGaAcspn%])")

# Regexes per conversion character.  Integers follow printf output exactly
# (no sign on unsigned values); `#` adds the 0x prefix printf prints for
# non-zero values.
_INT_RE = {
    "d": r"[-+ ]?\d+", "i": r"[-+ ]?\d+", "u": r"\d+",
    "x": r"[0-9a-f]+", "X": r"[0-9A-F]+", "o": r"[0-7]+",
}
_FLOAT_RE = r"[-+ ]?(?:(?:\d+\.?\d*|\.\d+)(?:[eEpP][-+]?\d+)?|0[xX][0-9a-fA-F.]+(?:[pP][-+]?\d+)?|inf|nan|INF|NAN)"


def _to_ptr(s: str) -> int:
    return 0 if s == "(nil)" else int(s, 16)


def _to_str(s: str) -> str:
    return s


# int itself and functools.partial run in C: cheaper per argument than a Python function
_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "d": int, "i": int, "u": int,
    "x": partial(int, base=16), "X": partial(int, base=16), "o": partial(int, base=8),
    "p": _to_ptr, "s": _to_str, "c": _to_str,
    "e": float, "E": float, "f": float, "F": float, "g": float, "G": float,
    "a": float, "A": float,
}


@dataclass(frozen=True, slots=True)
class Conversion:
    """One printf conversion: ``%[flags][width][.precision][length]conv``."""

    spec: str          # the conversion as written, e.g. "%08lx"
    flags: str
    width: str | None  # digits, "*" or None
    precision: str | None
    length: str | None
    conv: str

    @property
    def consumes(self) -> int:
        """Arguments this conversion takes (``*`` width/precision take one each)."""
        if self.conv in "%n":
            return 0
        return 1 + (self.width == "*") + (self.precision == "*")

    def regex(self, last: bool) -> str:
        c = self.conv
        if c == "%":
            return "%"
        if c == "s":
            body = "(.*)" if last else "(.*?)"
        elif c == "c":
            body = "(.)"
        elif c == "p":
            body = r"(0x[0-9a-f]+|\(nil\))"
        elif c in _INT_RE:
            inner = _INT_RE[c]
            if "#" in self.flags and c in "xX":
                inner = "0[xX]" + inner + "|0"
            elif "#" in self.flags and c == "o":
                inner = "0" + inner + "|0"
            body = "(" + inner + ")"
        else:
            body = "(" + _FLOAT_RE + ")"
        if self.width and c != "s":
            # padding: spaces before (right-justified) or after ("-" flag)
            body = (body + " *") if "-" in self.flags else (" *" + body)
        return body


Token = str | Conversion


def tokenize(fmt: str) -> tuple[Token, ...]:
    """Split a printf format into literal strings and :class:`Conversion` s."""
    out: list[Token] = []
    pos = 0
    for m in _CONV.finditer(fmt):
        if m.start() > pos:
            out.append(fmt[pos:m.start()])
        flags, width, prec, length, conv = m.groups()
        if conv == "%":
            out.append("%")
        else:
            out.append(Conversion(m.group(0), flags, width, prec, length, conv))
        pos = m.end()
    if pos < len(fmt):
        out.append(fmt[pos:])
    # merge adjacent literals (a "%%" next to text)
    merged: list[Token] = []
    for t in out:
        if isinstance(t, str) and merged and isinstance(merged[-1], str):
            merged[-1] += t
        else:
            merged.append(t)
    return tuple(merged)


class CompiledFormat:
    """A format string compiled for matching text and rendering arguments.

    ``arg_names``/``arg_types`` are the declaration's arguments; conversions
    are paired with them in order (``*`` widths take their own argument and
    are not reported).
    """

    __slots__ = ("fmt", "tokens", "arg_names", "arg_types", "regex", "_slots", "_conv_count", "_names",
                 "_convert", "tail_number")

    def __init__(self, fmt: str, arg_names: tuple[str, ...], arg_types: tuple[str, ...]):
        self.fmt = fmt
        self.tokens = tokenize(fmt)
        self.arg_names = arg_names
        self.arg_types = arg_types
        convs = [t for t in self.tokens if isinstance(t, Conversion)]
        self._conv_count = len(convs)
        # _slots[i] = (argument name or None for width/precision args, converter)
        slots: list[tuple[str | None, Callable[[str], Any]]] = []
        arg_i = 0
        pattern: list[str] = []
        last_conv = convs[-1] if convs else None
        for t in self.tokens:
            if isinstance(t, str):
                pattern.append(re.escape(t))
                continue
            for _ in range(t.consumes - 1):  # "*" width/precision arguments: not printed
                arg_i += 1
            name = arg_names[arg_i] if arg_i < len(arg_names) else f"arg{arg_i}"
            arg_i += 1
            slots.append((name, _CONVERTERS[t.conv]))
            pattern.append(t.regex(last=(t is last_conv and self.tokens[-1] is t)))
        self._slots = tuple(slots)
        self._names = tuple(n for n, _ in slots)
        # (position, converter) of the arguments that are not plain strings
        self._convert = tuple((i, c) for i, (_, c) in enumerate(slots) if c is not _to_str)
        self.regex = re.compile("".join(pattern), re.DOTALL)
        #: name of the argument printed last when it is a number ending the text: a line cut
        #: at the backend's limit may have lost some of its digits
        last = self.tokens[-1] if self.tokens else None
        self.tail_number = (slots[-1][0] if isinstance(last, Conversion) and last.conv not in "sc%"
                            else None)

    # -- matching ------------------------------------------------------------
    def match(self, text: str) -> dict[str, Any] | None:
        """Typed arguments when ``text`` is exactly this format's output."""
        m = self.regex.fullmatch(text)
        if m is None:
            return None
        if not self._convert:
            return dict(zip(self._names, m.groups()))
        vals = list(m.groups())
        try:
            for i, conv in self._convert:
                vals[i] = conv(vals[i])
        except ValueError:
            return None
        return dict(zip(self._names, vals))

    def match_prefix(self, text: str) -> tuple[dict[str, Any], int] | None:
        """Arguments of a line cut short (ftrace's 511-byte limit), and a score.

        Walks the tokens: literals must match (the last one may be cut), each
        conversion takes what its pattern allows.  A number that runs into
        the cut is dropped (its digits may be incomplete); a string that runs
        into the cut is kept as the prefix it is.  None when the text
        contradicts the format before the cut.  The score is the number of
        literal characters matched: the variant that explains more of the
        text is the better guess.
        """
        score = 0
        pos = 0
        n = len(text)
        args: dict[str, Any] = {}
        slot_i = 0
        toks = self.tokens
        for ti, t in enumerate(toks):
            if pos >= n:
                break
            if isinstance(t, str):
                if text.startswith(t, pos):
                    pos += len(t)
                    score += len(t)
                    continue
                if t.startswith(text[pos:]):
                    score += n - pos
                    pos = n
                    break
                return None
            name, conv = self._slots[slot_i]
            slot_i += 1
            if t.conv == "s":
                nxt = toks[ti + 1] if ti + 1 < len(toks) else None
                end = text.find(nxt, pos) if isinstance(nxt, str) else -1
                if end < 0:
                    args[name] = text[pos:]
                    pos = n
                    break
                args[name] = text[pos:end]
                pos = end
                continue
            m = re.compile(t.regex(last=False)).match(text, pos)
            if m is None:
                return None
            if m.end() >= n:  # number touching the cut: may be incomplete
                pos = n
                break
            try:
                args[name] = conv(m.group(1))
            except ValueError:
                return None
            pos = m.end()
        return args, score

    # -- rendering -----------------------------------------------------------
    def render(self, args: dict[str, Any]) -> str:
        """The text printf would produce for ``args`` (keyed by declared names)."""
        out: list[str] = []
        arg_i = 0
        names = self.arg_names
        for t in self.tokens:
            if isinstance(t, str):
                out.append(t)
                continue
            width = t.width
            prec = t.precision
            if width == "*":
                width = str(_lookup(args, names, arg_i))
                arg_i += 1
            if prec == "*":
                prec = str(_lookup(args, names, arg_i))
                arg_i += 1
            v = _lookup(args, names, arg_i)
            arg_i += 1
            out.append(_render_one(t, width, prec, v))
        return "".join(out)


def _lookup(args: dict[str, Any], names: tuple[str, ...], i: int) -> Any:
    if i >= len(names):
        raise TypeError(f"format needs more than the {len(names)} declared arguments")
    key = names[i]
    if key not in args:
        raise TypeError(f"missing argument {key!r}")
    return args[key]


def _render_one(t: Conversion, width: str | None, prec: str | None, v: Any) -> str:
    spec = "%" + t.flags + (width or "") + ("." + prec if prec is not None else "")
    c = t.conv
    if c == "s":
        return (spec + "s") % ("(null)" if v is None else str(v))
    if c == "p":
        iv = 0 if v is None else int(v)
        s = "(nil)" if iv == 0 else "0x%x" % iv
        return ("%" + t.flags.replace("0", "") + (width or "") + "s") % s
    if c == "c":
        return (spec + "c") % (chr(v) if isinstance(v, int) else str(v))
    if c in "eEfFgGaA":
        return (spec + ("e" if c in "aA" else c)) % float(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{t.spec} needs an integer, got {type(v).__name__}")
    # C's default argument promotion: without a length modifier printf reads an int
    bits = 64 if t.length in ("l", "ll", "q", "j", "z", "Z", "t", "L") else 32
    if t.length == "hh":
        bits = 8
    elif t.length == "h":
        bits = 16
    if c in "uxXo":
        v &= (1 << bits) - 1
        return (spec + ("d" if c == "u" else c)) % v
    # %d/%i: wrap to the signed range of the argument's width
    v &= (1 << bits) - 1
    if v >= 1 << (bits - 1):
        v -= 1 << bits
    return (spec + "d") % v
