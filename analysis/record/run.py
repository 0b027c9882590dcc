# SPDX-License-Identifier: GPL-2.0-only
"""Record one migration into a run folder (pcap, QEMU logs, ftrace, query-migrate series, run.json)."""
from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from analysis.manifest import MANIFEST_NAME, parse_manifest
from analysis.record.capture import LogTail, Tcpdump, Tracefs
from analysis.record.errors import RecordError
from analysis.record.qmp import TERMINAL, Qmp

#: Seconds the destination gets to finish loading after the source completed, and
#: the trailing packets (return-path SHUT, FIN) get to reach tcpdump.
DEST_GRACE_S = 5.0
TAIL_S = 0.3


@dataclass
class RunPlan:
    """Everything one run needs, resolved by the session (sides already assigned)."""

    folder: Path
    run_id: str
    source: Qmp
    destination: Qmp | None
    uri: str | None               # None: wait for a migration started by someone else
    incoming_uri: str | None
    capabilities: list[tuple[str, bool]]
    parameters: list[tuple[str, str]]
    interface: str | None
    ports: list[int]
    logs: list[tuple[str, Path]]  # (role, the QEMU's -D file)
    trace_events: list[str]
    tracefs: bool
    firmware: str | None
    kernel: str
    labels: dict[str, str]
    timeout_s: float
    poll_interval_s: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    folder: Path
    status: str
    counters: dict[str, Any]
    manifest: dict[str, Any]


class _Series:
    """A JSON Lines time series of ``query-migrate`` replies, each with ``ts_ns`` (CLOCK_REALTIME)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.f: TextIO = open(path, "w", encoding="utf-8")
        self.last: dict[str, Any] = {}

    def add(self, reply: dict[str, Any], ts_ns: int) -> None:
        self.last = reply
        self.f.write(json.dumps({"ts_ns": ts_ns, **reply}, separators=(",", ":")) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()


async def _poll(q: Qmp) -> tuple[dict[str, Any], int]:
    reply = await q.execute("query-migrate")
    return reply, time.time_ns()


def _started(reply: dict[str, Any], before: dict[str, Any]) -> bool:
    """A migration has begun: a status other than none, and not the reply left by an earlier one."""
    st = reply.get("status")
    if st in (None, "none"):
        return False
    return st not in TERMINAL or reply != before


async def record_run(plan: RunPlan) -> RunResult:
    """Capture one migration; the run folder is written even when the migration fails."""
    folder = plan.folder
    folder.mkdir(parents=True, exist_ok=True)
    src, dst = plan.source, plan.destination
    qemu_version = await src.version()
    vm = await _vm_facts(src)
    if plan.uri is not None:
        await src.apply(plan.capabilities, plan.parameters)
    config = await src.config()
    restore_src = await src.trace_events_enable(plan.trace_events) if plan.trace_events else []
    restore_dst: list[str] = []
    if dst is not None and plan.trace_events:
        restore_dst = await dst.trace_events_enable(plan.trace_events)
    captures: list[dict[str, str]] = []
    tails = [(role, LogTail(p)) for role, p in plan.logs]
    for _, t in tails:
        t.start()
    dump = Tcpdump(plan.interface or "lo", plan.ports, folder / "source.pcap") if plan.ports else None
    trace = Tracefs(folder / "source-trace.txt") if plan.tracefs else None
    series_src = _Series(folder / "qmp-source.jsonl")
    series_dst = _Series(folder / "qmp-destination.jsonl") if dst is not None else None
    t_start = time.time_ns()
    status = "none"
    try:
        if dump is not None:
            dump.start()
        if trace is not None:
            trace.start(plan.run_id)
        before = await src.execute("query-migrate")
        if plan.uri is not None:
            if dst is not None:
                await dst.prepare_incoming(plan.incoming_uri or plan.uri, plan.capabilities, plan.parameters)
            await src.execute("migrate", {"uri": plan.uri})
        status = await _follow(plan, before, series_src, series_dst)
    finally:
        series_src.close()
        if series_dst is not None:
            series_dst.close()
        await asyncio.sleep(TAIL_S)
        if dump is not None:
            dump.stop()
        if trace is not None:
            trace.stop(plan.run_id)
        for q, names in ((src, restore_src), (dst, restore_dst)):
            if q is not None and names:
                try:
                    await q.trace_events_restore(names)
                except RecordError as e:
                    print(f"migtrace record: warning: {e}", file=sys.stderr)
    if dump is not None:
        captures.append({"path": "source.pcap", "role": "source-stream"})
    captures.append({"path": "qmp-source.jsonl", "role": "qmp-source"})
    if series_dst is not None:
        captures.append({"path": "qmp-destination.jsonl", "role": "qmp-destination"})
    for role, t in tails:
        name = f"{role}.log"
        t.copy_to(folder / name)
        captures.append({"path": name, "role": role})
    if trace is not None:
        captures.append({"path": "source-trace.txt", "role": "source-trace"})
    counters = series_src.last
    recorded: dict[str, Any] = {
        "tool": "migtrace record", "started_ns": t_start, "ended_ns": time.time_ns(),
        "source_qmp": src.address, "destination_qmp": dst.address if dst is not None else None,
        "uri": plan.uri, "started_by": "record" if plan.uri is not None else "other",
        "destination_counters": series_dst.last if series_dst is not None else None, **plan.extra}
    if dump is not None:
        recorded["tcpdump"] = {"interface": dump.interface, "filter": dump.filter, **dump.stats}
    if trace is not None:
        recorded["tracefs_bytes"] = trace.bytes
    manifest: dict[str, Any] = {
        "schema": 1, "run_id": plan.run_id, "kind": "real",
        "firmware": {"version": plan.firmware} if plan.firmware else {},
        "kernel": plan.kernel, "qemu": qemu_version, "vm": vm, "labels": dict(plan.labels),
        "captures": captures, "qemu_counters": counters, "qemu_config": config, "recorded": recorded}
    parse_manifest(json.loads(json.dumps(manifest)), folder / MANIFEST_NAME)  # what we write must read back
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return RunResult(folder, status, counters, manifest)


async def _follow(plan: RunPlan, before: dict[str, Any], series_src: _Series, series_dst: _Series | None) -> str:
    """Poll both sides at ``poll_interval_s`` until the source's migration is over; its final status."""
    loop = asyncio.get_running_loop()
    src, dst = plan.source, plan.destination
    deadline = loop.time() + plan.timeout_s
    started = plan.uri is not None
    cancelled_at: float | None = None
    while True:
        tick = loop.time()
        reply, ts = await _poll(src)
        if not started:
            started = _started(reply, before)
            if not started:
                if tick > deadline:
                    raise RecordError(f"no migration started on {src.address} within {plan.timeout_s:g} s", 1)
                await asyncio.sleep(plan.poll_interval_s)
                continue
        series_src.add(reply, ts)
        if dst is not None and series_dst is not None:
            dst = await _poll_destination(dst, series_dst)
        status = str(reply.get("status", "none"))
        if status in TERMINAL:
            break
        if tick > deadline and cancelled_at is None:
            print(f"migtrace record: migration not finished after {plan.timeout_s:g} s: migrate_cancel",
                  file=sys.stderr)
            await src.execute("migrate_cancel")
            cancelled_at = tick
        elif cancelled_at is not None and tick - cancelled_at > 30:
            raise RecordError(f"migration on {src.address} did not stop 30 s after migrate_cancel", 1)
        await asyncio.sleep(max(0.0, plan.poll_interval_s - (loop.time() - tick)))
    if series_dst is not None:
        end = loop.time() + DEST_GRACE_S
        while dst is not None and str(series_dst.last.get("status")) not in TERMINAL and loop.time() < end:
            await asyncio.sleep(plan.poll_interval_s)
            dst = await _poll_destination(dst, series_dst)
    return status


async def _poll_destination(dst: Qmp, series: _Series) -> Qmp | None:
    """One destination poll; a destination that went away (e.g. QEMU exited on a failed load) is
    reported once and no longer polled, the source's status then tells how the migration ended."""
    try:
        reply, ts = await _poll(dst)
    except RecordError as e:
        print(f"migtrace record: warning: {e}; the destination is no longer polled", file=sys.stderr)
        return None
    series.add(reply, ts)
    return dst


async def _vm_facts(q: Qmp) -> dict[str, Any]:
    """``vm.ram_bytes`` and ``vm.vcpus`` of run-manifest.md, asked of QEMU."""
    vm: dict[str, Any] = {}
    try:
        vm["ram_bytes"] = int((await q.execute("query-memory-size-summary"))["base-memory"])
    except (RecordError, KeyError, TypeError, ValueError):
        pass
    try:
        vm["vcpus"] = len(await q.execute("query-cpus-fast"))
    except (RecordError, TypeError):
        pass
    return vm
