# SPDX-License-Identifier: GPL-2.0-only
"""Two-group statistics for regression gating: medians, a bootstrap interval
of the relative change in medians, the Mann–Whitney U test, Cliff's delta,
and the verdict rule.

Plain NumPy so that the package needs no SciPy at run time; the tests check
the U test against ``scipy.stats.mannwhitneyu`` (exact and asymptotic
regimes), an oracle we did not write.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Verdict = Literal["regression", "improvement", "unchanged", "inconclusive"]
WorseWhen = Literal["higher", "lower"]

#: Below this many runs in either group no verdict but ``inconclusive``.
MIN_RUNS = 3
ALPHA = 0.05
BOOTSTRAP = 2000


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=float)
    # boundaries of runs of equal values
    diff = np.concatenate(([True], xs[1:] != xs[:-1], [True]))
    idx = np.flatnonzero(diff)
    for lo, hi in zip(idx[:-1], idx[1:]):
        ranks[order[lo:hi]] = (lo + hi + 1) / 2.0
    return ranks


def _exact_u_counts(n1: int, n2: int) -> np.ndarray:
    """Number of arrangements giving each U in 0..n1*n2 (no ties)."""
    # c[i][j] is the count vector for sample sizes (i, j).
    prev = [np.ones(1, dtype=float) for _ in range(n2 + 1)]  # i = 0: only U = 0
    for i in range(1, n1 + 1):
        cur = [np.ones(1, dtype=float)]  # j = 0: only U = 0
        for j in range(1, n2 + 1):
            size = i * j + 1
            v = np.zeros(size)
            a = prev[j]  # largest element from sample 1: adds j to U
            v[j:j + len(a)] += a
            b = cur[j - 1]  # largest element from sample 2: adds 0
            v[:len(b)] += b
            cur.append(v)
        prev = cur
    return prev[n2]


def mann_whitney_u(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided Mann–Whitney U test of ``x`` against ``y``.

    Returns (U of x, p-value).  Exact distribution when one sample has at
    most 8 values and there are no ties (SciPy's ``method="auto"`` rule;
    we also require n1·n2 ≤ 20000 to bound the counting work), otherwise
    the normal approximation with tie and continuity corrections.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    ranks = rankdata(np.concatenate([x, y]))
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2)
    u2 = n1 * n2 - u1
    has_ties = len(np.unique(np.concatenate([x, y]))) < n1 + n2
    if min(n1, n2) <= 8 and n1 * n2 <= 20000 and not has_ties:
        counts = _exact_u_counts(n1, n2)
        total = counts.sum()
        u = max(u1, u2)
        sf = counts[int(round(u)):].sum() / total  # P(U >= u)
        return u1, float(min(1.0, 2.0 * sf))
    mu = n1 * n2 / 2.0
    _, tcounts = np.unique(ranks, return_counts=True)
    n = n1 + n2
    tie_term = float((tcounts ** 3 - tcounts).sum()) / (n * (n - 1))
    sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term))
    if sigma == 0:
        return u1, 1.0
    z = (max(u1, u2) - mu - 0.5) / sigma
    p = math.erfc(z / math.sqrt(2.0))  # 2 * sf(z)
    return u1, float(min(1.0, max(0.0, p)))


def cliffs_delta(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """P(candidate > baseline) − P(candidate < baseline), in [-1, 1]."""
    b = np.asarray(baseline, dtype=float)[:, None]
    c = np.asarray(candidate, dtype=float)[None, :]
    if b.size == 0 or c.size == 0:
        return math.nan
    return float(((c > b).sum() - (c < b).sum()) / (b.size * c.size))


def relative_change_pct(base: float, cand: float) -> float | None:
    """Change of ``cand`` relative to ``base`` in percent (None if base is 0 and cand isn't)."""
    if base == 0:
        return 0.0 if cand == 0 else None
    return (cand - base) / abs(base) * 100.0


def bootstrap_change_ci(baseline: np.ndarray, candidate: np.ndarray, *, n_boot: int = BOOTSTRAP,
                        seed: int = 0, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the relative change in medians (percent).

    Resamples both groups independently; deterministic for ``seed`` so that
    two engines computing the same table agree to the last digit.
    """
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    if len(b) == 0 or len(c) == 0:
        return None, None
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, len(b), size=(n_boot, len(b)))], axis=1)
    mc = np.median(c[rng.integers(0, len(c), size=(n_boot, len(c)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(mb != 0, (mc - mb) / np.abs(mb) * 100.0,
                       np.where(mc == mb, 0.0, np.nan))
    pct = pct[np.isfinite(pct)]
    if len(pct) < n_boot * 0.9:  # baseline medians mostly zero: no relative scale
        return None, None
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(pct, [tail, 100.0 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True, slots=True)
class TwoGroupResult:
    n_baseline: int
    n_candidate: int
    baseline_median: float | None
    candidate_median: float | None
    change_pct: float | None
    ci_low_pct: float | None
    ci_high_pct: float | None
    p_value: float | None
    effect_size: float | None
    threshold_pct: float
    worse_when: WorseWhen
    verdict: Verdict


def verdict(ci: tuple[float | None, float | None], p: float | None, *, threshold_pct: float,
            worse_when: WorseWhen, n_baseline: int, n_candidate: int,
            min_runs: int = MIN_RUNS, alpha: float = ALPHA) -> Verdict:
    """The gating rule.

    ``regression``: the whole interval lies beyond the threshold in the worse
    direction and the rank test rejects equality; ``improvement`` likewise in
    the better direction; ``unchanged``: the whole interval lies within
    ±threshold; otherwise (or with fewer than ``min_runs`` runs in a group,
    or no interval) ``inconclusive``.
    """
    lo, hi = ci
    if n_baseline < min_runs or n_candidate < min_runs or lo is None or hi is None:
        return "inconclusive"
    worse_lo, worse_hi = (lo, hi) if worse_when == "higher" else (-hi, -lo)
    significant = p is not None and not math.isnan(p) and p < alpha
    if worse_lo > threshold_pct and significant:
        return "regression"
    if worse_hi < -threshold_pct and significant:
        return "improvement"
    if worse_lo >= -threshold_pct and worse_hi <= threshold_pct:
        return "unchanged"
    return "inconclusive"


def compare_groups(baseline: np.ndarray, candidate: np.ndarray, *, threshold_pct: float,
                   worse_when: WorseWhen, seed: int = 0, n_boot: int = BOOTSTRAP,
                   min_runs: int = MIN_RUNS, alpha: float = ALPHA) -> TwoGroupResult:
    """Everything the ``comparison`` object reports for one metric."""
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(candidate, dtype=float)
    b = b[np.isfinite(b)]
    c = c[np.isfinite(c)]
    mb = float(np.median(b)) if len(b) else None
    mc = float(np.median(c)) if len(c) else None
    change = relative_change_pct(mb, mc) if mb is not None and mc is not None else None
    ci = bootstrap_change_ci(b, c, n_boot=n_boot, seed=seed) if len(b) and len(c) else (None, None)
    if len(b) and len(c):
        _, p = mann_whitney_u(c, b)
        eff = cliffs_delta(b, c)
    else:
        p, eff = None, None
    v = verdict(ci, p, threshold_pct=threshold_pct, worse_when=worse_when,
                n_baseline=len(b), n_candidate=len(c), min_runs=min_runs, alpha=alpha)
    return TwoGroupResult(len(b), len(c), mb, mc, change, ci[0], ci[1],
                          None if p is None or math.isnan(p) else p,
                          None if eff is None or math.isnan(eff) else eff,
                          threshold_pct, worse_when, v)
