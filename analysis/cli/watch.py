# SPDX-License-Identifier: GPL-2.0-only
"""Watch one migration live: a line per pre-copy pass, the switchover, then the summary.

The capture is a pcap/pcapng file (read front to back, as it would arrive),
- (standard input, e.g. from tcpdump -w - -U), a file still being written
(--follow), or a live interface (--interface: runs tcpdump -i IF -w - -U on
the --port(s), needs root; ends once the migration's stream ended).  A pass
is the page-repeat segment `summary` counts for precopy_iterations (method
stream).  On a terminal the table redraws in place; otherwise (or with
--json) JSON Lines: watch_pass, watch_switchover, then migration_summary
and device_summary as `summary --json` gives them (docs/json-lines.md).

examples:
  migtrace watch traces/real/qemu-tcp-returnpath.pcap
  tcpdump -i lo -w - -U -B 32768 tcp port 4444 | migtrace watch -
  migtrace watch --interface eth0 --port 4444 --json | jq 'select(.kind=="watch_pass")'
  migtrace watch --follow --idle-timeout 60 /var/tmp/migration.pcap
  migtrace watch --interface eth0 --port 4444 --qemu-log /var/log/qemu-src-trace.log
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Any, Callable

from analysis.cli.main import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE
from analysis.live.args import STDIN_NAME, add_live_arguments

NAME = "watch"
HELP = "live view of a migration: one line per pre-copy pass, the switchover, then the summary"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("capture", nargs="?", metavar="CAPTURE",
                   help="pcap/pcapng file, or - for standard input (or use --interface)")
    p.add_argument("--interface", metavar="IF", help="capture on IF with tcpdump (needs root)")
    p.add_argument("--port", type=int, action="append", metavar="N",
                   help="with --interface: migration port(s) to capture (default: all TCP)")
    p.add_argument("--json", action="store_true", help="JSON Lines even on a terminal")
    p.add_argument("--qemu-log", metavar="FILE",
                   help="the source QEMU's log-backend file (-D FILE, vfio_* trace events on), read as it "
                        "grows: each pass then shows the devices' pre-copy sizes QEMU reported")
    add_live_arguments(p)


def tcpdump_command(interface: str, ports: list[int] | None) -> list[str]:
    """The capture subprocess: raw packets to stdout, flushed per packet (-U); a 32 MiB
    kernel buffer (-B, KiB) because loopback frames are 64 KiB and the default 2 MiB holds 32
    of them: a busy host (QEMU saturating the CPUs) would drop packets, i.e. stream bytes."""
    filt = " or ".join(f"tcp port {p}" for p in ports) if ports else "tcp"
    return ["tcpdump", "-i", interface, "-w", "-", "-U", "-s", "0", "-B", "32768", "-n", filt]


class JsonDisplay:
    def __init__(self, out: Any = None) -> None:
        self.out = out or sys.stdout
        from analysis.cli.output import _json_default

        self._encode = json.JSONEncoder(separators=(",", ":"), default=_json_default).encode

    def event(self, obj: dict[str, Any]) -> None:
        self.out.write(self._encode(obj) + "\n")
        self.out.flush()

    def summary(self, objs: list[dict[str, Any]], table: str | None) -> None:
        for o in objs:
            self.event(o)

    def close(self) -> None:
        pass


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


class RichDisplay:
    """The terminal view: a table of passes redrawn in place (rich.live)."""

    def __init__(self, title: str, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console()
        self.title = title
        self.rows: list[dict[str, Any]] = []
        self.switchover: dict[str, Any] | None = None
        self.t0: int | None = None
        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        t = Table(title=Text(f"migtrace watch {self.title}"), title_justify="left")
        for c in ("pass", "t (s)", "duration ms", "pages", "MB", "MB/s", "VFIO records / MB per device"):
            t.add_column(c, justify="right" if c != "VFIO records / MB per device" else "left")
        for r in self.rows:
            rate = r["rate_bytes_per_s"]
            sizes = r.get("device_precopy_bytes") or {}
            vfio = ", ".join(f"{d}: {v['records']} / {_mb(v['bytes'])}" for d, v in r["vfio"].items())
            vfio += "".join(f" [{d} QEMU: init {_mb(v['initial'])} dirty {_mb(v['dirty'])}]"
                            for d, v in sizes.items()) if sizes else ""
            vfio = vfio.strip() or "-"
            t.add_row(str(r["pass"]), self._t(r["ts_ns"]), f"{r['duration_ms'] or 0:.1f}", str(r["pages"]),
                      _mb(r["bytes"]), _mb(rate and int(rate)), Text(vfio))  # not markup: [..] is text
        if self.switchover is not None:
            s = self.switchover
            t.add_row("switchover", self._t(s["ts_ns"]), f"{s['downtime_wire_ms'] or 0:.3f}", str(s["stopcopy_pages"]),
                      _mb(s["stopcopy_bytes"]), "", f"wire downtime ({s['method']})")
        return t

    def _t(self, ns: int | None) -> str:
        if ns is None:
            return "-"
        if self.t0 is None:
            self.t0 = ns
        return f"{(ns - self.t0) / 1e9:.3f}"

    def event(self, obj: dict[str, Any]) -> None:
        if obj["kind"] == "watch_pass":
            self.rows.append(obj)
        elif obj["kind"] == "watch_switchover":
            self.switchover = obj
        self.live.update(self._table())

    def summary(self, objs: list[dict[str, Any]], table: str | None) -> None:
        self.close()
        if table:
            self.console.print(table, highlight=False, markup=False, soft_wrap=True)
        for o in objs:  # as `summary`: errors and warnings
            if o["kind"] == "finding" and o.get("severity") in ("error", "warning"):
                self.console.print(f"{o['severity'].upper()} {o['code']}: {o['message']}", markup=False,
                                   highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self.live.is_started:
            self.live.stop()


def _forward_stderr(proc: subprocess.Popen) -> threading.Thread:
    """tcpdump's messages ("listening on ...", errors) go to our stderr as they come."""

    def pump() -> None:
        for raw in proc.stderr:  # type: ignore[union-attr]
            sys.stderr.write(raw.decode("utf-8", "replace"))
            sys.stderr.flush()

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return t


def _start_tcpdump(args: argparse.Namespace) -> subprocess.Popen | None:
    exe = shutil.which("tcpdump")
    if exe is None:
        print("migtrace watch: --interface needs tcpdump (not found on PATH)", file=sys.stderr)
        return None
    cmd = tcpdump_command(args.interface, args.port)
    cmd[0] = exe
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        print(f"migtrace watch: cannot start tcpdump: {e.strerror or e}", file=sys.stderr)
        return None


def _summary(path: str, shown_as: str) -> tuple[list[dict[str, Any]], str | None, int]:
    """``summary --json``'s objects for the capture at ``path`` (named ``shown_as``), the human
    table, and the number of error findings."""
    from analysis.cli.summary import selected_findings
    from analysis.live.spool import renamed
    from analysis.report import format_table, group_inputs, load_groups, summary_table
    from analysis.summary import summary_objects

    loaded = load_groups(group_inputs([path]), progress=False)
    objs: list[dict[str, Any]] = []
    errors = 0
    for _, m, _msg in loaded:
        if m is None:
            continue
        errors += sum(1 for f in m.findings if f.get("severity") == "error")
        objs += summary_objects(m) + selected_findings(m)
    table = format_table(summary_table(loaded)) if any(m is not None for _, m, _ in loaded) else None
    return renamed(objs, path if path != shown_as else None, shown_as), table, errors


def run(args: argparse.Namespace) -> int:
    from analysis.live.source import LiveCapture, NotACapture, follow_problem

    if (args.capture is None) == (args.interface is None):
        print("migtrace watch: give CAPTURE, - or --interface IF (one of them)", file=sys.stderr)
        return EXIT_USAGE
    if args.port and not args.interface:
        print("migtrace watch: --port goes with --interface", file=sys.stderr)
        return EXIT_USAGE
    if args.capture is not None:
        from analysis.cli.paths import capture_file_problem

        problem = follow_problem(args.capture) if args.follow or args.capture == STDIN_NAME \
            else capture_file_problem(args.capture)
        if problem:
            print(f"migtrace watch: {args.capture}: {problem}", file=sys.stderr)
            return EXIT_USAGE
    if args.qemu_log is not None and not os.path.isfile(args.qemu_log):
        print(f"migtrace watch: {args.qemu_log}: no such file", file=sys.stderr)
        return EXIT_USAGE
    tmpdir = None
    proc = None
    tee = None
    name = args.capture if args.capture is not None else f"interface:{args.interface}"
    try:
        if args.capture is None or args.capture == STDIN_NAME or args.follow:
            # what is read is kept on disk for the final summary (the analysis reads files)
            tmpdir = tempfile.mkdtemp(prefix="migtrace-watch-")
            tee = open(os.path.join(tmpdir, "capture"), "wb")  # pcap or pcapng: detected by content
        fd = None
        if args.interface is not None:
            proc = _start_tcpdump(args)
            if proc is None:
                return EXIT_USAGE
            fd = proc.stdout.fileno()  # type: ignore[union-attr]
            pump = _forward_stderr(proc)
        try:
            live = LiveCapture(args.capture or name, follow=args.follow, idle_timeout=args.idle_timeout,
                               fd=fd, tee=tee)
        except (NotACapture, OSError) as e:
            msg = str(e) if isinstance(e, NotACapture) else (e.strerror or str(e))
            if proc is not None:
                proc.wait(5)
                pump.join(5)
                msg += " (tcpdump exited with status %s; see its messages above)" % proc.returncode
            print(f"migtrace watch: {name}: {msg}", file=sys.stderr)
            return EXIT_USAGE
        display: Any = JsonDisplay() if args.json or not sys.stdout.isatty() else RichDisplay(name)
        sizes = None
        if args.qemu_log is not None:
            from analysis.live.qemulog import QemuLogSizes

            sizes = QemuLogSizes(args.qemu_log)
        try:
            watch_capture(live, display.event, sizes)
        finally:
            live.close()
            display.close()
            if sizes is not None:
                sizes.close()
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        if tee is not None:
            tee.close()
        path = tee.name if tee is not None else args.capture
        objs, table, errors = _summary(path, name)
        display.summary(objs, table)
        return EXIT_INPUT_ERRORS if errors else EXIT_OK
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if tee is not None and not tee.closed:
            tee.close()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


def watch_capture(live: Any, emit: Callable[[dict[str, Any]], None], sizes: Any = None) -> Any:
    """Decode ``live`` (a :class:`~analysis.live.source.LiveCapture`), feeding a
    :class:`~analysis.live.watch.Watch` that calls ``emit``; the Watch is returned."""
    from analysis.emit.migration import to_objects
    from analysis.live.watch import Watch
    from dissect.qemu.session import decode_capture

    w = Watch(emit, sizes)

    def convert(item: Any) -> list[dict[str, Any]]:
        for obj in to_objects(item):
            w.unit(obj)
        return []

    with live.sigint_ends_input():
        for item in decode_capture(live.reader, convert=convert, result=live.result, page_log=w.page_log):
            if isinstance(item, dict):
                w.unit(item)
    w.finish()
    return w
