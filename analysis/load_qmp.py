# SPDX-License-Identifier: GPL-2.0-only
"""QEMU's ``query-migrate`` time series (run-manifest.md roles ``qmp-source`` /
``qmp-destination``): JSON Lines, one ``query-migrate`` reply per poll with ``ts_ns``
(CLOCK_REALTIME, ns) added, as ``migtrace record`` writes it.

Read into a tidy frame, one row per poll, with the normalised names of
:mod:`analysis.load_hmp` (units in the names).  A line that is not a JSON object with a
``ts_ns`` is a ``qmp_series_line_malformed`` finding (line number, byte offset); the
other lines are still read.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.load_hmp import parse_qmp

#: frame columns (after capture, side, ts_ns, status) and their dtypes
QMP_COLUMNS: dict[str, str] = {
    "capture": "Int64", "side": "string", "ts_ns": "Int64", "status": "string",
    "dirty_sync_count": "Int64", "remaining_bytes": "Int64", "transferred_bytes": "Int64",
    "total_bytes": "Int64", "normal_pages": "Int64", "duplicate_pages": "Int64", "normal_bytes": "Int64",
    "precopy_bytes": "Int64", "downtime_bytes": "Int64", "multifd_bytes": "Int64",
    "dirty_pages_rate": "Int64", "pages_per_second": "Int64", "throughput_mbps": "float64",
    "downtime_ms": "float64", "expected_downtime_ms": "float64", "setup_ms": "float64",
    "total_time_ms": "float64", "vfio_transferred_bytes": "Int64",
}


def _poll(line: str) -> tuple[int, dict[str, Any]] | None:
    """(ts_ns, the query-migrate reply) of one line; None unless a JSON object with an integer
    ``ts_ns`` (the reply may also come wrapped in QMP's ``return``)."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a deeply nested damaged line
        return None
    ts = obj.get("ts_ns") if isinstance(obj, dict) else None
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts < 1 << 63:
        return None
    inner = obj.get("return", obj)
    return (ts, inner) if isinstance(inner, dict) else None


#: A query-migrate reply is about 1 KB; a longer line is not one (and is not kept in memory).
MAX_LINE = 1 << 20


def _lines(f: Any) -> Any:
    """(length, line bytes or None when longer than MAX_LINE, ends with a newline) per line of a
    binary file; an over-long line is skipped in bounded reads, never held."""
    while True:
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return
        if len(raw) <= MAX_LINE:
            yield len(raw), raw, raw.endswith(b"\n")
            continue
        n = len(raw)
        while raw and not raw.endswith(b"\n"):
            raw = f.readline(MAX_LINE)
            n += len(raw)
        yield n, None, raw.endswith(b"\n")


def _typed(v: Any, dtype: str) -> Any:
    """A reply value of the column's type, else None (a damaged reply never breaks the frame)."""
    if isinstance(v, bool) or v is None:
        return None
    if dtype == "Int64":
        return v if isinstance(v, int) and -(1 << 63) <= v < (1 << 63) else None
    if dtype == "float64":
        return float(v) if isinstance(v, (int, float)) else None
    return v if isinstance(v, str) else None


def looks_like_series(head: str) -> bool:
    """True when one of the first lines of ``head`` is a query-migrate reply (``status``, no
    ``kind``) with an integer ``ts_ns`` (a damaged first line does not hide the series)."""
    if not head.lstrip().startswith("{"):
        return False
    for line in head.splitlines()[:8]:
        poll = _poll(line.strip()) if line.strip() else None
        # contract units (migtrace decode --json) carry "kind"; a query-migrate reply never does
        if poll is not None and "status" in poll[1] and "kind" not in poll[1]:
            return True
    return False


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in QMP_COLUMNS.items()})


def read_series(path: Path | str, capture: int | None = None,
                side: str | None = None) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The polls of one series file and its findings."""
    rows: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    offset = 0
    with open(path, "rb") as f:
        for lineno, (n, raw, newline) in enumerate(_lines(f), 1):
            here = offset
            offset += n
            text = raw.decode("utf-8", "replace").strip() if raw is not None else None
            if text == "":
                continue
            poll = _poll(text) if text is not None else None
            if poll is None:
                why = (f"longer than {MAX_LINE} bytes" if raw is None else
                       "cut short (no newline at the end of the file)" if not newline else
                       "not a JSON object with an integer ts_ns")
                findings.append({"kind": "finding", "severity": "warning", "code": "qmp_series_line_malformed",
                                 "message": f"{Path(path).name}: line {lineno} is {why}; skipped",
                                 "offset": here, "line": lineno, "capture": capture, "path": str(path)})
                continue
            st = parse_qmp({k: v for k, v in poll[1].items() if k not in ("ram", "vfio") or isinstance(v, dict)})
            row = {k: _typed(st.get(k), t) for k, t in QMP_COLUMNS.items() if k not in ("capture", "side", "ts_ns")}
            row.update(capture=capture, side=side, ts_ns=poll[0])
            rows.append(row)
    if not rows:
        return empty_frame(), findings
    # typed columns straight from the rows' values: one frame, and no integer column takes a
    # detour through float64 (a missing value among counters above 2**53 would round them)
    cols = {c: [r[c] for r in rows] for c in QMP_COLUMNS}
    df = pd.DataFrame({c: np.array([np.nan if v is None else v for v in cols[c]], dtype="float64")
                       if t == "float64" else pd.array(cols[c], dtype=t) for c, t in QMP_COLUMNS.items()})
    return df.sort_values("ts_ns", kind="stable").reset_index(drop=True), findings


def final_stats(df: pd.DataFrame) -> dict[str, Any]:
    """QEMU's counters at the last poll, as :func:`analysis.load_hmp.parse_qmp` names them."""
    if not len(df):
        return {}
    last = df.iloc[-1]
    out: dict[str, Any] = {"format": "qmp-series"}
    for c in QMP_COLUMNS:
        if c in ("capture", "side", "ts_ns"):
            continue
        v = last[c]
        if v is not None and not pd.isna(v):
            out[c] = v.item() if hasattr(v, "item") else v
    return out


def iteration_boundaries(df: pd.DataFrame) -> pd.DataFrame:
    """The polls where ``dirty-sync-count`` grew: a sync (a new pass, or the stop-copy sync)
    happened after the poll before (``after_ts_ns``, the earliest time it can have happened;
    the series' first poll for the first one) and by this poll (``ts_ns``)."""
    d = df.dropna(subset=["dirty_sync_count"])
    if not len(d):
        return d.assign(after_ts_ns=pd.Series(dtype="Int64"))
    prev = df["ts_ns"].shift(1).reindex(d.index)
    grew = d["dirty_sync_count"].astype("int64").diff().fillna(1) > 0
    out = d[grew].copy()
    after = prev[grew].fillna(df["ts_ns"].iloc[0])
    out["after_ts_ns"] = pd.array([int(v) for v in after], dtype="Int64")
    return out
