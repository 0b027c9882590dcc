# SPDX-License-Identifier: GPL-2.0-only
"""Write the reassembled bytes of one TCP flow direction to a file.

The main channel written this way (``--main``) is a raw QEMU migration
stream, which ``migtrace decode`` and QEMU's scripts/analyze-migration.py
read like a file from ``migrate "exec:cat > FILE"``.  ``--main --direction
s2c`` writes the return path.  Data missing from the capture (a gap) is an
error: the file then holds the bytes before the first gap only, and the exit
code is 1; ``--fill-gaps zero`` writes zeros in its place instead and keeps
going (the gap is still reported, as a warning).

examples:
  migtrace extract traces/real/qemu-tcp-returnpath.pcap --main -o out/main.mig
  migtrace extract traces/real/qemu-tcp-returnpath.pcap --flow 0 --direction s2c -o out/return-path.bin
  ssh host tcpdump -i eth0 -w - -U port 4444 | migtrace extract - --main -o main.mig
"""
from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from analysis.cli.flows import open_input, readable, reassemble_input
from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE
from analysis.cli.paths import compression_fields, make_parent, write_compression
from analysis.cli.output import UnitWriter
from analysis.live.args import add_live_arguments
from dissect.capture.tcp import FlowInfo
from dissect.common.findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    from dissect.capture.compressed import Decompressed

NAME = "extract"
HELP = "write the reassembled bytes of one flow direction to a file"

_ZEROS = bytes(1 << 20)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", metavar="CAPTURE",
                   help="pcap or pcapng file (also zstd/gzip/xz/bzip2 compressed); - reads one from standard input")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--main", action="store_true", help="the (first) QEMU main channel")
    which.add_argument("--flow", type=int, metavar="N", help="flow N as numbered by 'migtrace flows'")
    p.add_argument("--direction", choices=("c2s", "s2c"), default="c2s",
                   help="client-to-server (default) or server-to-client (the return path of a main flow)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.add_argument("--fill-gaps", choices=("zero",), help="write zeros for bytes missing from the capture")
    p.add_argument("--json", action="store_true", help="JSON Lines on stdout (flow, findings, summary)")
    add_live_arguments(p)


class _FileSink:
    """StreamConsumer writing one direction to a file."""

    def __init__(self, f: BinaryIO, fill: bool, flow: FlowInfo, direction: str) -> None:
        self.f = f
        self.fill = fill
        self.flow = flow
        self.direction = direction
        self.written = 0
        self.stopped_at: int | None = None
        self.gaps: list[tuple[int, int]] = []

    def data(self, offset: int, data, ts_ns: int) -> None:
        if self.stopped_at is None:
            self.f.write(data)
            self.written += len(data)

    def gap(self, start: int, end: int) -> None:
        self.gaps.append((start, end))
        if self.stopped_at is not None:
            return
        if not self.fill:
            self.stopped_at = start
            return
        n = end - start
        while n > 0:  # a gap can be large; never allocate it at once
            k = min(n, len(_ZEROS))
            self.f.write(_ZEROS[:k])
            n -= k
        self.written += end - start

    def close(self) -> None:
        pass


def run(args: argparse.Namespace) -> int:
    path = Path(args.capture)
    kind, live = open_input(NAME, args)
    if kind is None:
        return EXIT_USAGE
    if args.flow is not None and args.flow < 0:
        print("migtrace extract: --flow N must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    with ExitStack() as stack:
        data = readable(stack, path, live, NAME)
        return EXIT_USAGE if data is None else _extract(args, path, kind, live, data)


def _extract(args: argparse.Namespace, path: Path, kind: str, live: Any, data: Decompressed) -> int:
    sink: list[_FileSink] = []
    try:
        make_parent(args.output)
        f = open(args.output, "wb")
    except OSError as e:
        print(f"migtrace extract: {args.output}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE

    def factory(flow: FlowInfo, direction: str):
        if sink or direction != args.direction:
            return None
        if args.main and flow.role != "main":
            return None
        if args.flow is not None and flow.index != args.flow:
            return None
        s = _FileSink(f, args.fill_gaps == "zero", flow, direction)
        sink.append(s)
        return s

    with f:
        try:
            res = reassemble_input(data.path, live, factory)
        except OSError as e:
            print(f"migtrace extract: {path}: {e.strerror or e}", file=sys.stderr)
            return EXIT_USAGE
    out = UnitWriter(as_json=args.json)
    if args.flow is not None and args.flow >= len(res.flows):
        print(f"migtrace extract: {path}: no flow {args.flow} (the capture has {len(res.flows)})",
              file=sys.stderr)
        return EXIT_USAGE
    findings: list[Finding] = list(res.findings)
    chosen = None
    if sink:
        s = sink[0]
        chosen = res.flows[s.flow.index]
        if args.fill_gaps:
            # The gaps were filled as asked: they stay visible, as warnings.
            findings = [Finding("warning", f.code, f.message + " (filled with zeros)", f.offset, f.context)
                        if f.code == "tcp_gap" and f.context.get("flow") == chosen.flow
                        and f.context.get("direction") == args.direction else f for f in findings]
        elif s.stopped_at is not None:
            findings.append(Finding("error", "extract_stopped_at_gap",
                                    f"flow {chosen.flow} {args.direction}: output ends at stream offset "
                                    f"{s.stopped_at}, where data is missing (use --fill-gaps zero to go on)",
                                    s.stopped_at, {"flow": chosen.flow, "direction": args.direction}))
        else:
            # Gaps in other flows do not affect this file.
            findings = [f for f in findings if f.code != "tcp_gap" or f.context.get("flow") == chosen.flow]
    else:
        what = "main channel" if args.main else f"flow {args.flow}"
        msg = f"no {what} {args.direction} data in the capture"
        late = [fl.flow for fl in res.flows if not fl.syn_seen] if args.main else []
        if late:
            # --main picks a channel by its stream header; a connection open before the capture has none
            msg += (f"; flows {late} were open before the capture (no SYN, no stream header): "
                    "'migtrace flows' gives the role each decodes as, and --flow N writes one's bytes")
        findings.append(Finding("error", "extract_nothing", msg, None, {"late_flows": late} if late else {}))
    if chosen is not None:
        if args.json:
            out.write(chosen.to_json())
        else:
            print(f"wrote {sink[0].written} bytes of flow {chosen.flow} {args.direction} "
                  f"({chosen.client} -> {chosen.server}, role {chosen.role}) to {args.output}")
    for fnd in findings:
        out.write(fnd.to_json())
    write_compression(out, data)
    out.write(out.summary(kind) | (live.compression if live is not None else compression_fields(data)))
    return EXIT_INPUT_ERRORS if out.errors else EXIT_OK
