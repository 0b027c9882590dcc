# SPDX-License-Identifier: GPL-2.0-only
"""Metrics of one migration: phases, pre-copy iterations, PRE_COPY policy,
record sizes, downtime estimates (each with its method) and cross-source
consistency checks.

Specs: ``vfio-virtio-stream.md`` §7 (PRE_COPY variants, §7.3 heuristic),
``qemu-trace-events.md`` §4–7 (checkpoints, event order, deriving timings,
query-migrate), ``qemu-migration-stream.md`` §10, §13, §14 (sections,
markers, return path).  docs/analysis.md explains every method and decision.

The code lives in topic modules; every name is re-exported here so that
``from analysis import metrics; metrics.downtime(m)`` is the API:

- :mod:`analysis.metrics.selection`: selections (stream capture, sections, chunks, records, events)
- :mod:`analysis.metrics.switchover`: downtime window and the four downtime estimates
- :mod:`analysis.metrics.phases`: phases and pre-copy iterations frames
- :mod:`analysis.metrics.passes`: pre-copy iterations as QEMU counts them (trace, qmp, stream estimate)
- :mod:`analysis.metrics.policy`: PRE_COPY policy heuristic, pre-copy admin commands
- :mod:`analysis.metrics.records`: record statistics, admin latencies
- :mod:`analysis.metrics.migration`: ``device_metrics``, ``migration_metrics``, QEMU profile
- :mod:`analysis.metrics.checks`: cross-source consistency findings

The functions call each other through their modules, so patching a name on
this package does not change what the other functions call.
"""
from __future__ import annotations

# private helpers are re-exported too: they were importable from the single module
from analysis.metrics.checks import (STOPCOPY_TOLERANCE, _check_admin_sizes, _check_chunk_sizes,
                                     _check_qemu_counters, _check_stopcopy_size, consistency_checks)
from analysis.metrics.migration import device_metrics, migration_metrics, qemu_profile
from analysis.metrics.passes import (greedy_segments, log_passes, pass_starts, precopy_iterations,
                                     segment_starts, stream_estimate)
from analysis.metrics.phases import (_ITER_COLS, PHASES, _last_ts, _phase_row, _trace_phases,
                                     iteration_starts, iterations_frame, phases_frame, qemu_iteration_count)
from analysis.metrics.policy import (CAP128_CALLS, MANY_RECORDS, RATELIMIT_MIN_RECORDS,
                                     RATELIMIT_MIN_SPACING_S, admin_precopy, precopy_policy)
from analysis.metrics.records import admin_latency, admin_members, bytes_by_part_type, record_stats
from analysis.metrics.selection import (_NS, _arg, _primary, device_chunks, device_records, main_sections,
                                        qemu_events, stream_capture)
from analysis.metrics.switchover import (_admin_in_window, _category, downtime, downtime_breakdown,
                                         downtime_model, downtime_qemu, downtime_window, stopcopy_bytes)

__all__ = [
    "PHASES", "RATELIMIT_MIN_SPACING_S", "RATELIMIT_MIN_RECORDS", "CAP128_CALLS", "MANY_RECORDS",
    "STOPCOPY_TOLERANCE",
    "stream_capture", "main_sections", "device_chunks", "device_records", "qemu_events",
    "downtime_window", "downtime_qemu", "downtime_breakdown", "stopcopy_bytes", "downtime_model", "downtime",
    "phases_frame", "iteration_starts", "qemu_iteration_count", "iterations_frame",
    "precopy_iterations", "pass_starts", "stream_estimate", "segment_starts", "greedy_segments", "log_passes",
    "precopy_policy", "admin_precopy", "record_stats", "bytes_by_part_type", "admin_members", "admin_latency",
    "device_metrics", "qemu_profile", "migration_metrics", "consistency_checks",
]
