# SPDX-License-Identifier: GPL-2.0-only
"""Downtime estimates of one migration, each with its method: QEMU's own (a), the
wire window (b), its breakdown (c) and the bytes / bandwidth model (d).

Specs: ``qemu-trace-events.md`` §4, §6, §7.2 (checkpoints, query-migrate),
``qemu-migration-stream.md`` §14 (switchover, return path).
docs/analysis.md, "Downtime", explains every method.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis.metrics.selection import _NS, _primary, main_sections, qemu_events

if TYPE_CHECKING:  # pragma: no cover
    from analysis.load import Migration


# --- downtime window ---------------------------------------------------------------------------

def downtime_window(m: "Migration") -> dict[str, Any]:
    """:func:`_downtime_window`, computed once per migration (the summary, the plots, the
    report and the exports ask for it several times; the frames do not change after load)."""
    cached = getattr(m, "_downtime_window_cache", None)
    if cached is None:
        cached = _downtime_window(m)
        try:
            m._downtime_window_cache = cached  # type: ignore[attr-defined]
        except AttributeError:  # a stand-in object without a __dict__
            pass
    return dict(cached)


def _downtime_window(m: "Migration") -> dict[str, Any]:
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
