# SPDX-License-Identifier: GPL-2.0-only
"""A decoder exception met by a command: the ``internal_error`` finding and its stderr line.

One wording for the file and the live (pipe, ``--follow``) paths: the user
keeps the units decoded so far and gets a finding; the finding's
``exception``/``where`` and the line on stderr tell a decoder bug apart from
bad input (a crash, for a fuzzer: docs/robustness.md).
"""
from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]


def where(e: BaseException) -> str:
    """``path:line`` (relative to the source tree) of the innermost frame of ours that raised ``e``."""
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if Path(f.filename).resolve().is_relative_to(_ROOT)] or frames
    if not mine:
        return "?"
    f = mine[-1]
    p = Path(f.filename).resolve()
    return f"{p.relative_to(_ROOT) if p.is_relative_to(_ROOT) else p.name}:{f.lineno}"


def internal_error(e: Exception, command: str, debug: bool = False) -> dict[str, Any]:
    """Report ``e`` on stderr (a traceback too with ``--debug``) and return its finding."""
    if debug:
        traceback.print_exception(e, file=sys.stderr)
    at = where(e)
    print(f"migtrace {command}: internal error (a decoder bug, not bad input): {type(e).__name__} at {at}; "
          "please report", file=sys.stderr)
    return {"kind": "finding", "severity": "error", "code": "internal_error",
            "message": f"decoder failed: {type(e).__name__}: {e} (please report; --debug shows where)",
            "offset": None, "exception": type(e).__name__, "where": at}
