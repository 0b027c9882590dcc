# SPDX-License-Identifier: GPL-2.0-only
"""Types shared by every migtrace format family: findings and the decode error."""
from dissect.common.findings import DecodeError, Finding, Severity, worst

__all__ = ["DecodeError", "Finding", "Severity", "worst"]
