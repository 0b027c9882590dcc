# SPDX-License-Identifier: GPL-2.0-only
"""QEMU's own migration statistics: HMP ``info migrate`` text and QMP ``query-migrate`` JSON.

Field meanings: ``qemu-trace-events.md`` §7.1.  Both forms are normalised to
one flat dict with units in the key names (``total_time_ms``,
``transferred_bytes``, ``duplicate_pages`` …), so the analysis and the tests
can compare them with what the captures show.  HMP prints sizes in kbytes
(KiB, ``value >> 10``), so byte values from HMP have a resolution of 1024.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: HMP label (lower case) → (normalised key, unit kind)
_HMP = {
    "migration status": ("status", "str"),
    "total time": ("total_time_ms", "ms"),
    "expected downtime": ("expected_downtime_ms", "ms"),
    "downtime": ("downtime_ms", "ms"),
    "setup": ("setup_ms", "ms"),
    "transferred ram": ("transferred_bytes", "size"),
    "throughput": ("throughput_mbps", "float"),
    "remaining ram": ("remaining_bytes", "size"),
    "total ram": ("total_bytes", "size"),
    "duplicate": ("duplicate_pages", "int"),
    "skipped": ("skipped_pages", "int"),
    "normal": ("normal_pages", "int"),
    "normal bytes": ("normal_bytes", "size"),
    "dirty sync count": ("dirty_sync_count", "int"),
    "page size": ("page_size_bytes", "size"),
    "multifd bytes": ("multifd_bytes", "size"),
    "pages-per-second": ("pages_per_second", "int"),
    "precopy ram": ("precopy_bytes", "size"),
    "downtime ram": ("downtime_bytes", "size"),
    "postcopy ram": ("postcopy_bytes", "size"),
    "dirty pages rate": ("dirty_pages_rate", "int"),
    "vfio device transferred": ("vfio_transferred_bytes", "size"),
}
#: QMP query-migrate key → normalised key (sizes already in bytes)
_QMP_TOP = {"status": "status", "total-time": "total_time_ms", "downtime": "downtime_ms",
            "setup-time": "setup_ms", "expected-downtime": "expected_downtime_ms"}
_QMP_RAM = {"transferred": "transferred_bytes", "remaining": "remaining_bytes", "total": "total_bytes",
            "duplicate": "duplicate_pages", "skipped": "skipped_pages", "normal": "normal_pages",
            "normal-bytes": "normal_bytes", "dirty-sync-count": "dirty_sync_count",
            "page-size": "page_size_bytes", "multifd-bytes": "multifd_bytes",
            "pages-per-second": "pages_per_second", "precopy-bytes": "precopy_bytes",
            "downtime-bytes": "downtime_bytes", "postcopy-bytes": "postcopy_bytes",
            "mbps": "throughput_mbps", "dirty-pages-rate": "dirty_pages_rate"}
_UNITS = {"bytes": 1, "kbytes": 1024, "mbytes": 1 << 20, "gbytes": 1 << 30, "kb": 1024, "mb": 1 << 20}
_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z \-]*?)\s*:\s*(.*?)\s*$")


def looks_like_stats(head: str) -> bool:
    """True when ``head`` is HMP ``info migrate`` output or a QMP ``query-migrate`` reply."""
    if re.search(r"^Migration status:\s*\S+", head, re.M):
        return True
    s = head.lstrip()
    if s.startswith("{"):
        try:
            obj = json.loads(s)
        except (ValueError, RecursionError):
            return '"status"' in s and ('"ram"' in s or '"total-time"' in s)
        obj = obj.get("return", obj) if isinstance(obj, dict) else None
        return isinstance(obj, dict) and "status" in obj
    return False


def parse_hmp(text: str) -> dict[str, Any]:
    """Normalise HMP ``info migrate`` text (QEMU 7.2 … 10.x labels)."""
    out: dict[str, Any] = {"format": "hmp"}
    caps: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        label, value = m.group(1).lower(), m.group(2)
        if label == "capabilities":
            for item in value.split():
                if ":" in item:
                    k, v = item.split(":", 1)
                    caps[k] = v
            continue
        spec = _HMP.get(label)
        if spec is None:
            continue
        key, kind = spec
        if kind == "str":
            out[key] = value
            continue
        num = re.match(r"^(-?[0-9.]+)\s*([A-Za-z]*)", value)
        if not num:
            continue
        n, unit = float(num.group(1)), num.group(2).lower()
        if kind == "size":
            out[key] = int(round(n * _UNITS.get(unit, 1)))
        elif kind == "float":
            out[key] = n
        else:
            out[key] = int(n)
    if caps:
        out["capabilities"] = caps
    return out


def parse_qmp(obj: dict[str, Any]) -> dict[str, Any]:
    """Normalise a QMP ``query-migrate`` reply (with or without the ``return`` wrapper)."""
    obj = obj.get("return", obj)
    out: dict[str, Any] = {"format": "qmp"}
    for k, key in _QMP_TOP.items():
        if k in obj:
            out[key] = obj[k]
    for k, key in _QMP_RAM.items():
        if k in obj.get("ram", {}):
            out[key] = obj["ram"][k]
    if "vfio" in obj and "transferred" in obj["vfio"]:
        out["vfio_transferred_bytes"] = obj["vfio"]["transferred"]
    return out


def read_stats(path: Path | str) -> dict[str, Any]:
    """Read either form from a file."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    s = text.lstrip()
    if s.startswith("{"):
        try:
            return parse_qmp(json.loads(s))
        except (ValueError, RecursionError):
            pass
    return parse_hmp(text)
