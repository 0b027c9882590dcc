# SPDX-License-Identifier: GPL-2.0-only
"""Deterministic simulator of a live migration of a VM with vfio-virtio VFs.

``simulate(profile, seed, out_dir) -> Path`` writes one run folder: the
captures a user would have (source pcapng with return path and, for QEMU
10.x, multifd flows; source and destination trace.dat; admin captures of
both PFs) and ``run.json`` (shared/contract/run-manifest.md) with the
ground truth under ``truth``.  See docs/simulator.md.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from analysis.simulate.model import Timeline, build_timeline
from analysis.simulate.profiles import FIRMWARE_PRESETS, PRESETS, QEMU_PRESETS, SimProfile, resolve

__all__ = ["simulate", "build_timeline", "SimProfile", "PRESETS", "FIRMWARE_PRESETS", "QEMU_PRESETS",
           "resolve", "run_manifest"]

#: Capture clock (CLOCK_REALTIME) of model time 0 for seed 0; each seed starts an hour later.
EPOCH0_NS = int(_dt.datetime(2026, 11, 24, 2, 0, tzinfo=_dt.timezone.utc).timestamp()) * 1_000_000_000
#: ftrace "local" clock of model time 0 (time since each host booted)
SRC_BOOT_NS = 86_400_123_456_789
DST_BOOT_NS = 172_800_987_654_321


def clocks(seed: int) -> dict[str, int]:
    epoch = EPOCH0_NS + (seed % 10_000) * 3_600_000_000_000
    return {"epoch_ns": epoch, "source_trace_ns": SRC_BOOT_NS + seed * 1_000_003,
            "destination_trace_ns": DST_BOOT_NS + seed * 2_000_011}


def run_id(p: SimProfile, seed: int) -> str:
    return f"{p.firmware.version}-{p.policy}-q{p.qemu.family}-{p.name}-s{seed}"


def run_manifest(p: SimProfile, seed: int, captures: list[dict[str, str]], truth: dict[str, Any],
                 clk: dict[str, int]) -> dict[str, Any]:
    """The run.json object (run-manifest.md)."""
    labels = {"profile": p.name, "seed": str(seed), "qemu_family": p.qemu.family,
              "switchover_ack": "on" if p.qemu.switchover_ack else "off",
              "trailer_bug": "yes" if p.trailer_bug else "no", "firmware_profile": p.firmware.name}
    labels.update(p.labels)
    truth = dict(truth)
    truth["clock"] = {
        "source_stream_epoch_ns": clk["epoch_ns"],
        "admin_epoch_ns": clk["epoch_ns"],
        "source_trace_ns": clk["source_trace_ns"],
        "destination_trace_ns": clk["destination_trace_ns"],
        "note": "capture timestamp of simulation time 0 in each capture's clock",
    }
    truth["profile"] = p.to_json()
    truth["seed"] = seed
    return {
        "schema": 1,
        "run_id": run_id(p, seed),
        "kind": "simulated",
        "firmware": {"vendor": p.firmware.vendor, "model": p.firmware.model, "version": p.firmware.version},
        "kernel": p.kernel,
        "qemu": p.qemu.version,
        "driver_precopy_policy": p.policy,
        "vm": {"ram_bytes": p.ram_bytes, "vcpus": p.vcpus, "queue_pairs": p.firmware.queue_pairs, "vfs": p.vfs},
        "link": {"gbit_per_s": p.link_gbit_per_s, "latency_us": p.link_latency_us},
        "labels": labels,
        "captures": captures,
        "truth": truth,
    }


def simulate(profile: SimProfile | str, seed: int, out_dir: str | Path) -> Path:
    """Simulate one migration and write its run folder; returns the folder."""
    from analysis.simulate.render_admin import admin_records, write_admin
    from analysis.simulate.render_qmp import query_migrate, query_migrate_series
    from analysis.simulate.render_trace import write_trace
    from analysis.simulate.truth import truth as make_truth

    p = PRESETS[profile] if isinstance(profile, str) else profile
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tl: Timeline = build_timeline(p, seed)
    clk = clocks(seed)
    captures: list[dict[str, str]] = []
    bytes_main = bytes_multifd = None
    try:
        from analysis.simulate.render_stream import write_stream
    except ImportError:  # the QEMU stream builders are not available in this tree
        write_stream = None
    if write_stream is not None:
        bytes_main, bytes_multifd = write_stream(out / "source.pcapng", tl, clk["epoch_ns"])
        captures.append({"path": "source.pcapng", "role": "source-stream"})
    version = p.qemu.version
    src_admin = admin_records(tl.admin, "source", clk["source_trace_ns"]) if p.admin_in_trace else []
    dst_admin = admin_records(tl.admin, "destination", clk["destination_trace_ns"]) if p.admin_in_trace else []
    write_trace(out / "source.dat", tl.events, tl.ioctls, "source", version, clk["source_trace_ns"],
                f"Linux src-host {p.kernel} x86_64", src_admin)
    captures.append({"path": "source.dat", "role": "source-trace"})
    write_trace(out / "destination.dat", tl.events, tl.ioctls, "destination", version,
                clk["destination_trace_ns"], f"Linux dst-host {p.kernel} x86_64", dst_admin)
    captures.append({"path": "destination.dat", "role": "destination-trace"})
    write_admin(out / "admin-source.pcapng", tl.admin, "source", clk["epoch_ns"])
    captures.append({"path": "admin-source.pcapng", "role": "admin"})
    write_admin(out / "admin-destination.pcapng", tl.admin, "destination", clk["epoch_ns"])
    captures.append({"path": "admin-destination.pcapng", "role": "admin"})
    truth = make_truth(tl, bytes_main=bytes_main, bytes_multifd=bytes_multifd)
    if bytes_main is not None:
        qmp = query_migrate(tl, bytes_main, bytes_multifd or 0, truth["dirty_syncs"])
        (out / "source-query-migrate.json").write_text(json.dumps(qmp, indent=1) + "\n")
        captures.append({"path": "source-query-migrate.json", "role": "other"})
        (out / "source-qmp.jsonl").write_text(query_migrate_series(tl, qmp, clk["epoch_ns"]))
        captures.append({"path": "source-qmp.jsonl", "role": "qmp-source"})
    manifest = run_manifest(p, seed, captures, truth, clk)
    (out / "run.json").write_text(dump_manifest(manifest))
    return out


def dump_manifest(manifest: dict[str, Any]) -> str:
    """run.json text: one line per top-level field and per truth field (compact, diffable)."""
    lines = []
    for k, v in manifest.items():
        if k == "truth":
            inner = [f'  {json.dumps(tk)}: {json.dumps(tv, separators=(",", ":"))}' for tk, tv in v.items()]
            lines.append(f' {json.dumps(k)}: {{\n' + ",\n".join(inner) + "\n }")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"
