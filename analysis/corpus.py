# SPDX-License-Identifier: GPL-2.0-only
"""A corpus of runs as one tidy table, cached, on the local machine or on Dask.

Every folder with a ``run.json`` under the given paths is a run
(run-manifest.md).  Each run is decoded and summarised (the
``migration_summary`` / ``device_summary`` metrics of json-lines.md) into
rows — one per run and VFIO device, or one per run without devices — with
the manifest fields as columns (``run_id``, ``kind``, ``firmware.version``,
``kernel``, ``qemu``, ``driver_precopy_policy``, ``labels.<name>``,
``vm.<name>``, ``link.<name>``, ``truth.<name>``) and ``status`` (``ok`` or
``failed``) with ``error``.

Per-run rows are cached as Parquet under ``cache_dir``, keyed by the SHA-256
of the migtrace version, the ``run.json`` bytes and the bytes of every
capture, so a corpus that gained ten runs decodes ten runs.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

import pandas as pd

from analysis.manifest import MANIFEST_NAME, ManifestError, RunManifest, read_manifest
from dissect.common import Finding

Engine = Literal["local", "dask"]
DEFAULT_CACHE = Path.home() / ".cache" / "migtrace" / "corpus"
_FIRST = ["run_id", "run_dir", "kind", "status", "error", "firmware.version", "firmware.vendor",
          "firmware.model", "kernel", "qemu", "driver_precopy_policy", "device"]


@dataclass
class CorpusResult:
    table: pd.DataFrame
    findings: list[Finding] = field(default_factory=list)
    decoded: int = 0  # runs decoded in this call
    cached: int = 0   # runs taken from the cache
    failed: int = 0


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[Finding]]:
    """Every ``run.json`` under ``paths`` (sorted, hidden folders skipped)."""
    found: list[Path] = []
    findings: list[Finding] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file() and p.name == MANIFEST_NAME:
            found.append(p)
        elif p.is_dir():
            found.extend(m for m in sorted(p.rglob(MANIFEST_NAME))
                         if not any(part.startswith(".") or part == "__pycache__"
                                    for part in m.relative_to(p).parts[:-1]))
        else:
            findings.append(Finding("error", "corpus_path_invalid",
                                    f"{p}: neither a folder nor a run.json", None, {"path": str(p)}))
    uniq = sorted({m.resolve() for m in found})
    if not uniq and not findings:
        findings.append(Finding("warning", "corpus_empty", "no run.json under the given paths", None))
    return uniq, findings


def _flatten(prefix: str, obj: dict[str, Any], out: dict[str, Any]) -> None:
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(key + ".", v, out)
        elif isinstance(v, list):
            out[key] = json.dumps(v)
        else:
            out[key] = v


def manifest_columns(m: RunManifest) -> dict[str, Any]:
    cols: dict[str, Any] = {"run_id": m.run_id, "run_dir": str(m.folder), "kind": m.kind,
                            "kernel": m.kernel, "qemu": m.qemu,
                            "driver_precopy_policy": m.driver_precopy_policy}
    _flatten("firmware.", m.firmware, cols)
    for name in ("vm", "link", "labels"):
        _flatten(name + ".", getattr(m, name), cols)
    if m.truth:
        _flatten("truth.", m.truth, cols)
    return cols


#: Revision of the summary fields in the cached rows (a development tree keeps its version string
#: while fields change: 2 = precopy_iterations / dirty_syncs / qemu_iterate_sections, qmp series).
SUMMARY_REVISION = 2


def run_key(manifest_path: Path, version: str) -> str:
    """Content hash of a run: migtrace version, summary revision, run.json and every capture's bytes."""
    h = hashlib.sha256(version.encode() + b"\0" + str(SUMMARY_REVISION).encode() + b"\0")
    h.update(manifest_path.read_bytes())
    try:
        m = read_manifest(manifest_path)
        caps = [c.path for c in m.captures]
    except ManifestError:
        caps = []
    for p in sorted(caps):
        h.update(str(p.name).encode() + b"\0")
        try:
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError:
            h.update(b"<missing>")
    return h.hexdigest()


def summarize_run(manifest_path: str | Path) -> list[dict[str, Any]]:
    """Decode and summarise one run into table rows (raises on failure)."""
    import analysis

    m = read_manifest(manifest_path)
    missing = [str(c.path) for c in m.captures if not c.path.is_file()]
    if missing:
        raise FileNotFoundError(f"captures missing: {', '.join(missing)}")
    objs = analysis.summary_objects(analysis.load(Path(manifest_path)))
    base = manifest_columns(m)
    mig: dict[str, Any] = {}
    devices: list[dict[str, Any]] = []
    for o in objs:
        flat: dict[str, Any] = {}
        _flatten("", {k: v for k, v in o.items() if k not in ("kind", "captures")}, flat)
        if o.get("kind") == "migration_summary":
            mig.update(flat)
        elif o.get("kind") == "device_summary":
            devices.append(flat)
    rows = [dict(base, status="ok", error=None, **mig, **d) for d in devices]
    return rows or [dict(base, status="ok", error=None, device=None, **mig)]


def process_run(manifest_path: str, cache_dir: str | None, version: str) -> tuple[list[dict[str, Any]], str]:
    """One run: from the cache, or decoded (and cached). Returns (rows, "cached"|"decoded"|"failed").

    Module-level and argument-only so that Dask workers can run it.
    """
    path = Path(manifest_path)
    cache_file = None
    try:
        if cache_dir:
            cache_file = Path(cache_dir) / f"{run_key(path, version)}.parquet"
            if cache_file.is_file():
                return pd.read_parquet(cache_file).astype(object).where(
                    lambda d: d.notna(), None).to_dict("records"), "cached"
        rows = summarize_run(path)
    except Exception as e:  # every failure is data about that run, never the end of the corpus
        run_id = path.parent.name
        try:
            run_id = read_manifest(path).run_id
        except ManifestError:
            pass
        return [{"run_id": run_id, "run_dir": str(path.parent), "status": "failed",
                 "error": f"{type(e).__name__}: {e}"}], "failed"
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        _frame(rows).to_parquet(tmp, index=False)
        tmp.replace(cache_file)
    return rows, "decoded"


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    first = [c for c in _FIRST if c in df.columns]
    df = df[first + sorted(c for c in df.columns if c not in first)]
    for c in df.columns:
        if df[c].dtype == object:
            vals = df[c].dropna()
            if len(vals) and all(isinstance(v, bool) for v in vals):
                df[c] = df[c].astype("boolean")
            elif len(vals) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                df[c] = pd.to_numeric(df[c])
    return df


def load_corpus(paths: Iterable[str | Path], *, engine: Engine = "local", cache_dir: str | Path | None = DEFAULT_CACHE,
                workers: int = 2, scheduler: str | None = None, progress: bool = False) -> CorpusResult:
    """Decode and summarise every run under ``paths`` into one table."""
    from analysis import __version__

    manifests, findings = discover(paths)
    cache = str(cache_dir) if cache_dir else None
    args = [str(m) for m in manifests]
    if engine == "dask":
        results = _run_dask(args, cache, __version__, workers=workers, scheduler=scheduler)
    elif engine == "local":
        it = args
        if progress:
            from tqdm import tqdm

            it = tqdm(args, desc="runs", unit="run")
        results = [process_run(a, cache, __version__) for a in it]
    else:
        raise ValueError(f"unknown engine {engine!r} (local or dask)")
    rows: list[dict[str, Any]] = []
    counts = {"cached": 0, "decoded": 0, "failed": 0}
    for (rs, how), path in zip(results, args):
        counts[how] += 1
        rows.extend(rs)
        if how == "failed":
            findings.append(Finding("error", "run_failed", f"{path}: {rs[0]['error']}", None,
                                    {"run_id": rs[0]["run_id"], "path": path}))
    table = _frame(rows) if rows else pd.DataFrame(columns=["run_id", "status"])
    if "run_id" in table and not table.empty:
        table = table.sort_values(["run_id"] + (["device"] if "device" in table else []),
                                  kind="mergesort", na_position="first").reset_index(drop=True)
    return CorpusResult(table, findings, counts["decoded"], counts["cached"], counts["failed"])


def _run_dask(args: list[str], cache: str | None, version: str, *, workers: int,
              scheduler: str | None) -> list[tuple[list[dict[str, Any]], str]]:
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            return client.gather(client.map(process_run, args, cache_dir=cache, version=version, pure=False))
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        return client.gather(client.map(process_run, args, cache_dir=cache, version=version, pure=False))


def read_table(path: str | Path) -> pd.DataFrame:
    """A table written by ``migtrace corpus -o``."""
    return pd.read_parquet(path)
