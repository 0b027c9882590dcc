# SPDX-License-Identifier: GPL-2.0-only
"""One migration's page: the card that answers at a glance, the panels that apply, and
the detail tables under collapsed ``<details>`` (times in ms since the migration started)."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis.report.assets import BREAKDOWN, page
from analysis.report.fmt import MISSING, details, esc, missing, ms, ns_as_ms, num, plural, size, table, text

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

SEVERITIES = ("error", "warning", "info")
#: pixel size of each panel's PNG (figures.py: figsize x DPI), so the page lays out before they load
PANEL_PX = {"timeline": (768, 216), "convergence": (376, 208), "record-sizes": (376, 208)}


def _kv(k: str, v: str, m: str = "", wide: bool = False) -> str:
    return (f"<div class='kv{' wide' if wide else ''}'><span class='k'>{html.escape(k)}</span>"
            f"<span class='v'>{v}</span>" + (f"<span class='m'>{m}</span>" if m else "") + "</div>")


def breakdown_bar(bd: dict[str, Any] | None) -> str:
    """The wire downtime's parts as one stacked bar (HTML, so it costs no image)."""
    parts = [(label, colour, float(bd[k])) for k, label, colour in BREAKDOWN
             if bd and not missing(bd.get(k)) and float(bd[k]) > 0]
    total = sum(v for _, _, v in parts)
    if not total:
        return ""
    spans = "".join(f"<span style='width:{100 * v / total:.2f}%;background:{c}' title='{html.escape(lab)} "
                    f"{html.escape(ms(v))}'></span>" for lab, c, v in parts)
    legend = "".join(f"<i style='background:{c}'></i>{html.escape(lab)} {html.escape(ms(v))}" for lab, c, v in parts)
    return f"<div class='bar' role='img' aria-label='downtime breakdown'>{spans}</div><div class='legend'>{legend}</div>"


def policy_words(policy: Any, ev: dict[str, Any] | None) -> str:
    """The PRE_COPY policy's evidence in words."""
    if missing(policy):
        return MISSING
    ev = ev or {}
    words = [str(ev["rule"])] if ev.get("rule") else []
    if not missing(ev.get("precopy_snapshots")):
        basis = f" (from {ev['snapshot_basis']})" if ev.get("snapshot_basis") else ""
        words.append(f"{plural(int(ev['precopy_snapshots']), 'pre-copy snapshot')}{basis}")
    if not missing(ev.get("min_spacing_s")):
        words.append(f"spacing min {ms(ev['min_spacing_s'] * 1e3)}"
                     + (f", median {ms(ev['median_spacing_s'] * 1e3)}" if not missing(ev.get("median_spacing_s")) else ""))
    if not missing(ev.get("reported_zero_tail_s")):
        words.append(f"QEMU-reported pre-copy size 0 for the last {ms(ev['reported_zero_tail_s'] * 1e3)}")
    if not missing(ev.get("vfio_part_sections")):
        words.append(plural(int(ev["vfio_part_sections"]), "VFIO PART section"))
    if not missing(ev.get("metadata_get_precopy")):
        words.append(f"{int(ev['metadata_get_precopy'])} DEV_PARTS_METADATA_GET in pre-copy")
    return "; ".join(words) if words else "no evidence recorded"


def _finding_counts(m: "Migration") -> dict[str, int]:
    counts = {s: 0 for s in SEVERITIES}
    for f in m.findings:
        if f.get("severity") in counts:
            counts[f["severity"]] += 1
    return counts


def card(m: "Migration", mig: dict[str, Any], devs: list[dict[str, Any]]) -> str:
    c = _finding_counts(m)
    fnd = " · ".join(f"<span class='sev-{s}'>{c[s]} {s if s == 'info' or c[s] == 1 else s + 's'}</span>"
                     for s in SEVERITIES)
    iters = mig.get("precopy_iterations")
    extra = []
    if not missing(mig.get("dirty_syncs")):
        extra.append(f"{mig['dirty_syncs']} dirty syncs")
    if not missing(mig.get("qemu_iterate_sections")):
        extra.append(f"{mig['qemu_iterate_sections']} iterate sections")
    out = [_kv("Total time", esc(ms(mig.get("total_ms"))), esc(mig.get("total_method") or "")),
           _kv("Downtime (QEMU)", esc(ms(mig.get("downtime_qemu_ms"))), esc(mig.get("downtime_qemu_method") or "")),
           _kv("Downtime (wire)", esc(ms(mig.get("downtime_wire_ms"))),
               breakdown_bar(mig.get("downtime_breakdown_ms")) or esc(mig.get("downtime_wire_method") or "")),
           _kv("Pre-copy iterations", esc(num(iters)),
               esc("; ".join(filter(None, [f"method: {mig['precopy_iterations_method']}"
                                           if mig.get("precopy_iterations_method") else "", *extra])))),
           ]
    for d in devs:
        name = str(d.get("device") or "")
        out.append(_kv(f"PRE_COPY policy {name}", esc(text(d.get("precopy_policy"))),
                       esc(policy_words(d.get("precopy_policy"), d.get("precopy_policy_evidence"))), wide=True))
        out.append(_kv("Stop-copy", esc(size(d.get("stopcopy_bytes"))),
                       esc(f"{plural(int(d['stopcopy_records']), 'record')}" if not missing(d.get("stopcopy_records"))
                           else "")))
        out.append(_kv("Record size median / max",
                       esc(f"{size(d.get('record_bytes_median'))} / {size(d.get('record_bytes_max'))}"),
                       esc(f"{d['records']} records" if not missing(d.get("records")) else "")))
        out.append(_kv("Kernel trailer bug", esc(text(d.get("trailer_bug"))),
                       "8-byte trailer in every record (kernels 6.13.0–6.15.2)" if d.get("trailer_bug") else ""))
    out.append(_kv("Findings", fnd, wide=not devs))
    return "<div class='card'>" + "".join(out) + "</div>"


def _frame_table(df: pd.DataFrame, cols: list[tuple[str, str, Any]]) -> str:
    """Rows of ``df`` with (header, column, formatter); columns entirely missing are left out."""
    keep = [(h, c, f) for h, c, f in cols if c in df.columns and df[c].notna().any()]
    rows = [[fmt(v) for (_, _, fmt), v in zip(keep, vals)] for vals in zip(*[df[c].tolist() for _, c, _ in keep])]
    return table([h for h, _, _ in keep], rows)


def iterations_table(m: "Migration") -> str:
    t0 = m.t0_ns
    it = m.iterations
    if not len(it):
        return "<p class='none'>none</p>"
    at = lambda v: ns_as_ms(v, t0)  # noqa: E731
    return _frame_table(it, [("device", "device", text), ("iteration", "iteration", num),
                             ("start (ms)", "ts_ns", at), ("end (ms)", "end_ns", at),
                             ("RAM sent", "ram_bytes", size), ("RAM dirty pages", "ram_dirty_pages", num),
                             ("VFIO initial (QEMU)", "qemu_init_bytes", size),
                             ("VFIO dirty (QEMU)", "qemu_dirty_bytes", size), ("VFIO sent", "vfio_bytes", size),
                             ("VFIO chunks", "vfio_chunks", num), ("snapshots", "snapshots", num),
                             ("pass", "precopy_pass", num), ("source", "source", text)])


def phases_table(m: "Migration") -> str:
    t0 = m.t0_ns
    at = lambda v: ns_as_ms(v, t0)  # noqa: E731
    return _frame_table(m.phases, [("device", "device", text), ("phase", "phase", text),
                                   ("start (ms)", "start_ns", at), ("end (ms)", "end_ns", at),
                                   ("duration", "duration_ns", lambda v: ms(None if missing(v) else int(v) / 1e6)),
                                   ("bytes", "bytes", size), ("source", "source", text)])


def downtime_table(mig: dict[str, Any]) -> str:
    rows = [["(a) QEMU", ms(mig.get("downtime_qemu_ms")), text(mig.get("downtime_qemu_method"))],
            ["(b) wire", ms(mig.get("downtime_wire_ms")), text(mig.get("downtime_wire_method"))]]
    for k, label, _ in BREAKDOWN:
        v = (mig.get("downtime_breakdown_ms") or {}).get(k)
        if not missing(v):
            rows.append([f"(c) {label}", ms(v), "share of (b)"])
    inputs = mig.get("downtime_model_inputs") or {}
    rows.append(["(d) model", ms(mig.get("downtime_model_ms")), text(inputs.get("method"))])
    return table(["estimate", "value", "method"], rows)


def findings_table(m: "Migration", limit: int = 300) -> str:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    fs = sorted(m.findings, key=lambda f: order.get(f.get("severity"), 3))
    rows = [[f"<span class='sev-{html.escape(str(f.get('severity')))}'>{esc(f.get('severity'))}</span>",
             esc(f.get("code")), esc(f.get("message")), esc(num(f.get("offset")))] for f in fs[:limit]]
    more = f"<p class='none'>{len(fs) - limit} more not shown</p>" if len(fs) > limit else ""
    return table(["severity", "code", "message", "offset"], rows, raw=True) + more


def truth_html(rows: list[dict[str, Any]]) -> str:
    body = [[text(r["device"]), r["metric"], text(r["measured"]), text(r["truth"]), r["tolerance"],
             "yes" if r["agrees"] else "NO"] for r in rows]
    return table(["device", "metric", "measured", "truth", "tolerance", "agrees"], body)


def captures_table(m: "Migration") -> str:
    align = {a.capture: a for a in m.alignment} if m.alignment else {}
    rows = []
    for c in m.captures:
        a = align.get(c.index)
        rows.append([str(c.index), str(c.path.name), text(c.kind), text(c.role), text(c.side),
                     text(a.method) if a else MISSING,
                     ms(a.offset_ns / 1e6) if a and a.offset_ns is not None else MISSING,
                     ms(a.residual_ns / 1e6) if a and a.residual_ns is not None else MISSING, text(c.error)])
    return table(["#", "file", "kind", "role", "side", "clock alignment", "offset", "residual", "error"], rows)


def legend_html(items: list[tuple[str, str, str]]) -> str:
    """A panel's legend: a swatch per series (line, dot or box in its colour) and its label."""
    if not items:
        return ""
    marks = {"line": "l", "dot": "d", "box": "b"}
    return "<figcaption class='legend'>" + "".join(
        f"<span><i class='{marks.get(mark, 'b')}' style='background:{html.escape(colour)}'></i>{html.escape(label)}</span>"
        for label, colour, mark in items) + "</figcaption>"


def migration_page(label: str, m: "Migration", objs: list[dict[str, Any]],
                   panels: dict[str, tuple[str, list[tuple[str, str, str]]]],
                   truth: list[dict[str, Any]], title: str) -> str:
    """The page's HTML. ``panels``: panel name → (image file, legend items), only panels that apply."""
    mig = objs[0]
    devs = [o for o in objs if o.get("kind") == "device_summary"]
    man = m.manifest
    meta = []
    if man is not None:
        for k, v in (("kind", man.kind), ("QEMU", man.qemu), ("firmware", man.firmware_version),
                     ("kernel", man.kernel), ("driver policy", man.driver_precopy_policy)):
            if v:
                meta.append(f"{k} <b>{esc(v)}</b>")
    if not missing(mig.get("qemu_profile")):
        meta.append(f"QEMU profile <b>{esc(mig['qemu_profile'])}</b>")
    imgs = ""
    for n, (f, items) in panels.items():
        w, h = PANEL_PX.get(n, (None, None))
        size_attr = f" width='{w}' height='{h}'" if w else ""
        style = f" style='width:{w}px'" if w else ""
        imgs += (f"<figure{style}><img src='{html.escape(f)}' alt='{html.escape(n)}' title='{html.escape(n)}'"
                 f"{size_attr}>{legend_html(items)}</figure>")
    body = [f"<p><a href='index.html'>← all migrations</a> · {html.escape(title)}</p>",
            f"<h1>{html.escape(label)}</h1>", f"<p class='meta'>{' · '.join(meta)}</p>",
            card(m, mig, devs)]
    if imgs:
        body.append(f"<div class='panels'>{imgs}</div>")
    body += [details("Downtime estimates", downtime_table(mig), open_=False),
             details(f"Pre-copy iterations ({len(m.iterations)} rows, ms since start)", iterations_table(m)),
             details(f"Phases ({len(m.phases)}, ms since start)", phases_table(m)),
             details(f"Findings ({len(m.findings)})", findings_table(m))]
    if truth:
        bad = sum(1 for r in truth if not r["agrees"])
        body.append(details(f"Measured vs simulator truth ({len(truth)} values, {bad} outside tolerance)",
                            truth_html(truth)))
    body.append(details("Captures and clock alignment", captures_table(m)))
    return page(f"{label} — {title}", "\n".join(body))
