# SPDX-License-Identifier: GPL-2.0-only
"""Decode everything a capture holds, down to device parts and typed trace events.

examples:
  migtrace decode traces/real/qemu-tcp-returnpath.pcap
  migtrace decode --json traces/generated/qemu-9x-vfio-rp.pcapng | jq 'select(.kind=="dev_part")'
  migtrace decode --json traces/real/ftrace/markers-v7-zstd.dat | jq 'select(.kind=="event")'
  migtrace decode --json traces/real/qemu10/mappedram.mig.zst   # zstd/gzip/xz/bzip2: detected by content
  migtrace decode --as dev-parts traces/generated/vf0-parts.bin
  tcpdump -i lo -w - -U port 4444 | migtrace decode --json -
  migtrace decode --follow --idle-timeout 30 capture-being-written.pcap
  migtrace decode --as vfio-stream traces/generated/vf0-saved-device-data.bin
  migtrace decode --as admin-completion --opcode 0xf --subtype 1 traces/generated/vf0-dev-parts-get-completion.bin
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.cli.decode_file import NAME, decode_file
from analysis.cli.detect import KINDS
from analysis.cli.main import EXIT_USAGE
from analysis.cli.paths import follow_problem
from analysis.live.args import add_live_arguments, is_live

HELP = "decode a capture down to device parts and typed trace events"


def _int(s: str) -> int:
    return int(s, 0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="CAPTURE",
                   help="file to decode (kind detected by content, also inside zstd/gzip/xz/bzip2 data); "
                        "- reads a pcap/pcapng from standard input")
    add_live_arguments(p)
    p.add_argument("--as", dest="as_kind", choices=KINDS, metavar="KIND",
                   help="decode as KIND instead of detecting it: " + ", ".join(KINDS))
    p.add_argument("--json", action="store_true", help="JSON Lines on stdout (json-lines.md)")
    p.add_argument("--opcode", type=_int, help="admin-completion: the request's opcode")
    p.add_argument("--subtype", type=_int, default=0,
                   help="admin-completion: the request field that selects the result layout")
    p.add_argument("--admin-linktype", type=_int, metavar="N",
                   help="link type of admin-capture records (default: any USER type, 147-162)")
    p.add_argument("--trace-events", metavar="FILE",
                   help="QEMU trace-events file (e.g. /usr/share/qemu/trace-events-all) "
                        "to type the QEMU events of that build")
    p.add_argument("--debug", action="store_true", help="show a traceback for internal errors")


def run(args: argparse.Namespace) -> int:
    why = follow_problem(args.capture, args.follow)
    if why:
        print(f"migtrace decode: {args.capture}: {why}", file=sys.stderr)
        return EXIT_USAGE
    if is_live(args.capture, args.follow):
        from analysis.live.decode import run_decode

        return run_decode(args)
    return decode_file(args, Path(args.capture))
