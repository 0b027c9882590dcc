# SPDX-License-Identifier: GPL-2.0-only
"""Export one migration: a trace for the Perfetto UI, or every frame as Parquet.

perfetto: Chrome trace-event JSON (open it at ui.perfetto.dev, or chrome://tracing):
tracks for the phases of each VFIO device, the pre-copy iterations, the wire
downtime window, each device's records (sizes as args), admin commands (slices
from request to completion), return-path messages and main-channel commands, and
the QEMU / kernel trace events of every trace capture (instants). A host and a
guest trace given together land on one clock. Times are µs since the migration's
first timestamp (otherData.t0_ns).

parquet: one typed Parquet file per frame (events, sections, chunks, records,
parts, admin, flows, rp_messages, commands, multifd, phases, iterations, qmp) in
DIR; integer nanoseconds stay exact; per-row objects (args, data, result,
selector, value) are JSON text.

INPUT: a run folder, a run.json, or the captures of one migration.

examples:
  migtrace export perfetto traces/sim/variants/two-vfs -o out/two-vfs.json
  migtrace export perfetto traces/real/qemu10/runs/multipass -o out/multipass.json
  migtrace export parquet traces/sim/compare/fw-28.40-s1 -o out/fw-28.40-s1
"""
from __future__ import annotations

import argparse
import sys

from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE

NAME = "export"
HELP = "export one migration: perfetto (trace JSON for ui.perfetto.dev) or parquet (every frame)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=("perfetto", "parquet"), help="perfetto: FILE.json; parquet: a folder")
    p.add_argument("paths", nargs="+", metavar="INPUT", help="run folder, run.json or the captures of one migration")
    p.add_argument("-o", "--output", required=True, metavar="FILE|DIR",
                   help="perfetto: the trace file to write; parquet: the folder for <frame>.parquet")


def run(args: argparse.Namespace) -> int:
    from analysis.cli.summary import input_groups

    groups = input_groups("export", args)
    if groups is None:
        return EXIT_USAGE
    if len(groups) != 1:
        print(f"migtrace export: {len(groups)} migrations under {' '.join(args.paths)}; export takes one "
              "(a run folder, a run.json, or the captures of one migration)", file=sys.stderr)
        return EXIT_USAGE
    from analysis.report.inputs import load_one

    label, m, err = load_one(*groups[0], progress=bool(args.progress))
    if m is None:
        print(f"migtrace export: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.format == "perfetto":
            from analysis.export.perfetto import write_perfetto

            written = [write_perfetto(m, args.output)]
        else:
            from analysis.export.parquet import write_parquet

            written = write_parquet(m, args.output)
    except OSError as e:
        print(f"migtrace export: {args.output}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    for p in written:
        print(p)
    errors = [f for f in m.findings if f.get("severity") == "error"]
    for f in errors:
        print(f"{label}: ERROR {f['code']}: {f['message']}", file=sys.stderr)
    return EXIT_INPUT_ERRORS if errors else EXIT_OK
