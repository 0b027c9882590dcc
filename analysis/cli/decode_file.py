# SPDX-License-Identifier: GPL-2.0-only
"""``migtrace decode`` of one capture file (compressed or not), used by the command and by the
live path for inputs it spools to a file first (admin captures from a pipe)."""
from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.cli.internal import internal_error
from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE
from analysis.cli.output import UnitWriter
from analysis.cli.paths import capture_kind, compression_fields, open_capture_file, write_compression
from analysis.emit import emitter_for

if TYPE_CHECKING:  # pragma: no cover
    from dissect.capture.compressed import Decompressed

NAME = "decode"
#: Magic-less kinds for which zero bytes is a valid input (a DEV_PARTS_GET result with
#: no parts, a vfio-virtio stream with no record); detection cannot name empty input.
EMPTY_IS_VALID = frozenset({"dev-parts", "vfio-stream"})


def decode_file(args: argparse.Namespace, path: Path, spooled: Decompressed | None = None) -> int:
    """Decode the file ``path`` as ``args`` say (``--as``, ``--json``, ...); the exit status.
    ``spooled``: ``path`` holds the decompressed bytes of a compressed pipe, made as it says."""
    # zero parts / records: a valid (empty) input of a kind named by --as
    kind = capture_kind(path, NAME, args.as_kind, EMPTY_IS_VALID)
    if kind is None:
        return EXIT_USAGE
    if kind == "admin-completion" and args.opcode is None:
        print("migtrace decode: --as admin-completion needs --opcode N", file=sys.stderr)
        return EXIT_USAGE
    if spooled is not None:
        return _decode(args, path, kind, spooled)
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
        out.write(internal_error(e, NAME, args.debug))
    write_compression(out, data)
    out.write(out.summary(kind) | compression_fields(data))
    return EXIT_INPUT_ERRORS if out.errors else EXIT_OK
