# SPDX-License-Identifier: GPL-2.0-only
"""The errors of ``migtrace record``: a message for the user and the exit code (cli.md)."""
from __future__ import annotations


class RecordError(Exception):
    """A situation ``record`` reports in one line instead of a traceback.

    ``exit_code`` 2 (the default): usage, a socket or tool missing, QEMU
    refusing a setting; 1: the migration itself failed, was cancelled or
    timed out (the run folder is still written).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
