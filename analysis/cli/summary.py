# SPDX-License-Identifier: GPL-2.0-only
"""Summarise migrations: pre-copy iterations, record sizes, PRE_COPY policy, downtime.

CAPTURE files given together are the captures of ONE migration (any mix of
pcap/pcapng, trace.dat, text traces, QEMU logs, admin captures, info migrate
output); each RUNDIR (a folder with run.json, or a corpus folder holding run
folders) is one migration per run folder.

examples:
  migtrace summary traces/real/qemu-tcp-returnpath.pcap traces/real/qemu-tcp-returnpath.src.log
  migtrace summary traces/sim/variants/two-vfs
  migtrace summary --json traces/sim/variants/two-vfs/run.json | jq 'select(.kind=="device_summary")'
  tcpdump -i lo -w - -U port 4444 | migtrace summary --json - qemu-src.log
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE
from analysis.cli.paths import capture_file_problem

NAME = "summary"
HELP = "summarise migrations: iterations, record sizes, PRE_COPY policy, downtime"
#: the analysis' own finding codes (docs/analysis.md); decoder info findings stay out of --json
ANALYSIS_CODES = {"capture_unreadable", "capture_unknown_format", "capture_decode_failed", "clock_alignment",
                  "clock_alignment_failed", "device_name_unmapped", "device_names_mapped_by_order", "admin_duplicates_dropped", "trace_stream_chunk_mismatch",
                  "stopcopy_size_mismatch", "admin_record_size_mismatch", "record_trailer_present",
                  "qemu_counter_mismatch"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="CAPTURE|RUNDIR",
                   help="captures of one migration, or run folders; - reads a capture from standard input")
    p.add_argument("--json", action="store_true",
                   help="JSON Lines: migration_summary and device_summary objects (json-lines.md) and findings")


def selected_findings(m) -> list[dict]:
    return [f for f in m.findings if f.get("severity") in ("error", "warning") or f.get("code") in ANALYSIS_CODES]


def print_findings(label: str, m, out=None) -> None:
    """Errors and warnings, one line per code (count and the first message)."""
    out = out or sys.stdout
    by_code: dict[tuple[str, str], list[dict]] = {}
    for f in m.findings:
        if f.get("severity") in ("error", "warning"):
            by_code.setdefault((f["severity"], f["code"]), []).append(f)
    for (sev, code), fs in by_code.items():
        more = f" (x{len(fs)})" if len(fs) > 1 else ""
        out.write(f"{label}: {sev.upper()} {code}{more}: {fs[0]['message']}\n")


def _no_captures(paths: list[Path]) -> bool:
    """A group whose only input is a folder holding no capture file (run.json-less, empty)."""
    from analysis.load import expand_inputs

    try:
        return not expand_inputs(paths)[0]
    except Exception:  # a malformed run.json is reported by the load, not here
        return False


def missing_paths(paths: list[str]) -> list[str]:
    return [p for p in paths if not Path(p).exists()]


def load_inputs(command: str, args: argparse.Namespace) -> list | None:
    """The migrations named by ``args.paths``, loaded; None after a usage error on stderr."""
    from analysis.report import load_groups

    groups = input_groups(command, args)
    if groups is None:
        return None
    return load_groups(groups, progress=True if args.progress else None)


def input_groups(command: str, args: argparse.Namespace) -> list | None:
    """(label, paths) of every migration named by ``args.paths``; None after a usage error on stderr."""
    from analysis.manifest import ManifestError
    from analysis.report import group_inputs

    missing = missing_paths(args.paths)
    if missing:
        print(f"migtrace {command}: {missing[0]}: no such file or directory", file=sys.stderr)
        return None
    try:
        groups = group_inputs(args.paths)
    except ManifestError as e:
        print(f"migtrace {command}: {e}", file=sys.stderr)
        return None
    empty = [p for p in args.paths if Path(p).is_dir() and not any(
        paths for _, paths in group_inputs([p]) if paths and not _no_captures(paths))]
    if empty or not groups:
        print(f"migtrace {command}: no capture found under {(empty or args.paths)[0]}", file=sys.stderr)
        return None
    problems = [(p, capture_file_problem(p)) for p in args.paths if not Path(p).is_dir()]
    problems = [(p, why) for p, why in problems if why]
    if problems:
        print(f"migtrace {command}: {problems[0][0]}: {problems[0][1]}", file=sys.stderr)
        return None
    return groups


def run(args: argparse.Namespace) -> int:
    from analysis.live.spool import stdin_as_file

    if args.paths.count("-") > 1:
        print("migtrace summary: - (standard input) can be given once", file=sys.stderr)
        return EXIT_USAGE
    with stdin_as_file(args.paths) as (paths, tmp):
        args.paths = paths
        return _run(args, tmp)


def _run(args: argparse.Namespace, tmp: str | None) -> int:
    from analysis.cli.output import _json_default
    from analysis.live.spool import renamed
    from analysis.report import format_table, summary_table
    from analysis.summary import summary_objects

    loaded = load_inputs("summary", args)
    if loaded is None:
        return EXIT_USAGE
    errors = 0
    for label, m, msg in loaded:
        if m is None:
            print(f"migtrace summary: {msg}", file=sys.stderr)
            errors += 1
            continue
        errors += sum(1 for f in m.findings if f.get("severity") == "error")
        if args.json:
            for obj in renamed(summary_objects(m) + selected_findings(m), tmp):
                sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=_json_default) + "\n")
    if not args.json:
        print(format_table(summary_table(loaded)))
        for label, m, _ in loaded:
            if m is None:
                continue
            print_findings(label, m)
    if all(m is None for _, m, _ in loaded):
        return EXIT_USAGE
    return EXIT_INPUT_ERRORS if errors else EXIT_OK
