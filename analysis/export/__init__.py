# SPDX-License-Identifier: GPL-2.0-only
"""Exports of one migration: a Perfetto-readable trace (:mod:`analysis.export.perfetto`)
and every frame as typed Parquet (:mod:`analysis.export.parquet`)."""
from __future__ import annotations

from analysis.export.parquet import FRAMES, write_parquet
from analysis.export.perfetto import trace_events, write_perfetto

__all__ = ["FRAMES", "trace_events", "write_parquet", "write_perfetto"]
