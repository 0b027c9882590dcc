# SPDX-License-Identifier: GPL-2.0-only
"""Phases (setup, precopy, stopcopy, config, resume) and pre-copy iterations per device.

Specs: ``qemu-trace-events.md`` §5.1 (event order), ``qemu-migration-stream.md``
§14 (START/PART/END/FULL sections, one RAM PART per iteration round).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.metrics.passes import pass_starts
from analysis.metrics.policy import admin_precopy
from analysis.metrics.selection import device_chunks, device_records, main_sections, qemu_events
from analysis.metrics.switchover import downtime_window

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

PHASES = ("setup", "precopy", "stopcopy", "config", "resume")


# --- phases and iterations ---------------------------------------------------------------------

def _phase_row(device: str, phase: str, start: Any, end: Any, nbytes: Any, source: str) -> dict[str, Any]:
    start = None if start is None or pd.isna(start) else int(start)
    end = None if end is None or pd.isna(end) else int(end)
    return {"device": device, "phase": phase, "start_ns": start, "end_ns": end,
            "duration_ns": None if start is None or end is None else end - start,
            "bytes": None if nbytes is None or pd.isna(nbytes) else int(nbytes), "source": source}


def phases_frame(m: "Migration") -> pd.DataFrame:
    """Per device: setup, precopy, stopcopy, config, resume (start/end ns, bytes).

    From the stream when one was given (sections of the device's idstr and its
    chunks); otherwise from source trace events (qemu-trace-events.md §5.1).
    ``resume`` runs from the end of the source's data to the return path's
    SHUT or the destination's ``dst-precopy-bh-vm-started`` checkpoint.
    """
    rows: list[dict[str, Any]] = []
    s = main_sections(m)
    win = downtime_window(m)
    for dev in m.devices:
        ds = s[s["idstr"] == dev] if len(s) else s
        ch = device_chunks(m, dev)
        if len(ds) or len(ch):
            for phase, stype in (("setup", "START"), ("precopy", "PART"), ("stopcopy", "END"), ("config", "FULL")):
                sec = ds[ds["type"] == stype] if len(ds) else ds
                pc = ch[ch["phase"] == phase] if len(ch) else ch
                if not len(sec) and not len(pc):
                    continue
                starts = pd.concat([sec["ts_ns"], pc["ts_ns"]]).dropna()
                ends = pd.concat([sec["end_ts_ns"], pc["ts_ns"]]).dropna()
                nbytes = pc["size_bytes"].sum() if len(pc) else (
                    sec["length_bytes"].sum() if phase in ("setup", "config") else 0)
                rows.append(_phase_row(dev, phase, starts.min() if len(starts) else None,
                                       ends.max() if len(ends) else None, nbytes, "stream"))
        else:
            rows.extend(_trace_phases(m, dev))
        resume_end = None
        if win.get("has_shut"):
            resume_end = win["end_ns"]
        vm = qemu_events(m, "vmstate_downtime_checkpoint", side="destination")
        if len(vm):
            started = vm[vm["args"].map(lambda a: a.get("checkpoint") == "dst-precopy-bh-vm-started")]
            if len(started):
                resume_end = int(started["ts_ns"].iloc[-1])
        if win["src_end_ns"] is not None and resume_end is not None:
            rows.append(_phase_row(dev, "resume", win["src_end_ns"], resume_end, None, "stream"))
    df = pd.DataFrame(rows, columns=["device", "phase", "start_ns", "end_ns", "duration_ns", "bytes", "source"])
    for c in ("start_ns", "end_ns", "duration_ns", "bytes"):
        df[c] = df[c].astype("Int64")
    for c in ("device", "phase", "source"):
        df[c] = df[c].astype("string")
    return df


def _trace_phases(m: "Migration", dev: str) -> list[dict[str, Any]]:
    rows = []
    blocks = qemu_events(m, "vfio_save_block", device=dev)
    setup = qemu_events(m, "vfio_save_setup", device=dev)
    it = qemu_events(m, ("vfio_save_iterate_start", "vfio_save_iterate"), device=dev)
    sc_start = qemu_events(m, ("vfio_save_complete_precopy_start", "vfio_save_complete_precopy_thread_start"), device=dev)
    if not len(sc_start):
        vc = qemu_events(m, "vfio_vmstate_change", device=dev)
        sc_start = vc[vc["args"].map(lambda a: a.get("dev_state") == "STOP_COPY")] if len(vc) else vc
    sc_end = qemu_events(m, ("vfio_save_complete_precopy", "vfio_save_complete_precopy_thread_end"), device=dev)
    cfg = qemu_events(m, "vfio_save_device_config_state", device=dev)

    def bytes_between(a: int | None, b: int | None) -> int:
        if not len(blocks) or a is None:
            return 0
        sel = blocks["ts_ns"] >= a
        if b is not None:
            sel &= blocks["ts_ns"] <= b
        return int(blocks[sel]["args"].map(lambda x: int(x.get("data_size", 0))).sum())

    if len(setup):
        rows.append(_phase_row(dev, "setup", setup["ts_ns"].iloc[0],
                               it["ts_ns"].iloc[0] if len(it) else setup["ts_ns"].iloc[0], None, "trace"))
    if len(it):
        a, b = int(it["ts_ns"].iloc[0]), int(it["ts_ns"].iloc[-1])
        rows.append(_phase_row(dev, "precopy", a, b, bytes_between(a, b), "trace"))
    if len(sc_start):
        a = int(sc_start["ts_ns"].iloc[0])
        b = int(sc_end["ts_ns"].iloc[-1]) if len(sc_end) else None
        rows.append(_phase_row(dev, "stopcopy", a, b, bytes_between(a, b), "trace"))
    if len(cfg):
        rows.append(_phase_row(dev, "config", cfg["ts_ns"].iloc[0], cfg["ts_ns"].iloc[-1], None, "trace"))
    return rows


_ITER_COLS = {"device": "string", "iteration": "Int64", "ts_ns": "Int64", "end_ns": "Int64",
              "ram_bytes": "Int64", "ram_normal_pages": "Int64", "ram_dirty_pages": "Int64",
              "qemu_init_bytes": "Int64", "qemu_dirty_bytes": "Int64", "vfio_bytes": "Int64",
              "vfio_chunks": "Int64", "snapshots": "Int64", "source": "string", "precopy_pass": "Int64",
              "precopy_pass_method": "string", "qemu_remaining_bytes": "Int64"}


def iteration_starts(m: "Migration") -> tuple[list[int], str]:
    """Start times of QEMU's pre-copy iterations: ``savevm_state_iterate`` events,
    else the RAM PART sections of the stream (one per iteration round, §14)."""
    ev = qemu_events(m, "savevm_state_iterate")
    if len(ev):
        return [int(t) for t in ev["ts_ns"].dropna()], "trace"
    s = main_sections(m)
    if len(s):
        ram = s[(s["idstr"] == "ram") & (s["type"] == "PART")]
        return [int(t) for t in ram["ts_ns"].dropna()], "stream"
    return [], "none"


def qemu_iteration_count(m: "Migration") -> tuple[int | None, str | None]:
    """Number of QEMU pre-copy iterations and how it was counted (a file stream has no times)."""
    starts, source = iteration_starts(m)
    if source == "trace":
        return len(starts), "savevm_state_iterate events"
    s = main_sections(m)
    if len(s):
        return int(((s["idstr"] == "ram") & (s["type"] == "PART")).sum()), "RAM PART sections"
    return None, None


def iterations_frame(m: "Migration") -> pd.DataFrame:
    """One row per (device, pre-copy iteration); RAM columns repeat per device.

    ``qemu_init_bytes`` / ``qemu_dirty_bytes``: the last ``vfio_save_iterate``
    (or ``vfio_state_pending_*``) sizes QEMU reported for the device in the
    iteration; ``vfio_bytes`` / ``vfio_chunks``: DEV_DATA_STATE data sent in the
    iteration (stream chunks, else ``vfio_save_block`` sizes); ``snapshots``:
    DEVICE_DATA records whose header was sent in the iteration.  Iteration i
    covers [start_i, start_i+1); the last one [start, switchover].
    ``precopy_pass``: the pre-copy pass (dirty-bitmap sync round, as QEMU's
    dirty-sync-count counts them) the round started in, by ``precopy_pass_method``
    (``trace`` sync events, ``qmp`` series polls, ``stream`` page-repeat estimate).
    ``qemu_remaining_bytes``: RAM remaining at the last query-migrate poll in the
    round (the source's time series), null without a poll there.
    """
    starts, source = iteration_starts(m)
    if not starts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _ITER_COLS.items()})
    win = downtime_window(m)
    last_end = win["start_ns"] if win["start_ns"] is not None else _last_ts(m)
    starts_a = np.asarray(starts, dtype=np.int64)
    n = len(starts_a)
    ends = list(starts[1:]) + [last_end if last_end is not None else starts[-1]]

    def bins(ts: pd.Series) -> np.ndarray:
        """Iteration index (0-based) of each timestamp, -1 outside every window."""
        t = ts.astype("float64").to_numpy()
        ok = ~np.isnan(t)
        ti = np.where(ok, t, 0).astype(np.int64)
        idx = np.searchsorted(starts_a, ti, side="right") - 1
        idx[~ok] = -1
        idx[(idx == n - 1) & (ti > int(ends[-1]))] = -1
        return idx

    def per_bin(ts: pd.Series, weights: np.ndarray | None = None) -> np.ndarray:
        b = bins(ts)
        keep = b >= 0
        return np.bincount(b[keep], weights=None if weights is None else weights[keep], minlength=n)[:n]

    s = main_sections(m)
    ram = s[(s["idstr"] == "ram") & (s["type"] == "PART")] if len(s) else s
    sync = qemu_events(m, "migration_bitmap_sync_end")
    ram_bytes = per_bin(ram["ts_ns"], ram["length_bytes"].fillna(0).astype("float64").to_numpy()) if len(ram) else None
    ram_normal = per_bin(ram["ts_ns"], ram["ram_normal_pages"].fillna(0).astype("float64").to_numpy()) \
        if len(ram) else None
    dirty = None
    if len(sync):
        dp = sync["args"].map(lambda x: int(x.get("dirty_pages", 0))).astype("float64").to_numpy()
        dirty = per_bin(sync["ts_ns"], dp)
        has_sync = per_bin(sync["ts_ns"]) > 0
    pstarts, pmethod = pass_starts(m)
    if pstarts:
        k = np.searchsorted(np.asarray(sorted(pstarts), dtype=np.int64), starts_a, side="right")
        ppass: Any = [int(v) if v > 0 else None for v in k]
    else:
        ppass = [None] * n
    remaining: list[Any] = [None] * n
    q = m.qmp[(m.qmp["side"] != "destination") & m.qmp["remaining_bytes"].notna()] if len(m.qmp) else m.qmp
    if len(q):
        for k, v in zip(bins(q["ts_ns"]), q["remaining_bytes"]):
            if k >= 0:
                remaining[k] = int(v)  # polls are in time order: the last one of the round wins
    frames = []
    for dev in (m.devices or [None]):
        cols: dict[str, Any] = {"device": [dev] * n, "iteration": np.arange(1, n + 1), "ts_ns": starts_a,
                                "end_ns": np.asarray(ends, dtype=np.int64), "source": [source] * n}
        cols["ram_bytes"] = ram_bytes.astype(np.int64) if ram_bytes is not None else [None] * n
        cols["ram_normal_pages"] = ram_normal.astype(np.int64) if ram_normal is not None else [None] * n
        cols["ram_dirty_pages"] = [int(v) if h else None for v, h in zip(dirty, has_sync)] if dirty is not None \
            else [None] * n
        init = [None] * n
        dty = [None] * n
        vb: Any = [None] * n
        vc: Any = [None] * n
        snaps: Any = [None] * n
        if dev is not None:
            rep = qemu_events(m, ("vfio_save_iterate", "vfio_state_pending_exact", "vfio_state_pending_estimate"),
                              device=dev)
            if len(rep):
                b = bins(rep["ts_ns"])
                for k, args in zip(b, rep["args"]):
                    if k >= 0 and isinstance(args, dict) and (
                            "precopy_init_size" in args or "precopy_dirty_size" in args):
                        init[k] = args.get("precopy_init_size")
                        dty[k] = args.get("precopy_dirty_size")
            ch = device_chunks(m, dev)
            ch = ch[ch["phase"] == "precopy"] if len(ch) else ch
            if len(ch):
                vb = per_bin(ch["ts_ns"], ch["size_bytes"].astype("float64").to_numpy()).astype(np.int64)
                vc = per_bin(ch["ts_ns"]).astype(np.int64)
            else:
                blocks = qemu_events(m, "vfio_save_block", device=dev)
                if len(blocks):
                    w = blocks["args"].map(lambda x: int(x.get("data_size", 0))).astype("float64").to_numpy()
                    vb = per_bin(blocks["ts_ns"], w).astype(np.int64)
                    vc = per_bin(blocks["ts_ns"]).astype(np.int64)
                else:
                    vb = vc = np.zeros(n, dtype=np.int64)
            recs = device_records(m, dev)
            sn = recs[(recs["phase"] == "precopy") & (recs["tag_name"] == "DEVICE_DATA")] if len(recs) else recs
            snaps = per_bin(sn["ts_ns"]).astype(np.int64) if len(sn) else np.zeros(n, dtype=np.int64)
            if not len(recs) and len(m.devices) == 1:  # no stream: one DEV_PARTS_GET per snapshot
                gets = admin_precopy(m, "DEV_PARTS_GET")
                if gets is not None and len(gets):
                    snaps = per_bin(gets["request_ts_ns"]).astype(np.int64)
        cols.update(qemu_init_bytes=init, qemu_dirty_bytes=dty, vfio_bytes=vb, vfio_chunks=vc, snapshots=snaps,
                    precopy_pass=ppass, precopy_pass_method=[pmethod if pstarts else None] * n,
                    qemu_remaining_bytes=remaining)
        frames.append(pd.DataFrame({c: list(cols[c]) for c in _ITER_COLS}))
    df = pd.concat(frames, ignore_index=True)
    for c, t in _ITER_COLS.items():
        df[c] = pd.array(df[c].tolist(), dtype=t)
    return df


def _last_ts(m: "Migration") -> int | None:
    vals = [df["ts_ns"].max() for df in (m.sections, m.chunks, m.events) if len(df) and df["ts_ns"].notna().any()]
    return int(max(vals)) if vals else None
