# SPDX-License-Identifier: GPL-2.0-only
"""Decode and summarise every run (folder with run.json) under PATHs into one table.

examples:
  migtrace corpus traces/sim -o out/table.parquet
  migtrace corpus traces/sim -o out/table.parquet --engine dask --workers 2
  migtrace corpus /lab/runs -o t.parquet --engine dask --scheduler tcp://10.0.0.5:8786
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE
from analysis.cli.paths import make_parent

NAME = "corpus"
HELP = "summarise every run under PATHs into one Parquet table (cached; local or Dask)"


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="where runs are decoded (default: local, one process)")
    p.add_argument("--workers", type=int, default=2, help="dask: workers of the local cluster (default 2)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="dask: address of an existing scheduler")
    p.add_argument("--cache", metavar="DIR", help="per-run Parquet cache (default ~/.cache/migtrace/corpus)")
    p.add_argument("--no-cache", action="store_true", help="decode every run, store nothing")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="corpus folders or run.json files")
    p.add_argument("-o", "--output", required=True, metavar="TABLE.parquet")
    p.add_argument("--json", action="store_true", help="findings and a corpus summary as JSON Lines")
    add_engine_arguments(p)


def load(args: argparse.Namespace):
    from analysis.corpus import DEFAULT_CACHE, load_corpus

    cache = None if args.no_cache else (args.cache or DEFAULT_CACHE)
    progress = args.progress or sys.stderr.isatty()
    return load_corpus(args.paths, engine=args.engine, cache_dir=cache, workers=args.workers,
                       scheduler=args.scheduler, progress=progress)


def run(args: argparse.Namespace) -> int:
    for p in args.paths:
        if not Path(p).exists():
            print(f"migtrace corpus: {p}: no such file or folder", file=sys.stderr)
            return EXIT_USAGE
    res = load(args)
    try:
        make_parent(args.output)
        res.table.to_parquet(args.output, index=False)
    except OSError as e:
        print(f"migtrace corpus: {args.output}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    summary = {"kind": "corpus_summary", "output": args.output, "runs": int(res.table["run_id"].nunique())
               if not res.table.empty else 0, "rows": len(res.table), "decoded": res.decoded,
               "cached": res.cached, "failed": res.failed}
    for f in res.findings:
        print(json.dumps(f.to_json()) if args.json else f"{f.severity.upper()} {f.code}: {f.message}")
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['runs']} runs ({res.decoded} decoded, {res.cached} cached, {res.failed} failed), "
              f"{summary['rows']} rows → {args.output}")
    return EXIT_INPUT_ERRORS if any(f.severity == "error" for f in res.findings) else EXIT_OK
