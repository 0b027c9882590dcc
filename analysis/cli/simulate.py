# SPDX-License-Identifier: GPL-2.0-only
"""Simulate a migration of a VM with vfio-virtio VFs and write its run folder.

The folder holds the captures a user would have (source.pcapng,
source.dat, destination.dat, admin-source.pcapng, admin-destination.pcapng)
and run.json with the ground truth under "truth".  Deterministic for a
seed.  See docs/simulator.md for the model, the knobs and the presets.

examples:
  migtrace simulate --profile default --seed 3 -o out/runs/default-3
  migtrace simulate --profile default --firmware fw-28.41 --policy cap128 --qemu 10.x -o out/runs/x
  migtrace simulate --profile default --trailer-bug -o out/runs/trailer
  migtrace simulate --profile default --no-switchover-ack --vfs 2 --busy-s 5 -o out/runs/y
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
    ack = p.add_mutually_exclusive_group()
    ack.add_argument("--switchover-ack", dest="switchover_ack", action="store_true", default=None,
                     help="QEMU switchover-ack capability on (default of the presets)")
    ack.add_argument("--no-switchover-ack", dest="switchover_ack", action="store_false",
                     help="switchover-ack off: no DEV_INIT_DATA_SENT, no SWITCHOVER_ACK")
    p.add_argument("--vfs", type=int, metavar="N", help="number of vfio-virtio VFs (default 1)")
    p.add_argument("--busy-s", type=float, metavar="S",
                   help="seconds the guest keeps dirtying pages (sets the pre-copy length)")
    p.add_argument("-o", "--output", metavar="DIR", help="run folder to write")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.add_argument("--json", action="store_true", help="print the truth as JSON instead of a summary")


def run(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace

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
    if args.switchover_ack is not None:
        profile = replace(profile, qemu=replace(profile.qemu, switchover_ack=args.switchover_ack))
    if args.vfs is not None:
        if not 1 <= args.vfs <= 8:
            print("migtrace simulate: --vfs must be 1..8", file=sys.stderr)
            return EXIT_USAGE
        profile = replace(profile, vfs=args.vfs)
    if args.busy_s is not None:
        if not 0 < args.busy_s <= 60:
            print("migtrace simulate: --busy-s must be in (0, 60]", file=sys.stderr)
            return EXIT_USAGE
        profile = replace(profile, busy_s=args.busy_s)
    folder = simulate(profile, args.seed, args.output)
    manifest = json.loads((folder / "run.json").read_text())
    t = manifest["truth"]
    if args.json:
        print(json.dumps(t))
        return EXIT_OK
    print(f"{folder}: run {manifest['run_id']} ({t['outcome']})")
    for c in manifest["captures"]:
        print(f"  {c['role']:18s} {c['path']}")
    print(f"  pre-copy iterations {t['precopy_iterations']} (dirty syncs {t['dirty_syncs']}, iterate sections {t['qemu_iterate_sections']}), snapshots {t['precopy_snapshots']}, "
          f"policy {t['precopy_policy']}, records {t['records_total']} "
          f"({t['record_bytes_min']}-{t['record_bytes_max']} bytes), trailer bug {t['trailer_bug']}")
    bd = t.get("downtime_breakdown_ms") or {}
    print(f"  downtime: guest {t['downtime_ms']:.3f} ms, QEMU {t['downtime_qemu_ms']:.3f} ms, "
          f"wire {t['downtime_wire_ms']:.3f} ms " + " ".join(f"{k}={v:.3f}" for k, v in bd.items()))
    return EXIT_OK
