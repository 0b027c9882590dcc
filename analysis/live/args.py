# SPDX-License-Identifier: GPL-2.0-only
"""The command-line options of live input, shared by decode, flows, extract and watch."""
from __future__ import annotations

import argparse

STDIN_NAME = "-"


def _seconds(s: str) -> float:
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return v


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--follow", action="store_true",
                   help="read CAPTURE while it is being written (as tail -f): end when the migration's "
                        "stream ended and the file stopped growing, after --idle-timeout, or on ^C")
    p.add_argument("--idle-timeout", type=_seconds, metavar="SECONDS",
                   help="with --follow (and watch --interface): end when nothing new arrived for "
                        "SECONDS (default: wait)")


def is_live(capture: str, follow: bool) -> bool:
    """True when CAPTURE is read as a stream (``-``) or followed."""
    return capture == STDIN_NAME or follow
