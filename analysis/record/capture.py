# SPDX-License-Identifier: GPL-2.0-only
"""The capture processes of a recorded run: tcpdump, QEMU log-file tails, ftrace from tracefs.

Each one is started before the migration and stopped after it; ``stop``
is safe to call twice and on a half-started object, so the recorder can
always reap tcpdump and restore tracefs in a ``finally``.
"""
from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from analysis.record.errors import RecordError


class Tcpdump:
    """``tcpdump -i IF -w FILE 'tcp port P or …'`` running for the length of one migration."""

    def __init__(self, interface: str, ports: list[int], path: Path) -> None:
        self.interface = interface
        self.ports = ports
        self.path = path
        self.proc: subprocess.Popen | None = None
        self._err: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self.stats: dict[str, int] = {}

    @property
    def filter(self) -> str:
        return " or ".join(f"tcp port {p}" for p in self.ports)

    def start(self, timeout: float = 10.0) -> None:
        exe = shutil.which("tcpdump")
        if exe is None:
            raise RecordError("tcpdump not found on PATH (Debian package tcpdump)")
        # --immediate-mode: without it libpcap hands packets over a ring block at a time and tcpdump,
        # stopped by SIGINT, drops the block not yet handed over (the end of the stream, SHUT, FIN);
        # -U: write each packet as it arrives; -B 32768: 32 MiB of kernel buffer for loopback bursts.
        cmd = [exe, "-i", self.interface, "-s", "0", "--immediate-mode", "-U", "-n", "-B", "32768",
               "-w", str(self.path), self.filter]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True, errors="replace")
        except OSError as e:
            raise RecordError(f"tcpdump: {e.strerror or e}") from None
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        # tcpdump says "listening on IF" once the filter is attached: packets before that are lost.
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                msg = " ".join(line.strip() for line in self._err if line.strip()) or "no output"
                hint = " (capturing needs root or CAP_NET_RAW)" if os.geteuid() != 0 else ""
                raise RecordError(f"tcpdump did not start on {self.interface}: {msg}{hint}")

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err.append(line)
            if "listening on" in line:
                self._ready.set()

    def stop(self) -> None:
        """SIGINT and wait, so tcpdump flushes its file and prints its counters; SIGKILL after 10 s."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        for line in self._err:
            m = re.match(r"\s*(\d+) packets? (captured|received by filter|dropped by kernel)", line)
            if m:
                self.stats[m.group(2).replace(" ", "_")] = int(m.group(1))
        self.proc = None


class LogTail:
    """The part of a QEMU log-backend file written during the run.

    The size is remembered at ``start``; ``copy_to`` copies from there to
    the end (from the beginning when the file shrank: a relaunched QEMU
    truncates its ``-D`` file).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0

    def start(self) -> None:
        try:
            self.offset = self.path.stat().st_size
        except FileNotFoundError:
            self.offset = 0
        except OSError as e:
            raise RecordError(f"--qemu-log {self.path}: {e.strerror or e}") from None

    def copy_to(self, dest: Path) -> int:
        try:
            size = self.path.stat().st_size
            start = self.offset if size >= self.offset else 0
            with open(self.path, "rb") as src, open(dest, "wb") as out:
                src.seek(start)
                n = 0
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                    n += len(chunk)
            return n
        except OSError as e:
            raise RecordError(f"--qemu-log {self.path}: {e.strerror or e}") from None


def _tracefs_mount() -> str | None:
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "tracefs":
                    return parts[1].replace("\\040", " ")
    except OSError:
        pass
    return None


class Tracefs:
    """ftrace of this host during the run, as tracefs text (the top-level buffer).

    QEMU's ``ftrace`` trace backend and the vfio-virtio driver's events write
    into the top-level buffer, so that is the one read: ``trace_pipe`` is
    drained while the migration runs (the buffer cannot overflow on a long
    run) behind the ``trace`` file's comment header.  tracefs is mounted on a
    private folder when it is not mounted anywhere (unmounted afterwards);
    ``tracing_on`` is set to 1 and restored.  Markers with the wall-clock time
    bracket the run, so the trace clock can be related to the pcap's.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.root: Path | None = None
        self._mounted: str | None = None
        self._tracing_on: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._file = None
        self.bytes = 0

    def start(self, label: str) -> None:
        mnt = _tracefs_mount()
        if mnt is None:
            tmp = tempfile.mkdtemp(prefix="migtrace-tracefs-")
            r = subprocess.run(["mount", "-t", "tracefs", "nodev", tmp], capture_output=True, text=True)
            if r.returncode != 0:
                os.rmdir(tmp)
                raise RecordError(f"--tracefs: cannot mount tracefs ({r.stderr.strip() or 'mount failed'}; "
                                  "needs root)")
            self._mounted = mnt = tmp
        self.root = Path(mnt)
        try:
            self._tracing_on = (self.root / "tracing_on").read_text().strip()
            header = [ln for ln in (self.root / "trace").read_text(errors="replace").splitlines()[:16]
                      if ln.startswith("#")]
            self._file = open(self.out, "w", encoding="utf-8", errors="replace")
            self._file.write("\n".join(header) + "\n")
            self._fd = os.open(self.root / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
            (self.root / "tracing_on").write_text("1\n")
        except OSError as e:
            self.stop()
            raise RecordError(f"--tracefs {self.root}: {e.strerror or e} (needs root)") from None
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()
        self.mark(f"migtrace-record start {label} realtime_ns={time.time_ns()}")

    def mark(self, text: str) -> None:
        if self.root is None:
            return
        try:
            with open(self.root / "trace_marker", "w") as f:
                f.write(text + "\n")
        except OSError:
            pass  # a marker is a convenience; a kernel without trace_marker still records events

    def _read_available(self) -> None:
        assert self._fd is not None and self._file is not None
        while True:
            try:
                chunk = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.bytes += len(chunk)
            self._file.write(chunk.decode("utf-8", errors="replace"))

    def _drain(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self._fd], [], [], 0.1)
            if r:
                self._read_available()

    def stop(self, label: str = "") -> None:
        if self._thread is not None:
            self.mark(f"migtrace-record end {label} realtime_ns={time.time_ns()}")
            time.sleep(0.05)
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            self._read_available()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.root is not None and self._tracing_on is not None:
            try:
                (self.root / "tracing_on").write_text(self._tracing_on + "\n")
            except OSError:
                pass
            self._tracing_on = None
        if self._mounted is not None:
            subprocess.run(["umount", self._mounted], capture_output=True)
            try:
                os.rmdir(self._mounted)
            except OSError:
                pass
            self._mounted = None
