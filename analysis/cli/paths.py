# SPDX-License-Identifier: GPL-2.0-only
"""Why a path named on the command line cannot be read as one capture file, and its
readable form.

One wording for every subcommand, so that a gate's log says what is wrong
(issue 11 §5): a missing path, a directory, an empty file (``/dev/null``
included) and anything that is not a regular file are told apart.  A zstd,
gzip, xz or bzip2 capture is read through its decompressed bytes
(dissect/capture/compressed.py); its findings and sizes go into the output.
"""
from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.cli.detect import UnknownFormat, detect

if TYPE_CHECKING:  # pragma: no cover
    from analysis.cli.output import UnitWriter
    from dissect.capture.compressed import Decompressed


def capture_file_problem(path: Path | str) -> str | None:
    """None when ``path`` is a non-empty regular file, else the reason in a few words."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return "no such file"
    except NotADirectoryError:
        return "no such file"
    except OSError as e:
        return e.strerror or str(e)
    import stat

    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if stat.S_ISREG(st.st_mode):
        return "empty file" if st.st_size == 0 else None
    try:
        if os.path.samefile(p, os.devnull):
            return "empty file"
    except OSError:
        pass
    return "not a regular file"


def make_parent(path: Path | str) -> None:
    """Create the folder an output file goes into, so ``-o out/x.png`` works on a fresh clone.

    Raises OSError (the caller reports it as a usage error) when that is impossible."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)


def open_capture_file(stack: ExitStack, path: Path, command: str) -> Decompressed | None:
    """The readable form of the capture ``path`` (its decompressed bytes in a temporary file
    when it is zstd/gzip/xz/bzip2 data, removed when ``stack`` closes), or None after a usage
    error on stderr (the file cannot be read)."""
    from dissect.capture.compressed import decompressed

    try:
        return stack.enter_context(decompressed(path))
    except OSError as e:
        print(f"migtrace {command}: {path}: {e.strerror or e}", file=sys.stderr)
        return None


def follow_problem(path: str, follow: bool) -> str | None:
    """Why ``--follow`` cannot read ``path``: a compressed file is read whole, not followed."""
    if not follow or path == "-":
        return None
    from dissect.capture.compressed import sniff

    try:
        comp = sniff(path)
    except OSError:
        return None  # the live reader reports it
    return None if comp is None else f"is {comp} data; --follow reads a growing uncompressed capture"


def write_compression(out: UnitWriter, data: Decompressed) -> None:
    """The findings of decompression, after the units: where it stopped (compressed offset),
    and ``decompressed_offset``, where the decoded bytes end."""
    for f in data.findings:
        out.write(f.to_json())


def compression_fields(data: Decompressed | None) -> dict[str, Any]:
    """Extra ``summary`` fields of a compressed capture: ``compression`` and both sizes."""
    if data is None or data.compression is None:
        return {}
    return {"compression": data.compression, "compressed_bytes": data.compressed_size,
            "decompressed_bytes": data.size}


def capture_kind(path: Path, command: str, as_kind: str | None = None,
                 empty_ok: frozenset[str] = frozenset()) -> str | None:
    """The kind of the capture file ``path`` (``as_kind`` when named, else detected by content,
    compressed captures included), or None after printing why it cannot be read (a usage
    error of ``migtrace <command>``). An empty file is a valid input of a kind in ``empty_ok``."""
    problem = capture_file_problem(path)
    if problem == "empty file" and as_kind in empty_ok:
        problem = None
    if problem:
        print(f"migtrace {command}: {path}: {problem}", file=sys.stderr)
        return None
    try:
        return as_kind or detect(path)  # from the first (decompressed) bytes only
    except UnknownFormat as e:
        print(f"migtrace {command}: {e}", file=sys.stderr)
    except OSError as e:
        print(f"migtrace {command}: {path}: {e.strerror or e}", file=sys.stderr)
    return None
