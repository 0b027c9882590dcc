# SPDX-License-Identifier: GPL-2.0-only
"""Metrics of one migration: phases, pre-copy iterations, PRE_COPY policy,
record sizes, downtime estimates (each with its method) and cross-source
consistency checks.

Specs: ``vfio-virtio-stream.md`` §7 (PRE_COPY variants, §7.3 heuristic),
``qemu-trace-events.md`` §4–7 (checkpoints, event order, deriving timings,
query-migrate), ``qemu-migration-stream.md`` §10, §13, §14 (sections,
markers, return path).  docs/analysis.md explains every method and decision.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

PHASES = ("setup", "precopy", "stopcopy", "config", "resume")
#: vfio-virtio-stream.md §7.3 heuristic thresholds
RATELIMIT_MIN_SPACING_S = 0.9
RATELIMIT_MIN_RECORDS = 3
CAP128_CALLS = 128
MANY_RECORDS = 130
#: stop-copy size reported by QEMU vs the wire: relative difference that is flagged
STOPCOPY_TOLERANCE = 0.10
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


# --- downtime window ---------------------------------------------------------------------------

def downtime_window(m: "Migration") -> dict[str, Any]:
    """Wire view of the switchover (qemu-migration-stream.md §14, issue §2 (b)).

    ``start_ns``: first section after the last PART (the first END when there
    is no PART); ``src_end_ns``: the end of the source's data (last main-channel
    section end, or the last stop-copy chunk on a multifd channel);
    ``end_ns``: the return path's SHUT, else the end of the stream.
    """
    s = main_sections(m)
    out: dict[str, Any] = {"start_ns": None, "src_end_ns": None, "end_ns": None, "method": None,
                           "sections": s.iloc[0:0]}
    if not len(s):
        return out
    types = s["type"].tolist()
    last_part = max((i for i, t in enumerate(types) if t == "PART"), default=None)
    first_end = next((i for i, t in enumerate(types) if t == "END"), None)
    start_i = (last_part + 1) if last_part is not None else first_end
    if start_i is None or start_i >= len(s):
        return out
    after = s.iloc[start_i:]
    start = after["ts_ns"].dropna()
    if not len(start):
        return out
    t0 = int(start.iloc[0])
    # a command between the last PART and the first END (10.x SWITCHOVER_START) is the first byte
    cmds = _primary(m, m.commands)
    if len(cmds) and last_part is not None and cmds["ts_ns"].notna().any():
        lp = s.iloc[last_part]
        sel = (cmds["offset"] > lp["offset"]) & cmds["ts_ns"].notna()
        if "flow" in cmds and pd.notna(lp["flow"]):
            sel &= cmds["flow"] == lp["flow"]
        if sel.any():
            t0 = min(t0, int(cmds[sel]["ts_ns"].min()))
    src_end = int(pd.concat([after["end_ts_ns"], after["ts_ns"]]).dropna().max())
    sc = _primary(m, m.chunks)
    sc = sc[(sc["phase"] == "stopcopy") & sc["ts_ns"].notna()]
    if len(sc):
        src_end = max(src_end, int(sc["ts_ns"].max()))
    rp = _primary(m, m.rp_messages)
    shut = rp[(rp["type_name"] == "SHUT") & rp["ts_ns"].notna() & (rp["ts_ns"] >= t0)] if len(rp) else rp
    if len(shut):
        end, method = int(shut["ts_ns"].min()), "wire: first byte after the last PART section -> return-path SHUT"
    else:
        end, method = src_end, "wire: first byte after the last PART section -> end of stream (no return-path SHUT)"
    out.update(start_ns=t0, src_end_ns=src_end, end_ns=end, method=method, sections=after,
               has_shut=bool(len(shut)))
    return out


def downtime_qemu(m: "Migration") -> tuple[float | None, str | None]:
    """(a) QEMU's own downtime in ms and the method (qemu-trace-events.md §4, §6, §7.2)."""
    cp = qemu_events(m, "vmstate_downtime_checkpoint")
    if len(cp):
        names = cp["args"].map(lambda a: a.get("checkpoint") if isinstance(a, dict) else None)
        st = cp[names == "src-downtime-start"]
        en = cp[names.isin(["src-downtime-end", "src-downtime-stop"])]
        if len(st) and len(en):
            return (int(en["ts_ns"].iloc[-1]) - int(st["ts_ns"].iloc[0])) / 1e6, \
                "qemu: vmstate_downtime_checkpoint src-downtime-start -> src-downtime-end"
    st = m.qemu_stats.get("source", {})
    if st.get("downtime_ms") is not None:
        return float(st["downtime_ms"]), f"qemu: {'info migrate' if st.get('format') == 'hmp' else 'query-migrate'} downtime"
    low = qemu_events(m, "migration_thread_low_pending")
    rs = qemu_events(m, "runstate_set")
    if len(rs):
        rs = rs[rs["args"].map(lambda a: "finish-migrate" in str(a.get("new_state_str", a)) if isinstance(a, dict) else False)]
    done = qemu_events(m, "migrate_set_state")
    if len(done):
        done = done[done["args"].map(lambda a: a.get("new_state") == "completed" if isinstance(a, dict) else False)]
    start = rs if len(rs) else low
    if len(start) and len(done):
        return (int(done["ts_ns"].iloc[-1]) - int(start["ts_ns"].iloc[0])) / 1e6, \
            ("qemu trace fallback: runstate_set finish-migrate -> migrate_set_state completed" if len(rs)
             else "qemu trace fallback: migration_thread_low_pending -> migrate_set_state completed")
    return None, None


def _category(r: pd.Series) -> str:
    idstr = str(r["idstr"]) if pd.notna(r["idstr"]) else ""
    if r["type"] == "END" and idstr == "ram":
        return "ram"
    if r["type"] == "END" and idstr.endswith("/vfio"):
        return "vfio"
    return "config"


def downtime_breakdown(m: "Migration", win: dict[str, Any] | None = None) -> dict[str, float | None] | None:
    """(c) split of (b): ``ram``, ``vfio``, ``config``, ``dst_load`` in ms.

    Categories: RAM END → ram; ``…/vfio`` END → vfio; FULL sections (VFIO
    config and every non-iterable device) and other iterables' END → config.
    Between the first bytes of two consecutive main-channel sections, the
    earlier section is busy while its bytes go out — until its last chunk (VFIO
    data has chunk timestamps), or for ``length / link rate`` when run.json
    gives the link, or else until the next section starts — and the idle rest is
    the time QEMU spent producing the next section, charged to that one (e.g.
    the device's stop-copy read before the VFIO END section appears).
    Stop-copy data still arriving on multifd channels after the main channel
    went quiet is vfio.  The rest until the return path's SHUT is the
    destination's load (``dst_load``; None without a return path).  The parts
    sum to (b).
    """
    win = win or downtime_window(m)
    if win["start_ns"] is None:
        return None
    secs = win["sections"][win["sections"]["ts_ns"].notna()]
    link = m.manifest.link_bytes_per_s if m.manifest else None
    ch = _primary(m, m.chunks)
    last_chunk = ch[ch["section"].notna() & ch["ts_ns"].notna()].groupby("section")["ts_ns"].max() \
        if len(ch) else pd.Series(dtype="Int64")
    parts = {"ram": 0, "vfio": 0, "config": 0}
    rows = list(secs.iterrows())
    prev_busy_until = win["start_ns"]
    main_end = win["start_ns"]
    for k, (idx, r) in enumerate(rows):
        start = int(r["ts_ns"])
        nxt = int(rows[k + 1][1]["ts_ns"]) if k + 1 < len(rows) else None
        end = nxt if nxt is not None else int(r["end_ts_ns"]) if pd.notna(r["end_ts_ns"]) else start
        end = max(end, start)
        # idle time before this section's first byte: spent producing it
        parts[_category(r)] += max(0, start - prev_busy_until)
        if idx in last_chunk.index:
            busy = int(last_chunk[idx])
        elif link and pd.notna(r["length_bytes"]):
            busy = start + int(int(r["length_bytes"]) / link * 1e9)
        else:
            busy = end
        busy = min(max(busy, start), end)
        parts[_category(r)] += busy - start
        prev_busy_until = busy
        main_end = max(main_end, end)
    # the idle tail of the last section (its end is its last chunk or its start)
    parts[_category(rows[-1][1]) if rows else "config"] += max(0, main_end - prev_busy_until)
    parts["vfio"] += max(0, win["src_end_ns"] - main_end)
    out: dict[str, float | None] = {k: v / 1e6 for k, v in parts.items()}
    out["dst_load"] = (win["end_ns"] - win["src_end_ns"]) / 1e6 if win.get("has_shut") else None
    return out


def stopcopy_bytes(m: "Migration", win: dict[str, Any] | None = None) -> dict[str, int]:
    """Bytes the source sent during the switchover, by kind (from the stream)."""
    win = win or downtime_window(m)
    out = {"ram": 0, "vfio": 0, "config": 0}
    if win["start_ns"] is None:
        return out
    for _, r in win["sections"].iterrows():
        idstr = str(r["idstr"]) if pd.notna(r["idstr"]) else ""
        n = int(r["length_bytes"]) if pd.notna(r["length_bytes"]) else 0
        if r["type"] == "END" and idstr == "ram":
            out["ram"] += n
        elif r["type"] == "END" and idstr.endswith("/vfio"):
            out["vfio"] += n
        else:
            out["config"] += n
    c = _primary(m, m.chunks)
    off_main = c[(c["phase"] == "stopcopy") & c["section"].isna()]
    out["vfio"] += int(off_main["size_bytes"].fillna(0).sum())
    return out


def downtime_model(m: "Migration", *, bandwidth_bytes_per_s: float | None = None,
                   stopcopy_bytes_total: int | None = None, vfio_bytes: int | None = None,
                   fixed_ms: float | None = None) -> dict[str, Any]:
    """(d) model: stop-copy bytes / bandwidth + fixed costs, with what-if overrides.

    Defaults: the bytes the stream shows in the switchover; the bandwidth is
    the manifest's link rate when known, else the send rate measured over the
    switchover (bytes / (source end − start)); fixed costs are the measured
    destination load (return path) or 0.  ``vfio_bytes`` replaces the VFIO
    stop-copy bytes only (e.g. "what if the device context doubled").
    """
    win = downtime_window(m)
    b = stopcopy_bytes(m, win)
    if vfio_bytes is not None:
        b["vfio"] = int(vfio_bytes)
    total = int(stopcopy_bytes_total) if stopcopy_bytes_total is not None else sum(b.values())
    bw_method = "given"
    if bandwidth_bytes_per_s is None:
        link = m.manifest.link_bytes_per_s if m.manifest else None
        if link:
            bandwidth_bytes_per_s, bw_method = link, "manifest link.gbit_per_s"
        elif win["start_ns"] is not None and win["src_end_ns"] > win["start_ns"]:
            sent = sum(stopcopy_bytes(m, win).values())
            bandwidth_bytes_per_s = sent / ((win["src_end_ns"] - win["start_ns"]) / _NS)
            bw_method = "measured send rate during the switchover"
    if fixed_ms is None:
        bd = downtime_breakdown(m, win) if win["start_ns"] is not None else None
        fixed_ms = (bd or {}).get("dst_load") or 0.0
    value = None
    if bandwidth_bytes_per_s and total:
        value = total / bandwidth_bytes_per_s * 1000.0 + float(fixed_ms)
    return {"downtime_model_ms": value, "stopcopy_bytes": total, "bytes_by_kind": b,
            "bandwidth_bytes_per_s": bandwidth_bytes_per_s, "bandwidth_method": bw_method,
            "fixed_ms": float(fixed_ms),
            "method": "model: stop-copy bytes / bandwidth + fixed costs (destination load)"}


def downtime(m: "Migration") -> dict[str, Any]:
    """All four estimates with their methods."""
    win = downtime_window(m)
    a, a_method = downtime_qemu(m)
    b = None if win["start_ns"] is None else (win["end_ns"] - win["start_ns"]) / 1e6
    model = downtime_model(m)
    return {"downtime_qemu_ms": a, "downtime_qemu_method": a_method,
            "downtime_wire_ms": b, "downtime_wire_method": win["method"],
            "downtime_breakdown_ms": downtime_breakdown(m, win),
            "downtime_model_ms": model["downtime_model_ms"], "downtime_model_method": model["method"],
            "downtime_model": model, "window": {k: v for k, v in win.items() if k != "sections"},
            "downtime_admin_ms": _admin_in_window(m, win)}


def _admin_in_window(m: "Migration", win: dict[str, Any]) -> dict[str, float] | None:
    """Admin command time inside the downtime window, per opcode (sum of latencies, ms)."""
    a = m.admin
    if not len(a) or win["start_ns"] is None:
        return None
    inside = a[(a["request_ts_ns"] >= win["start_ns"]) & (a["request_ts_ns"] <= win["end_ns"])
               & a["latency_ns"].notna()]
    return {str(k): float(v) / 1e6 for k, v in inside.groupby("opcode_name")["latency_ns"].sum().items()}


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
              "vfio_chunks": "Int64", "snapshots": "Int64", "source": "string"}


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
        cols.update(qemu_init_bytes=init, qemu_dirty_bytes=dty, vfio_bytes=vb, vfio_chunks=vc, snapshots=snaps)
        frames.append(pd.DataFrame({c: list(cols[c]) for c in _ITER_COLS}))
    df = pd.concat(frames, ignore_index=True)
    for c, t in _ITER_COLS.items():
        df[c] = pd.array(df[c].tolist(), dtype=t)
    return df


def _last_ts(m: "Migration") -> int | None:
    vals = [df["ts_ns"].max() for df in (m.sections, m.chunks, m.events) if len(df) and df["ts_ns"].notna().any()]
    return int(max(vals)) if vals else None


# --- device metrics ----------------------------------------------------------------------------

def precopy_policy(m: "Migration", device: str) -> tuple[str, dict[str, Any]]:
    """PRE_COPY policy (vfio-virtio-stream.md §7.3) — a HEURISTIC, with its evidence.

    ``ratelimited``: more than 130 pre-copy snapshots, or ≥ 3 snapshots never
    closer than 0.9 s.  ``cap128``: sub-second snapshot spacing and then QEMU's
    reported pre-copy sizes drop to zero for good while pre-copy goes on; or,
    without traces, more than 128 VFIO PART sections with no snapshot after the
    128th; or exactly 128 METADATA_GET admin commands in pre-copy.  Otherwise
    ``unknown``.
    """
    recs = device_records(m, device)
    snaps = recs[(recs["phase"] == "precopy") & (recs["tag_name"] == "DEVICE_DATA")]
    ts = snaps["ts_ns"].dropna().astype("int64").to_numpy()
    basis = "records"
    if not len(recs):
        gets = admin_precopy(m, "DEV_PARTS_GET")
        if gets is not None and len(gets):
            ts, basis = gets["request_ts_ns"].astype("int64").to_numpy(), "admin DEV_PARTS_GET"
    spacing = np.diff(ts) / _NS if len(ts) > 1 else np.array([])
    ev: dict[str, Any] = {"snapshot_basis": basis, "precopy_snapshots": int(len(ts)),
                          "min_spacing_s": float(spacing.min()) if len(spacing) else None,
                          "median_spacing_s": float(np.median(spacing)) if len(spacing) else None}
    # QEMU-reported sizes: permanently zero from some report on?
    rep = qemu_events(m, ("vfio_save_iterate", "vfio_state_pending_exact", "vfio_state_pending_estimate"),
                      device=device)
    zero_from = zero_tail_s = None
    if len(rep):
        pairs = [((_arg(r, "precopy_init_size") or 0) + (_arg(r, "precopy_dirty_size") or 0), r["ts_ns"])
                 for _, r in rep.iterrows() if _arg(r, "precopy_init_size") is not None
                 or _arg(r, "precopy_dirty_size") is not None]
        sizes = [p[0] for p in pairs]
        nz = [i for i, v in enumerate(sizes) if v]
        if nz and nz[-1] + 1 < len(sizes) and len(sizes) - nz[-1] - 1 >= 2:
            zero_from = nz[-1] + 1
            t_first, t_last = pairs[zero_from][1], pairs[-1][1]
            if pd.notna(t_first) and pd.notna(t_last):
                zero_tail_s = (int(t_last) - int(t_first)) / _NS
        elif nz:
            zero_tail_s = 0.0
        ev["reported_sizes"] = len(sizes)
        ev["reported_zero_from"] = zero_from
        ev["reported_zero_tail_s"] = zero_tail_s
    s = main_sections(m)
    parts = s[(s["idstr"] == device) & (s["type"] == "PART")] if len(s) else s
    ev["vfio_part_sections"] = int(len(parts))
    after_cap = None
    if len(parts) > CAP128_CALLS and len(ts):
        t128 = int(parts["ts_ns"].iloc[CAP128_CALLS - 1])
        after_cap = int((ts > t128).sum())
        ev["snapshots_after_128th_part"] = after_cap
    mg = admin_precopy(m, "DEV_PARTS_METADATA_GET")
    if mg is not None:
        ev["metadata_get_precopy"] = int(len(mg))
    sub_second = len(spacing) > 0 and spacing.min() < RATELIMIT_MIN_SPACING_S
    if len(ts) > MANY_RECORDS:
        ev["rule"] = f"more than {MANY_RECORDS} pre-copy snapshots"
        return "ratelimited", ev
    if len(ts) >= RATELIMIT_MIN_RECORDS and spacing.min() >= RATELIMIT_MIN_SPACING_S:
        ev["rule"] = f">= {RATELIMIT_MIN_RECORDS} pre-copy snapshots never closer than {RATELIMIT_MIN_SPACING_S} s"
        return "ratelimited", ev
    if (len(ts) == 2 and spacing.min() >= RATELIMIT_MIN_SPACING_S and zero_tail_s is not None
            and zero_tail_s < 1.0 + (1 - RATELIMIT_MIN_SPACING_S)):
        ev["rule"] = ("2 pre-copy snapshots >= 0.9 s apart and QEMU's reported pre-copy sizes never zero for "
                      "longer than the 1 s rate-limit interval")
        return "ratelimited", ev
    if sub_second and zero_from is not None:
        ev["rule"] = "sub-second snapshot spacing, then QEMU-reported pre-copy sizes permanently 0"
        return "cap128", ev
    if after_cap == 0 and (sub_second or len(ts) <= 1):
        ev["rule"] = f"more than {CAP128_CALLS} VFIO PART sections and no snapshot after the {CAP128_CALLS}th"
        return "cap128", ev
    if ev.get("metadata_get_precopy") == CAP128_CALLS:
        ev["rule"] = f"exactly {CAP128_CALLS} METADATA_GET commands in pre-copy"
        return "cap128", ev
    ev["rule"] = "no rule of the heuristic matched"
    return "unknown", ev


def admin_precopy(m: "Migration", opcode_name: str) -> pd.DataFrame | None:
    """Admin commands of the source PF during pre-copy.

    The source PF is the owner that issued DEV_PARTS_GET; pre-copy ends at
    its first DEV_MODE_SET (the device is stopped for stop-copy,
    vfio-virtio-stream.md §9) or, when the stream is timed, at the switchover.
    """
    a = m.admin
    if not len(a):
        return None
    gets = a[a["opcode_name"] == "DEV_PARTS_GET"]
    if not len(gets):
        return a.iloc[0:0]
    owner = gets["owner"].mode().iloc[0]
    mine = a[(a["owner"] == owner) & a["request_ts_ns"].notna()].sort_values("request_ts_ns")
    first_get = int(gets[gets["owner"] == owner]["request_ts_ns"].min())
    stop = mine[(mine["opcode_name"] == "DEV_MODE_SET") & (mine["request_ts_ns"] > first_get)]
    win = downtime_window(m)
    cut = int(stop["request_ts_ns"].iloc[0]) if len(stop) else win["start_ns"]
    sel = mine["opcode_name"] == opcode_name
    if cut is not None:
        sel &= mine["request_ts_ns"] < cut
    return mine[sel]


def record_stats(m: "Migration", device: str) -> dict[str, Any]:
    """Record sizes (``record_size`` of the 16-byte header, all records of the device)."""
    recs = device_records(m, device)
    sizes = recs["record_size_bytes"].dropna().astype("int64").to_numpy()
    out: dict[str, Any] = {"records": int(len(recs))}
    if len(sizes):
        out.update(record_bytes_min=int(sizes.min()), record_bytes_median=float(np.median(sizes)),
                   record_bytes_p95=float(np.percentile(sizes, 95)), record_bytes_max=int(sizes.max()))
    else:
        out.update(record_bytes_min=None, record_bytes_median=None, record_bytes_p95=None, record_bytes_max=None)
    out["trailer_bug"] = bool((recs["trailer_bytes"].fillna(0) == 8).any()) if len(recs) else None
    if out["trailer_bug"] is None:
        # no records: the admin capture's records lined up with the device data only with 8 extra bytes each
        bases = {a.basis for a in m.alignment if a.basis and a.basis.startswith("record-boundaries")}
        if bases:
            out["trailer_bug"] = "record-boundaries+trailer" in bases
    np_ = recs["n_parts"].dropna()
    out["parts_per_record_median"] = float(np_.median()) if len(np_) else None
    snaps = recs[recs["tag_name"] == "DEVICE_DATA"]
    pre = snaps[snaps["phase"] == "precopy"]
    sc = snaps[snaps["phase"] == "stopcopy"]
    first = int(pre["record_size_bytes"].iloc[0]) if len(pre) and pd.notna(pre["record_size_bytes"].iloc[0]) else None
    final = int(sc["record_size_bytes"].iloc[-1]) if len(sc) and pd.notna(sc["record_size_bytes"].iloc[-1]) else None
    out["context_first_precopy_bytes"] = first
    out["context_stopcopy_bytes"] = final
    out["context_growth_bytes"] = None if first is None or final is None else final - first
    out["context_growth_pct"] = None if not first or final is None else 100.0 * (final - first) / first
    out["bytes_by_part_type"] = bytes_by_part_type(m, device, recs)
    return out


def bytes_by_part_type(m: "Migration", device: str, recs: pd.DataFrame | None = None) -> dict[str, int] | None:
    """Bytes per part type (16-byte part header + value) over the device's last record."""
    recs = device_records(m, device) if recs is None else recs
    p = m.parts
    if not len(recs) or not len(p):
        return None
    last = recs.iloc[-1]
    sel = (p["device"] == device) & (p["record"] == last["index"]) & (p["capture"] == last["capture"])
    lp = p[sel.fillna(False)]
    if not len(lp):
        return None
    names = lp["part_type_name"].fillna(lp["part_type"].astype("string")).fillna("?")
    return {str(k): int(v) for k, v in lp.groupby(names, sort=False)["total_bytes"].sum().items()}


def admin_members(m: "Migration") -> dict[str, int]:
    """Device → SR-IOV group member id (VF number) of its admin commands.

    With one device every command is its own; with several, the i-th device
    in sorted name order is taken to be the i-th smallest VF number seen (a
    HEURISTIC: the captures do not name the VF of a migration stream).
    """
    a = m.admin
    devs = sorted(m.devices)
    if not len(a) or not devs:
        return {}
    members = sorted(int(x) for x in a["group_member_id"].dropna().unique())
    if len(devs) > 1 and len(members) == len(devs):
        return dict(zip(devs, members))
    return {}


def admin_latency(m: "Migration", device: str | None = None) -> dict[str, float] | None:
    """Median admin command latency per opcode name (ms); per device when the VF is known."""
    a = m.admin
    if not len(a) or not a["latency_ns"].notna().any():
        return None
    member = admin_members(m).get(device) if device is not None else None
    if member is not None:
        a = a[a["group_member_id"] == member]
    g = a[a["latency_ns"].notna()].groupby("opcode_name")["latency_ns"].median()
    return {str(k): float(v) / 1e6 for k, v in g.items()}


def device_metrics(m: "Migration", device: str) -> dict[str, Any]:
    ch = device_chunks(m, device)
    recs = device_records(m, device)
    pre = ch[ch["phase"] == "precopy"] if len(ch) else ch
    if len(pre):
        precopy_chunks = int(pre["section"].nunique()) if pre["section"].notna().all() else int(len(pre))
    else:
        blocks = qemu_events(m, "vfio_save_block", device=device)
        it = qemu_events(m, ("vfio_save_iterate", "vfio_save_iterate_start"), device=device)
        precopy_chunks = None
        if len(blocks) and len(it) and not len(ch):
            sc = qemu_events(m, ("vfio_save_complete_precopy_start", "vfio_vmstate_change"), device=device)
            cut = int(sc["ts_ns"].iloc[0]) if len(sc) else None
            precopy_chunks = int((blocks["ts_ns"] < cut).sum()) if cut is not None else int(len(blocks))
        elif len(ch):
            precopy_chunks = 0
    sc = ch[ch["phase"] == "stopcopy"] if len(ch) else ch
    snaps = recs[(recs["phase"] == "precopy") & (recs["tag_name"] == "DEVICE_DATA")] if len(recs) else recs
    policy, evidence = precopy_policy(m, device)
    n_snaps = int(len(snaps)) if len(recs) else None
    if n_snaps is None and evidence.get("snapshot_basis") != "records" and len(m.devices) == 1:
        n_snaps = evidence["precopy_snapshots"]
    out: dict[str, Any] = {
        "device": device, "precopy_chunks": precopy_chunks,
        "precopy_snapshots": n_snaps,
        "precopy_policy": policy, "precopy_policy_evidence": evidence,
        "stopcopy_records": int((recs["phase"] == "stopcopy").sum()) if len(recs) else None,
        "stopcopy_bytes": int(sc["size_bytes"].sum()) if len(sc) else None,
    }
    out.update(record_stats(m, device))
    out["admin_latency_ms"] = admin_latency(m, device)
    return out


# --- migration metrics -------------------------------------------------------------------------

def qemu_profile(m: "Migration") -> str | None:
    """Detected QEMU generation: ``7.2``, ``8.1-9.x``, ``10.x`` (or the manifest's version)."""
    v = (m.manifest.qemu if m.manifest else None) or ""
    if v:
        try:
            major, minor = (int(x) for x in v.split(".")[:2])
        except ValueError:
            major = minor = -1
        if major >= 10:
            return "10.x"
        if (major, minor) >= (8, 1):
            return "8.1-9.x"
        if (major, minor) == (8, 0):
            return "8.0"
        if major >= 0:
            return f"{major}.{minor}"
    mf = m.multifd
    cmds = set(m.commands["cmd_name"].dropna()) if len(m.commands) else set()
    if (len(mf) and mf["device"].notna().any()) or "SWITCHOVER_START" in cmds:
        return "10.x"
    if len(m.sections) and ((m.sections["type"] == "PART") & m.sections["idstr"].fillna("").str.endswith("/vfio")).any():
        return "8.1-9.x"
    names = set(m.events["qemu_event"].dropna()) if len(m.events) else set()
    if names & {"vfio_save_buffer", "vfio_save_pending", "vfio_update_pending", "migrate_pending",
                "vfio_migration_probe"}:
        return "7.2"
    if names & {"vmstate_downtime_checkpoint", "vfio_save_iterate_start", "vfio_state_pending_exact"}:
        return "10.x" if "vfio_save_complete_precopy_thread_start" in names else "8.1-9.x"
    if len(mf) and mf["version"].notna().any() and int(mf["version"].dropna().iloc[0]) == 1 and \
            mf["zero_pages"].fillna(0).eq(0).all():
        return "7.2"
    return None


def migration_metrics(m: "Migration") -> dict[str, Any]:
    s = main_sections(m)
    starts, it_source = iteration_starts(m)
    st = m.qemu_stats.get("source", {})
    ram = _primary(m, m.sections)
    flows = _primary(m, m.flows)
    win = downtime_window(m)
    out: dict[str, Any] = {"captures": [str(c.path) for c in m.captures], "qemu_profile": qemu_profile(m)}
    total = setup = None
    total_m = setup_m = None
    # QEMU's own figures first (its definitions, §7.1; whole ms), then its trace events, then the wire.
    # The events differ by definition: "setup" state is entered before the connection is made, while
    # setup-time starts with the migration thread (real 7.2 capture: 2.2 ms vs QEMU's 1 ms).
    if st.get("total_time_ms") is not None:
        total, total_m = float(st["total_time_ms"]), "qemu stats"
    if st.get("setup_ms") is not None:
        setup, setup_m = float(st["setup_ms"]), "qemu stats"
    ms = qemu_events(m, "migrate_set_state")
    if len(ms):
        states = ms["args"].map(lambda a: a.get("new_state") if isinstance(a, dict) else None)
        t_setup = ms[states == "setup"]["ts_ns"]
        t_active = ms[states == "active"]["ts_ns"]
        t_done = ms[states == "completed"]["ts_ns"]
        if total is None and len(t_setup) and len(t_done):
            total, total_m = (int(t_done.iloc[-1]) - int(t_setup.iloc[0])) / 1e6, "trace"
        if setup is None and len(t_setup) and len(t_active):
            setup, setup_m = (int(t_active.iloc[0]) - int(t_setup.iloc[0])) / 1e6, "trace"
    if len(s) and s["ts_ns"].notna().any():
        first = int(flows["first_ts_ns"].min()) if len(flows) and flows["first_ts_ns"].notna().any() \
            else int(s["ts_ns"].min())
        if total is None and win["end_ns"] is not None:
            total, total_m = (win["end_ns"] - first) / 1e6, "wire"
        parts = s[s["type"] == "PART"]["ts_ns"].dropna()
        if setup is None and len(parts):
            setup, setup_m = (int(parts.iloc[0]) - first) / 1e6, "wire"
    out.update(total_ms=total, setup_ms=setup, total_method=total_m, setup_method=setup_m)
    out["qemu_iterations"], out["qemu_iterations_method"] = qemu_iteration_count(m)
    syncs = qemu_events(m, "migration_bitmap_sync_end")
    out["dirty_sync_count"] = int(len(syncs)) if len(syncs) else st.get("dirty_sync_count")
    has_ram = len(ram) and ram["ram_zero_pages"].notna().any()
    out["ram_zero_pages"] = int(ram["ram_zero_pages"].fillna(0).sum()) if has_ram else None
    out["ram_normal_pages"] = int(ram["ram_normal_pages"].fillna(0).sum()) if has_ram else None
    out["ram_bytes"] = int(ram["ram_bytes"].fillna(0).sum()) if has_ram else None
    # QEMU's "transferred ram" (7.2: RAM section bytes + multifd packets, i.e. the multifd channels'
    # bytes after their 64-byte MultiFDInit_t, qemu-migration-stream.md §12.1)
    mf_flows = flows[flows["role"] == "multifd"] if len(flows) else flows
    mf_bytes = int(mf_flows["c2s_bytes"].fillna(0).sum()) - 64 * len(mf_flows) if len(mf_flows) else 0
    out["ram_transferred_bytes"] = None if out["ram_bytes"] is None else out["ram_bytes"] + max(0, mf_bytes)
    if len(m.multifd):
        mf = _primary(m, m.multifd)
        if out["ram_normal_pages"] is not None:
            out["ram_normal_pages"] += int(mf["normal_pages"].fillna(0).sum())
            out["ram_zero_pages"] += int(mf["zero_pages"].fillna(0).sum())
    if len(flows):
        main = flows[flows["role"] == "main"]
        mfd = flows[flows["role"] == "multifd"]
        out["bytes_main"] = int(main["c2s_bytes"].fillna(0).sum()) if len(main) else None
        out["bytes_multifd"] = int(mfd["c2s_bytes"].fillna(0).sum()) if len(main) else None
    else:
        out["bytes_main"] = out["bytes_multifd"] = None
    out.update(downtime(m))
    return out


# --- cross-source consistency ------------------------------------------------------------------

def consistency_checks(m: "Migration") -> None:
    """Append cross-source findings (docs/analysis.md, "Finding codes")."""
    _check_chunk_sizes(m)
    _check_stopcopy_size(m)
    _check_admin_sizes(m)
    _check_qemu_counters(m)
    for dev in m.devices:
        recs = device_records(m, dev)
        n = int((recs["trailer_bytes"].fillna(0) == 8).sum()) if len(recs) else 0
        if n:
            m.finding("warning", "record_trailer_present",
                      f"{dev}: {n} of {len(recs)} records carry the 8-byte trailer of kernels 6.13.0-6.15.2 "
                      "(CVE-2025-38314)", device=dev, records=n)


def _check_chunk_sizes(m: "Migration") -> None:
    if not len(m.chunks):
        return
    for dev in m.devices:
        blocks = qemu_events(m, "vfio_save_block", device=dev)
        if not len(blocks):
            continue
        trace = [int(a.get("data_size", -1)) for a in blocks["args"]]
        dc = device_chunks(m, dev)
        # the config blob (DEV_CONFIG_STATE) is carried as a chunk too, but no vfio_save_block fires for it
        dc = dc[(dc["phase"] != "config") & dc["data_offset"].notna()]
        wire = [int(x) for x in dc.sort_values("data_offset")["size_bytes"].dropna()]
        if trace == wire:
            continue
        first = next((i for i, (x, y) in enumerate(zip(trace, wire)) if x != y), min(len(trace), len(wire)))
        m.finding("warning", "trace_stream_chunk_mismatch",
                  f"{dev}: {len(trace)} vfio_save_block events ({sum(trace)} bytes) vs {len(wire)} DEV_DATA_STATE "
                  f"chunks ({sum(wire)} bytes) on the wire; first difference at chunk {first}",
                  device=dev, trace_chunks=len(trace), wire_chunks=len(wire), first_difference=first)


def _check_stopcopy_size(m: "Migration") -> None:
    if not len(m.chunks):
        return
    win = downtime_window(m)
    for dev in m.devices:
        rep = qemu_events(m, "vfio_state_pending_exact", device=dev)
        if win["start_ns"] is not None and len(rep):
            rep = rep[rep["ts_ns"] <= win["start_ns"]]
        if not len(rep):
            continue
        reported = _arg(rep.iloc[-1], "stopcopy_size")
        ch = device_chunks(m, dev)
        wire = int(ch[ch["phase"] == "stopcopy"]["size_bytes"].sum())
        if reported is None or not wire:
            continue
        diff = abs(int(reported) - wire) / wire
        if diff > STOPCOPY_TOLERANCE:
            m.finding("warning", "stopcopy_size_mismatch",
                      f"{dev}: QEMU's last reported stop-copy size {int(reported)} bytes differs from the "
                      f"{wire} stop-copy bytes on the wire by {100 * diff:.1f}%",
                      device=dev, reported_bytes=int(reported), wire_bytes=wire)


def _check_admin_sizes(m: "Migration") -> None:
    a = m.admin
    if not len(a) or not len(m.records):
        return
    gets = a[(a["opcode_name"] == "DEV_PARTS_GET") & a["parts_bytes"].notna()]
    if not len(gets):
        return
    # every DEV_PARTS_GET result becomes one record's payload (vfio-virtio-stream.md §4.1); the admin
    # capture may cover only part of the migration, so results are matched to records, not the reverse
    got = [int(x) for x in gets["parts_bytes"]]
    recs = m.records[(m.records["tag_name"] == "DEVICE_DATA") & (m.records["capture"] == stream_capture(m))]
    # with the kernel trailer bug record_size is 8 bytes larger than the parts (vfio-virtio-stream.md §6)
    recs = recs[recs["record_size_bytes"].notna()]
    pool = sorted(int(x) - int(t) for x, t in zip(recs["record_size_bytes"], recs["trailer_bytes"].fillna(0)))
    unmatched = []
    for g in got:
        if g in pool:
            pool.remove(g)
        else:
            unmatched.append(g)
    if unmatched:
        m.finding("warning", "admin_record_size_mismatch",
                  f"{len(unmatched)} of {len(got)} DEV_PARTS_GET results have no DEVICE_DATA record of the same "
                  f"size in the stream (first: {unmatched[0]} bytes; records: {len(recs)})",
                  parts_get_results=len(got), unmatched=len(unmatched), records=len(recs))


def _check_qemu_counters(m: "Migration") -> None:
    st = m.qemu_stats.get("source")
    if not st or not len(m.sections):
        return
    ram = _primary(m, m.sections)
    if not ram["ram_zero_pages"].notna().any():
        return
    zero = int(ram["ram_zero_pages"].fillna(0).sum())
    normal = int(ram["ram_normal_pages"].fillna(0).sum())
    mf = _primary(m, m.multifd)
    if len(mf):
        zero += int(mf["zero_pages"].fillna(0).sum())
        normal += int(mf["normal_pages"].fillna(0).sum())
    for name, ours, key in (("zero pages", zero, "duplicate_pages"), ("normal pages", normal, "normal_pages")):
        if st.get(key) is not None and int(st[key]) != ours:
            m.finding("warning", "qemu_counter_mismatch",
                      f"{name}: the stream holds {ours}, QEMU's counters say {st[key]}",
                      counter=key, stream=ours, qemu=int(st[key]))
