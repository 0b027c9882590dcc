# SPDX-License-Identifier: GPL-2.0-only
"""Capture real migrations into run folders: pcap, QEMU logs, ftrace, query-migrate series, run.json.

Talks QMP to the source QEMU (and the destination's), runs tcpdump on the
migration port(s) (multifd channels share the port), polls query-migrate
at ~10 Hz into qmp-source.jsonl / qmp-destination.jsonl (each reply with
ts_ns, CLOCK_REALTIME), and writes run.json (kind real) with QEMU's version,
capabilities/parameters (qemu_config) and final counters (qemu_counters).
With --migrate it sets the capabilities/parameters on both sides, makes a
destination started with `-incoming defer` listen (migrate-incoming) and
starts the migration; otherwise it waits for one. With --runs N (both
sockets) it migrates back and forth, one folder each (DIR/run-001, ...);
--relaunch CMD restarts the finished source as the next destination.
Needs root (tcpdump, tracefs). See docs/recording.md.

examples:
  migtrace record --source-qmp /run/src.qmp --dest-qmp /run/dst.qmp \\
      --migrate tcp:127.0.0.1:4444 --capability return-path --firmware 28.41.1000 -o runs/fw-28.41
  migtrace record --source-qmp /run/src.qmp --interface eth2 --port 4444 --qemu-log /var/log/qemu-src.log \\
      --label host=lab-a -o runs/one       # wait for a migration started by libvirt/the orchestrator
  migtrace record --source-qmp a.qmp --dest-qmp b.qmp --migrate tcp:127.0.0.1:4444 --runs 10 \\
      --relaunch 'qemu-system-x86_64 ... -qmp unix:{qmp},server=on,wait=off -incoming defer' \\
      --firmware 28.41.1000 -o runs/fw-28.41
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from analysis.cli.main import EXIT_OK

NAME = "record"
HELP = "capture real QEMU migrations (QMP, tcpdump, logs, ftrace) into run folders with run.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source-qmp", required=True, metavar="SOCK", help="the source QEMU's QMP socket (unix path)")
    p.add_argument("--dest-qmp", metavar="SOCK", help="the destination QEMU's QMP socket")
    p.add_argument("--migrate", metavar="URI", help="start the migration to URI (e.g. tcp:10.0.0.2:4444); "
                   "without it, wait for a migration someone else starts")
    p.add_argument("--migrate-back", metavar="URI", help="--runs: URI of the way back (default: --migrate)")
    p.add_argument("--incoming", metavar="URI", help="URI the destination listens on (default: the migration URI)")
    p.add_argument("--capability", action="append", default=[], metavar="NAME[=on|off]",
                   help="migration capability, set on source and destination (repeatable)")
    p.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="migration parameter, set on source and destination, e.g. multifd-channels=4, "
                        "max-bandwidth=1G (repeatable)")
    p.add_argument("--interface", metavar="IF", help="capture interface (default: lo for a loopback URI, "
                   "else the route's interface)")
    p.add_argument("--port", action="append", type=int, default=[], metavar="N",
                   help="TCP port to capture (repeatable; default: the --migrate URI's port)")
    p.add_argument("--qemu-log", action="append", default=[], metavar="[destination=]FILE",
                   help="a QEMU log-backend file (-D): the part written during the run is kept "
                        "(plain FILE: the --source-qmp QEMU's; destination=FILE: the --dest-qmp QEMU's)")
    p.add_argument("--trace-event", action="append", default=[], metavar="PATTERN",
                   help="enable QEMU trace events (QMP trace-event-set-state) during the run, restored after")
    p.add_argument("--tracefs", action="store_true", help="record this host's ftrace (tracefs) during the run")
    p.add_argument("--firmware", metavar="LABEL", help="firmware.version of the device under test")
    p.add_argument("--kernel", metavar="VERSION", help="kernel version to record (default: uname -r)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="run.json label (repeatable)")
    p.add_argument("--runs", type=int, default=1, metavar="N", help="migrate back and forth N times (both sockets)")
    p.add_argument("--relaunch", metavar="CMD", help="--runs: shell command starting a fresh '-incoming defer' "
                   "QEMU on socket {qmp} ({run}: run number)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="per run: wait this long for the migration (then migrate_cancel; default 600)")
    p.add_argument("--poll-interval", type=float, default=0.1, metavar="S", help="query-migrate period (0.1)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="run folder (--runs N: parent folder)")


def options(args: argparse.Namespace):
    from analysis.record.errors import RecordError
    from analysis.record.qmp import parse_capability, parse_parameter
    from analysis.record.session import RecordOptions

    labels: dict[str, str] = {}
    for item in args.label:
        k, sep, v = item.partition("=")
        if not k or not sep:
            raise RecordError(f"--label {item!r}: expected KEY=VALUE")
        labels[k] = v
    logs: list[tuple[str, Path]] = []
    for item in args.qemu_log:
        side, sep, path = item.partition("=")
        if sep and side in ("source", "destination"):
            logs.append(("a" if side == "source" else "b", Path(path)))
        else:
            logs.append(("a", Path(item)))
    return RecordOptions(
        source_qmp=args.source_qmp, dest_qmp=args.dest_qmp, output=Path(args.output), migrate=args.migrate,
        migrate_back=args.migrate_back, incoming=args.incoming,
        capabilities=[parse_capability(c) for c in args.capability],
        parameters=[parse_parameter(p) for p in args.parameter], interface=args.interface, ports=args.port,
        qemu_logs=logs, trace_events=args.trace_event, tracefs=args.tracefs, firmware=args.firmware,
        kernel=args.kernel, labels=labels, runs=args.runs, relaunch=args.relaunch, timeout_s=args.timeout,
        poll_interval_s=args.poll_interval)


def _report(res) -> None:
    c = res.counters
    ram = c.get("ram", {})
    print(f"{res.folder}: {c.get('status')} in {c.get('total-time', '-')} ms, downtime {c.get('downtime', '-')} ms, "
          f"{ram.get('transferred', 0)} bytes, dirty-sync-count {ram.get('dirty-sync-count', '-')}", flush=True)


def run(args: argparse.Namespace) -> int:
    from analysis.record.errors import RecordError
    from analysis.record.session import record

    try:
        opts = options(args)
        asyncio.run(record(opts, report=_report))
    except RecordError as e:
        print(f"migtrace record: {e}", file=sys.stderr)
        return e.exit_code
    return EXIT_OK

