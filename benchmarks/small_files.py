# SPDX-License-Identifier: GPL-2.0-only
"""Per-file cost of small real traces: the DataFrame and ``migtrace decode --json`` in-process.

A corpus of many runs, a notebook looping over captures and the fuzz campaigns
all pay a per-file cost that a gigabyte benchmark does not show: pandas'
constant overhead per frame and column, and the command line's own set-up.
Workload: the real captures of ``traces/real`` (trace.dat v6/v7, tracefs text,
``trace-cmd report`` text, QEMU log-backend text; 2.5–45 KB each). Reference
in the same run: ``trace-cmd report`` of each trace.dat in a child process.

Run: ``python3 benchmarks/small_files.py [--repo CHECKOUT] [--seconds S] [--json]``;
``--repo`` measures another checkout (e.g. an older commit in a worktree) with
the same workload. Figures are CPU milliseconds per file (``time.process_time``,
children's CPU for trace-cmd), best of the repeats, because the machine is shared.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent.parent


def workload(root: Path) -> dict[str, list[Path]]:
    real = root / "traces" / "real"
    return {
        "trace-dat": sorted((real / "ftrace").glob("*.dat")) + [real / "ftrace-text" / "markers.dat"],
        "ftrace-text": sorted((real / "ftrace-text").glob("trace*.txt")),
        "trace-cmd-report": sorted((real / "ftrace-text").glob("report*.txt")),
        "qemu-log": sorted(real.glob("qemu-*.log")),
    }


def best_ms(fn: Callable[[], None], files: int, seconds: float) -> float:
    """Best CPU ms per file over repeats of ``fn`` (one pass over ``files`` files) for ``seconds``."""
    best = float("inf")
    end = time.monotonic() + seconds
    while True:
        t0 = time.process_time()
        fn()
        best = min(best, (time.process_time() - t0) / files * 1000)
        if time.monotonic() >= end:
            return best


def child_best_ms(cmd: list[list[str]], seconds: float) -> float:
    best = float("inf")
    end = time.monotonic() + seconds
    while True:
        t0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        for c in cmd:
            subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        t1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (t1.ru_utime - t0.ru_utime) + (t1.ru_stime - t0.ru_stime)
        best = min(best, cpu / len(cmd) * 1000)
        if time.monotonic() >= end:
            return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, default=HERE, help="checkout whose code is measured")
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    repo = a.repo.resolve()
    # the checkout's packages first; benchmarks/analysis.py must not shadow the analysis package
    sys.path[:] = [str(repo)] + [p for p in sys.path if Path(p or ".").resolve() != HERE / "benchmarks"]
    from analysis.cli.main import main as cli_main
    from dissect.ftrace.text import read_text
    from dissect.ftrace.tracedat import read_trace_dat

    work = workload(HERE)  # the same files whatever checkout is measured
    out: dict[str, dict[str, float]] = {}
    for kind, files in work.items():
        def frames(kind: str = kind, files: list[Path] = files) -> None:
            for f in files:
                if kind == "trace-dat":
                    td = read_trace_dat(f)
                    td.dataframe()
                    td.close()
                else:
                    read_text(f, kind).dataframe()

        def cli(files: list[Path] = files) -> None:
            for f in files:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    cli_main(["decode", "--json", str(f)])
        frames(), cli()  # imports and caches of the first call are not a per-file cost
        row = {"files": len(files), "kb": round(sum(f.stat().st_size for f in files) / 1024, 1),
               "frame_ms": round(best_ms(frames, len(files), a.seconds), 2),
               "cli_ms": round(best_ms(cli, len(files), a.seconds), 2)}
        if kind == "trace-dat" and shutil.which("trace-cmd"):
            row["trace_cmd_report_ms"] = round(child_best_ms([["trace-cmd", "report", str(f)] for f in files],
                                                             a.seconds), 2)
        out[kind] = row
    meta = {"repo": str(repo), "commit": _commit(repo), "load": os.getloadavg()[0]}
    if a.json:
        print(json.dumps({"meta": meta, "kinds": out}))
    else:
        print(f"{meta['repo']} at {meta['commit']}, load {meta['load']:.1f}")
        print(f"{'kind':<18}{'files':>6}{'KB':>8}{'frame ms':>10}{'cli ms':>9}{'trace-cmd ms':>14}")
        for k, r in out.items():
            print(f"{k:<18}{r['files']:>6}{r['kb']:>8}{r['frame_ms']:>10}{r['cli_ms']:>9}"
                  f"{r.get('trace_cmd_report_ms', ''):>14}")
    return 0


def _commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
