# SPDX-License-Identifier: GPL-2.0-only
"""Real QEMU VMs for tests: two qemu-system-x86_64 on loopback with QMP unix sockets.

The guest is the tiny multiboot dirtying kernel of traces/real/guest (built
at test time with the system gcc/ld; no downloads).  Acceleration: TCG
when KVM is not usable: /dev/kvm missing, or the guest's loop not running
under it (on the nested KVM of the CI host it made no progress in 8 s),
probed once per session; MIGTRACE_QEMU_ACCEL=kvm|tcg decides instead.
TCG runs the loop at ~8 M page writes/s, plenty for a 32 MiB guest.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QEMU = "qemu-system-x86_64"
#: QEMU 10.0.2 unpacked beside the system's 7.2 (traces/real/record_qemu10.py unpack; scripts/test.sh)
QEMU10_ROOT = Path(os.environ.get("MIGTRACE_QEMU10_ROOT", "/opt/qemu10"))


def qemu10_reason() -> str | None:
    """Why QEMU 10.0.2 cannot run here, or None."""
    if not (QEMU10_ROOT / "usr/bin/qemu-system-x86_64").is_file():
        return f"QEMU 10.0.2 is not unpacked in {QEMU10_ROOT} (python3 traces/real/record_qemu10.py unpack)"
    return None


def qemu_prefix(version: str) -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment of the system QEMU (``"7.2"``) or the unpacked 10.0.2."""
    if version == "7.2":
        return [QEMU], {}
    r = QEMU10_ROOT
    return ([str(r / "usr/bin/qemu-system-x86_64"), "-L", str(r / "usr/share/seabios"), "-L",
             str(r / "usr/share/qemu"), "-audio", "none"],
            {"QEMU_MODULE_DIR": str(r / "usr/lib/x86_64-linux-gnu/qemu")})


def skip_reason() -> str | None:
    """Why real-QEMU tests cannot run here, or None."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (Debian package qemu-system-x86)"
    if shutil.which("tcpdump") is None:
        return "tcpdump is not installed (Debian package tcpdump)"
    if os.geteuid() != 0:
        return "capturing with tcpdump needs root"
    for tool in ("gcc", "ld"):
        if shutil.which(tool) is None:
            return f"{tool} is needed to build the test guest (traces/real/guest/build.sh)"
    try:
        import qemu.qmp  # noqa: F401
    except ModuleNotFoundError:
        return "the qemu.qmp package is not installed"
    return None


_ACCEL: list[str] = []


def accel() -> str:
    """MIGTRACE_QEMU_ACCEL, else kvm when /dev/kvm opens and runs the guest's loop, else tcg."""
    if not _ACCEL:
        _ACCEL.append(os.environ.get("MIGTRACE_QEMU_ACCEL") or _probe_kvm())
    return _ACCEL[0]


def _probe_kvm(timeout: float = 3.0) -> str:
    """Boot the guest under KVM for up to ``timeout`` s: KVM counts as usable once the guest's
    loop prints its first progress dot (2^24 page writes: milliseconds on working KVM)."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return "tcg"
    work = Path(tempfile.mkdtemp(prefix="mtqkvm"))
    try:
        guest = build_guest(work)
        console = work / "console"
        proc = subprocess.Popen([QEMU, "-machine", "pc,accel=kvm", "-m", "32", "-nodefaults", "-display", "none",
                                 "-kernel", str(guest), "-append", "pages=64", "-serial", f"file:{console}"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if console.exists() and b"\n." in console.read_bytes():
                    return "kvm"
                time.sleep(0.05)
            return "tcg"
        finally:
            proc.kill()
            proc.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def build_guest(out: Path) -> Path:
    r = subprocess.run(["bash", str(ROOT / "traces/real/guest/build.sh"), str(out)],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.skip(f"the test guest did not build: {r.stderr.strip()[:200]}")
    return out / "dirtyguest.elf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class VM:
    name: str
    qmp: Path
    ctl: Path       # a second QMP monitor, for the test itself while record holds the first
    log: Path       # -D log-backend file
    console: Path   # COM1
    proc: subprocess.Popen


@dataclass
class Lab:
    """QEMUs started in ``work`` (short path: unix socket paths are limited to 108 bytes)."""

    guest: Path
    pages: int = 64
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mtq")))
    vms: list[VM] = field(default_factory=list)
    #: "7.2" (the system's qemu-system-x86) or "10.0" (QEMU10_ROOT)
    qemu: str = "7.2"

    def base_cmd(self) -> list[str]:
        return qemu_prefix(self.qemu)[0] + [
            "-machine", f"pc,accel={accel()}", "-m", "32", "-nodefaults", "-display", "none",
            "-kernel", str(self.guest), "-append", f"pages={self.pages}", "-msg", "timestamp=on"]

    def start(self, name: str, incoming: bool = False) -> VM:
        w = self.work
        vm = VM(name, w / f"{name}.qmp", w / f"{name}.ctl", w / f"{name}.log", w / f"{name}.console", None)  # type: ignore[arg-type]
        cmd = self.base_cmd() + ["-qmp", f"unix:{vm.qmp},server=on,wait=off",
                                 "-qmp", f"unix:{vm.ctl},server=on,wait=off",
                                 "-D", str(vm.log), "-serial", f"file:{vm.console}",
                                 "-pidfile", str(w / f"{name}.pid")]
        if incoming:
            cmd += ["-incoming", "defer"]
        vm.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env={**os.environ, **qemu_prefix(self.qemu)[1]})
        self.vms.append(vm)
        deadline = time.monotonic() + 20
        while not (vm.qmp.exists() and vm.ctl.exists()):
            if vm.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{QEMU} {name} did not start: {' '.join(cmd)}")
            time.sleep(0.05)
        return vm

    def relaunch_template(self) -> str:
        """``record --relaunch``: a fresh incoming QEMU on socket {qmp}, with a pidfile for cleanup."""
        return " ".join(self.base_cmd()) + (" -qmp unix:{qmp},server=on,wait=off -incoming defer"
                                            " -pidfile {qmp}.pid -serial file:{qmp}.console")

    def wait_guest_running(self, vm: VM, timeout: float = 30.0) -> None:
        """Until the guest printed its banner: its dirtying loop runs from then on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if vm.console.exists() and b"dirtyguest pages=" in vm.console.read_bytes():
                return
            time.sleep(0.05)
        raise AssertionError(f"guest {vm.name} printed nothing in {timeout:g} s")

    def close(self) -> None:
        pids = [vm.proc.pid for vm in self.vms if vm.proc.poll() is None]
        for pidfile in self.work.glob("*.pid"):
            try:
                pids.append(int(pidfile.read_text().strip()))
            except (OSError, ValueError):
                pass
        for pid in set(pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for vm in self.vms:
            try:
                vm.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                vm.proc.kill()
                vm.proc.wait()
        shutil.rmtree(self.work, ignore_errors=True)


def qmp_command(sock: Path, cmd: str, args: dict | None = None):
    """One QMP command on a monitor socket (the test's own, beside record's)."""
    import asyncio

    from qemu.qmp import QMPClient

    async def go():
        c = QMPClient("test")
        await c.connect(str(sock))
        try:
            return await c.execute(cmd, args)
        finally:
            await c.disconnect()
    return asyncio.run(go())
