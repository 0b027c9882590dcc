# SPDX-License-Identifier: GPL-2.0-only
"""pcap/pcapng dispatch: admin captures (USER link types) or migration traffic."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

from analysis.cli.detect import pcap_linktypes
from analysis.emit import emitter_for
from dissect.capture import formats as F


def is_admin_capture(path: Path, admin_linktype: int | None = None) -> bool:
    """True when every interface carries admin-capture records (admin-capture.md)."""
    types = pcap_linktypes(path)
    if not types:
        return False
    if admin_linktype is not None:
        return all(t == admin_linktype for t in types)
    return all(F.LINKTYPE_USER0 <= t <= F.LINKTYPE_USER15 for t in types)


def emit(path: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    kind = "admin-capture" if is_admin_capture(path, getattr(args, "admin_linktype", None)) else "migration-capture"
    yield from emitter_for(kind)(path, args)
