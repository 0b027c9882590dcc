# SPDX-License-Identifier: GPL-2.0-only
"""Compare groups of runs (default: firmware versions) metric by metric.

For every metric: medians, relative change, a bootstrap 95% interval of the
change in medians, the Mann–Whitney U p-value, Cliff's delta and a verdict
(regression, improvement, unchanged, inconclusive). Exit code 3 when any
metric regressed.

examples:
  migtrace compare traces/sim/compare --baseline 28.40.1000 --candidate 28.41.1000
  migtrace compare out/table.parquet --baseline 28.40.1000 --threshold downtime_wire_ms=+5% -o out/compare.html
  migtrace compare traces/sim --by driver_precopy_policy --baseline ratelimited --candidate cap128 --json
"""
from __future__ import annotations

import argparse
import math
import json
import sys
from pathlib import Path

from analysis.cli.corpus import add_engine_arguments, load
from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_REGRESSED, EXIT_USAGE
from analysis.cli.paths import make_parent

NAME = "compare"
HELP = "compare firmware versions (or kernels, QEMU versions, labels) with statistics; exit 3 on regression"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("corpus", nargs="+", metavar="CORPUS",
                   help="corpus folders, run.json files, or a table from `migtrace corpus -o`")
    p.add_argument("--baseline", required=True, metavar="V", help="the group value to compare against")
    p.add_argument("--candidate", action="append", metavar="V",
                   help="a group to compare (repeatable; default: every other group)")
    p.add_argument("--by", default="firmware.version", metavar="FIELD",
                   help="table column that defines the groups (default firmware.version; "
                        "e.g. kernel, qemu, labels.host)")
    p.add_argument("--threshold", action="append", default=[], metavar="METRIC=N%",
                   help="per-metric threshold, e.g. downtime_wire_ms=+5%% (a family: 'admin_latency_ms.*=20%%')")
    p.add_argument("--thresholds", metavar="FILE.toml", help="thresholds from a TOML [thresholds] table")
    p.add_argument("--min-runs", type=int, default=3, help="fewer runs in a group → inconclusive (default 3)")
    p.add_argument("--json", action="store_true", help="JSON Lines: comparison per metric, then compare_summary")
    p.add_argument("-o", "--output", metavar="REPORT.html", help="write an HTML report with plots")
    add_engine_arguments(p)


def _table(args: argparse.Namespace):
    import pandas as pd

    paths = args.corpus
    if len(paths) == 1 and Path(paths[0]).is_file() and paths[0].endswith(".parquet"):
        return pd.read_parquet(paths[0]), []
    args.paths = paths
    res = load(args)
    return res.table, res.findings


def _groups_problem(table, args: argparse.Namespace) -> str | None:
    """Why the groups cannot be compared (unknown baseline or candidate, fewer than two groups,
    a group with fewer decoded runs than --min-runs), or None."""
    from analysis.compare.engine import _str, group_values

    ok = table[table["status"] == "ok"] if "status" in table else table
    groups = group_values(ok, args.by)
    present = ", ".join(groups) or "none"
    if args.baseline not in groups:
        return f"unknown baseline {args.by} = {args.baseline!r} (groups present: {present})"
    for c in args.candidate or []:
        if str(c) not in groups:
            return f"unknown candidate {args.by} = {c!r} (groups present: {present})"
    chosen = [args.baseline, *([str(c) for c in args.candidate] if args.candidate else
                               [g for g in groups if g != args.baseline])]
    if len(set(chosen)) < 2:
        return (f"nothing to compare: {len(groups)} group{'s' if len(groups) != 1 else ''} of {args.by} "
                f"({present}); at least two are needed")
    keys = ok[args.by].map(_str)
    small = [(g, int(ok.loc[keys == g, "run_id"].nunique())) for g in dict.fromkeys(chosen)]
    small = [(g, n) for g, n in small if n < args.min_runs]
    if small:
        return "; ".join(f"group {g!r} has {_plural(n, 'decoded run')}" for g, n in small) + \
            f", fewer than --min-runs {args.min_runs}"
    return None


def _p(v) -> str:
    return "-" if v is None else "<0.001" if v < 0.001 else f"{v:.3f}".rstrip("0").rstrip(".")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _fmt(v, spec="{:.4g}") -> str:
    """Fixed notation (never ``2.97e+04``): up to 4 significant digits, at least the integer part."""
    if v is None:
        return "-"
    if spec != "{:.4g}":
        return spec.format(v)
    a = abs(v)
    digits = 0 if a >= 1000 or a == 0 else min(6, 3 - math.floor(math.log10(a)))
    return f"{v:.{max(digits, 0)}f}"


def run(args: argparse.Namespace) -> int:
    from analysis.compare.engine import compare
    from analysis.compare.metrics import load_threshold_file, parse_threshold

    for p in args.corpus:
        if not Path(p).exists():
            print(f"migtrace compare: {p}: no such file or folder", file=sys.stderr)
            return EXIT_USAGE
    try:
        thresholds = load_threshold_file(args.thresholds) if args.thresholds else {}
        thresholds.update(dict(parse_threshold(t) for t in args.threshold))
    except (ValueError, OSError) as e:
        print(f"migtrace compare: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.output:
        try:
            make_parent(args.output)
        except OSError as e:
            print(f"migtrace compare: {args.output}: {e.strerror or e}", file=sys.stderr)
            return EXIT_USAGE
    table, findings = _table(args)
    if table.empty or args.by not in table.columns:
        print(f"migtrace compare: no runs with a {args.by!r} column under {' '.join(args.corpus)}",
              file=sys.stderr)
        for f in findings:
            print(f"{f.severity.upper()} {f.code}: {f.message}", file=sys.stderr)
        return EXIT_USAGE
    problem = _groups_problem(table, args)
    if problem:  # a gate must never pass having compared nothing: no result is printed
        print(f"migtrace compare: {problem}", file=sys.stderr)
        for f in findings:
            print(f"{f.severity.upper()} {f.code}: {f.message}", file=sys.stderr)
        return EXIT_USAGE
    res = compare(table, by=args.by, baseline=args.baseline, candidates=args.candidate,
                  thresholds=thresholds, min_runs=args.min_runs)
    findings = findings + res.findings
    if args.json:
        for c in res.comparisons:
            print(json.dumps(c))
        for f in findings:
            print(json.dumps(f.to_json()))
        print(json.dumps(res.summary_object()))
    else:
        print(f"{'metric':<40} {'candidate':<14} {'n':>7} {'baseline':>11} {'candidate':>11} "
              f"{'change':>8} {'95% CI':>17} {'p':>8}  verdict")
        for c in res.comparisons:
            ci = f"{_fmt(c['ci_low_pct'], '{:+.1f}')}..{_fmt(c['ci_high_pct'], '{:+.1f}')}"
            print(f"{c['metric']:<40} {c['candidate']:<14} {c['n_baseline']:>3}/{c['n_candidate']:<3} "
                  f"{_fmt(c['baseline_median']):>11} {_fmt(c['candidate_median']):>11} "
                  f"{_fmt(c['change_pct'], '{:+.1f}%'):>8} {ci:>17} {_p(c['p_value']):>8}  "
                  f"{c['verdict'].upper() if c['verdict'] == 'regression' else c['verdict']}")
        for f in findings:
            print(f"{f.severity.upper()} {f.code}: {f.message}")
        s = res.summary_object()
        print(f"baseline {s['baseline']} vs {', '.join(s['candidates'])}: {_plural(s['runs'], 'run')} "
              f"({s['runs_failed']} failed); {_plural(s['regressions'], 'regression')}, "
              f"{_plural(s['improvements'], 'improvement')}, {s['inconclusive']} inconclusive")
    if args.output:
        from analysis.compare.report import write_html

        write_html(res, args.output)
        if args.progress or sys.stderr.isatty():
            print(f"report: {args.output}", file=sys.stderr)
    if res.regressed:
        return EXIT_REGRESSED
    if any(f.severity == "error" for f in findings) or res.runs_failed:
        return EXIT_INPUT_ERRORS
    return EXIT_OK
