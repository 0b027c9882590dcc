# SPDX-License-Identifier: GPL-2.0-only
"""Every frame of one migration as one typed Parquet file per frame.

Column types are the frames' own (docs/analysis.md): nullable integers stay integers
(``ts_ns`` exact to the nanosecond), strings strings, booleans booleans.  Columns that
hold per-row objects (an event's ``args``, an admin command's ``data``/``result``, a
part's ``selector``/``value``) are written as JSON text: their keys differ row by row,
so no single Arrow struct type fits them; ``json.loads`` gives the object back.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

#: the frames written, in order (docs/analysis.md "Frames")
FRAMES = ("events", "sections", "chunks", "records", "parts", "admin", "flows", "rp_messages", "commands",
          "multifd", "phases", "iterations", "qmp")


def _json_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    if isinstance(v, (set, tuple)):
        return list(v)
    return str(v)


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with object columns of dicts/lists as JSON text and other objects as strings."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        vals = out[col].tolist()
        if any(isinstance(v, (dict, list, tuple)) for v in vals):
            out[col] = pd.array([None if v is None or (isinstance(v, float) and v != v) else
                                 json.dumps(v, default=_json_default, sort_keys=True) for v in vals], dtype="string")
        elif all(v is None or isinstance(v, str) for v in vals):
            out[col] = out[col].astype("string")
        elif all(v is None or (isinstance(v, (int, bool)) and not isinstance(v, bool)) for v in vals):
            out[col] = pd.array(vals, dtype="Int64")
        else:
            out[col] = pd.array([None if v is None or (isinstance(v, float) and v != v) else str(v)
                                 for v in vals], dtype="string")
    return out


def write_parquet(m: "Migration", out_dir: Path | str) -> list[Path]:
    """``out_dir/<frame>.parquet`` for every frame (empty frames too, with their columns)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FRAMES:
        df = getattr(m, name, None)
        if not isinstance(df, pd.DataFrame):
            continue
        path = out / f"{name}.parquet"
        typed(df).to_parquet(path, index=False, engine="pyarrow")
        written.append(path)
    return written
