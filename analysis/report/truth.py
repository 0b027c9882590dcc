# SPDX-License-Identifier: GPL-2.0-only
"""Measured summary next to a simulated run's ground truth, each row with its tolerance.

Only fields the truth defines are compared (a ``null`` truth is no truth); nested
values (breakdown, bytes per part type, admin latencies) become one row per key.
Tolerances follow the verified accuracy of the analysis (docs/analysis.md):
times within 2 % (or 0.05 ms for the sub-millisecond parts), admin latencies to
1 µs, counts and bytes exact, names equal.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration


#: summary fields whose method says where the figure came from (``…_method``)
_METHOD = {"total_ms": "total_method", "setup_ms": "setup_method", "downtime_qemu_ms": "downtime_qemu_method"}


def tolerance(metric: str, value: Any, method: str | None = None) -> tuple[str, Any]:
    """(name shown in the report, test(measured, truth) -> bool) for one metric."""
    if method and any(w in method for w in ("qemu stats", "info migrate", "query-migrate")):
        # QEMU's own counters are whole milliseconds (truncated)
        return "±1 ms (QEMU counts whole ms)", lambda a, b: abs(a - b) < 1 + 1e-9
    if metric.startswith("admin_latency_ms."):
        return "±0.001 ms", lambda a, b: abs(a - b) <= 0.001 + 1e-9
    if metric.endswith("_ms") or "_ms." in metric:
        return "±2 % or ±0.05 ms", lambda a, b: abs(a - b) <= max(0.02 * abs(b), 0.05) + 1e-9
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "equal", lambda a, b: a == b
    return "exact", lambda a, b: abs(a - b) <= 1e-9


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _rows(device: str | None, metric: str, measured: Any, truth: Any,
          method: str | None = None) -> list[dict[str, Any]]:
    if truth is None:
        return []
    if isinstance(truth, dict):
        got = measured if isinstance(measured, dict) else {}
        return [r for k, v in truth.items() for r in _rows(device, f"{metric}.{k}", got.get(k), v)]
    name, test = tolerance(metric, truth, method)
    if measured is None:
        agrees = False
    elif _num(truth) != _num(measured):
        agrees = False
    else:
        agrees = bool(test(measured, truth))
    return [{"device": device, "metric": metric, "measured": measured, "truth": truth, "tolerance": name,
             "agrees": agrees}]


def truth_rows(m: "Migration", objs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per compared value: device, metric, measured, truth, tolerance, agrees."""
    from analysis.summary import DEVICE_FIELDS, MIGRATION_FIELDS, summary_objects

    truth = (m.manifest.truth if m.manifest else None) or {}
    if not truth:
        return []
    objs = objs if objs is not None else summary_objects(m)
    mig = objs[0]
    rows: list[dict[str, Any]] = []
    for k in MIGRATION_FIELDS:
        if k in truth and k != "captures":
            rows += _rows(None, k, mig.get(k), truth[k], mig.get(_METHOD.get(k, "")))
    devs = [o for o in objs if o.get("kind") == "device_summary"]
    for obj, t in zip(devs, truth.get("devices") or []):
        for k in DEVICE_FIELDS:
            if k in t and k != "device":
                rows += _rows(obj["device"], k, obj.get(k), t[k])
    return rows


def truth_table(m: "Migration"):
    """The rows as a DataFrame (the Python API of the previous report)."""
    import pandas as pd

    return pd.DataFrame(truth_rows(m), columns=["device", "metric", "measured", "truth", "tolerance", "agrees"])
