#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Regenerate the bundled simulated corpus (traces/sim/) exactly.

Every run folder is ``analysis.simulate.simulate(profile, seed, folder)``;
the simulator is deterministic, so running this script again rewrites
identical bytes (tests/test_simulate_corpus.py checks one run).

  python3 traces/sim/make_corpus.py            # everything
  python3 traces/sim/make_corpus.py --only compare/fw-28.41-s3 --out /tmp/x

Sets:
  compare/   3 firmware versions x 4 seeds (ratelimited, QEMU 9.2): fw 28.40.1000
             is the baseline, 28.41.1000 regresses downtime (slower
             DEV_MODE_SET/DEV_PARTS_GET/DEV_PARTS_SET), 29.0.200 changes pre-copy
             (METADATA SIZE rounded to 4 KiB: one read per snapshot; larger context)
  policies/  the same 3 firmware versions with the cap128 policy (posted V0 series);
             with compare/ that is every firmware version x both PRE_COPY policies
  variants/  QEMU 8.1 and 10.x, trailer-bug kernel, two VFs, no switchover-ack, no return path,
             an EINVAL admin status, a rejected DEV_PARTS_SET (failed migration),
             admin records also carried in the trace.dat files (raw_data)
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from analysis.simulate import simulate  # noqa: E402
from analysis.simulate.profiles import PRESETS, SimProfile, resolve  # noqa: E402

FIRMWARE = ("fw-28.40", "fw-28.41", "fw-29.0")


def runs() -> dict[str, tuple[SimProfile, int]]:
    out: dict[str, tuple[SimProfile, int]] = {}
    for fw in FIRMWARE:
        for seed in range(1, 5):
            p = replace(resolve("default", firmware=fw), name="compare", labels={"set": "compare"})
            out[f"compare/{fw}-s{seed}"] = (p, seed)
    # the ratelimited side of firmware x policy is the compare set
    for i, fw in enumerate(FIRMWARE):
        p = replace(resolve("cap128", firmware=fw), name="policies-cap128", labels={"set": "policies"})
        out[f"policies/{fw}-cap128"] = (p, 100 + i)
    for name in ("qemu81", "qemu10", "trailer", "two-vfs", "no-ack", "no-return-path", "einval", "set-reject",
                 "admin-in-trace"):
        p = replace(PRESETS[name], labels={"set": "variants"})
        out[f"variants/{name}"] = (p, 200)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", metavar="RUN", help="regenerate only this run (repeatable)")
    ap.add_argument("--out", type=Path, default=HERE, help="corpus root (default: traces/sim)")
    args = ap.parse_args(argv)
    table = runs()
    names = args.only or sorted(table)
    for name in names:
        if name not in table:
            print(f"unknown run {name!r}; known: {', '.join(sorted(table))}", file=sys.stderr)
            return 2
    for name in names:
        profile, seed = table[name]
        folder = args.out / name
        if folder.exists():
            shutil.rmtree(folder)
        simulate(profile, seed, folder)
        print(f"{folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
