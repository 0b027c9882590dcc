# SPDX-License-Identifier: GPL-2.0-only
"""Figures and the self-contained HTML report of a comparison."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from analysis.compare.engine import CompareResult, _samples  # noqa: E402
from analysis.compare.metrics import MetricSpec, version_key  # noqa: E402

_VERDICT_COLOUR = {"regression": "#c0392b", "improvement": "#1e8449", "unchanged": "#7f8c8d",
                   "inconclusive": "#b9770e"}


def _groups(result: CompareResult) -> list[str]:
    return sorted({result.baseline, *result.candidates}, key=version_key)


def metric_figure(result: CompareResult, spec: MetricSpec) -> Figure:
    """Box and strip plot of one metric per group (version order); a trend of
    the medians beside it when more than two groups are compared."""
    table = _samples(result.table, spec)
    groups = _groups(result)
    data = [pd.to_numeric(table.loc[table["_group"] == g, spec.name], errors="coerce").dropna().to_numpy(float)
            for g in groups]
    trend = len(groups) > 2
    fig, axes = plt.subplots(1, 2 if trend else 1, figsize=(9 if trend else 5, 3.2), squeeze=False)
    ax = axes[0][0]
    ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
    ax.set_xticks(range(1, len(groups) + 1), groups)
    rng = np.random.default_rng(0)
    verdicts = {c["candidate"]: c["verdict"] for c in result.comparisons if c["metric"] == spec.name}
    for i, (g, d) in enumerate(zip(groups, data), start=1):
        colour = "#2c3e50" if g == result.baseline else _VERDICT_COLOUR.get(verdicts.get(g, ""), "#2c3e50")
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(d)), d, s=14, color=colour, alpha=0.8, zorder=3,
                   label=g)
    ax.set_xlabel(result.by)
    ax.set_ylabel(spec.name)
    ax.set_title(f"{spec.name} (worse when {spec.worse_when})", fontsize=9)
    if trend:
        t = axes[0][1]
        meds = [float(np.median(d)) if len(d) else np.nan for d in data]
        t.plot(range(len(groups)), meds, marker="o", color="#2c3e50", label="median")
        t.set_xticks(range(len(groups)), groups)
        t.set_xlabel(result.by)
        t.set_ylabel(f"median {spec.name}")
        t.set_title("trend over versions", fontsize=9)
    fig.tight_layout()
    return fig


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_html(result: CompareResult, path: str | Path) -> Path:
    """One file, images inlined: comparisons, findings and a figure per metric."""
    path = Path(path)
    rows = []
    for c in result.comparisons:
        def fmt(v, spec="{:.3g}"):
            return "" if v is None else spec.format(v)
        rows.append(
            f"<tr><td>{html.escape(c['metric'])}</td><td>{html.escape(c['candidate'])}</td>"
            f"<td>{c['n_baseline']}/{c['n_candidate']}</td><td>{fmt(c['baseline_median'])}</td>"
            f"<td>{fmt(c['candidate_median'])}</td><td>{fmt(c['change_pct'], '{:+.1f}%')}</td>"
            f"<td>{fmt(c['ci_low_pct'], '{:+.1f}')} … {fmt(c['ci_high_pct'], '{:+.1f}')}</td>"
            f"<td>{fmt(c['p_value'])}</td><td>{fmt(c['effect_size'], '{:+.2f}')}</td>"
            f"<td>±{c['threshold_pct']:g}%</td>"
            f"<td style='color:{_VERDICT_COLOUR[c['verdict']]};font-weight:bold'>{c['verdict']}</td></tr>")
    finds = "".join(f"<li><b>{html.escape(f.severity)}</b> {html.escape(f.code)}: {html.escape(f.message)}</li>"
                    for f in result.findings) or "<li>none</li>"
    figs = []
    for spec in result.specs:
        if any(c["metric"] == spec.name for c in result.comparisons):
            figs.append(f"<figure><img alt='{html.escape(spec.name)}' src='data:image/png;base64,"
                        f"{_png(metric_figure(result, spec))}'></figure>")
    s = result.summary_object()
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>migtrace compare</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}td:first-child{{text-align:left}}
figure{{display:inline-block;margin:4px}}</style></head><body>
<h1>migtrace compare: {html.escape(result.by)}</h1>
<p>baseline <b>{html.escape(result.baseline)}</b>; candidates {html.escape(', '.join(result.candidates))};
runs used {s['runs']}, failed {s['runs_failed']}; regressions {s['regressions']},
improvements {s['improvements']}, unchanged {s['unchanged']}, inconclusive {s['inconclusive']}.</p>
<h2>Metrics</h2><table><tr><th>metric</th><th>candidate</th><th>n</th><th>baseline median</th>
<th>candidate median</th><th>change</th><th>95% CI (%)</th><th>p (Mann–Whitney)</th><th>Cliff's δ</th>
<th>threshold</th><th>verdict</th></tr>{''.join(rows)}</table>
<h2>Findings</h2><ul>{finds}</ul><h2>Figures</h2>{''.join(figs)}</body></html>"""
    path.write_text(doc, encoding="utf-8")
    return path
