# SPDX-License-Identifier: GPL-2.0-only
"""List the TCP flows of a capture with their migration role.

Each flow: client and server ("ip:port"; the client opened the connection,
or sent first when no SYN was captured), role (main: QEMU stream "QEVM"
version 3; multifd: magic 0x11223344; other; the return path is the
server-to-client direction of the main flow), reassembled bytes per
direction, retransmitted/overlapping bytes, and gaps as exact byte ranges.

examples:
  migtrace flows traces/real/qemu-tcp-multifd.pcap
  migtrace flows --json traces/generated/qemu-10x-multifd.pcapng | jq 'select(.kind=="flow" and .role=="main")'
  migtrace flows capture.pcap.zst               # zstd/gzip/xz/bzip2 pcaps: detected by content
  tcpdump -i eth0 -w - -U port 4444 | migtrace flows -
"""
from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.cli.paths import (capture_kind, compression_fields, follow_problem, open_capture_file,
                                write_compression)
from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE
from analysis.cli.output import UnitWriter
from analysis.live.args import add_live_arguments, is_live
from dissect.capture.tcp import ReassemblyResult, reassemble

if TYPE_CHECKING:  # pragma: no cover
    from dissect.capture.compressed import Decompressed

NAME = "flows"
HELP = "list TCP flows with role, byte counts, retransmissions and gaps"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="CAPTURE",
                   help="pcap or pcapng file (also zstd/gzip/xz/bzip2 compressed); - reads one from standard input")
    p.add_argument("--json", action="store_true", help="JSON Lines on stdout (flow objects, findings, summary)")
    add_live_arguments(p)


def open_capture(path: Path, command: str) -> str | None:
    """The capture kind, or None after printing why it cannot be read (usage error)."""
    kind = capture_kind(path, command)
    if kind is None:
        return None
    if kind not in ("pcap", "pcapng"):
        print(f"migtrace {command}: {path}: is {kind}, not a pcap/pcapng capture", file=sys.stderr)
        return None
    return kind


def open_input(command: str, args: argparse.Namespace) -> tuple[str | None, Any]:
    """``(kind, live)`` of ``args.capture``: for ``-`` or ``--follow`` the live source
    (analysis/live, imported only then) and its format, else the file's kind and None;
    kind is None after a usage error on stderr (``flows`` and ``extract``)."""
    why = follow_problem(args.capture, args.follow)
    if why:
        print(f"migtrace {command}: {args.capture}: {why}", file=sys.stderr)
        return None, None
    if is_live(args.capture, args.follow):
        from analysis.live.decode import open_live

        live = open_live(command, args)
        return (live.format if live is not None else None), live
    return open_capture(Path(args.capture), command), None


def readable(stack: ExitStack, path: Path, live: Any, command: str) -> Decompressed | None:
    """The readable form of the capture file (decompressed while ``stack`` is open; see
    :func:`analysis.cli.paths.open_capture_file`); for a live source, ``path`` as it is."""
    if live is not None:
        from dissect.capture.compressed import Decompressed

        return Decompressed(path)
    return open_capture_file(stack, path, command)


def reassemble_input(path: Path, live: Any, factory: Any = None) -> ReassemblyResult:
    """:func:`reassemble` of the file, or of the live source when :func:`open_input` gave one."""
    if live is None:
        return reassemble(path, factory)
    from analysis.live.decode import reassemble_live

    return reassemble_live(live, factory)


def _gaps(gaps: list[dict]) -> str:
    if not gaps:
        return "-"
    return ",".join(f"{g['direction']}:{g['start']}-{g['end']}" for g in gaps)


def run(args: argparse.Namespace) -> int:
    path = Path(args.capture)
    kind, live = open_input(NAME, args)
    if kind is None:
        return EXIT_USAGE
    with ExitStack() as stack:
        data = readable(stack, path, live, NAME)
        return EXIT_USAGE if data is None else _flows(args, path, kind, live, data)


def _late_role_factory(probes: dict[int, Any]) -> Any:
    """Consumers for connections open before the capture (no SYN): probed as main / multifd
    channels as ``decode`` does (dissect/qemu/midstream.py, units dropped), so both commands
    give a flow the same role."""
    from dissect.qemu.midstream import Midstream, picks_up

    def factory(info: Any, direction: str) -> Any:
        if direction != "c2s" or not picks_up(info):
            return None
        probes[info.index] = m = Midstream(lambda unit: None, flow=info.index)
        return m
    return factory


def _flows(args: argparse.Namespace, path: Path, kind: str, live: Any, data: Decompressed) -> int:
    probes: dict[int, Any] = {}
    try:
        res = reassemble_input(data.path, live, _late_role_factory(probes))
    except OSError as e:
        print(f"migtrace flows: {path}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    from dissect.qemu.midstream import adopted_roles

    adopted_roles(res.flows, probes)
    out = UnitWriter(as_json=args.json)
    if not args.json and res.flows:
        w = max(len(f.client) for f in res.flows)
        v = max(len(f.server) for f in res.flows)
        print(f"{'flow':>4}  {'client':<{w}}  {'server':<{v}}  {'role':<7} {'c2s_bytes':>12} "
              f"{'s2c_bytes':>10} {'retrans':>8}  gaps")
    for fl in res.flows:
        obj = fl.to_json()
        if args.json:
            out.write(obj)
        else:
            out.counts["flow"] += 1
            print(f"{fl.flow:>4}  {fl.client:<{w}}  {fl.server:<{v}}  {fl.role:<7} {fl.c2s_bytes:>12} "
                  f"{fl.s2c_bytes:>10} {fl.retransmitted_bytes:>8}  {_gaps(fl.gaps)}")
    for f in res.findings:
        out.write(f.to_json())
    write_compression(out, data)
    out.write(out.summary(kind) | (live.compression if live is not None else compression_fields(data)))
    return EXIT_INPUT_ERRORS if out.errors else EXIT_OK
