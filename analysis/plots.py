# SPDX-License-Identifier: GPL-2.0-only
"""Plots of one migration, each a function returning a matplotlib ``Figure``.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state), so
they work under any backend: inline in Jupyter, Agg in the CLI and tests.
Every plotted series carries a ``label`` (legend text) so that tests can
check what a figure shows.  Times are seconds since the migration's first
timestamp (``Migration.t0_ns``).

KINDS maps the ``migtrace plot KIND`` names to the functions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import metrics as M

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

PHASE_COLORS = {"setup": "#9e9e9e", "precopy": "#4c72b0", "stopcopy": "#c44e52", "config": "#dd8452",
                "resume": "#55a868"}
_PART_CMAP = "tab20"


def _sec(ns: pd.Series | int | None, t0: int) -> np.ndarray | float:
    if isinstance(ns, pd.Series):
        return (ns.astype("float64").to_numpy() - t0) / 1e9
    return (float(ns) - t0) / 1e9


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in these captures", ha="center", va="center", transform=ax.transAxes)


def timeline(m: "Migration", title: str | None = None) -> Figure:
    """Phases per device (top) and cumulative RAM / VFIO bytes on the wire (bottom)."""
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax_p, ax_b = fig.subplots(2, 1, sharex=True, height_ratios=[1, 2])
    t0 = m.t0_ns or 0
    ph = m.phases
    devices = list(dict.fromkeys(ph["device"].dropna())) if len(ph) else []
    for row, dev in enumerate(devices):
        for _, r in ph[ph["device"] == dev].iterrows():
            if pd.isna(r["start_ns"]) or pd.isna(r["end_ns"]):
                continue
            start = _sec(int(r["start_ns"]), t0)
            width = max((int(r["end_ns"]) - int(r["start_ns"])) / 1e9, 1e-4)
            ax_p.broken_barh([(start, width)], (row - 0.4, 0.8), color=PHASE_COLORS.get(r["phase"], "k"),
                             label=str(r["phase"]))
    ax_p.set_yticks(range(len(devices)), devices)
    ax_p.set_ylabel("device")
    ax_p.set_title(title or f"Migration timeline{' — ' + m.run_id if m.run_id else ''}")
    handles = {h.get_label(): h for h in ax_p.collections}
    if handles:
        ax_p.legend(handles.values(), handles.keys(), loc="upper left", ncols=5, fontsize="small")
    else:
        _empty(ax_p, "VFIO device phases")
    s = M._primary(m, m.sections)
    ram = s[(s["idstr"] == "ram") & s["ts_ns"].notna()] if len(s) else s
    if len(ram):
        ram = ram.sort_values("ts_ns")
        ax_b.step(_sec(ram["ts_ns"], t0), ram["length_bytes"].fillna(0).astype("int64").cumsum(), where="post",
                  label="RAM bytes")
    ch = M._primary(m, m.chunks)
    for dev in (ch["device"].dropna().unique() if len(ch) else []):
        c = ch[(ch["device"] == dev) & ch["ts_ns"].notna()].sort_values("ts_ns")
        ax_b.step(_sec(c["ts_ns"], t0), c["size_bytes"].astype("int64").cumsum(), where="post",
                  label=f"VFIO bytes {dev}")
    if not len(ch):  # no stream: the source trace's vfio_save_block sizes
        for dev in m.devices:
            b = M.qemu_events(m, "vfio_save_block", device=dev)
            b = b[b["ts_ns"].notna()] if len(b) else b
            if len(b):
                sizes = b["args"].map(lambda a: int(a.get("data_size", 0))).astype("int64")
                ax_b.step(_sec(b["ts_ns"], t0), sizes.cumsum(), where="post",
                          label=f"VFIO bytes {dev} (vfio_save_block)")
    win = M.downtime_window(m)
    if win["start_ns"] is not None:
        ax_b.axvspan(_sec(win["start_ns"], t0), _sec(win["end_ns"], t0), color="#c44e52", alpha=0.15,
                     label="downtime (wire)")
    if ax_b.lines:
        ax_b.legend(loc="upper left", fontsize="small")
    else:
        _empty(ax_b, "timed stream data")
    ax_b.set_xlabel("time since migration start (s)")
    ax_b.set_ylabel("cumulative bytes sent")
    return fig


def convergence(m: "Migration", device: str | None = None) -> Figure:
    """Pre-copy convergence: bytes per QEMU iteration (RAM, VFIO sent, QEMU-reported VFIO pending)."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    it = m.iterations
    if len(it):
        dev = device or (it["device"].dropna().iloc[0] if it["device"].notna().any() else None)
        d = it[it["device"] == dev] if dev is not None else it
        x = d["iteration"].astype("int64").to_numpy()
        # an untimed stream (a file) cannot be cut into iterations: its per-iteration RAM bytes are 0s
        timed = bool(len(m.sections) and m.sections["ts_ns"].notna().any())
        if timed and d["ram_bytes"].notna().any() and d["ram_bytes"].fillna(0).sum() > 0:
            ax.plot(x, d["ram_bytes"].astype("float64"), marker="o", label="RAM bytes sent")
        if d["ram_dirty_pages"].notna().any():
            ax.plot(x, d["ram_dirty_pages"].astype("float64") * 4096, marker="x", ls=":",
                    label="RAM dirty bytes at sync (4 KiB pages)")
        if d["vfio_bytes"].notna().any():
            ax.plot(x, d["vfio_bytes"].astype("float64"), marker="s", label="VFIO bytes sent")
        rep = d["qemu_init_bytes"].astype("float64").fillna(0) + d["qemu_dirty_bytes"].astype("float64").fillna(0)
        if d["qemu_init_bytes"].notna().any() or d["qemu_dirty_bytes"].notna().any():
            ax.plot(x, rep, marker="^", ls="--", label="VFIO pending reported by QEMU (initial + dirty)")
        if d["snapshots"].notna().any() and d["snapshots"].fillna(0).sum():
            snap_x = x[d["snapshots"].fillna(0).to_numpy() > 0]
            ax.plot(snap_x, np.zeros(len(snap_x)), ls="none", marker="|", ms=14, color="k",
                    label="device snapshot taken")
        ax.set_title(f"Pre-copy convergence{' — ' + str(dev) if dev else ''}")
    else:
        _empty(ax, "pre-copy iterations")
        ax.set_title("Pre-copy convergence")
    ax.set_xlabel("QEMU pre-copy iteration")
    ax.set_ylabel("bytes")
    ys = [v for ln in ax.lines for v in np.asarray(ln.get_ydata(), dtype=float) if v > 0]
    if ys and max(ys) / min(ys) > 100:  # RAM and VFIO differ by orders of magnitude
        ax.set_yscale("symlog", linthresh=max(1.0, min(ys)))
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def record_sizes(m: "Migration") -> Figure:
    """Record sizes (``record_size`` of the 16-byte header) by phase, every record a point."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    r = m.records[m.records["record_size_bytes"].notna()]
    phases = [p for p in ("setup", "precopy", "stopcopy", "config") if (r["phase"] == p).any()]
    if phases:
        data = [r[r["phase"] == p]["record_size_bytes"].astype("float64").to_numpy() for p in phases]
        ax.boxplot(data, positions=range(len(phases)), widths=0.5, showfliers=False)
        for i, (p, vals) in enumerate(zip(phases, data)):
            jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
            ax.plot(i + jitter, vals, ls="none", marker="o", alpha=0.7, color=PHASE_COLORS[p],
                    label=f"{p} ({len(vals)} records)")
        ax.set_xticks(range(len(phases)), phases)
        trailer = r[r["trailer_bytes"].fillna(0) == 8]
        if len(trailer):
            xs = [phases.index(p) for p in trailer["phase"] if p in phases]
            ax.plot(xs, trailer["record_size_bytes"].astype("float64")[:len(xs)], ls="none", marker="x",
                    color="k", ms=9, label="8-byte trailer (kernel bug)")
        ax.legend(fontsize="small")
    else:
        _empty(ax, "records")
    ax.set_xlabel("phase")
    ax.set_ylabel("record size (bytes)")
    ax.set_title("Record-size distribution by phase")
    return fig


def part_composition(m: "Migration", device: str | None = None) -> Figure:
    """Bytes per device-part type (16-byte header + value) in each record: stacked bars."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    p = m.parts[m.parts["record"].notna()]
    if device is not None:
        p = p[p["device"] == device]
    if len(p):
        names = p["part_type_name"].fillna(p["part_type"].astype("string")).fillna("?")
        table = p.assign(name=names).pivot_table(index="record", columns="name", values="total_bytes",
                                                 aggfunc="sum", fill_value=0, sort=True)
        table = table[table.sum().sort_values(ascending=False).index]
        x = table.index.astype("int64").to_numpy()
        bottom = np.zeros(len(table))
        cmap = __import__("matplotlib").colormaps[_PART_CMAP]
        for i, col in enumerate(table.columns):
            vals = table[col].astype("float64").to_numpy()
            ax.bar(x, vals, bottom=bottom, label=str(col), color=cmap(i % 20))
            bottom += vals
        ax.legend(fontsize="small", ncols=2)
    else:
        _empty(ax, "device parts")
    ax.set_xlabel("record index")
    ax.set_ylabel("bytes (part header + value)")
    ax.set_title("Device-part composition per record")
    return fig


def downtime_breakdown(m: "Migration") -> Figure:
    """The downtime estimates side by side; (c) stacked into its four parts."""
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    ax = fig.subplots()
    d = M.downtime(m)
    labels = ["(a) QEMU", "(b) wire", "(c) breakdown", "(d) model"]
    values = [d["downtime_qemu_ms"], d["downtime_wire_ms"], None, d["downtime_model_ms"]]
    for i, (lab, v) in enumerate(zip(labels, values)):
        if v is not None:
            ax.barh(i, v, color="#8c8c8c", label=lab)
            ax.text(v, i, f" {v:.2f} ms", va="center", fontsize="small")
    bd = d["downtime_breakdown_ms"] or {}
    left = 0.0
    parts = []
    colors = {"ram": "#4c72b0", "vfio": "#c44e52", "config": "#dd8452", "dst_load": "#55a868"}
    for k in ("ram", "vfio", "config", "dst_load"):
        v = bd.get(k)
        if v:
            parts.append(ax.barh(2, v, left=left, color=colors[k], label=f"(c) {k}"))
            left += v
    ax.set_yticks(range(4), labels)
    ax.invert_yaxis()
    ax.set_xlabel("downtime (ms)")
    ax.set_title("Downtime estimates")
    if parts:
        ax.legend(handles=parts, fontsize="small", loc="lower right")
    if not ax.patches:
        _empty(ax, "downtime estimates")
    return fig


def corpus_downtime(table: pd.DataFrame) -> Figure:
    """Downtime estimates of many migrations (a ``summarize`` table, one row per run/device):
    grouped horizontal bars per run, (a) QEMU and (b) wire."""
    t = table.drop_duplicates("run_id") if "run_id" in table else table
    n = len(t)
    fig = Figure(figsize=(9, max(2.5, 0.32 * n + 1.2)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(n)
    for k, (col, lab) in enumerate((("downtime_qemu_ms", "(a) QEMU"), ("downtime_wire_ms", "(b) wire"))):
        if col in t:
            vals = pd.to_numeric(t[col], errors="coerce").fillna(0).to_numpy()
            ax.barh(y + (k - 0.5) * 0.4, vals, height=0.4, label=lab)
    ax.set_yticks(y, [str(r) for r in t["run_id"]] if "run_id" in t else [str(i) for i in y], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("downtime (ms)")
    ax.set_title("Downtime per migration")
    if n:
        ax.legend(fontsize="small")
    else:
        _empty(ax, "migrations")
    return fig


def remaining(m: "Migration") -> Figure:
    """QEMU's own view of pre-copy from the query-migrate time series (``qmp-source``): RAM
    remaining over time, the dirty page rate on a second axis, and the iteration boundaries
    (the polls where ``dirty-sync-count`` grew, labelled with the new count)."""
    from analysis.load_qmp import iteration_boundaries

    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    q = m.qmp[m.qmp["side"] != "destination"] if len(m.qmp) else m.qmp
    q = q[q["remaining_bytes"].notna()] if len(q) else q
    if len(q):
        t0 = m.t0_ns if m.t0_ns is not None else int(q["ts_ns"].iloc[0])
        x = _sec(q["ts_ns"], t0)
        ax.plot(x, q["remaining_bytes"].astype("float64"), marker=".", label="RAM remaining (QEMU)")
        for i, (_, b) in enumerate(iteration_boundaries(q).iterrows()):
            ax.axvline(_sec(int(b["ts_ns"]), t0), color="k", ls=":", lw=0.8,
                       label="dirty-sync-count grew" if i == 0 else None)
            ax.annotate(str(int(b["dirty_sync_count"])), (_sec(int(b["ts_ns"]), t0), 1.0),
                        xycoords=("data", "axes fraction"), ha="left", va="top", fontsize="x-small")
        if q["dirty_pages_rate"].notna().any() and q["dirty_pages_rate"].fillna(0).gt(0).any():
            ax2 = ax.twinx()
            ax2.plot(x, q["dirty_pages_rate"].astype("float64"), color="#c44e52", ls="--",
                     label="dirty pages rate (pages/s)")
            ax2.set_ylabel("dirty pages / s")
            ax2.legend(loc="center right", fontsize="small")
        ax.legend(loc="upper right", fontsize="small")
    else:
        _empty(ax, "query-migrate time series")
    ax.set_title("Pre-copy convergence as QEMU reports it (query-migrate)")
    ax.set_xlabel("time since migration start (s)")
    ax.set_ylabel("bytes")
    return fig


KINDS: dict[str, Callable[..., Figure]] = {
    "timeline": timeline,
    "convergence": convergence,
    "record-sizes": record_sizes,
    "parts": part_composition,
    "downtime": downtime_breakdown,
    "remaining": remaining,
}
