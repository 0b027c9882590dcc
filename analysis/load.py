# SPDX-License-Identifier: GPL-2.0-only
"""``analysis.load(*captures)``: one migration as tidy pandas tables.

Inputs are the captures of ONE migration in any mix — source/destination
pcap or pcapng, raw QEMU stream files, trace.dat, ftrace / trace-cmd report
text, QEMU log-backend text, admin captures, HMP ``info migrate`` or QMP
``query-migrate`` output — or a run folder / ``run.json``
(run-manifest.md).  Each capture is decoded by its emitter
(``analysis.emit``), the contract units are gathered, clocks are aligned
(:mod:`analysis.align`) and the frames are built in bulk
(:mod:`analysis.load_frames`).  Derived frames (``phases``,
``iterations``) come from :mod:`analysis.metrics`.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from analysis import align as A
from analysis.load_frames import build_frames, ts_ns_of
from analysis.load_hmp import looks_like_stats, read_stats
from analysis.manifest import MANIFEST_NAME, RunManifest, find_runs, read_manifest

STREAM_KINDS = {"pcap", "pcapng", "qemu-stream", "migration-capture"}
TRACE_KINDS = {"trace-dat", "ftrace-text", "trace-cmd-report", "qemu-log"}
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


def _emit_args() -> argparse.Namespace:
    return argparse.Namespace(as_kind=None, json=True, opcode=None, subtype=0, admin_linktype=None,
                              trace_events=None, debug=False, progress=False)


def detect_kind(path: Path) -> str:
    """cli.md detection, plus QEMU's own statistics text (checked first: HMP
    ``info migrate`` lines would otherwise pass for bare QEMU log lines)."""
    from analysis.cli.detect import detect

    with open(path, "rb") as f:
        head = f.read(8192)
    try:
        if looks_like_stats(head.decode("utf-8", "replace")):
            return "qemu-stats"
    except Exception:  # pragma: no cover - decode with replace cannot fail
        pass
    return detect(path)


def iter_units(path: Path, kind: str) -> Iterator[dict[str, Any]]:
    """The contract units of one capture, from its registered emitter."""
    from analysis.emit import emitter_for

    try:
        emit = emitter_for(kind)
    except ModuleNotFoundError as e:
        if kind not in TRACE_KINDS or not (e.name or "").startswith("analysis.emit"):
            raise
        from analysis.load_trace import iter_trace_units  # the readers, without the emitter

        yield from iter_trace_units(path, kind)
        return
    yield from emit(path, _emit_args())


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
    ``capture_decode_failed``) and the rest is still analysed.
    """
    inputs, found_manifest = expand_inputs(captures)
    manifest = manifest or found_manifest
    caps: list[Capture] = []
    per_cap: dict[int, list[dict[str, Any]]] = {}
    stats: dict[str, dict[str, Any]] = {}
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
            cap.kind = detect_kind(cap.path)
        except OSError as e:
            err("capture_unreadable", f"{cap.path}: {e.strerror or e}", cap)
            continue
        except Exception as e:  # UnknownFormat: the message lists what was tried
            err("capture_unknown_format", str(e), cap)
            continue
        if cap.kind == "qemu-stats":
            st = read_stats(cap.path)
            side = cap.side or _stats_side(cap.path, st)
            cap.side = side
            stats[side or "source"] = st
            continue
        got: list[dict[str, Any]] = []
        try:
            for u in iter_units(cap.path, cap.kind):
                u["_capture"] = cap.index
                got.append(u)
        except Exception as e:  # a missing decoder or a decoder bug must not lose the other captures
            err("capture_decode_failed", f"{cap.path}: {cap.kind} decoder failed: {type(e).__name__}: {e}", cap)
        per_cap[cap.index] = got
    for cap in caps:
        got = per_cap.get(cap.index, [])
        cap.units = len(got)
        if cap.side is None and cap.kind in TRACE_KINDS:
            cap.side = _side_of_events(got)
        for u in got:
            u["_side"] = cap.side
    alignment = _align(caps, per_cap)
    offsets = {a.capture: a.offset_ns for a in alignment}
    frames, findings = build_frames((u for c in caps for u in per_cap.get(c.index, [])), offsets)
    m = Migration(captures=caps, findings=early + findings, alignment=alignment, qemu_stats=stats,
                  manifest=manifest, **frames)
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


def _stats_side(path: Path, st: dict[str, Any]) -> str:
    name = path.name.lower()
    if ".dst" in name or "dest" in name:
        return "destination"
    if ".src" in name or "source" in name:
        return "source"
    # the destination's info migrate has no transfer counters
    return "source" if "transferred_bytes" in st else "destination"


# --- clock alignment -------------------------------------------------------------------------

def _unit_ts(units: list[dict[str, Any]]) -> list[int]:
    out = []
    for u in units:
        t = ts_ns_of(u)
        if t is not None:
            out.append(t)
    return out


def _stream_keys(units: list[dict[str, Any]]) -> tuple[tuple[list, list], tuple[list, list]]:
    """(chunk sizes, section keys) of a stream capture, each as (keys, ts)."""
    ck, ct, sk, st = [], [], [], []
    for u in units:
        t = ts_ns_of(u)
        if t is None:
            continue
        if u.get("kind") == "vfio_chunk" and u.get("phase") != "config":
            ck.append(int(u.get("size") or 0))
            ct.append(t)
        elif u.get("kind") == "section":
            sk.append((u.get("type"), u.get("section_id")))
            st.append(t)
    return (ck, ct), (sk, st)


def _trace_keys(units: list[dict[str, Any]], side: str | None) -> tuple[tuple[list, list], tuple[list, list]]:
    ck, ct, sk, st = [], [], [], []
    section_type = {"1": "START", "2": "PART", "3": "END", "4": "FULL"}
    last_type: str | None = None
    for u in units:
        if u.get("kind") != "event":
            continue
        q = u.get("qemu") or {}
        name, args, t = q.get("event"), q.get("args") or {}, ts_ns_of(u)
        if t is None or not name:
            continue
        if side != "destination" and name == "vfio_save_block" and "data_size" in args:
            ck.append(int(args["data_size"]))
            ct.append(t)
        elif side == "destination" and name == "vfio_load_state_device_data" and "data_size" in args:
            ck.append(int(args["data_size"]))
            ct.append(t)
        elif name == "savevm_section_start":
            sk.append(("?", args.get("section_id")))
            st.append(t)
        elif name == "qemu_loadvm_state_section":
            last_type = section_type.get(str(args.get("section_type")))
        elif name == "qemu_loadvm_state_section_startfull":
            sk.append((last_type, args.get("section_id")))
            st.append(t)
        elif name == "qemu_loadvm_state_section_partend":
            sk.append((last_type, args.get("section_id")))
            st.append(t)
    return (ck, ct), (sk, st)


def _has_date_option(cap: Capture) -> bool:
    """True when a trace.dat carries the DATE option.  E's reader applies it (with
    OFFSET/TSC2NSEC, trace-dat.md §9), so such a trace's events are already on the
    wall clock: the anchor shows up as method ``date-option`` with offset 0."""
    if cap.kind != "trace-dat":
        return False
    try:
        from dissect.ftrace.tracedat import read_trace_dat
    except ImportError:
        return False
    try:
        opts = read_trace_dat(cap.path).options
    except Exception:
        return False
    return any(getattr(o, "id", None) == 1 or str(getattr(o, "name", "")).upper() == "DATE" for o in opts or [])


def _admin_keys(units: list[dict[str, Any]]) -> tuple[list, list]:
    """Device-context sizes moved by admin commands: 16 + parts bytes of each
    DEV_PARTS_GET result / DEV_PARTS_SET request (one record's payload each,
    vfio-virtio-stream.md §4.1, §5), at the command's request time."""
    acc: dict[Any, list] = {}
    order: list[Any] = []
    req_ts: dict[Any, int] = {}
    last: Any = None
    for u in units:
        k = u.get("kind")
        if k in ("admin_cmd", "admin_result"):
            key = (u.get("owner"), u.get("tag"))
            if k == "admin_cmd":
                t = ts_ns_of(u)
                if t is not None:
                    req_ts[key] = t
                last = (key, len(order))
                order.append([key, u.get("opcode_name"), 0, req_ts.get(key)])
            else:
                last = (key, len(order))
                order.append([key, u.get("opcode_name"), 0, req_ts.get(key, ts_ns_of(u))])
        elif k == "dev_part" and u.get("admin_tag") is not None and last is not None:
            order[last[1]][2] += 16 + int(u.get("length") or 0)
    keys, ts = [], []
    for key, op, nbytes, t in order:
        if op in ("DEV_PARTS_GET", "DEV_PARTS_SET") and nbytes and t is not None:
            keys.append(16 + nbytes)
            ts.append(t)
    return keys, ts


def _match_boundaries(a_sizes: list, a_ts: list, b_sizes: list, b_ts: list
                      ) -> tuple[int, int, int, int] | None:
    """Match cumulative byte positions: where both sequences end a unit at the
    same offset of the device's data.  Admin GET/SET sizes are whole records;
    chunks (reads) may split records anywhere, but a chunk ending on a record
    boundary is the read that completed that record."""
    import numpy as np

    b_end = np.cumsum(np.asarray(b_sizes, dtype=np.int64))
    best = None
    for extra in (0, 8):  # 8: the kernel 6.13.0-6.15.2 trailer after every record (CVE-2025-38314)
        a_end = np.cumsum(np.asarray(a_sizes, dtype=np.int64) + extra)
        common, ia, ib = np.intersect1d(a_end, b_end, assume_unique=False, return_indices=True)
        if len(common) >= 2 and (best is None or len(common) > best[0]):
            best = (len(common), common, ia, ib, extra)
    if best is None:
        return None
    _, common, ia, ib, _extra = best
    got = A.match_sequences(list(common), [a_ts[i] for i in ia], list(common), [b_ts[i] for i in ib],
                            min_match=2)
    return None if got is None else (*got, best[4])


def _keys(cap: Capture, units: list[dict[str, Any]], is_stream: bool) -> tuple[tuple[list, list], tuple[list, list]]:
    if is_stream:
        return _stream_keys(units)
    if cap.kind in TRACE_KINDS:
        return _trace_keys(units, cap.side)
    return _admin_keys(units), ([], [])


def _align(caps: list[Capture], per_cap: dict[int, list[dict[str, Any]]]) -> list[A.Alignment]:
    timed = [c for c in caps if _unit_ts(per_cap.get(c.index, [])[:2000])]
    if not timed:
        return []
    stream_ix = {c.index for c in timed if c.kind in STREAM_KINDS
                 and any(u.get("kind") in ("section", "vfio_chunk", "flow") for u in per_cap[c.index][:5000])}
    src_traces = [c for c in timed if c.kind in TRACE_KINDS and c.side == "source"]
    ref = next((c for c in timed if c.index in stream_ix), None) or (src_traces[0] if src_traces else timed[0])
    ref_units = per_cap[ref.index]
    ref_wall = A.is_wall_clock(_unit_ts(ref_units[:2000]))
    (rck, rct), (rsk, rst) = _keys(ref, ref_units, ref.index in stream_ix)
    out = [A.Alignment(ref.index, None, "reference", 0, 0, 0)]
    for c in timed:
        if c is ref:
            continue
        units = per_cap[c.index]
        (ck, ct), (sk, st) = _keys(c, units, c.index in stream_ix)
        match, basis = None, None
        if ck and rck:
            basis = "chunk-sizes" if c.kind in TRACE_KINDS or c.index in stream_ix else "admin-parts-sizes"
            match = A.match_sequences(ck, ct, rck, rct, min_match=2)
        if match is None and ck and rck and (basis == "admin-parts-sizes" or ref.kind not in TRACE_KINDS
                                             and not c.kind in TRACE_KINDS and ref.index not in stream_ix):
            # records split over chunks differently: match cumulative record ends instead
            match, basis = _match_boundaries(ck, ct, rck, rct), "record-boundaries"
            if match is not None and match[3] == 8:
                basis = "record-boundaries+trailer"  # records are 8 bytes longer on the wire than in the admin capture
        if match is None and sk and rsk:
            if (c.kind in TRACE_KINDS and c.side != "destination") or (ref.kind in TRACE_KINDS):
                # savevm_section_start gives no type: match on section ids only
                match, basis = A.match_sequences([k[1] for k in sk], st, [k[1] for k in rsk], rst,
                                                 min_match=2), "sections"
            else:
                match, basis = A.match_sequences(sk, st, rsk, rst, min_match=2), "sections"
        wall = A.is_wall_clock(_unit_ts(units[:2000]))
        if ref_wall and wall:
            # anchored at 0: the residual is the matched pairs' distance from 0 (|median| + MAD)
            resid = None if match is None else abs(match[0]) + match[1]
            out.append(A.Alignment(c.index, ref.index, "date-option" if _has_date_option(c) else "wall-clock", 0,
                                   resid, match[2] if match else 0, basis if match else None))
        elif match is not None:
            out.append(A.Alignment(c.index, ref.index, "sequence", match[0], match[1], match[2], basis))
        else:
            out.append(A.Alignment(c.index, ref.index, "none", 0, None, 0))
    return out


def _map_devices(m: Migration) -> None:
    """Trace device names (host PCI address) → stream idstr (qemu-migration-stream.md §10.1).

    10.x traces print both (``vfio_save_complete_precopy_thread_start``);
    otherwise a single device on each side maps one-to-one.  Unmapped names
    stay as they are, with an info finding.
    """
    ev = m.events
    if not len(ev):
        return
    stream_devs = [d for d in m.devices if d.endswith("/vfio")]
    trace_devs = [str(d) for d in ev.loc[ev["qemu_event"].fillna("").str.startswith("vfio_"), "device"].dropna().unique()]
    mapping: dict[str, str] = {}
    th = ev[ev["qemu_event"] == "vfio_save_complete_precopy_thread_start"]
    for _, r in th.iterrows():
        idstr = r["args"].get("idstr")
        if idstr and r["device"]:
            mapping[str(r["device"])] = str(idstr)
    if not mapping and len(stream_devs) == 1 and len(trace_devs) == 1:
        mapping[trace_devs[0]] = stream_devs[0]
    pending = [d for d in trace_devs if d not in mapping]
    if pending and stream_devs and len(m.chunks):
        mapping.update(_map_by_chunk_sizes(m, pending, stream_devs))
    pending = sorted(d for d in trace_devs if d not in mapping)
    free = sorted(d for d in stream_devs if d not in mapping.values())
    if pending and len(pending) == len(free):
        # indistinguishable by data and time (same firmware, chunks in the same packets): host PCI
        # order ↔ guest PCI order, a HEURISTIC that holds when VFs are assigned in order
        mapping.update(zip(pending, free))
        m.finding("info", "device_names_mapped_by_order",
                  "trace device names mapped to stream devices by sorted order (heuristic): "
                  + ", ".join(f"{a} -> {b}" for a, b in zip(pending, free)), mapping=dict(zip(pending, free)))
    unmapped = [d for d in trace_devs if d not in mapping]
    if stream_devs and unmapped:
        m.finding("info", "device_name_unmapped",
                  f"trace device name(s) {', '.join(unmapped)} could not be matched to stream device(s) "
                  f"{', '.join(stream_devs)}; their events keep the host name", devices=unmapped)
    if mapping:
        m.device_map = mapping
        m.events["device"] = m.events["device"].map(lambda d: mapping.get(d, d) if isinstance(d, str) else d
                                                    ).astype("string")


def _dedup_admin(m: Migration) -> None:
    """Admin commands seen twice — in an admin capture and as raw_data records in a
    trace (admin-capture.md, ftrace form) — are kept once, from the admin capture."""
    a = m.admin
    if not len(a):
        return
    kinds = {c.index: c.kind for c in m.captures}
    from_trace = a["capture"].map(lambda i: kinds.get(int(i)) in TRACE_KINDS)
    owners = set(a.loc[~from_trace, "owner"].dropna())
    drop = from_trace & a["owner"].isin(owners)
    if not drop.any():
        return
    caps = set(int(x) for x in a.loc[drop, "capture"])
    m.admin = a[~drop].reset_index(drop=True)
    keep_caps = set(int(x) for x in m.admin["capture"])
    p = m.parts
    gone = p["admin_tag"].notna() & p["capture"].isin(caps - keep_caps)
    m.parts = p[~gone].reset_index(drop=True)
    m.finding("info", "admin_duplicates_dropped",
              f"{int(drop.sum())} admin commands carried by trace capture(s) {sorted(caps)} are also in an "
              "admin capture; the admin capture's copies are used", dropped=int(drop.sum()))


def _map_by_chunk_sizes(m: Migration, names: list[str], idstrs: list[str]) -> dict[str, str]:
    """Map each trace device name to the stream device whose DEV_DATA_STATE chunks its
    ``vfio_save_block`` (source) / ``vfio_load_state_device_data`` (destination) events
    match: most size matches first, then (devices with equal sizes, e.g. two VFs of one
    firmware) the smallest time distance on the aligned clock.  A name maps only when it
    has one best candidate."""
    ev = m.events
    wire: dict[str, tuple[list[int], list[int]]] = {}
    for d in idstrs:
        c = m.chunks[(m.chunks["device"] == d) & (m.chunks["phase"] != "config") & m.chunks["data_offset"].notna()
                     & m.chunks["ts_ns"].notna()]
        c = c[c["capture"] == c["capture"].min()].sort_values("data_offset") if len(c) else c
        wire[d] = ([int(x) for x in c["size_bytes"]], [int(x) for x in c["ts_ns"]])
    out: dict[str, str] = {}
    for name in names:
        sel = (ev["device"] == name) & ev["qemu_event"].isin(["vfio_save_block", "vfio_load_state_device_data"])
        e = ev[sel.fillna(False) & ev["ts_ns"].notna()].sort_values("ts_ns")
        sizes = [int(a.get("data_size", -1)) for a in e["args"]]
        if len(sizes) < 2:
            continue
        scores = []
        for d, (w, wt) in wire.items():
            r = A.match_sequences(sizes, [int(t) for t in e["ts_ns"]], w, wt, min_match=2)
            if r:
                scores.append((r[2], -(abs(r[0]) + r[1]), d))
        scores.sort(reverse=True)
        if scores and (len(scores) == 1 or scores[0][:2] != scores[1][:2]):
            out[name] = scores[0][2]
    return out


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
