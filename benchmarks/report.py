#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""`migtrace report traces/ -o DIR` end to end, as a user runs it (a fresh process).

Three cases, each ``--repeat`` times (best and median printed):
  cold   --no-cache: every migration loaded, analysed, plotted and written
  warm   the page cache filled by a previous run (inputs and code unchanged)
  tables --no-plots --no-cache

Wall time and the CPU time of the process and its workers (RUSAGE_CHILDREN) are
reported with the load average, since the machine may be shared.

    python3 benchmarks/report.py [--repeat 3] [--jobs N] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(out: Path, cache: Path, extra: list[str]) -> tuple[float, float]:
    env = dict(os.environ, MIGTRACE_REPORT_CACHE=str(cache))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "analysis.cli.main", "report", "traces/", "-o", str(out), *extra],
                   cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def critical_path(jobs: int | None) -> dict[str, float]:
    """In this process: build the report once (no cache) and add up the CPU time of the parent
    and of each worker. On an otherwise idle machine the wall time is about the parent's CPU
    plus the busiest worker's (the workers run in parallel), whatever else loads it now."""
    sys.path.insert(0, str(ROOT))
    import matplotlib

    matplotlib.use("Agg")
    t_import = time.process_time()
    from analysis.report import build_report, group_inputs

    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.process_time()
        groups = group_inputs(["traces/"])
        _, outcomes = build_report(groups, Path(tmp) / "r", jobs=jobs, progress=False, cache=False)
        parent = time.process_time() - t
    per_worker: dict[int, float] = {}
    for o in outcomes:
        per_worker[o.worker] = per_worker.get(o.worker, 0.0) + o.cpu_s
    return {"import_s": t - t_import, "parent_s": parent, "workers": len(per_worker),
            "busiest_worker_s": max(per_worker.values()), "all_workers_s": sum(per_worker.values()),
            "runs": len(outcomes)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--critical-path-only", action="store_true", help="skip the end-to-end runs")
    a = ap.parse_args()
    if a.critical_path_only:
        cp = critical_path(a.jobs)
        print(json.dumps(cp) if a.json else cp)
        return 0
    jobs = ["--jobs", str(a.jobs)] if a.jobs else []
    res: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": [], "tables": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        for i in range(a.repeat):
            res["cold"].append(run_once(tmpd / f"c{i}", tmpd / f"cache-cold-{i}", ["--no-cache", *jobs]))
            run_once(tmpd / f"fill{i}", tmpd / f"cache-{i}", jobs)
            res["warm"].append(run_once(tmpd / f"w{i}", tmpd / f"cache-{i}", jobs))
            res["tables"].append(run_once(tmpd / f"t{i}", tmpd / f"cache-t-{i}", ["--no-plots", "--no-cache", *jobs]))
    cp = critical_path(a.jobs)
    load = os.getloadavg()[0]
    summary = {k: {"wall_best_s": min(w for w, _ in v), "wall_median_s": statistics.median(w for w, _ in v),
                   "cpu_median_s": statistics.median(c for _, c in v)} for k, v in res.items()}
    summary["critical_path"] = cp
    summary["load_average_1min"] = load
    summary["cpus"] = os.cpu_count()
    if a.json:
        print(json.dumps(summary))
    else:
        for k in ("cold", "warm", "tables"):
            s = summary[k]
            print(f"{k:>6}: wall best {s['wall_best_s']:.2f} s, median {s['wall_median_s']:.2f} s; "
                  f"CPU (all processes) median {s['cpu_median_s']:.2f} s")
        print(f"critical path (cold, {cp['runs']} runs, {cp['workers']} workers): interpreter + imports "
              f"{cp['import_s']:.2f} s CPU, parent {cp['parent_s']:.2f} s, busiest worker {cp['busiest_worker_s']:.2f} s "
              f"(all workers {cp['all_workers_s']:.2f} s) -> idle-machine wall ~ "
              f"{cp['import_s'] + cp['parent_s'] + cp['busiest_worker_s']:.1f} s + interpreter start")
        print(f"load average {load:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
