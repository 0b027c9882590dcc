# SPDX-License-Identifier: GPL-2.0-only
"""Regression comparison across groups of runs (firmware, kernel, QEMU versions)."""
