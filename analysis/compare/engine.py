# SPDX-License-Identifier: GPL-2.0-only
"""Compare groups of runs (by firmware version, kernel, QEMU, a label) metric by metric.

Input is the corpus table (one row per run and device, see
``analysis.corpus``); output the contract's ``comparison`` and
``compare_summary`` objects plus findings for categorical changes.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from analysis.compare.metrics import MetricSpec, metric_specs, version_key
from analysis.compare.stats import ALPHA, BOOTSTRAP, MIN_RUNS, compare_groups
from dissect.common import Finding


@dataclass
class CompareResult:
    by: str
    baseline: str
    candidates: list[str]
    comparisons: list[dict[str, Any]]
    findings: list[Finding]
    runs: int
    runs_failed: int
    specs: list[MetricSpec] = field(default_factory=list)
    table: pd.DataFrame | None = None

    @property
    def regressed(self) -> bool:
        return any(c["verdict"] == "regression" for c in self.comparisons)

    def summary_object(self) -> dict[str, Any]:
        verdicts = [c["verdict"] for c in self.comparisons]
        return {"kind": "compare_summary", "by": self.by, "baseline": self.baseline,
                "candidates": self.candidates, "runs": self.runs, "runs_failed": self.runs_failed,
                "regressions": verdicts.count("regression"),
                "improvements": verdicts.count("improvement"),
                "unchanged": verdicts.count("unchanged"),
                "inconclusive": verdicts.count("inconclusive")}

    def dataframe(self) -> pd.DataFrame:
        return pd.DataFrame([{k: v for k, v in c.items() if k != "kind"} for c in self.comparisons])


def _str(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(v)


def group_values(table: pd.DataFrame, by: str) -> list[str]:
    """The distinct group values present, in version order."""
    vals = {v for v in (_str(x) for x in table[by]) if v is not None}
    return sorted(vals, key=version_key)


def _samples(table: pd.DataFrame, spec: MetricSpec) -> pd.DataFrame:
    if spec.level == "migration":
        return table.drop_duplicates("run_id")
    return table[table["device"].notna()] if "device" in table else table.iloc[0:0]


def compare(table: pd.DataFrame, *, by: str = "firmware.version", baseline: str,
            candidates: Iterable[str] | None = None, thresholds: dict[str, float] | None = None,
            min_runs: int = MIN_RUNS, alpha: float = ALPHA, n_boot: int = BOOTSTRAP) -> CompareResult:
    """Compare every candidate group with ``baseline`` on every metric present."""
    findings: list[Finding] = []
    if by not in table.columns:
        raise KeyError(f"no column {by!r} in the corpus table (columns: {', '.join(map(str, table.columns))})")
    ok = table[table["status"] == "ok"] if "status" in table else table
    failed_runs = table.loc[table.get("status", pd.Series(dtype=str)) != "ok", "run_id"].nunique() \
        if "status" in table else 0
    groups = group_values(ok, by)
    if candidates is None or not list(candidates):
        cands = [g for g in groups if g != baseline]
    else:
        cands = [str(c) for c in candidates]
    keyed = ok.assign(_group=[_str(x) for x in ok[by]])
    for g in [baseline, *cands]:
        if not (keyed["_group"] == g).any():
            findings.append(Finding("error", "group_has_no_runs",
                                    f"no decoded run has {by} = {g!r} (groups present: {', '.join(groups) or 'none'})",
                                    None, {"group": g}))
    specs = metric_specs(ok.columns, thresholds)
    comparisons: list[dict[str, Any]] = []
    for spec in specs:
        samples = _samples(keyed, spec)
        base = pd.to_numeric(samples.loc[samples["_group"] == baseline, spec.name], errors="coerce").dropna()
        for cand in cands:
            c = pd.to_numeric(samples.loc[samples["_group"] == cand, spec.name], errors="coerce").dropna()
            if base.empty and c.empty:
                continue
            r = compare_groups(base.to_numpy(float), c.to_numpy(float), threshold_pct=spec.threshold_pct,
                               worse_when=spec.worse_when, seed=zlib.crc32(spec.name.encode()),
                               n_boot=n_boot, min_runs=min_runs, alpha=alpha)
            comparisons.append({
                "kind": "comparison", "metric": spec.name, "by": by, "baseline": baseline,
                "candidate": cand, "n_baseline": r.n_baseline, "n_candidate": r.n_candidate,
                "baseline_median": r.baseline_median, "candidate_median": r.candidate_median,
                "change_pct": r.change_pct, "ci_low_pct": r.ci_low_pct, "ci_high_pct": r.ci_high_pct,
                "p_value": r.p_value, "effect_size": r.effect_size, "threshold_pct": r.threshold_pct,
                "worse_when": r.worse_when, "verdict": r.verdict})
    for cand in cands:
        findings.extend(categorical_changes(keyed, by, baseline, cand))
    return CompareResult(by, baseline, cands, comparisons, findings,
                         runs=int(keyed.loc[keyed["_group"].isin([baseline, *cands]), "run_id"].nunique()),
                         runs_failed=int(failed_runs),
                         specs=specs, table=keyed)


def _values(df: pd.DataFrame, col: str) -> set[Any]:
    if col not in df:
        return set()
    return {v for v in df[col].dropna().tolist()}


def categorical_changes(table: pd.DataFrame, by: str, baseline: str, cand: str) -> list[Finding]:
    """PRE_COPY policy, part types, the kernel trailer bug, admin error statuses."""
    b = table[table["_group"] == baseline]
    c = table[table["_group"] == cand]
    ctx = {"by": by, "baseline": baseline, "candidate": cand}
    out: list[Finding] = []
    if b.empty or c.empty:
        return out
    bp, cp = _values(b, "precopy_policy"), _values(c, "precopy_policy")
    if bp and cp and bp != cp:
        out.append(Finding("warning", "precopy_policy_changed",
                           f"PRE_COPY policy {', '.join(sorted(map(str, bp)))} → {', '.join(sorted(map(str, cp)))}",
                           None, dict(ctx, baseline_values=sorted(map(str, bp)), candidate_values=sorted(map(str, cp)))))
    part_cols = [col for col in table.columns if col.startswith("bytes_by_part_type.")]
    present = {}
    for name, df in (("b", b), ("c", c)):
        present[name] = {col.split(".", 1)[1] for col in part_cols
                         if (pd.to_numeric(df[col], errors="coerce").fillna(0) > 0).any()}
    for t in sorted(present["c"] - present["b"]):
        out.append(Finding("warning", "part_type_appeared", f"device part type {t} appears in {cand}",
                           None, dict(ctx, part_type=t)))
    for t in sorted(present["b"] - present["c"]):
        out.append(Finding("warning", "part_type_disappeared", f"device part type {t} is gone in {cand}",
                           None, dict(ctx, part_type=t)))
    if "trailer_bug" in table:
        if not b["trailer_bug"].fillna(False).astype(bool).any() and c["trailer_bug"].fillna(False).astype(bool).any():
            out.append(Finding("error", "trailer_bug_appeared",
                               "records carry the 8-byte kernel trailer (Linux 6.13.0–6.15.2, CVE-2025-38314) "
                               f"in {cand} but not in {baseline}", None, ctx))
    err_cols = [col for col in table.columns if col.startswith("admin_errors.")]
    for col in err_cols:
        bn = pd.to_numeric(b[col], errors="coerce").fillna(0).sum()
        cn = pd.to_numeric(c[col], errors="coerce").fillna(0).sum()
        if cn > 0 and bn == 0:
            status = col.split(".", 1)[1]
            out.append(Finding("warning", "admin_error_status_new",
                               f"admin commands complete with {status} in {cand} ({int(cn)}×), never in {baseline}",
                               None, dict(ctx, status=status, count=int(cn))))
    return out
