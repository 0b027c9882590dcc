# SPDX-License-Identifier: GPL-2.0-only
"""ftrace captures: trace.dat (trace-cmd v6/v7) and the text forms."""
from dissect.ftrace.event import Event

__all__ = ["Event"]
