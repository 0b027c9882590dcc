# SPDX-License-Identifier: GPL-2.0-only
"""How the report spells values: human units, one spelling of a missing value, no
Python reprs, and small HTML builders (tables, key figures, details)."""
from __future__ import annotations

import html
import math
from typing import Any, Iterable, Sequence

#: the one spelling of a missing value, everywhere in the report
MISSING = "—"


def missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(v, float) and math.isnan(v)


def num(v: Any, digits: int = 3) -> str:
    """A number in fixed notation with at most ``digits`` significant decimals, never ``2.97e+04``."""
    if missing(v):
        return MISSING
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 1):
        return f"{int(v):,}".replace(",", " ")
    a = abs(float(v))
    if a == 0:
        return "0"
    dec = max(0, min(6, digits - 1 - math.floor(math.log10(a))))
    s = f"{float(v):,.{dec}f}".replace(",", " ")
    return s.rstrip("0").rstrip(".") if "." in s else s


def ms(v: Any) -> str:
    """Milliseconds: ``8.2 ms``, ``3 562 ms``, ``0.37 ms``."""
    if missing(v):
        return MISSING
    if 0 < abs(float(v)) < 0.001:
        return "<0.001 ms"
    return f"{num(v, 3)} ms"


def ns_as_ms(v: Any, t0: int | None) -> str:
    """An absolute nanosecond time as milliseconds since the migration started."""
    if missing(v) or t0 is None:
        return MISSING
    return f"{(int(v) - t0) / 1e6:.3f}"


def size(v: Any) -> str:
    """Bytes in human units: ``481 B``, ``27.1 KiB``, ``33.0 MiB``."""
    if missing(v):
        return MISSING
    b = float(v)
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(b) >= scale:
            return f"{b / scale:.1f} {unit}"
    return f"{int(b)} B"


def text(v: Any) -> str:
    """Any value as plain words: dicts as ``key value, …``, lists joined, booleans yes/no."""
    if missing(v):
        return MISSING
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return num(v)
    if isinstance(v, int):
        return num(v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {text(x)}" for k, x in v.items()) or MISSING
    if isinstance(v, (list, tuple)):
        return ", ".join(text(x) for x in v) or MISSING
    return str(v)


def esc(v: Any) -> str:
    return html.escape(text(v) if not isinstance(v, str) else v, quote=True)


def sort_key(v: Any) -> str:
    """The ``data-v`` a table cell sorts by: the raw number, or the text."""
    if missing(v):
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(float(v))
    return str(v)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "t", raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (already HTML)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = "".join(f"<td>{c if raw else html.escape(str(c))}</td>" for c in r)
        body.append(f"<tr>{cells}</tr>")
    if not body:
        return f"<p class='none'>none</p>"
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def details(summary: str, inner: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{html.escape(summary)}</summary>{inner}</details>"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
