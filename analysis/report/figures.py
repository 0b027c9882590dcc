# SPDX-License-Identifier: GPL-2.0-only
"""The report's figures: small, cheap (Agg, fixed layout, 80 dpi) and only when they apply.

Each function returns a ``Figure`` or None when the migration has nothing to show
(no VFIO device, no timed data): the page then leaves the panel out instead of
drawing an empty one.  Every series carries a ``label`` so tests can check what a
figure shows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import AutoLocator, FuncFormatter, MaxNLocator

from analysis import metrics as M
from analysis.plots import PHASE_COLORS
from analysis.report.fmt import ms, size

#: byte axes in human units (also avoids mathtext: ``10^4`` labels cost more than the plot)
_BYTES = FuncFormatter(lambda v, _pos: size(v) if v >= 0 else "")

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration

DPI = 80
_PENDING = ("migrate_pending", "migrate_pending_exact", "migrate_pending_estimate")


def _s(ns: Any, t0: int) -> Any:
    if isinstance(ns, pd.Series):
        return (ns.astype("int64").to_numpy() - t0) / 1e9
    return (int(ns) - t0) / 1e9


def _title(fig: Figure, ax: Any, text: str) -> None:
    """A title above ``ax`` placed once (``Axes.set_title`` re-measures every tick label on each
    draw to avoid them: a third of the report's plotting time)."""
    box = ax.get_position()
    fig.text(box.x0, box.y1 + 0.02, text, fontsize="small", va="bottom", ha="left")
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "linear" and isinstance(axis.get_major_locator(), AutoLocator):
            axis.set_major_locator(MaxNLocator(5))


def _phase_rows(m: "Migration") -> pd.DataFrame:
    ph = m.phases
    if not len(ph):
        return ph
    return ph[ph["start_ns"].notna() & ph["end_ns"].notna() & ph["device"].notna()]


def switchover_window(m: "Migration") -> tuple[int, int] | None:
    """The wire's downtime window, else stop-copy start → end of the last phase (ns)."""
    w = M.downtime_window(m)
    if w.get("start_ns") is not None and w.get("end_ns") is not None:
        return int(w["start_ns"]), int(w["end_ns"])
    ph = _phase_rows(m)
    late = ph[ph["phase"].isin(("stopcopy", "config", "resume"))] if len(ph) else ph
    if len(late):
        return int(late["start_ns"].min()), int(late["end_ns"].max())
    return None


def cumulative_bytes(m: "Migration") -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    s = M._primary(m, m.sections)
    ram = s[(s["idstr"] == "ram") & s["ts_ns"].notna()] if len(s) else s
    if len(ram):
        ram = ram.sort_values("ts_ns")
        out.append(("RAM bytes", ram["ts_ns"].astype("int64").to_numpy(),
                    ram["length_bytes"].fillna(0).astype("int64").cumsum().to_numpy()))
    ch = M._primary(m, m.chunks)
    for dev in (ch["device"].dropna().unique() if len(ch) else []):
        c = ch[(ch["device"] == dev) & ch["ts_ns"].notna()].sort_values("ts_ns")
        if len(c):
            out.append((f"VFIO bytes {dev}", c["ts_ns"].astype("int64").to_numpy(),
                        c["size_bytes"].astype("int64").cumsum().to_numpy()))
    return out


def timeline(m: "Migration") -> Figure | None:
    """Cumulative bytes on the wire (s since start) under a strip per device with its phases,
    and the switchover zoomed in on a second axis in ms since the downtime started."""
    t0 = m.t0_ns or 0
    ph = _phase_rows(m)
    devices = list(dict.fromkeys(ph["device"])) if len(ph) else []
    series = cumulative_bytes(m)
    if not devices and not series:
        return None
    win = switchover_window(m)
    fig = Figure(figsize=(9.6, 2.7), dpi=DPI)
    right = 0.66 if win else 0.985
    ax_b = fig.add_axes((0.085, 0.17, right - 0.085, 0.68))
    for label, ts, cum in series:
        ax_b.step((ts - t0) / 1e9, cum, where="post", label=label)
    if win:
        ax_b.axvspan((win[0] - t0) / 1e9, (win[1] - t0) / 1e9, color="#c44e52", alpha=0.2, label="switchover")
    # phase strips along the top, one per device, in the same axes (one axes less to draw)
    strip = ax_b.get_xaxis_transform()
    seen: set[str] = set()
    for row, dev in enumerate(devices):
        d = ph[ph["device"] == dev]
        y = 0.93 - 0.09 * row
        for phase, start, end in zip(d["phase"], d["start_ns"], d["end_ns"]):
            ax_b.broken_barh([((int(start) - t0) / 1e9, (int(end) - int(start)) / 1e9)], (y, 0.07),
                             transform=strip, color=PHASE_COLORS.get(phase, "k"),
                             label=None if phase in seen else f"phase {phase}")
            seen.add(phase)
        ax_b.text(0.0, y + 0.035, f" {dev.split('/')[0]}", transform=ax_b.transAxes, fontsize="xx-small",
                  va="center", ha="left", color="white")
    if series or seen:
        ax_b.set_ylim(0, max([float(c[-1]) for _, _, c in series] + [1.0]) * (1.25 + 0.12 * len(devices)))
    ax_b.set_xlabel("s since migration start", fontsize="small")
    ax_b.set_ylabel("bytes", fontsize="small")
    ax_b.yaxis.set_major_formatter(_BYTES)
    ax_b.tick_params(labelsize="x-small")
    _title(fig, ax_b, "Bytes sent and phases (s since start)" if devices else "Bytes sent (s since start)")
    if win:
        ax_z = fig.add_axes((0.785, 0.17, 0.2, 0.68))
        width = max(win[1] - win[0], 1)
        pad = max(width * 0.25, 200_000)
        lo, hi = win[0] - pad, win[1] + pad
        ax_z.axvspan(0, (win[1] - win[0]) / 1e6, color="#c44e52", alpha=0.2, label="_switchover")
        if devices:
            _zoom_lanes(ax_z, ph, devices, win[0], lo, hi)
        else:  # no device phases: what went on the wire during the switchover, at ms scale
            for label, ts, cum in series:
                i0, i1 = int(np.searchsorted(ts, lo)), int(np.searchsorted(ts, hi, side="right"))
                before = cum[i0 - 1] if i0 > 0 else 0
                xs = np.concatenate([[lo], ts[i0:i1], [hi]])
                ys = np.concatenate([[before], cum[i0:i1], [cum[i1 - 1] if i1 > i0 else before]])
                ax_z.step((xs - win[0]) / 1e6, ys, where="post", label=f"_{label}")
            ax_z.yaxis.set_major_formatter(_BYTES)
            ax_z.yaxis.set_major_locator(MaxNLocator(3))
        ax_z.set_xlim((lo - win[0]) / 1e6, (hi - win[0]) / 1e6)
        ax_z.set_xlabel("ms since switchover", fontsize="small")
        ax_z.tick_params(labelsize="x-small")
        _title(fig, ax_z, f"Switchover: {ms((win[1] - win[0]) / 1e6)}")
    return fig


def _zoom_lanes(ax: Any, ph: pd.DataFrame, devices: list[str], w0: int, lo: int, hi: int) -> None:
    """One lane per (device, phase) near the switchover, each bar labelled with its duration,
    so a 36 µs stop-copy and a 0 ns config stay visible next to a 7 ms resume."""
    near = ph[(ph["end_ns"].astype("int64") >= lo) & (ph["start_ns"].astype("int64") <= hi)
              & ~ph["phase"].isin(("setup", "precopy"))]
    lanes = []
    span = (hi - lo) / 1e6
    for dev in devices:
        d = near[near["device"] == dev]
        for phase, start, end in zip(d["phase"], d["start_ns"], d["end_ns"]):
            row = len(lanes)
            lanes.append(phase if len(devices) == 1 else f"{phase} {dev.split('/')[0][-4:]}")
            x0 = (max(int(start), lo) - w0) / 1e6
            x1 = (min(int(end), hi) - w0) / 1e6
            ax.broken_barh([(x0, max(x1 - x0, span * 0.008))], (row - 0.35, 0.7),
                           color=PHASE_COLORS.get(phase, "k"), label=f"_{phase}")  # named by the lane
            ax.text(max(x1, x0 + span * 0.008), row, " " + ms((int(end) - int(start)) / 1e6),
                    va="center", fontsize="xx-small")
    ax.set_yticks(range(len(lanes)), lanes, fontsize="x-small")
    ax.set_ylim(-0.6, max(len(lanes), 1) - 0.4)
    ax.invert_yaxis()


def remaining_by_iteration(m: "Migration") -> pd.Series:
    """QEMU's own pending (= remaining) RAM bytes at the end of each pre-copy iteration:
    the last ``migrate_pending*`` event of the source inside the iteration's window."""
    it = m.iterations
    ev = m.events
    if not len(it) or not len(ev):
        return pd.Series(dtype="float64")
    p = ev[ev["qemu_event"].isin(_PENDING) & ev["ts_ns"].notna() & (ev["side"].fillna("source") == "source")]
    if not len(p):
        return pd.Series(dtype="float64")
    p = p.sort_values("ts_ns", kind="stable")
    ts = p["ts_ns"].astype("int64").to_numpy()
    size = np.array([float(a.get("size", np.nan)) if isinstance(a, dict) else np.nan for a in p["args"]])
    first = it.drop_duplicates("iteration").dropna(subset=["ts_ns"])
    out = {}
    for n, start, end in zip(first["iteration"], first["ts_ns"], first["end_ns"]):
        stop = int(end) if not pd.isna(end) else ts[-1] + 1
        i = int(np.searchsorted(ts, stop, side="right")) - 1
        if i >= 0 and ts[i] >= int(start):
            out[int(n)] = size[i]
    return pd.Series(out, dtype="float64")


def _stream_timed(m: "Migration") -> bool:
    s = m.sections
    return bool(len(s) and s["ts_ns"].notna().any())


def convergence(m: "Migration") -> Figure | None:
    """Remaining bytes per pre-copy iteration (QEMU's pending RAM, QEMU-reported VFIO
    pending) and bytes sent in it; RAM sent only when the stream is timed (an untimed
    file stream cannot be cut into iterations: plotting its 0s was the RAM-bytes-0 bug)."""
    it = m.iterations
    if not len(it):
        return None
    fig = Figure(figsize=(4.7, 2.6), dpi=DPI)
    ax = fig.add_axes((0.16, 0.17, 0.8, 0.7))
    rem = remaining_by_iteration(m)
    if len(rem):
        ax.plot(rem.index, rem.to_numpy(), marker="o", ms=3, label="RAM remaining (QEMU pending)")
    first = it.drop_duplicates("iteration")
    if _stream_timed(m) and first["ram_bytes"].fillna(0).sum() > 0:
        ax.plot(first["iteration"].astype("int64"), first["ram_bytes"].astype("float64"), ls=":", marker=".",
                label="RAM sent")
    for dev in it["device"].dropna().unique():
        d = it[it["device"] == dev]
        x = d["iteration"].astype("int64").to_numpy()
        if d["qemu_init_bytes"].notna().any() or d["qemu_dirty_bytes"].notna().any():
            rep = d["qemu_init_bytes"].astype("float64").fillna(0) + d["qemu_dirty_bytes"].astype("float64").fillna(0)
            ax.plot(x, rep.to_numpy(), ls="--", marker="^", ms=3, label=f"VFIO pending {dev.split('/')[0]}")
        if d["vfio_bytes"].notna().any() and d["vfio_bytes"].fillna(0).sum() > 0:
            ax.plot(x, d["vfio_bytes"].astype("float64").to_numpy(), ls="none", marker="s", ms=3,
                    label=f"VFIO sent {dev.split('/')[0]}")
    if not ax.lines:
        return None
    ys = np.concatenate([np.asarray(ln.get_ydata(), dtype=float) for ln in ax.lines])
    ys = ys[ys > 0]
    if len(ys) and ys.max() / ys.min() > 100:
        ax.set_yscale("symlog", linthresh=max(1.0, float(ys.min())))
    _title(fig, ax, "Convergence: remaining bytes per iteration")
    ax.yaxis.set_major_formatter(_BYTES)
    ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    ax.set_xlabel("QEMU iterate round (savevm_state_iterate)", fontsize="small")
    ax.set_ylabel("bytes", fontsize="small")
    ax.tick_params(labelsize="x-small")
    return fig


def record_sizes(m: "Migration") -> Figure | None:
    """Each record's size (the 16-byte header's record_size) in stream order, by phase."""
    r = m.records[m.records["record_size_bytes"].notna()] if len(m.records) else m.records
    if not len(r):
        return None
    fig = Figure(figsize=(4.7, 2.6), dpi=DPI)
    ax = fig.add_axes((0.17, 0.17, 0.79, 0.7))
    devices = list(dict.fromkeys(r["device"].fillna("")))
    for marker, dev in zip("os^vD", devices):
        d = r[r["device"].fillna("") == dev]
        for phase in ("setup", "precopy", "stopcopy", "config"):
            p = d[d["phase"] == phase]
            if len(p):
                ax.plot(p["index"].astype("int64"), p["record_size_bytes"].astype("int64"), ls="none",
                        marker=marker, ms=3.5, color=PHASE_COLORS[phase],
                        label=f"{phase}{' ' + dev.split('/')[0] if len(devices) > 1 else ''} ({len(p)})")
        t = d[d["trailer_bytes"].fillna(0) == 8]
        if len(t):
            ax.plot(t["index"].astype("int64"), t["record_size_bytes"].astype("int64"), ls="none", marker="x",
                    color="k", ms=6, label="8-byte trailer (kernel bug)")
    _title(fig, ax, "Record sizes")
    ax.yaxis.set_major_formatter(_BYTES)
    ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    ax.set_xlabel("record index", fontsize="small")
    ax.set_ylabel("bytes", fontsize="small")
    ax.tick_params(labelsize="x-small")
    return fig


#: panel name → figure function, in page order
PANELS = {"timeline": timeline, "convergence": convergence, "record-sizes": record_sizes}


def legend_items(fig: Figure) -> list[tuple[str, str, str]]:
    """(label, colour, mark) of every labelled series: the page draws the legend in HTML, which
    costs nothing, instead of matplotlib (a fifth of the plotting time)."""
    from matplotlib.colors import to_hex

    items: dict[str, tuple[str, str, str]] = {}
    for ax in fig.axes:
        for artist in [*ax.lines, *ax.collections, *ax.patches]:
            label = artist.get_label()
            if not label or label.startswith("_") or label in items:
                continue
            if hasattr(artist, "get_color") and hasattr(artist, "get_linestyle") and hasattr(artist, "get_marker"):
                mark = "line" if artist.get_linestyle() not in ("None", "none", "") else "dot"
                colour = artist.get_color() if mark == "line" else artist.get_markerfacecolor()
            else:
                fc = artist.get_facecolor()
                colour, mark = (fc[0] if getattr(fc, "ndim", 1) == 2 else fc), "box"
            items[label] = (label, to_hex(colour), mark)
    return list(items.values())


def save_png(fig: Figure, path: Any) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    # zlib level 1: a third faster than the default for these small line plots, ~30 % larger files
    fig.savefig(path, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
