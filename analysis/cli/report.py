# SPDX-License-Identifier: GPL-2.0-only
"""Write the HTML report and print the summary table.

DIR/index.html holds one sortable, filterable table of every migration; each row
links a page per migration (a card of the answers: total time, downtime and its
breakdown, pre-copy iterations, PRE_COPY policy with its evidence, stop-copy bytes,
record sizes, trailer bug, findings; the timeline with the switchover zoomed in,
convergence, record sizes; details collapsed). Migrations are processed in
parallel (--jobs). PATH may be a corpus folder (every run folder under it is one
migration), a run folder, a run.json, or capture files of one migration.

examples:
  migtrace report traces/ -o out/report        # then open out/report/index.html
  migtrace report traces/sim/ traces/real/ -o out/tables --no-plots
"""
from __future__ import annotations

import argparse
import sys

from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE

NAME = "report"
HELP = "HTML report: a fleet table and one page per migration"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="corpus folder, run folder, run.json or captures")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (DIR/index.html)")
    p.add_argument("--title", default="migtrace report", help="report title")
    p.add_argument("--no-plots", action="store_true", help="tables only (faster)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes (default: the number of CPUs)")
    p.add_argument("--no-cache", action="store_true",
                   help="rebuild every page (default: reuse a page whose inputs and migtrace are unchanged; "
                        "cache in MIGTRACE_REPORT_CACHE or ~/.cache/migtrace/report)")


def run(args: argparse.Namespace) -> int:
    from analysis.cli.summary import input_groups

    groups = input_groups("report", args)
    if groups is None:
        return EXIT_USAGE
    import matplotlib

    matplotlib.use("Agg")
    from analysis.report import build_report, format_table, summary_table

    if args.jobs is not None and args.jobs < 1:
        print("migtrace report: --jobs N must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        path, outcomes = build_report(groups, args.output, title=args.title, plots_on=not args.no_plots,
                                      jobs=args.jobs, progress=True if args.progress else None,
                                      cache=not args.no_cache)
    except OSError as e:
        print(f"migtrace report: {args.output}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    print(format_table(summary_table([o.summary for o in outcomes if o.summary is not None])))
    print(f"\nreport: {path}")
    for o in outcomes:
        if o.error:
            print(f"migtrace report: {o.error}", file=sys.stderr)
    errors = sum(1 for o in outcomes if o.error) + sum(o.error_findings for o in outcomes)
    return EXIT_INPUT_ERRORS if errors else EXIT_OK
