# SPDX-License-Identifier: GPL-2.0-only
"""Writing the report: one page per migration (+ its PNG panels) and the index.

Each migration is independent, so ``build_report`` loads, analyses, plots and writes
the pages in worker processes (as many as there are cores, at most ``jobs``) and
returns only small results (fleet rows, the summary frame) to the parent, which
writes the index.  The progress bar counts migrations done, plotting included, then
names the last stage.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration


@dataclass
class RunOutcome:
    """What the index and the terminal need of one migration."""

    label: str
    slug: str | None
    rows: list[dict[str, Any]]
    summary: pd.DataFrame | None = None
    error: str | None = None             # could not be loaded (malformed run.json)
    error_findings: int = 0
    panels: list[str] = field(default_factory=list)
    cpu_s: float = 0.0          # CPU time spent on this migration (benchmarks/report.py)
    worker: int = 0             # the process that did it


def slugs(labels: Sequence[str]) -> list[str]:
    """File-name-safe, unique page names."""
    out, seen = [], set()
    for label in labels:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.") or "migration"
        s, i = base, 2
        while s.lower() in seen:
            s, i = f"{base}-{i}", i + 1
        seen.add(s.lower())
        out.append(s)
    return out


def render_run(label: str, slug: str, m: "Migration", out_dir: Path, title: str, plots_on: bool = True
               ) -> RunOutcome:
    """Write ``out_dir/<slug>.html`` (and its panels under ``img/``) for one loaded migration."""
    from analysis.report.figures import PANELS, legend_items, save_png
    from analysis.report.fleet import fleet_rows
    from analysis.report.inputs import summary_frame
    from analysis.report.page import _finding_counts, migration_page
    from analysis.report.truth import truth_rows
    from analysis.summary import summary_objects

    objs = summary_objects(m)
    panels: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}
    if plots_on:
        (out_dir / "img").mkdir(parents=True, exist_ok=True)
        for name, fn in PANELS.items():
            try:
                fig = fn(m)
            except Exception as e:  # a plot must not sink the report: the panel is left out, said in findings
                m.finding("warning", "report_panel_failed", f"{name}: {type(e).__name__}: {e}", panel=name)
                continue
            if fig is not None:
                rel = f"img/{slug}-{name}.png"
                save_png(fig, out_dir / rel)
                panels[name] = (rel, legend_items(fig))
    truth = truth_rows(m, objs)
    (out_dir / f"{slug}.html").write_text(migration_page(label, m, objs, panels, truth, title), encoding="utf-8")
    counts = _finding_counts(m)
    firmware = m.manifest.firmware_version if m.manifest is not None else None
    return RunOutcome(label, slug, fleet_rows(label, slug, objs, firmware, counts), summary_frame(label, m),
                      None, counts["error"], list(panels))


def code_fingerprint() -> str:
    """Changes whenever migtrace's code does (a digest of its sources), so a cached page is
    never one an older analysis wrote."""
    from analysis import __version__

    import hashlib

    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256(__version__.encode())
    for pkg in ("analysis", "dissect"):
        for f in sorted((root / pkg).rglob("*.py")):
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("MIGTRACE_REPORT_CACHE") or Path.home() / ".cache" / "migtrace" / "report")


def _cache_key(paths: list[Path], slug: str, title: str, plots_on: bool, code: str) -> str | None:
    """A digest of everything a page depends on: the code, the options and every input file's
    path, size and modification time (run.json and the captures it names)."""
    import hashlib

    from analysis.load import expand_inputs

    try:
        inputs, manifest = expand_inputs(paths)
    except Exception:  # a malformed run.json: not cached, the load reports it
        return None
    files = [Path(p) for p, _ in inputs] + [Path(p) for p in paths]
    if manifest is not None and manifest.path is not None:
        files.append(Path(manifest.path))
    h = hashlib.sha256(f"{code}|{slug}|{title}|{plots_on}".encode())
    for f in sorted({str(x.resolve()) for x in files}):
        try:
            st = os.stat(f)
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{f}|missing\n".encode())
    return h.hexdigest()[:32]


def _from_cache(key: str, slug: str, out_dir: Path) -> RunOutcome | None:
    import pickle
    import shutil

    d = cache_dir() / key
    try:
        with open(d / "outcome.pkl", "rb") as f:
            outcome = pickle.load(f)
        (out_dir / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(d / "page.html", out_dir / f"{slug}.html")
        for name in outcome.panels:
            shutil.copyfile(d / f"{name}.png", out_dir / "img" / f"{slug}-{name}.png")
        return outcome
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError):
        return None


def _to_cache(key: str, slug: str, out_dir: Path, outcome: RunOutcome) -> None:
    import pickle
    import shutil
    import tempfile

    final = cache_dir() / key
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent))
        shutil.copyfile(out_dir / f"{slug}.html", tmp / "page.html")
        for name in outcome.panels:
            shutil.copyfile(out_dir / "img" / f"{slug}-{name}.png", tmp / f"{name}.png")
        with open(tmp / "outcome.pkl", "wb") as f:
            pickle.dump(outcome, f)
        os.replace(tmp, final)  # atomic: a concurrent reader sees all of it or nothing
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True) if "tmp" in locals() else None


def _work(task: tuple[str, list[Path], str, Path, str, bool, str | None]) -> RunOutcome:
    import time

    t = time.process_time()
    out = _do(task)
    out.cpu_s, out.worker = time.process_time() - t, os.getpid()
    return out


def _do(task: tuple[str, list[Path], str, Path, str, bool, str | None]) -> RunOutcome:
    from analysis.report.inputs import load_one

    label, paths, slug, out_dir, title, plots_on, code = task
    key = _cache_key(paths, slug, title, plots_on, code) if code else None
    if key:
        hit = _from_cache(key, slug, out_dir)
        if hit is not None:
            return hit
    try:
        label, m, err = load_one(label, paths)
        if m is None:
            return RunOutcome(label, None, [{"run_id": label, "slug": None, "load_error": err}], None, err)
        outcome = render_run(label, slug, m, out_dir, title, plots_on)
        if key:
            _to_cache(key, slug, out_dir, outcome)
        return outcome
    except Exception as e:  # a bug on one migration must not sink the others' pages
        err = f"{label}: internal error: {type(e).__name__}: {e} (please report)"
        return RunOutcome(label, None, [{"run_id": label, "slug": None, "load_error": err}], None, err)


def _input_bytes(paths: list[Path]) -> int:
    from analysis.load import expand_inputs

    try:
        return sum(os.stat(p).st_size for p, _ in expand_inputs(paths)[0])
    except Exception:  # missing file, malformed run.json: the worker reports it
        return 0


def _index(outcomes: list[RunOutcome], out_dir: Path, title: str) -> Path:
    from analysis import __version__
    from analysis.report.fleet import index_page

    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = [r for o in outcomes for r in o.rows]
    path = out_dir / "index.html"
    path.write_text(index_page(rows, title, f"migtrace {__version__}, generated {now}"), encoding="utf-8")
    return path


def build_report(groups: list[tuple[str, list[Path]]], out_dir: Path | str, title: str = "migtrace report",
                 plots_on: bool = True, jobs: int | None = None, progress: bool | None = None,
                 cache: bool = True) -> tuple[Path, list[RunOutcome]]:
    """Load and write every group (in parallel); returns (index path, outcomes in group order).

    ``cache``: reuse a migration's page when its inputs, the options and migtrace's code are
    unchanged since it was written (``MIGTRACE_REPORT_CACHE``, default ~/.cache/migtrace/report)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = slugs([label for label, _ in groups])
    code = code_fingerprint() if cache else None
    tasks = [(label, paths, slug, out, title, plots_on, code) for (label, paths), slug in zip(groups, names)]
    show = sys.stderr.isatty() if progress is None else progress
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="load, analyse, plot", unit="run", file=sys.stderr, disable=not show)
    results: list[RunOutcome | None] = [None] * len(tasks)
    if jobs == 1:
        for i, t in enumerate(tasks):
            results[i] = _work(t)
            bar.update()
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        if ctx is not None:  # imported once here, shared by the forked workers instead of once per worker
            import analysis.load  # noqa: F401
            import analysis.report.figures  # noqa: F401
            import analysis.report.page  # noqa: F401
            import analysis.summary  # noqa: F401
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            # the biggest inputs first, so no worker is left with a long one at the end
            order = sorted(range(len(tasks)), key=lambda i: -_input_bytes(tasks[i][1]))
            futs = {pool.submit(_work, tasks[i]): i for i in order}
            for f in as_completed(futs):
                results[futs[f]] = f.result()
                bar.update()
    bar.set_description("write index")
    path = _index([r for r in results if r is not None], out, title)
    bar.close()
    return path, [r for r in results if r is not None]


def write_report(migrations: "Migration | Sequence[Migration] | list[tuple[str, Migration | None, str | None]]",
                 out_dir: Path | str, title: str = "migtrace report", plots_on: bool = True) -> Path:
    """Write the report of already loaded migrations (in this process); returns ``index.html``."""
    from analysis.load import Migration

    if isinstance(migrations, Migration):
        migrations = [migrations]
    loaded = [x if isinstance(x, tuple) else (x.run_id or f"migration {i + 1}", x, None)
              for i, x in enumerate(migrations)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for (label, m, err), slug in zip(loaded, slugs([x[0] for x in loaded])):
        if m is None:
            outcomes.append(RunOutcome(label, None, [{"run_id": label, "slug": None, "load_error": err}], None, err))
        else:
            outcomes.append(render_run(label, slug, m, out, title, plots_on))
    return _index(outcomes, out, title)
