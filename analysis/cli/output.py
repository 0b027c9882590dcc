# SPDX-License-Identifier: GPL-2.0-only
"""Writing decoded units: JSON Lines (json-lines.md) or a human line per unit."""
from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any, Iterable, TextIO

_HUMAN_SKIP = {"kind"}


def _short(v: Any) -> str:
    if isinstance(v, dict):
        inner = ", ".join(f"{k}={_short(x)}" for k, x in v.items())
        return "{" + (inner if len(inner) <= 160 else inner[:157] + "...") + "}"
    if isinstance(v, list):
        inner = ", ".join(_short(x) for x in v[:16])
        return "[" + inner + (", ..." if len(v) > 16 else "") + "]"
    if isinstance(v, float):
        return f"{v:.9f}".rstrip("0").rstrip(".")
    if isinstance(v, str):
        # one unit, one line: control characters (a print event's trailing \n) are escaped
        if not v.isprintable():
            v = v.encode("unicode_escape").decode("ascii")
        if len(v) > 120:
            return repr(v[:117] + "...")
    return str(v)


def human_line(obj: dict[str, Any]) -> str:
    """One readable line per unit: the kind, then its non-null fields."""
    kind = obj.get("kind", "?")
    if kind == "finding":
        where = "" if obj.get("offset") is None else f" @{obj['offset']}"
        ctx = " ".join(f"{k}={_short(v)}" for k, v in obj.items()
                       if k not in ("kind", "severity", "code", "message", "offset") and v is not None)
        msg = _short(str(obj["message"])) if not str(obj["message"]).isprintable() else obj["message"]
        return f"{obj['severity'].upper()} {obj['code']}{where}: {msg}" + (f" [{ctx}]" if ctx else "")
    if kind == "event" and isinstance(obj.get("fields"), dict) and isinstance(obj["fields"].get("ip"), int):
        obj = dict(obj, fields=dict(obj["fields"], ip=kernel_address(obj["fields"]["ip"], obj.get("ip_symbol"))))
        obj.pop("ip_symbol", None)
    parts = [f"{k}={_short(v)}" for k, v in obj.items() if k not in _HUMAN_SKIP and v is not None]
    return f"{kind:<14} " + " ".join(parts)


def kernel_address(addr: int, symbol: str | None = None) -> str:
    """A kernel address as people read it: hex, with its kallsyms name when the trace has one."""
    return f"0x{addr:x}" + (f" <{symbol}>" if symbol else "")


class UnitWriter:
    """Counts units by kind and findings by severity while writing them."""

    def __init__(self, out: TextIO | None = None, *, as_json: bool = False) -> None:
        self.out = out or sys.stdout
        self.as_json = as_json
        # one encoder for every unit (json.dumps with arguments builds a new one per call)
        self._encode = json.JSONEncoder(separators=(",", ":"), default=_json_default).encode
        self.counts: Counter[str] = Counter()
        self.errors = 0
        self.warnings = 0

    def write(self, obj: dict[str, Any]) -> None:
        kind = obj["kind"]
        self.counts[kind] += 1
        if kind == "finding":
            if obj["severity"] == "error":
                self.errors += 1
            elif obj["severity"] == "warning":
                self.warnings += 1
        if self.as_json:
            s = self._encode(obj)
            if "\\ud" in s:  # a \\uXXXX surrogate escape: a lone one is not valid UTF-8 / strict JSON
                s = self._encode(valid_text(obj))
            self.out.write(s + "\n")
        else:
            line = human_line(obj)
            if not line.isascii():
                line = valid_text(line)
            self.out.write(line + "\n")

    def write_all(self, objs: Iterable[dict[str, Any]]) -> None:
        for obj in objs:
            self.write(obj)

    def summary(self, fmt: str) -> dict[str, Any]:
        return {"kind": "summary", "format": fmt, "counts": dict(self.counts),
                "errors": self.errors, "warnings": self.warnings}


def _clean(s: str) -> str:
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    # a byte smuggled as a surrogate escape (U+DC80..U+DCFF) is shown \\xNN, as the text readers
    # show bytes that are not UTF-8; any other lone surrogate as \\uDXXX text
    return "".join((f"\\x{ord(c) - 0xDC00:02x}" if ord(c) >= 0xDC80 and ord(c) <= 0xDCFF else f"\\u{ord(c):04x}")
                   if 0xD800 <= ord(c) < 0xE000 else c for c in s)


def valid_text(v: Any) -> Any:
    """``v`` with every string made encodable as UTF-8: lone surrogates (e.g. undecodable bytes
    read with ``surrogateescape``) become ``\\xNN`` / ``\\uDXXX`` text.  The JSON encoder path
    calls it only when an encoded unit holds a surrogate escape, so no unit is ever written
    with a lone surrogate (json-lines.md: output is UTF-8)."""
    if isinstance(v, str):
        return _clean(v)
    if isinstance(v, dict):
        return {valid_text(k): valid_text(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [valid_text(x) for x in v]
    if hasattr(v, "to_json") and not isinstance(v, type):
        return valid_text(v.to_json())
    return v


def _json_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    try:
        import numpy as np

        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, np.floating):
            return float(v)
        if isinstance(v, np.bool_):
            return bool(v)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if hasattr(v, "to_json"):
        return v.to_json()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
