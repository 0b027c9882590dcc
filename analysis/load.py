# SPDX-License-Identifier: GPL-2.0-only
"""``analysis.load(*captures)``: one migration as tidy pandas tables.

Inputs are the captures of ONE migration in any mix — source/destination
pcap or pcapng, raw QEMU stream files, trace.dat, ftrace / trace-cmd report
text, QEMU log-backend text, admin captures, HMP ``info migrate`` or QMP
``query-migrate`` output — or a run folder / ``run.json``
(run-manifest.md).  Each capture is decoded by its emitter
(``analysis.emit``), the contract units are gathered, clocks are aligned
(:mod:`analysis.align`, :mod:`analysis.load_align`), trace device names are
mapped to the stream's (:mod:`analysis.load_devices`) and the frames are built
in bulk (:mod:`analysis.load_frames`).  Derived frames (``phases``,
``iterations``) come from :mod:`analysis.metrics`.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from analysis import align as A
from analysis.load_align import STREAM_KINDS, TRACE_KINDS, _align, trace_ids  # noqa: F401  (the kinds are public here)
from analysis.load_devices import _dedup_admin, _map_devices
from analysis.load_frames import build_frames
from analysis.load_hmp import looks_like_stats, parse_qmp, read_stats
from analysis.load_qmp import empty_frame as _empty_qmp
from analysis.load_qmp import final_stats, looks_like_series, read_series
from analysis.manifest import MANIFEST_NAME, RunManifest, find_runs, read_manifest

#: run-manifest.md roles of a query-migrate time series
QMP_ROLES = ("qmp-source", "qmp-destination")
_SOURCE_EVENTS = ("savevm_", "vfio_save_", "migration_bitmap_sync", "migrate_pending", "vmstate_downtime_save",
                  "migration_thread", "source_return_path")
_DEST_EVENTS = ("loadvm_", "qemu_loadvm_", "vfio_load_", "process_incoming", "migration_socket_incoming",
                "ram_load_")


@dataclass
class Capture:
    """One input file: what it is, which side of the migration, how its clock maps."""

    index: int
    path: Path
    kind: str | None            # detected kind, ``qemu-stats`` for info migrate / query-migrate
    role: str | None = None     # manifest role when given
    side: str | None = None     # source | destination | None (a stream is seen by both)
    units: int = 0
    error: str | None = None
    compression: str | None = None  # zstd | gzip | xz | bzip2 when the file is compressed
    #: the decompressed copy of a compressed file, while load() runs (a temporary file)
    read_path: Path | None = field(default=None, repr=False)

    @property
    def data_path(self) -> Path:
        """The file the readers open: the decompressed copy, or :attr:`path` itself."""
        return self.read_path or self.path


@dataclass
class Migration:
    """One migration: DataFrames per unit kind plus derived frames and findings.

    docs/analysis.md lists every column.  ``findings`` holds contract
    ``finding`` dicts: the decoders' and the analysis' own (cross-source
    checks, alignment, metrics the captures cannot support).
    """

    captures: list[Capture]
    events: pd.DataFrame
    sections: pd.DataFrame
    chunks: pd.DataFrame
    records: pd.DataFrame
    parts: pd.DataFrame
    admin: pd.DataFrame
    flows: pd.DataFrame
    rp_messages: pd.DataFrame
    commands: pd.DataFrame
    multifd: pd.DataFrame
    findings: list[dict[str, Any]] = field(default_factory=list)
    alignment: list[A.Alignment] = field(default_factory=list)
    qemu_stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # side → normalised stats
    manifest: RunManifest | None = None
    device_map: dict[str, str] = field(default_factory=dict)            # trace name → stream idstr
    phases: pd.DataFrame = field(default_factory=pd.DataFrame)
    iterations: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: query-migrate time series (qmp-source / qmp-destination captures), one row per poll
    qmp: pd.DataFrame = field(default_factory=_empty_qmp)
    #: stream capture index → its page sends (dissect.qemu.pages.PageLog), for analysis.metrics.passes
    page_passes: dict[int, Any] = field(default_factory=dict)

    @property
    def devices(self) -> list[str]:
        """VFIO devices, named by their stream idstr where a stream was given."""
        names: list[str] = []
        for df, col in ((self.sections, "idstr"), (self.chunks, "device"), (self.records, "device")):
            for v in df[col].dropna().unique():
                if (df is not self.sections or str(v).endswith("/vfio")) and v not in names:
                    names.append(str(v))
        if not names:
            vfio = self.events[self.events["qemu_event"].fillna("").str.startswith("vfio_")]
            names = [str(v) for v in vfio["device"].dropna().unique()]
        return names

    @property
    def run_id(self) -> str | None:
        return self.manifest.run_id if self.manifest else None

    @property
    def t0_ns(self) -> int | None:
        """Earliest timestamp on the common clock (for relative plots)."""
        vals = [df["ts_ns"].min() for df in (self.sections, self.chunks, self.events, self.records)
                if len(df) and df["ts_ns"].notna().any()]
        vals += [self.flows["first_ts_ns"].min()] if len(self.flows) and self.flows["first_ts_ns"].notna().any() else []
        return int(min(vals)) if vals else None

    def finding(self, severity: str, code: str, message: str, **context: Any) -> None:
        f = {"kind": "finding", "severity": severity, "code": code, "message": message, "offset": None}
        f.update(context)
        self.findings.append(f)

    def frame(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={len(getattr(self, n))}" for n in
                          ("events", "sections", "chunks", "records", "parts", "admin", "phases", "iterations"))
        return f"<Migration {self.run_id or ''} captures={len(self.captures)} {sizes}>"


def _emit_args(page_log: Any = None) -> argparse.Namespace:
    return argparse.Namespace(as_kind=None, json=True, opcode=None, subtype=0, admin_linktype=None,
                              trace_events=None, debug=False, progress=False, page_log=page_log)


def detect_kind(path: Path) -> str:
    """cli.md detection, plus QEMU's own statistics text (checked first: HMP
    ``info migrate`` lines would otherwise pass for bare QEMU log lines); of the
    decompressed bytes for a zstd/gzip/xz/bzip2 file."""
    from analysis.cli.detect import detect
    from dissect.capture.compressed import head as read_head

    head = read_head(path)
    try:
        if looks_like_series(head.decode("utf-8", "replace")):
            return "qmp-series"
        if looks_like_stats(head.decode("utf-8", "replace")):
            return "qemu-stats"
    except Exception:  # pragma: no cover - decode with replace cannot fail
        pass
    return detect(path)


def iter_units(path: Path, kind: str, page_log: Any = None) -> Iterator[dict[str, Any]]:
    """The contract units of one capture, from its registered emitter (``page_log``: the
    optional page tap of dissect/qemu/pages.py, for stream captures)."""
    from analysis.emit import emitter_for

    try:
        emit = emitter_for(kind)
    except ModuleNotFoundError as e:
        if kind not in TRACE_KINDS or not (e.name or "").startswith("analysis.emit"):
            raise
        from analysis.load_trace import iter_trace_units  # the readers, without the emitter

        yield from iter_trace_units(path, kind)
        return
    yield from emit(path, _emit_args(page_log))


def expand_inputs(paths: Iterable[Path | str]) -> tuple[list[tuple[Path, str | None]], RunManifest | None]:
    """Capture paths (with manifest roles) from files, run folders and run.json paths."""
    out: list[tuple[Path, str | None]] = []
    manifest: RunManifest | None = None
    for raw in paths:
        p = Path(raw)
        if p.is_dir() or p.name == MANIFEST_NAME:
            if p.is_dir() and not (p / MANIFEST_NAME).exists():
                runs = find_runs([p])
            else:
                runs = [read_manifest(p)]
            for run in runs:
                manifest = manifest or run
                out.extend((c.path, c.role) for c in run.captures)
        else:
            out.append((p, None))
    return out, manifest


def _side_of_role(role: str | None) -> str | None:
    if not role:
        return None
    if role.startswith("source") or role.endswith("-source"):
        return "source"
    if role.startswith("destination") or role.endswith("-destination"):
        return "destination"
    if role == "guest-trace":
        return "guest"
    return None


def _side_of_events(units: list[dict[str, Any]]) -> str | None:
    src = dst = 0
    for u in units:
        if u.get("kind") != "event":
            continue
        q = u.get("qemu") or {}
        name = q.get("event") or u.get("event") or ""
        if name.startswith(_SOURCE_EVENTS):
            src += 1
        elif name.startswith(_DEST_EVENTS):
            dst += 1
    if src == dst == 0:
        return None
    return "source" if src >= dst else "destination"


def _progress(items: list[Any], enabled: bool | None, desc: str) -> Iterable[Any]:
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="capture", file=sys.stderr, leave=False)


def load(*captures: Path | str, manifest: RunManifest | None = None, progress: bool | None = None,
         units: dict[int, list[dict[str, Any]]] | None = None) -> Migration:
    """Load the captures of one migration.

    ``captures``: files, run folders or ``run.json`` paths.  ``progress``:
    tqdm on stderr (None = only when stderr is a terminal).  ``units`` is for
    callers that already hold contract units (tests, the simulator): capture
    index → unit dicts, used instead of decoding that capture.

    Never raises on bad input: an unreadable or unknown capture becomes an
    error finding (``capture_unreadable`` / ``capture_unknown_format`` /
    ``capture_decode_failed``) and the rest is still analysed.  A zstd, gzip,
    xz or bzip2 capture is decoded from a temporary decompressed copy
    (dissect/capture/compressed.py; removed before this returns), its
    ``compressed_*`` findings kept with ``capture`` and ``path``.
    """
    with ExitStack() as stack:
        m = _load(stack, captures, manifest, progress, units)
        for cap in m.captures:
            cap.read_path = None
        return m


def _load(stack: ExitStack, captures: tuple[Path | str, ...], manifest: RunManifest | None, progress: bool | None,
          units: dict[int, list[dict[str, Any]]] | None) -> Migration:
    inputs, found_manifest = expand_inputs(captures)
    manifest = manifest or found_manifest
    caps: list[Capture] = []
    per_cap: dict[int, list[dict[str, Any]]] = {}
    stats: dict[str, dict[str, Any]] = {}
    series: list[pd.DataFrame] = []
    passes: dict[int, Any] = {}
    early: list[dict[str, Any]] = []

    def err(code: str, msg: str, cap: Capture) -> None:
        cap.error = msg
        early.append({"kind": "finding", "severity": "error", "code": code, "message": msg,
                      "offset": None, "capture": cap.index, "path": str(cap.path)})

    for i, (path, role) in enumerate(inputs):
        role = role or (manifest.role_of(path) if manifest else None)
        caps.append(Capture(i, path, None, role, _side_of_role(role)))
    for cap in _progress(caps, progress, "decoding"):
        if units is not None and cap.index in units:
            per_cap[cap.index] = [dict(u, _capture=cap.index) for u in units[cap.index]]
            cap.kind = _kind_of_units(per_cap[cap.index])
            continue
        if not cap.path.is_file():
            err("capture_unreadable", f"{cap.path}: no such file", cap)
            continue
        try:
            # the manifest's qmp roles name the kind: a series whose first lines are all damaged
            # is still read (each bad line a finding)
            cap.kind = "qmp-series" if cap.role in QMP_ROLES else detect_kind(cap.path)
            _decompress(stack, cap, early)
        except OSError as e:
            err("capture_unreadable", f"{cap.path}: {e.strerror or e}", cap)
            continue
        except Exception as e:  # UnknownFormat: the message lists what was tried
            err("capture_unknown_format", str(e), cap)
            continue
        if cap.kind == "qemu-stats":
            st = read_stats(cap.data_path)
            side = cap.side or _stats_side(cap.path, st)
            cap.side = side
            stats[side or "source"] = _merge_stats(stats.get(side or "source"), st)
            continue
        if cap.kind == "qmp-series":
            df, bad = read_series(cap.data_path, cap.index, cap.side)
            early.extend(dict(f, path=str(cap.path)) for f in bad)
            final = final_stats(df)
            cap.side = cap.side or _stats_side(cap.path, final)
            df["side"] = pd.array([cap.side] * len(df), dtype="string")
            cap.units = len(df)
            series.append(df)
            stats[cap.side] = _merge_stats(stats.get(cap.side), final)
            continue
        got: list[dict[str, Any]] = []
        tracker = None
        if cap.kind in STREAM_KINDS:
            from dissect.qemu.pages import PageLog

            tracker = passes[cap.index] = PageLog()
        try:
            for u in iter_units(cap.data_path, cap.kind, page_log=tracker):
                u["_capture"] = cap.index
                got.append(u)
        except Exception as e:  # a missing decoder or a decoder bug must not lose the other captures
            err("capture_decode_failed", f"{cap.path}: {cap.kind} decoder failed: {type(e).__name__}: {e}", cap)
        per_cap[cap.index] = got
    for cap in caps:
        got = per_cap.get(cap.index, [])
        if cap.kind != "qmp-series":
            cap.units = len(got)
        if cap.side is None and cap.kind == "trace-dat" and trace_ids(cap.data_path)[1] is not None:
            cap.side = "guest"  # a TimeShift option: recorded in a guest (trace-cmd record -A)
        if cap.side is None and cap.kind in TRACE_KINDS:
            cap.side = _side_of_events(got)
        for u in got:
            u["_side"] = cap.side
    counters = manifest.extra.get("qemu_counters") if manifest is not None else None
    if isinstance(counters, dict):  # run-manifest.md: QEMU's final query-migrate of the source, as returned
        st = parse_qmp({k: v for k, v in counters.items() if k not in ("ram", "vfio") or isinstance(v, dict)})
        st["origin"] = "run.json qemu_counters"
        stats["source"] = _merge_stats(stats.get("source"), st)
    alignment = _align(caps, per_cap)
    offsets = {a.capture: a.offset_ns for a in alignment}
    frames, findings = build_frames((u for c in caps for u in per_cap.get(c.index, [])), offsets)
    m = Migration(captures=caps, findings=early + findings, alignment=alignment, qemu_stats=stats,
                  manifest=manifest, page_passes=passes, **frames)
    if series:
        m.qmp = pd.concat(series, ignore_index=True) if len(series) > 1 else series[0]
    for a in alignment:
        if a.method == "none":
            m.finding("warning", "clock_alignment_failed",
                      f"capture {a.capture} ({caps[a.capture].path.name}): no clock anchor and no matching "
                      "chunk sizes or sections; its times are left on its own clock", capture=a.capture)
        elif a.method != "reference":
            m.finding("info", "clock_alignment",
                      f"capture {a.capture} ({caps[a.capture].path.name}) aligned by {a.method}"
                      + (f" on {a.basis}" if a.basis else "")
                      + f": offset {a.offset_ns} ns, residual {a.residual_ns} ns over {a.matched} matched pairs",
                      capture=a.capture, method=a.method, offset_ns=a.offset_ns, residual_ns=a.residual_ns,
                      matched=a.matched)
    _dedup_admin(m)
    m.events["host_device"] = m.events["device"].copy()
    _map_devices(m)
    from analysis import metrics

    m.phases = metrics.phases_frame(m)
    m.iterations = metrics.iterations_frame(m)
    metrics.consistency_checks(m)
    return m


def _decompress(stack: ExitStack, cap: Capture, findings: list[dict[str, Any]]) -> None:
    """Give a compressed capture its decompressed copy (kept until ``stack`` closes)."""
    from dissect.capture.compressed import decompressed

    data = stack.enter_context(decompressed(cap.path))
    if data.compression is None:
        return
    cap.compression, cap.read_path = data.compression, data.path
    findings.extend(dict(f.to_json(), capture=cap.index, path=str(cap.path)) for f in data.findings)


def _kind_of_units(units: list[dict[str, Any]]) -> str:
    kinds = {u.get("kind") for u in units}
    if kinds & {"section", "vfio_chunk", "flow", "ram"}:
        return "migration-capture"
    ev = next((u for u in units if u.get("kind") == "event"), None)
    if ev is not None:
        return str(ev.get("source") or "trace-dat")
    if kinds & {"admin_cmd", "admin_result"}:
        return "admin-capture"
    return "units"


#: QEMU's counters from several files of one side: exact bytes (QMP) before HMP's kbytes
_STATS_RANK = {"qmp": 2, "qmp-series": 1, "hmp": 0}


def _merge_stats(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if not old:
        return new
    if _STATS_RANK.get(new.get("format"), 0) > _STATS_RANK.get(old.get("format"), 0):
        return {**old, **new}
    return {**new, **old}


def _stats_side(path: Path, st: dict[str, Any]) -> str:
    name = path.name.lower()
    if ".dst" in name or "dest" in name:
        return "destination"
    if ".src" in name or "source" in name:
        return "source"
    # the destination's info migrate has no transfer counters
    return "source" if "transferred_bytes" in st else "destination"


class _CallableModule(type(sys)):
    """``analysis.load`` is both this module and the :func:`load` function.

    Importing a submodule binds it as an attribute of its package, so once
    anything imported ``analysis.load`` (the module), ``analysis.load(...)``
    would hit the module instead of the lazily exported function.  Making the
    module callable keeps ``analysis.load(*captures)`` working whatever was
    imported first.
    """

    def __call__(self, *captures: Path | str, **kwargs: Any) -> Migration:
        return load(*captures, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
