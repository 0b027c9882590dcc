# SPDX-License-Identifier: GPL-2.0-only
"""Write a self-contained HTML report (tables and plots) and print the summary table.

PATH may be a corpus folder (every run folder under it is one migration), a
run folder, a run.json, or capture files of one migration.

examples:
  migtrace report traces/ -o out/report        # then open out/report/index.html
  migtrace report traces/sim/ traces/real/ -o out/tables --no-plots
"""
from __future__ import annotations

import argparse
import sys

from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE

NAME = "report"
HELP = "HTML report (tables and plots) for one or many migrations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="corpus folder, run folder, run.json or captures")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (DIR/index.html)")
    p.add_argument("--title", default="migtrace report", help="report title")
    p.add_argument("--no-plots", action="store_true", help="tables only (faster)")


def run(args: argparse.Namespace) -> int:
    from analysis.cli.summary import load_inputs
    from analysis.report import format_table, summary_table, write_report

    loaded = load_inputs("report", args)
    if loaded is None:
        return EXIT_USAGE
    import matplotlib

    matplotlib.use("Agg")
    try:
        path = write_report(loaded, args.output, title=args.title, plots_on=not args.no_plots)
    except OSError as e:
        print(f"migtrace report: {args.output}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    print(format_table(summary_table(loaded)))
    print(f"\nreport: {path}")
    for label, m, msg in loaded:
        if m is None:
            print(f"migtrace report: {msg}", file=sys.stderr)
    errors = sum(1 for _, m, _ in loaded if m is None) + sum(
        1 for _, m, _ in loaded if m is not None for f in m.findings if f.get("severity") == "error")
    return EXIT_INPUT_ERRORS if errors else EXIT_OK
