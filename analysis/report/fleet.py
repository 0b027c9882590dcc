# SPDX-License-Identifier: GPL-2.0-only
"""The index page: one compact fleet table (grouped columns, units in the headers, human
units in the cells), sortable and filterable by the inline script, linking each
migration's page."""
from __future__ import annotations

import html
from typing import Any

from analysis.report.assets import page
from analysis.report.fmt import MISSING, esc, missing, num, size, sort_key, text

#: (group, header, row key, formatter)
COLUMNS: list[tuple[str, str, str, Any]] = [
    ("Migration", "run", "run_id", None),
    ("Migration", "QEMU", "qemu_profile", text),
    ("Migration", "firmware", "firmware", text),
    ("Time (ms)", "total", "total_ms", num),
    ("Time (ms)", "downtime QEMU", "downtime_qemu_ms", num),
    ("Time (ms)", "downtime wire", "downtime_wire_ms", num),
    ("Pre-copy", "iterations", "precopy_iterations", num),
    ("Pre-copy", "policy", "precopy_policy", text),
    ("Device", "VF", "device", text),
    ("Device", "stop-copy", "stopcopy_bytes", size),
    ("Device", "record median", "record_bytes_median", size),
    ("Device", "record max", "record_bytes_max", size),
    ("Device", "trailer bug", "trailer_bug", text),
    ("Findings", "errors", "errors", num),
    ("Findings", "warnings", "warnings", num),
]


def fleet_rows(label: str, slug: str, objs: list[dict[str, Any]], firmware: str | None,
               counts: dict[str, int]) -> list[dict[str, Any]]:
    """One row per device (one row when the migration has no VFIO device), raw values."""
    mig = objs[0]
    base = {"run_id": label, "slug": slug, "firmware": firmware, "errors": counts.get("error", 0),
            "warnings": counts.get("warning", 0)}
    for k in ("qemu_profile", "total_ms", "downtime_qemu_ms", "downtime_wire_ms", "precopy_iterations"):
        base[k] = mig.get(k)
    devs = [o for o in objs if o.get("kind") == "device_summary"] or [{}]
    rows = []
    for d in devs:
        r = dict(base)
        for k in ("precopy_policy", "stopcopy_bytes", "record_bytes_median", "record_bytes_max", "trailer_bug"):
            r[k] = d.get(k)
        dev = d.get("device")
        r["device"] = dev.split("/")[0] if isinstance(dev, str) else None
        rows.append(r)
    return rows


def _cell(key: str, fmt: Any, r: dict[str, Any]) -> str:
    v = r.get(key)
    if key == "run_id":
        link = f"<a href='{html.escape(r['slug'])}.html'>{html.escape(str(v))}</a>" if r.get("slug") else esc(v)
        if r.get("load_error"):
            link += f"<br><span class='sev-error'>{esc(r['load_error'])}</span>"
        return f"<td class='run' data-v='{html.escape(str(v))}'>{link}</td>"
    cls = ""
    if key == "errors" and v:
        cls = " class='bad'"
    elif (key == "warnings" and v) or (key == "trailer_bug" and v is True):
        cls = " class='warn'"
    shown = MISSING if missing(v) else fmt(v)
    return f"<td{cls} data-v='{html.escape(sort_key(v))}'>{html.escape(shown)}</td>"


def index_page(rows: list[dict[str, Any]], title: str, generated: str) -> str:
    groups: list[tuple[str, int]] = []
    for g, *_ in COLUMNS:
        if groups and groups[-1][0] == g:
            groups[-1] = (g, groups[-1][1] + 1)
        else:
            groups.append((g, 1))
    top = "".join(f"<th class='g' colspan='{n}'>{html.escape(g)}</th>" for g, n in groups)
    heads = "".join(f"<th title='sort'>{html.escape(h)}</th>" for _, h, _, _ in COLUMNS)
    body = "".join("<tr>" + "".join(_cell(k, f, r) for _, _, k, f in COLUMNS) + "</tr>" for r in rows)
    runs = len({r["run_id"] for r in rows})
    failed = sum(1 for r in rows if r.get("load_error"))
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='meta'>{html.escape(generated)}; {runs} migration{'s' if runs != 1 else ''}"
             + (f", {failed} not loaded" if failed else "") + ". Click a header to sort, type to filter; "
             "a run's name opens its page.</p>",
             "<input class='filter' type='search' placeholder='filter rows (run, policy, QEMU…)' "
             "aria-label='filter rows'>",
             f"<table class='t fleet'><thead><tr>{top}</tr><tr class='h'>{heads}</tr></thead>"
             f"<tbody>{body}</tbody></table>"]
    return page(title, "\n".join(parts), script=True)
