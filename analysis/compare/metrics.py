# SPDX-License-Identifier: GPL-2.0-only
"""Which summary metrics are compared, which direction is worse, default thresholds.

Names are the ``migration_summary`` / ``device_summary`` fields of
json-lines.md; object-valued fields are flattened with a dot
(``downtime_breakdown_ms.vfio``, ``bytes_by_part_type.VQ_CFG``,
``admin_latency_ms.DEV_PARTS_GET``) and form families matched by prefix.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

Level = Literal["migration", "device"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    level: Level
    worse_when: Literal["higher", "lower"]
    threshold_pct: float


#: Exact metrics. Every one of them is worse when higher: longer downtime,
#: more device state, more pre-copy work, slower admin commands. A firmware
#: that needs fewer pre-copy snapshots for the same state is not worse.
_EXACT: tuple[MetricSpec, ...] = (
    MetricSpec("total_ms", "migration", "higher", 10.0),
    MetricSpec("setup_ms", "migration", "higher", 10.0),
    MetricSpec("precopy_iterations", "migration", "higher", 10.0),
    MetricSpec("qemu_iterate_sections", "migration", "higher", 10.0),
    MetricSpec("downtime_qemu_ms", "migration", "higher", 5.0),
    MetricSpec("downtime_wire_ms", "migration", "higher", 5.0),
    MetricSpec("downtime_model_ms", "migration", "higher", 5.0),
    MetricSpec("bytes_main", "migration", "higher", 5.0),
    MetricSpec("bytes_multifd", "migration", "higher", 5.0),
    MetricSpec("precopy_chunks", "device", "higher", 10.0),
    MetricSpec("precopy_snapshots", "device", "higher", 10.0),
    MetricSpec("stopcopy_records", "device", "higher", 10.0),
    MetricSpec("stopcopy_bytes", "device", "higher", 5.0),
    MetricSpec("record_bytes_min", "device", "higher", 5.0),
    MetricSpec("record_bytes_median", "device", "higher", 5.0),
    MetricSpec("record_bytes_p95", "device", "higher", 5.0),
    MetricSpec("record_bytes_max", "device", "higher", 5.0),
    MetricSpec("parts_per_record_median", "device", "higher", 5.0),
)

#: Families of flattened object fields: prefix → (level, worse_when, threshold).
_FAMILIES: tuple[tuple[str, Level, Literal["higher", "lower"], float], ...] = (
    ("downtime_breakdown_ms.", "migration", "higher", 10.0),
    ("bytes_by_part_type.", "device", "higher", 5.0),
    ("admin_latency_ms.", "device", "higher", 10.0),
)


def metric_specs(columns: Iterable[str], overrides: dict[str, float] | None = None) -> list[MetricSpec]:
    """The metrics present among ``columns``, thresholds overridden by name or family prefix."""
    overrides = overrides or {}
    cols = list(columns)
    out: list[MetricSpec] = []
    for spec in _EXACT:
        if spec.name in cols:
            out.append(_override(spec, overrides))
    for prefix, level, worse, thr in _FAMILIES:
        for c in sorted(c for c in cols if c.startswith(prefix)):
            out.append(_override(MetricSpec(c, level, worse, thr), overrides))
    return out


def _override(spec: MetricSpec, overrides: dict[str, float]) -> MetricSpec:
    thr = overrides.get(spec.name)
    if thr is None:
        for key, val in overrides.items():
            if key.endswith(".*") and spec.name.startswith(key[:-1]):
                thr = val
    if thr is None:
        return spec
    return MetricSpec(spec.name, spec.level, spec.worse_when, thr)


_THRESHOLD = re.compile(r"^\s*([A-Za-z0-9_.*:-]+)\s*=\s*([+-]?\d+(?:\.\d+)?)\s*%?\s*$")


def parse_threshold(text: str) -> tuple[str, float]:
    """``downtime_wire_ms=+5%`` → ("downtime_wire_ms", 5.0). The sign is the
    direction users think of; the metric's own ``worse_when`` decides."""
    m = _THRESHOLD.match(text)
    if not m:
        raise ValueError(f"bad threshold {text!r}: expected METRIC=N% (e.g. downtime_wire_ms=+5%)")
    return m.group(1), abs(float(m.group(2)))


def load_threshold_file(path: str | Path) -> dict[str, float]:
    """Thresholds from TOML: a ``[thresholds]`` table of METRIC = "5%" or 5."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    table = data.get("thresholds", data)
    out: dict[str, float] = {}
    for key, val in table.items():
        if isinstance(val, (int, float)):
            out[key] = abs(float(val))
        elif isinstance(val, str):
            out[key] = parse_threshold(f"{key}={val}")[1]
        else:
            raise ValueError(f"{path}: threshold {key!r} must be a number or a string like '5%'")
    return out


def version_key(value: object) -> tuple:
    """Order group values as versions: ``28.9`` < ``28.10`` < ``28.41.1000``."""
    if value is None:
        return ((2, ""),)
    parts = re.findall(r"\d+|[^\d]+", str(value))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)
