# SPDX-License-Identifier: GPL-2.0-only
"""``migtrace record``: one migration, or N back and forth between two QEMUs, into run folders.

Back and forth: a QEMU that migrated out cannot take a migration in (QEMU
accepts ``migrate-incoming`` only from a process started with
``-incoming``), so before run k ≥ 2 the previous run's source has to be
replaced by a fresh ``-incoming defer`` QEMU on the same QMP socket.  With
``--relaunch CMD`` record does it: ``quit`` on the finished source, then
``CMD`` run by the shell with ``{qmp}`` (the socket path) and ``{run}``
(the run number) substituted.  Without it record waits for whoever
orchestrates the lab to do so (a QEMU answering on that socket in status
``inmigrate``).
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from analysis.record.errors import RecordError
from analysis.record.qmp import Qmp
from analysis.record.run import RunPlan, RunResult, record_run
from analysis.record.uri import interface_for, tcp_endpoint


@dataclass
class RecordOptions:
    source_qmp: str
    output: Path
    dest_qmp: str | None = None
    migrate: str | None = None
    migrate_back: str | None = None
    incoming: str | None = None
    capabilities: list[tuple[str, bool]] = field(default_factory=list)
    parameters: list[tuple[str, str]] = field(default_factory=list)
    interface: str | None = None
    ports: list[int] = field(default_factory=list)
    #: (which QEMU: "a" = the --source-qmp one, "b" = the --dest-qmp one, its -D file)
    qemu_logs: list[tuple[str, Path]] = field(default_factory=list)
    trace_events: list[str] = field(default_factory=list)
    tracefs: bool = False
    firmware: str | None = None
    kernel: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    runs: int = 1
    relaunch: str | None = None
    timeout_s: float = 600.0
    poll_interval_s: float = 0.1


def check_options(o: RecordOptions) -> None:
    """Usage errors found before anything is touched."""
    if o.runs < 1:
        raise RecordError("--runs must be at least 1")
    if o.runs > 1 and (o.dest_qmp is None or o.migrate is None):
        raise RecordError("--runs N > 1 migrates back and forth: it needs --dest-qmp and --migrate")
    if o.relaunch and o.runs == 1:
        raise RecordError("--relaunch only matters with --runs N > 1")
    if o.incoming and (o.migrate is None or o.dest_qmp is None):
        raise RecordError("--incoming needs --migrate and --dest-qmp")
    if any(side == "b" for side, _ in o.qemu_logs) and o.dest_qmp is None:
        raise RecordError("--qemu-log destination=FILE needs --dest-qmp")
    for p in o.ports:
        if not 0 < p < 65536:
            raise RecordError(f"--port {p}: not a TCP port")
    if o.poll_interval_s <= 0 or o.timeout_s <= 0:
        raise RecordError("--poll-interval and --timeout must be positive")
    if o.output.exists() and not o.output.is_dir():
        raise RecordError(f"-o {o.output}: exists and is not a folder")
    if o.runs == 1 and (o.output / "run.json").exists():
        raise RecordError(f"-o {o.output}: already holds a run.json (give a new folder)")


def capture_target(o: RecordOptions, uri: str | None) -> tuple[str | None, list[int]]:
    """Interface and ports for tcpdump: --port, else the URI's port; all multifd channels share it."""
    ep = tcp_endpoint(uri) if uri else None
    ports = list(dict.fromkeys(o.ports)) or ([ep[1]] if ep else [])
    iface = o.interface or (interface_for(ep[0]) if ep else ("lo" if ports else None))
    return iface, ports


def run_folders(o: RecordOptions) -> list[Path]:
    """One run: ``-o`` itself; N runs: ``-o/run-NNN`` numbered after any already there."""
    if o.runs == 1:
        return [o.output]
    have = [int(p.name[4:]) for p in o.output.glob("run-[0-9][0-9][0-9]*") if p.name[4:].isdigit()] \
        if o.output.is_dir() else []
    first = max(have, default=0) + 1
    return [o.output / f"run-{i:03d}" for i in range(first, first + o.runs)]


def _kernel() -> str:
    return os.uname().release


async def _wait_incoming(address: str, label: str, timeout_s: float) -> Qmp:
    """Connect to ``address`` once a QEMU there waits for an incoming migration."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        q = Qmp(address, label)
        try:
            await q.connect(timeout=max(0.0, deadline - loop.time()))
            if await q.status() == "inmigrate":
                return q
        except RecordError:
            if loop.time() >= deadline:
                raise RecordError(f"no QEMU waiting for an incoming migration on {address} "
                                  f"within {timeout_s:g} s") from None
        await q.close()
        if loop.time() >= deadline:
            raise RecordError(f"no QEMU waiting for an incoming migration on {address} within {timeout_s:g} s")
        await asyncio.sleep(0.5)


async def _replace_source(old: Qmp, o: RecordOptions, run_no: int) -> Qmp:
    """Run k ≥ 2: the previous source becomes a fresh ``-incoming defer`` QEMU (module docstring)."""
    if o.relaunch:
        await old.quit()
        # QEMU unlinks and rebinds its socket path at start; wait for the old one to let go first.
        for _ in range(100):
            try:
                probe = Qmp(old.address, "probe")
                await probe.connect()
                await probe.close()
                await asyncio.sleep(0.1)
            except RecordError:
                break
        cmd = o.relaunch.replace("{qmp}", old.address).replace("{run}", str(run_no))
        o.output.mkdir(parents=True, exist_ok=True)
        with open(o.output / f"relaunch-{run_no:03d}.log", "wb") as log:
            # its own session: the relaunched QEMU outlives record (the VM is migrated back to it)
            subprocess.Popen(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        return await _wait_incoming(old.address, "destination", 60.0)
    await old.close()
    print(f"migtrace record: run {run_no}: waiting for a QEMU started with -incoming defer on {old.address}",
          file=sys.stderr)
    return await _wait_incoming(old.address, "destination", o.timeout_s)


async def record(o: RecordOptions, report=None) -> list[RunResult]:
    """Record ``o.runs`` migrations; ``report(result)`` is called after each run."""
    check_options(o)
    folders = run_folders(o)
    a = await Qmp(o.source_qmp, "source").connect()
    b = await Qmp(o.dest_qmp, "destination").connect() if o.dest_qmp else None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kernel = o.kernel or _kernel()
    results: list[RunResult] = []
    try:
        for i, folder in enumerate(folders):
            forward = i % 2 == 0
            src, dst = (a, b) if forward else (b, a)
            assert src is not None
            if i > 0:
                # the previous run's source (now dst) finished; swap the fresh QEMU into its slot
                fresh = await _replace_source(dst, o, i + 1)
                if forward:
                    b = dst = fresh
                else:
                    a = dst = fresh
            src.label, dst_label = "source", "destination"
            if dst is not None:
                dst.label = dst_label
            uri = o.migrate if forward or not o.migrate_back else o.migrate_back
            iface, ports = capture_target(o, uri)
            if not ports and i == 0:
                print("migtrace record: warning: no TCP port to capture (give --port or a tcp: --migrate URI): "
                      "no pcap is recorded", file=sys.stderr)
            mine, other = ("a", "b") if forward else ("b", "a")
            logs = [("qemu-log-source" if side == mine else "qemu-log-destination", p)
                    for side, p in o.qemu_logs if side in (mine, other)]
            prefix = (o.firmware or "run").replace("/", "_")
            plan = RunPlan(
                folder=folder, run_id=f"{prefix}-{stamp}-{folder.name[4:] if o.runs > 1 else '001'}",
                source=src, destination=dst, uri=uri, incoming_uri=o.incoming,
                capabilities=o.capabilities, parameters=o.parameters, interface=iface, ports=ports,
                logs=logs, trace_events=o.trace_events, tracefs=o.tracefs, firmware=o.firmware,
                kernel=kernel, labels=o.labels, timeout_s=o.timeout_s, poll_interval_s=o.poll_interval_s,
                extra={"run": i + 1, "runs": o.runs, "direction": "forward" if forward else "back"})
            res = await record_run(plan)
            results.append(res)
            if report is not None:
                report(res)
            if res.status != "completed":
                raise RecordError(f"{folder}: migration {res.status}"
                                  + (f": {res.counters.get('error-desc')}" if res.counters.get("error-desc") else ""),
                                  1)
    finally:
        for q in (a, b):
            if q is not None:
                await q.close()
    return results
