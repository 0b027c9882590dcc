# SPDX-License-Identifier: GPL-2.0-only
"""``migtrace summary -``: the analysis pipeline loads captures as files
(several passes, frames joined across captures), so standard input is copied
to a temporary file first (1 MiB at a time: disk, not memory, holds it) and
removed afterwards; ``-`` is what the output calls it."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator

from analysis.live.args import STDIN_NAME

_PCAPNG = b"\x0a\x0d\x0d\x0a"


@contextmanager
def stdin_as_file(paths: list[str], stdin_fd: int | None = None) -> Iterator[tuple[list[str], str | None]]:
    """``paths`` with ``-`` replaced by a temporary copy of standard input, and that copy's path."""
    if STDIN_NAME not in paths:
        yield paths, None
        return
    d = tempfile.mkdtemp(prefix="migtrace-stdin-")
    try:
        fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
        first = os.read(fd, 1 << 20)
        tmp = os.path.join(d, "stdin.pcapng" if first[:4] == _PCAPNG else "stdin.pcap")
        with open(tmp, "wb") as f:
            while first:
                f.write(first)
                first = os.read(fd, 1 << 20)
        yield [tmp if p == STDIN_NAME else p for p in paths], tmp
    finally:
        shutil.rmtree(d, ignore_errors=True)


def renamed(obj: Any, tmp: str | None, name: str = STDIN_NAME) -> Any:
    """``obj`` with the temporary copy's path written as ``name`` (strings, lists, dicts)."""
    if tmp is None:
        return obj
    if isinstance(obj, str):
        return obj.replace(tmp, name)
    if isinstance(obj, list):
        return [renamed(x, tmp, name) for x in obj]
    if isinstance(obj, dict):
        return {k: renamed(v, tmp, name) for k, v in obj.items()}
    return obj
