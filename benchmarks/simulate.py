#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Simulator speed: model-only timelines and whole run folders per CPU second.

  python3 benchmarks/simulate.py [--runs N] [--json]

Reports, per scenario preset, the CPU time (time.process_time) and wall time
of ``build_timeline`` (the model as plain data) and of ``simulate`` (model
+ pcapng, two trace.dat, two admin captures, run.json), and the bytes a
run folder takes.  A corpus of 200 runs for the Dask benchmark of issue 6
costs roughly 200 x the ``simulate`` time.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.simulate import simulate  # noqa: E402
from analysis.simulate.model import build_timeline  # noqa: E402
from analysis.simulate.profiles import PRESETS  # noqa: E402


def bench(name: str, runs: int) -> dict:
    p = PRESETS[name]
    c0, w0 = time.process_time(), time.perf_counter()
    for seed in range(runs):
        build_timeline(p, seed)
    model_cpu, model_wall = (time.process_time() - c0) / runs, (time.perf_counter() - w0) / runs
    with tempfile.TemporaryDirectory() as tmp:
        c0, w0 = time.process_time(), time.perf_counter()
        size = 0
        for seed in range(runs):
            folder = simulate(p, seed, Path(tmp) / f"r{seed}")
            size += sum(f.stat().st_size for f in folder.iterdir())
        sim_cpu, sim_wall = (time.process_time() - c0) / runs, (time.perf_counter() - w0) / runs
    return {"profile": name, "runs": runs, "model_cpu_s": round(model_cpu, 4), "model_wall_s": round(model_wall, 4),
            "simulate_cpu_s": round(sim_cpu, 4), "simulate_wall_s": round(sim_wall, 4),
            "runs_per_cpu_s": round(1 / sim_cpu, 2), "bytes_per_run": size // runs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [bench(n, args.runs) for n in ("default", "cap128", "qemu10", "two-vfs")]
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'profile':10s} {'model CPU s':>12s} {'simulate CPU s':>15s} {'wall s':>8s} {'runs/CPU s':>11s} {'KB/run':>8s}")
    for r in rows:
        print(f"{r['profile']:10s} {r['model_cpu_s']:12.4f} {r['simulate_cpu_s']:15.4f} {r['simulate_wall_s']:8.3f} "
              f"{r['runs_per_cpu_s']:11.2f} {r['bytes_per_run'] / 1024:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
