# SPDX-License-Identifier: GPL-2.0-only
"""Mutation fuzzing of every decoder family (targets.py); see docs/robustness.md and scripts/fuzz.sh."""
