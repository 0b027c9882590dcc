# SPDX-License-Identifier: GPL-2.0-only
"""Self-contained HTML report for one or many migrations (issue 5 §5).

``write_report(migrations, out_dir)`` writes ``out_dir/index.html``: the
summary table of all migrations, then per migration its captures, clock
alignment, downtime estimates with their methods, phases, iterations,
findings and the five plots inlined as base64 PNG — one file, no external
assets, viewable offline.

``group_inputs`` / ``load_groups`` turn command-line paths into migrations:
each run folder (every folder with ``run.json`` under a corpus folder) is
one migration; loose capture files given together are one migration.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

#: columns of the printed / reported summary table
TABLE_COLUMNS = ["run_id", "device", "qemu_profile", "precopy_iterations", "precopy_chunks", "precopy_snapshots",
                 "precopy_policy", "stopcopy_records", "stopcopy_bytes", "record_bytes_median", "record_bytes_max",
                 "trailer_bug", "downtime_qemu_ms", "downtime_wire_ms", "downtime_model_ms"]


def group_inputs(paths: Sequence[Path | str]) -> list[tuple[str, list[Path]]]:
    """(label, inputs) per migration: run folders / run.json each alone, loose files together."""
    from analysis.manifest import MANIFEST_NAME, find_runs

    groups: list[tuple[str, list[Path]]] = []
    loose: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for run in find_runs([p]):
                target = run.path if run.path is not None else run.folder
                groups.append((run.run_id, [target]))
        elif p.name == MANIFEST_NAME:
            groups.append((p.parent.name, [p]))
        else:
            loose.append(p)
    if loose:
        groups.insert(0, (loose[0].stem if len(loose) == 1 else f"{loose[0].stem} (+{len(loose) - 1})", loose))
    return groups


def load_groups(groups: list[tuple[str, list[Path]]], progress: bool | None = None
                ) -> list[tuple[str, "Migration | None", str | None]]:
    """Load every group; a failure (malformed run.json) is kept as (label, None, message)."""
    from analysis.load import load
    from analysis.manifest import ManifestError

    show = sys.stderr.isatty() if progress is None else progress
    items: Iterable[tuple[str, list[Path]]] = groups
    if show and len(groups) > 1:
        from tqdm import tqdm

        items = tqdm(groups, desc="migrations", unit="run", file=sys.stderr)
    out = []
    for label, paths in items:
        try:
            m = load(*paths, progress=show and len(groups) == 1)
            out.append((m.run_id or label, m, None))
        except ManifestError as e:
            out.append((label, None, str(e)))
    return out


def summary_table(loaded: list[tuple[str, "Migration | None", str | None]], full: bool = False) -> pd.DataFrame:
    from analysis.summary import summarize

    frames = []
    for label, m, _ in loaded:
        if m is None:
            continue
        df = summarize(m)
        df["run_id"] = df["run_id"].fillna(label)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    return df if full else df[[c for c in TABLE_COLUMNS if c in df.columns]]


def format_table(df: pd.DataFrame) -> str:
    def fmt(v: Any) -> str:
        if v is None or (not isinstance(v, (list, dict)) and pd.isna(v)):
            return "-"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)
    if not len(df):
        return "(no migrations)"
    return df.astype(object).map(fmt).to_string(index=False)


def _fig_png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _html_table(df: pd.DataFrame, max_rows: int = 200) -> str:
    if not len(df):
        return "<p class='none'>none</p>"
    shown = df.head(max_rows)
    extra = f"<p class='none'>… {len(df) - max_rows} more rows</p>" if len(df) > max_rows else ""
    return shown.to_html(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}", border=0,
                         classes="t", escape=True) + extra


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em} h2{font-size:1.25em;border-bottom:1px solid #ccc;margin-top:2em} h3{font-size:1.05em}
table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.t th,table.t td{border:1px solid #ddd;padding:2px 6px;text-align:right}
table.t th{background:#f3f3f3} .none{color:#777;font-style:italic}
.err{color:#b00} .warn{color:#a60} img{max-width:100%;display:block;margin:.5em 0}
code{background:#f5f5f5;padding:0 3px}
"""


def _migration_html(label: str, m: "Migration", plots_on: bool) -> str:
    from analysis import metrics as M
    from analysis import plots
    from analysis.summary import summarize

    out = [f"<h2 id='{html.escape(label)}'>{html.escape(label)}</h2>"]
    man = m.manifest
    if man is not None:
        meta = {"kind": man.kind, "firmware": man.firmware_version, "kernel": man.kernel, "qemu": man.qemu,
                "driver_precopy_policy": man.driver_precopy_policy}
        out.append("<p>" + ", ".join(f"{k}: <code>{html.escape(str(v))}</code>" for k, v in meta.items()
                                     if v is not None) + "</p>")
    caps = pd.DataFrame([{"capture": c.index, "path": str(c.path), "kind": c.kind, "role": c.role,
                          "side": c.side, "units": c.units, "error": c.error} for c in m.captures])
    out += ["<h3>Captures and clock alignment</h3>", _html_table(caps),
            _html_table(pd.DataFrame([a.to_json() for a in m.alignment]))]
    out += ["<h3>Summary</h3>", _html_table(summarize(m).T.reset_index().rename(columns={"index": "metric"}))]
    if man is not None and man.truth:
        out += ["<h3>Measured vs simulator truth</h3>", _html_table(truth_table(m))]
    d = M.downtime(m)
    est = pd.DataFrame([
        {"estimate": "(a) QEMU", "ms": d["downtime_qemu_ms"], "method": d["downtime_qemu_method"]},
        {"estimate": "(b) wire", "ms": d["downtime_wire_ms"], "method": d["downtime_wire_method"]},
        *[{"estimate": f"(c) {k}", "ms": v, "method": "share of (b)"}
          for k, v in (d["downtime_breakdown_ms"] or {}).items()],
        {"estimate": "(d) model", "ms": d["downtime_model_ms"], "method": d["downtime_model_method"]},
    ])
    out += ["<h3>Downtime</h3>", _html_table(est)]
    out += ["<h3>Phases</h3>", _html_table(m.phases), "<h3>Pre-copy iterations</h3>", _html_table(m.iterations)]
    fnd = [f for f in m.findings if f.get("severity") in ("error", "warning")]
    fnd += [f for f in m.findings if f.get("severity") == "info"][:50]
    fdf = pd.DataFrame([{k: f.get(k) for k in ("severity", "code", "message", "offset")} for f in fnd])
    out += [f"<h3>Findings ({len(m.findings)})</h3>", _html_table(fdf)]
    if plots_on:
        out.append("<h3>Plots</h3>")
        for name, fn in plots.KINDS.items():
            try:
                fig = fn(m)
                out.append(f"<img alt='{name}' title='{name}' src='data:image/png;base64,{_fig_png(fig)}'>")
            except Exception as e:  # a plot must not sink the report
                out.append(f"<p class='err'>plot {name} failed: {html.escape(type(e).__name__ + ': ' + str(e))}</p>")
    return "\n".join(out)


def truth_table(m: "Migration") -> pd.DataFrame:
    """Measured summary fields next to the run's ``truth`` (simulated runs, run-manifest.md)."""
    from analysis.summary import DEVICE_FIELDS, MIGRATION_FIELDS, summary_objects

    truth = (m.manifest.truth if m.manifest else None) or {}
    objs = summary_objects(m)
    rows = []
    mig = objs[0]
    for k in MIGRATION_FIELDS:
        if k in truth and k != "captures":
            rows.append({"device": None, "metric": k, "measured": mig.get(k), "truth": truth[k]})
    tdevs = truth.get("devices") or []
    for obj, t in zip([o for o in objs if o["kind"] == "device_summary"], tdevs):
        for k in DEVICE_FIELDS:
            if k in t and k != "device":
                rows.append({"device": obj["device"], "metric": k, "measured": obj.get(k), "truth": t[k]})
    df = pd.DataFrame(rows, columns=["device", "metric", "measured", "truth"])

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            return abs(a - b) <= 0.02 * abs(b) + 1e-6
        if isinstance(a, dict) and isinstance(b, dict):
            return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
        return a == b
    df["agrees"] = [same(a, b) for a, b in zip(df["measured"], df["truth"])]
    df["measured"] = df["measured"].map(str)
    df["truth"] = df["truth"].map(str)
    return df


def render_report(loaded: list[tuple[str, "Migration | None", str | None]], title: str = "migtrace report",
                  plots_on: bool = True) -> str:
    from analysis import __version__

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = summary_table(loaded)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>migtrace {__version__}, generated {now}; "
             f"{sum(1 for _, m, _ in loaded if m is not None)} migration(s).</p>",
             "<h2>All migrations</h2>", _html_table(table)]
    if plots_on and len(table) > 1:
        from analysis.plots import corpus_downtime

        parts.append(f"<img alt='corpus-downtime' src='data:image/png;base64,{_fig_png(corpus_downtime(table))}'>")
    ok = [(label, m) for label, m, _ in loaded if m is not None]
    if len(ok) > 1:
        parts.append("<p>" + " · ".join(f"<a href='#{html.escape(lbl)}'>{html.escape(lbl)}</a>" for lbl, _ in ok)
                     + "</p>")
    failed = [(label, msg) for label, m, msg in loaded if m is None]
    if failed:
        parts.append("<p class='err'>Not loaded: " + "; ".join(
            f"{html.escape(lbl)}: {html.escape(str(msg))}" for lbl, msg in failed) + "</p>")
    for label, m, _ in loaded:
        if m is not None:
            parts.append(_migration_html(label, m, plots_on))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(migrations: "Migration | Sequence[Migration] | list[tuple[str, Migration | None, str | None]]",
                 out_dir: Path | str, title: str = "migtrace report", plots_on: bool = True) -> Path:
    """Write ``out_dir/index.html`` and return its path."""
    from analysis.load import Migration

    if isinstance(migrations, Migration):
        migrations = [migrations]
    loaded = []
    for i, x in enumerate(migrations):
        if isinstance(x, tuple):
            loaded.append(x)
        else:
            loaded.append((x.run_id or f"migration {i + 1}", x, None))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(render_report(loaded, title, plots_on), encoding="utf-8")
    return path
