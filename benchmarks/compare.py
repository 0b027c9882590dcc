# SPDX-License-Identifier: GPL-2.0-only
"""Corpus throughput: runs per second for the local engine and Dask with 1 and 2 workers.

Generates N simulated runs (default 200; three firmware presets, seeds
1..) into a data folder unless they are there already, then decodes and
summarises the whole corpus with each engine, no cache, and checks that
the tables are identical.

  python3 benchmarks/compare.py --runs 200 [--data benchmarks/data/corpus] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from analysis.corpus import load_corpus  # noqa: E402

FIRMWARE = ("fw-28.40", "fw-28.41", "fw-29.0")


def make_corpus(root: Path, n: int) -> float:
    from analysis.simulate import simulate
    from analysis.simulate.profiles import resolve

    t0 = time.perf_counter()
    made = 0
    for i in range(n):
        fw = FIRMWARE[i % len(FIRMWARE)]
        out = root / f"{fw}-s{i:04d}"
        if (out / "run.json").is_file():
            continue
        simulate(resolve("default", firmware=fw), i + 1, out)
        made += 1
    return time.perf_counter() - t0 if made else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--data", type=Path, default=HERE / "data" / "corpus")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gen_s = make_corpus(args.data, args.runs)
    runs = sorted(args.data.glob("*/run.json"))[: args.runs]
    results = {"runs": len(runs), "generate_s": round(gen_s, 1), "cpus": os.cpu_count(),
               "load_avg_1m": os.getloadavg()[0]}
    tables = {}
    for name, kw in (("local", {"engine": "local"}), ("dask-1", {"engine": "dask", "workers": 1}),
                     ("dask-2", {"engine": "dask", "workers": 2})):
        t0 = time.perf_counter()
        res = load_corpus(runs, cache_dir=None, **kw)
        dt = time.perf_counter() - t0
        assert res.failed == 0, res.findings[:3]
        tables[name] = res.table.drop(columns=["run_dir"])
        results[f"{name}_s"] = round(dt, 2)
        results[f"{name}_runs_per_s"] = round(len(runs) / dt, 2)
    for name in ("dask-1", "dask-2"):
        pd.testing.assert_frame_equal(tables[name], tables["local"])
    results["tables_identical"] = True
    results["load_avg_1m_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results))
    else:
        for k, v in results.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
