# SPDX-License-Identifier: GPL-2.0-only
"""Simulate a migration of a VM with vfio-virtio VFs and write its run folder.

The folder holds the captures a user would have (source.pcapng,
source.dat, destination.dat, admin-source.pcapng, admin-destination.pcapng)
and run.json with the ground truth under "truth".  Deterministic for a
seed.  See docs/simulator.md for the model, the knobs and the presets.

examples:
  migtrace simulate --profile default --seed 3 -o runs/default-3
  migtrace simulate --profile default --firmware fw-28.41 --policy cap128 --qemu 10.x -o runs/x
  migtrace simulate --profile default --trailer-bug -o runs/trailer
  migtrace simulate --list
"""
from __future__ import annotations

import argparse
import sys

from analysis.cli.main import EXIT_OK, EXIT_USAGE

NAME = "simulate"
HELP = "simulate a migration (captures + run.json with ground truth)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from analysis.simulate.profiles import FIRMWARE_PRESETS, PRESETS, QEMU_PRESETS

    p.add_argument("--profile", default="default", choices=sorted(PRESETS), metavar="NAME",
                   help="scenario preset: " + ", ".join(sorted(PRESETS)) + " (default: default)")
    p.add_argument("--firmware", choices=sorted(FIRMWARE_PRESETS), metavar="NAME",
                   help="firmware preset: " + ", ".join(sorted(FIRMWARE_PRESETS)))
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--policy", choices=("cap128", "ratelimited"), help="driver PRE_COPY policy")
    p.add_argument("--qemu", choices=sorted(QEMU_PRESETS), help="QEMU profile")
    bug = p.add_mutually_exclusive_group()
    bug.add_argument("--trailer-bug", dest="trailer_bug", action="store_true", default=None,
                     help="source kernel 6.13.0-6.15.2: 8 junk bytes per DEVICE_DATA record")
    bug.add_argument("--no-trailer-bug", dest="trailer_bug", action="store_false",
                     help="source kernel without the trailer bug")
    p.add_argument("-o", "--output", metavar="DIR", help="run folder to write")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.add_argument("--json", action="store_true", help="print the truth as JSON instead of a summary")


def run(args: argparse.Namespace) -> int:
    import json

    from analysis.simulate import simulate
    from analysis.simulate.profiles import FIRMWARE_PRESETS, PRESETS, QEMU_PRESETS, resolve

    if args.list:
        for kind, table in (("profile", PRESETS), ("firmware", FIRMWARE_PRESETS), ("qemu", QEMU_PRESETS)):
            for name, v in table.items():
                extra = getattr(v, "version", "")
                print(f"{kind:9s} {name:20s} {extra}")
        return EXIT_OK
    if not args.output:
        print("migtrace simulate: -o DIR is required", file=sys.stderr)
        return EXIT_USAGE
    profile = resolve(args.profile, firmware=args.firmware, policy=args.policy, qemu=args.qemu,
                      trailer_bug=args.trailer_bug)
    folder = simulate(profile, args.seed, args.output)
    manifest = json.loads((folder / "run.json").read_text())
    t = manifest["truth"]
    if args.json:
        print(json.dumps(t))
        return EXIT_OK
    print(f"{folder}: run {manifest['run_id']} ({t['outcome']})")
    for c in manifest["captures"]:
        print(f"  {c['role']:18s} {c['path']}")
    print(f"  pre-copy iterations {t['qemu_iterations']}, snapshots {t['precopy_snapshots']}, "
          f"policy {t['precopy_policy']}, records {t['records_total']} "
          f"({t['record_bytes_min']}-{t['record_bytes_max']} bytes), trailer bug {t['trailer_bug']}")
    bd = t.get("downtime_breakdown_ms") or {}
    print(f"  downtime: guest {t['downtime_ms']:.3f} ms, QEMU {t['downtime_qemu_ms']:.3f} ms, "
          f"wire {t['downtime_wire_ms']:.3f} ms " + " ".join(f"{k}={v:.3f}" for k, v in bd.items()))
    return EXIT_OK
