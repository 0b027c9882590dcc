# SPDX-License-Identifier: GPL-2.0-only
"""Command-line paths → migrations, and the summary table printed on the terminal.

Each run folder (every folder with ``run.json`` under a corpus folder) is one
migration; loose capture files given together are one migration.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

#: columns of the printed summary table
TABLE_COLUMNS = ["run_id", "device", "qemu_profile", "precopy_iterations", "precopy_chunks", "precopy_snapshots",
                 "precopy_policy", "stopcopy_records", "stopcopy_bytes", "record_bytes_median", "record_bytes_max",
                 "trailer_bug", "downtime_qemu_ms", "downtime_wire_ms", "downtime_model_ms"]

Loaded = list[tuple[str, "Migration | None", "str | None"]]


def group_inputs(paths: Sequence[Path | str]) -> list[tuple[str, list[Path]]]:
    """(label, inputs) per migration: run folders / run.json each alone, loose files together."""
    from analysis.manifest import MANIFEST_NAME, find_runs

    groups: list[tuple[str, list[Path]]] = []
    loose: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for run in find_runs([p]):
                target = run.path if run.path is not None else run.folder
                groups.append((run.run_id, [target]))
        elif p.name == MANIFEST_NAME:
            groups.append((p.parent.name, [p]))
        else:
            loose.append(p)
    if loose:
        groups.insert(0, (loose[0].stem if len(loose) == 1 else f"{loose[0].stem} (+{len(loose) - 1})", loose))
    return groups


def load_one(label: str, paths: list[Path], progress: bool = False) -> tuple[str, "Migration | None", str | None]:
    """One group loaded; a malformed run.json is kept as (label, None, message)."""
    from analysis.load import load
    from analysis.manifest import ManifestError

    try:
        m = load(*paths, progress=progress)
    except ManifestError as e:
        return label, None, str(e)
    return m.run_id or label, m, None


def load_groups(groups: list[tuple[str, list[Path]]], progress: bool | None = None) -> Loaded:
    """Load every group in this process (``summary``, ``watch``, the Python API)."""
    show = sys.stderr.isatty() if progress is None else progress
    items: Iterable[tuple[str, list[Path]]] = groups
    if show and len(groups) > 1:
        from tqdm import tqdm

        items = tqdm(groups, desc="migrations", unit="run", file=sys.stderr)
    return [load_one(label, paths, progress=show and len(groups) == 1) for label, paths in items]


def summary_frame(label: str, m: "Migration") -> pd.DataFrame:
    from analysis.summary import summarize

    df = summarize(m)
    df["run_id"] = df["run_id"].fillna(label)
    return df


def summary_table(loaded: Loaded | Sequence[pd.DataFrame], full: bool = False) -> pd.DataFrame:
    """One row per device of every loaded migration (or the concatenation of summary frames)."""
    frames = [x for x in loaded if isinstance(x, pd.DataFrame)]
    frames += [summary_frame(label, m) for x in loaded if isinstance(x, tuple)
               for label, m, _ in [x] if m is not None]
    if not frames:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    return df if full else df[[c for c in TABLE_COLUMNS if c in df.columns]]


def format_table(df: pd.DataFrame) -> str:
    """The terminal table: fixed notation, ``-`` for a missing value."""
    def fmt(v: Any) -> str:
        if v is None or (not isinstance(v, (list, dict)) and pd.isna(v)):
            return "-"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)
    if not len(df):
        return "(no migrations)"
    return df.astype(object).map(fmt).to_string(index=False)
