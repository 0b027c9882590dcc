# SPDX-License-Identifier: GPL-2.0-only
"""Selections shared by the metrics: the primary stream capture, its main-channel
sections, a device's chunks and records, QEMU trace events by name.

Specs: ``qemu-migration-stream.md`` §10, §13 (sections, channels),
``qemu-trace-events.md`` §4 (event names).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

_NS = 1_000_000_000


# --- selections ------------------------------------------------------------------------------

def stream_capture(m: "Migration") -> int | None:
    """The primary stream capture: the first one with sections (the others repeat it)."""
    if len(m.sections):
        return int(m.sections["capture"].iloc[0])
    if len(m.chunks):
        return int(m.chunks["capture"].iloc[0])
    return None


def _primary(m: "Migration", df: pd.DataFrame) -> pd.DataFrame:
    cap = stream_capture(m)
    return df if cap is None or not len(df) else df[df["capture"] == cap]


def main_sections(m: "Migration") -> pd.DataFrame:
    s = _primary(m, m.sections)
    if not len(s):
        return s
    main_flow = s["flow"].mode(dropna=True)
    if len(main_flow):
        s = s[s["flow"] == main_flow.iloc[0]]
    return s.sort_values("offset", kind="stable") if s["offset"].notna().all() else s


def device_chunks(m: "Migration", device: str) -> pd.DataFrame:
    c = _primary(m, m.chunks)
    return c[c["device"] == device]


def device_records(m: "Migration", device: str) -> pd.DataFrame:
    r = m.records
    cap = stream_capture(m)
    if cap is not None and len(r) and (r["capture"] == cap).any():
        r = r[r["capture"] == cap]
    return r[r["device"] == device].sort_values("index", kind="stable")


def qemu_events(m: "Migration", name: str | tuple[str, ...], side: str | None = "source",
                device: str | None = None) -> pd.DataFrame:
    ev = m.events
    if not len(ev):
        return ev
    names = (name,) if isinstance(name, str) else name
    sel = ev["qemu_event"].isin(names)
    if side is not None:
        sel &= (ev["side"] == side) | ev["side"].isna()
    if device is not None:
        sel &= (ev["device"] == device) | (ev["host_device"] == device)
    return ev[sel.fillna(False)].sort_values("ts_ns", kind="stable")


def _arg(row: pd.Series, *names: str) -> Any:
    args = row["args"] if isinstance(row["args"], dict) else {}
    for n in names:
        if n in args:
            return args[n]
    return None
