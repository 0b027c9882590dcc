# SPDX-License-Identifier: GPL-2.0-only
"""``migtrace decode|flows|extract`` on ``-`` or with ``--follow``.

Units are written as they complete (JSON Lines flushed per line), so the
order is the order their bytes arrived: each flow direction's units in
byte-stream order, the flows interleaved as the capture interleaves them.
A flow's ``flow`` object needs its final counts, so the ``flow`` objects
come after the units, at the end of the input, followed by the
capture-level findings and the summary — the same objects as for the file
(docs/cli.md, "Pipes and growing files").
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from analysis.cli.decode_file import decode_file
from analysis.cli.internal import internal_error
from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE
from analysis.cli.output import UnitWriter
from analysis.emit.migration import to_objects
from analysis.live.source import LiveCapture, NotACapture, follow_problem
from dissect.capture.tcp import Reassembler, ReassemblyResult
from dissect.qemu.session import decode_capture


class LiveWriter(UnitWriter):
    """A :class:`UnitWriter` that flushes every line."""

    def write(self, obj: dict[str, Any]) -> None:
        super().write(obj)
        self.out.flush()


def open_live(command: str, args: argparse.Namespace) -> LiveCapture | None:
    """The live capture named by ``args.capture``, or None after a usage error on stderr."""
    problem = follow_problem(args.capture)
    if problem:
        print(f"migtrace {command}: {args.capture}: {problem}", file=sys.stderr)
        return None
    try:
        return LiveCapture(args.capture, follow=getattr(args, "follow", False),
                           idle_timeout=getattr(args, "idle_timeout", None))
    except NotACapture as e:
        print(f"migtrace {command}: {args.capture}: {e}", file=sys.stderr)
        return None
    except OSError as e:
        print(f"migtrace {command}: {args.capture}: {e.strerror or e}", file=sys.stderr)
        return None


def decode_live(live: LiveCapture, emit: Callable[[dict[str, Any]], None]) -> None:
    """Decode ``live``'s migration flows, calling ``emit`` with each contract object
    as soon as it is complete (the ``flow`` objects and capture findings last)."""

    def convert(item: Any) -> list[dict[str, Any]]:
        for obj in to_objects(item):
            emit(obj)
        return []

    with live.sigint_ends_input():
        for item in decode_capture(live.reader, convert=convert, result=live.result):  # type: ignore[arg-type]
            for obj in ([item] if isinstance(item, dict) else to_objects(item)):
                emit(obj)
    for f in live.end_findings():
        emit(f.to_json())


def run_decode(args: argparse.Namespace) -> int:
    if args.as_kind not in (None, "pcap", "pcapng"):
        print(f"migtrace decode: {args.capture}: only pcap/pcapng can be read from a pipe or followed "
              f"(--as {args.as_kind} needs a file)", file=sys.stderr)
        return EXIT_USAGE
    live = open_live("decode", args)
    if live is None:
        return EXIT_USAGE
    if _is_admin(live, args):
        return _decode_spooled(live, args)
    out = LiveWriter(as_json=args.json)
    try:
        decode_live(live, out.write)
    except BrokenPipeError:
        raise
    except Exception as e:  # as for files: a decoder bug is a finding, not a traceback
        out.write(internal_error(e, "decode", args.debug))
    out.write(out.summary(live.format) | live.compression)
    return EXIT_INPUT_ERRORS if out.errors else EXIT_OK


def _is_admin(live: LiveCapture, args: argparse.Namespace) -> bool:
    """An admin capture (USER link types, admin-capture.md), told by the pcap header or the
    pcapng interfaces declared in the first KiB."""
    from analysis.cli.detect import linktypes_of
    from dissect.capture import formats as F

    head = live.source.peek(24 if live.format == "pcap" else 1024)
    types = linktypes_of(io.BytesIO(head))
    want = getattr(args, "admin_linktype", None)
    if not types:
        return False
    if want is not None:
        return all(t == want for t in types)
    return all(F.LINKTYPE_USER0 <= t <= F.LINKTYPE_USER15 for t in types)


def _decode_spooled(live: LiveCapture, args: argparse.Namespace) -> int:
    """Admin captures are small and decoded from a file (their emitter reads the file):
    the input is copied to a temporary file first."""
    with tempfile.TemporaryDirectory(prefix="migtrace-stdin-") as d:
        path = os.path.join(d, "capture")
        with live.sigint_ends_input(), open(path, "wb") as f:
            while True:
                b = live.source.read(1 << 20)
                if not b:
                    break
                f.write(b)
        live.close()
        file_args = argparse.Namespace(**{**vars(args), "capture": path, "follow": False})
        spooled = None
        if live.compression:  # the file holds decompressed bytes: how they were made goes out too
            from dissect.capture.compressed import Decompressed

            c = live.compression
            spooled = Decompressed(Path(path), c["compression"], live.raw.findings, c["decompressed_bytes"],
                                   c["compressed_bytes"])
        return decode_file(file_args, Path(path), spooled)


def reassemble_live(live: LiveCapture, factory: Any = None) -> ReassemblyResult:
    """Reassemble a live capture (``flows``, ``extract``); its end findings appended.
    As :func:`reassemble` does for a reader, with the reassembler visible to
    ``--follow``'s end test (the main flow's FIN)."""
    r = Reassembler(factory)
    live.reassembler = r
    with live.sigint_ends_input():
        r.feed(live.reader.records())
    res = r.close()
    res.findings[:0] = live.reader.findings
    res.linktypes = list(live.reader.linktypes)
    res.findings.extend(live.end_findings())
    return res
