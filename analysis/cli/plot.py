# SPDX-License-Identifier: GPL-2.0-only
"""Draw one plot of a migration to a PNG or SVG file.

KIND is one of: timeline, convergence, record-sizes, parts, downtime, remaining
(QEMU's remaining RAM over time from a query-migrate time series).
CAPTURE… are the captures of one migration (or a run folder / run.json).

examples:
  migtrace plot timeline traces/sim/variants/two-vfs -o out/timeline.png
  migtrace plot downtime traces/sim/compare/fw-28.41-s1/source.pcapng traces/sim/compare/fw-28.41-s1/source.dat -o out/downtime.svg
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE
from analysis.cli.paths import make_parent

NAME = "plot"
HELP = "draw a plot (timeline, convergence, record-sizes, parts, downtime, remaining) to PNG/SVG"
KIND_NAMES = ("timeline", "convergence", "record-sizes", "parts", "downtime", "remaining")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=KIND_NAMES, metavar="KIND", help=", ".join(KIND_NAMES))
    p.add_argument("paths", nargs="+", metavar="CAPTURE", help="captures of one migration, or a run folder")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.png or FILE.svg")


def run(args: argparse.Namespace) -> int:
    from analysis.cli.summary import missing_paths

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".svg"):
        print("migtrace plot: -o must end in .png or .svg", file=sys.stderr)
        return EXIT_USAGE
    missing = missing_paths(args.paths)
    if missing:
        print(f"migtrace plot: {missing[0]}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE
    import matplotlib

    matplotlib.use("Agg")
    from analysis import plots
    from analysis.load import load
    from analysis.manifest import ManifestError

    try:
        m = load(*args.paths, progress=True if args.progress else None)
    except ManifestError as e:
        print(f"migtrace plot: {e}", file=sys.stderr)
        return EXIT_USAGE
    fig = plots.KINDS[args.kind](m)
    try:
        make_parent(out)
        fig.savefig(out, format=out.suffix.lower()[1:], dpi=100)
    except OSError as e:
        print(f"migtrace plot: {out}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    for f in m.findings:
        if f.get("severity") == "error":
            print(f"migtrace plot: ERROR {f['code']}: {f['message']}", file=sys.stderr)
    return EXIT_INPUT_ERRORS if any(f.get("severity") == "error" for f in m.findings) else EXIT_OK
