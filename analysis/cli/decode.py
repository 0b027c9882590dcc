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
import traceback
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.cli.detect import KINDS, UnknownFormat, detect
from analysis.cli.paths import (capture_file_problem, compression_fields, follow_problem, open_capture_file,
                                write_compression)
from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE
from analysis.cli.output import UnitWriter
from analysis.emit import emitter_for
from analysis.live.args import add_live_arguments, is_live

if TYPE_CHECKING:  # pragma: no cover
    from dissect.capture.compressed import Decompressed

#: Magic-less kinds for which zero bytes is a valid input (a DEV_PARTS_GET result with
#: no parts, a vfio-virtio stream with no record); detection cannot name empty input.
_EMPTY_IS_VALID = frozenset({"dev-parts", "vfio-stream"})

NAME = "decode"
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


def _where(e: BaseException) -> str:
    """``path:line`` (relative to the source tree) of the innermost frame of ours that raised ``e``."""
    root = Path(__file__).resolve().parents[2]
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if Path(f.filename).resolve().is_relative_to(root)] or frames
    if not mine:
        return "?"
    f = mine[-1]
    p = Path(f.filename).resolve()
    return f"{p.relative_to(root) if p.is_relative_to(root) else p.name}:{f.lineno}"


def run(args: argparse.Namespace) -> int:
    why = follow_problem(args.capture, args.follow)
    if why:
        print(f"migtrace decode: {args.capture}: {why}", file=sys.stderr)
        return EXIT_USAGE
    if is_live(args.capture, args.follow):
        from analysis.live.decode import run_decode

        return run_decode(args)
    path = Path(args.capture)
    problem = capture_file_problem(path)
    if problem == "empty file" and args.as_kind in _EMPTY_IS_VALID:
        problem = None  # zero parts / records: a valid (empty) input of a kind named by --as
    if problem:
        print(f"migtrace decode: {path}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        kind = args.as_kind or detect(path)  # from the first (decompressed) bytes only
    except UnknownFormat as e:
        print(f"migtrace decode: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print(f"migtrace decode: {path}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    if kind == "admin-completion" and args.opcode is None:
        print("migtrace decode: --as admin-completion needs --opcode N", file=sys.stderr)
        return EXIT_USAGE
    with ExitStack() as stack:
        data = open_capture_file(stack, path, NAME)
        if data is None:
            return EXIT_USAGE
        return _decode(args, path, kind, data)


def _decode(args: argparse.Namespace, path: Path, kind: str, data: Decompressed) -> int:
    """Decode ``data.path``, the readable form of ``path`` (decompressed when it was compressed)."""
    out = UnitWriter(as_json=args.json)
    try:
        out.write_all(emitter_for(kind)(data.path, args))
    except BrokenPipeError:
        raise
    except OSError as e:
        print(f"migtrace decode: {path}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # a decoder bug must still not look like a traceback on bad input
        if args.debug:
            traceback.print_exc()
        where = _where(e)
        # the user still gets the units decoded so far and a finding; stderr and the finding's
        # ``exception``/``where`` tell a decoder bug apart from bad input (a crash, for a fuzzer)
        print(f"migtrace decode: internal error (a decoder bug, not bad input): {type(e).__name__} at {where}; "
              "please report", file=sys.stderr)
        out.write({"kind": "finding", "severity": "error", "code": "internal_error",
                   "message": f"decoder failed: {type(e).__name__}: {e} (please report; --debug shows where)",
                   "offset": None, "exception": type(e).__name__, "where": where})
    write_compression(out, data)
    out.write(out.summary(kind) | compression_fields(data))
    return EXIT_INPUT_ERRORS if out.errors else EXIT_OK
