# SPDX-License-Identifier: GPL-2.0-only
"""Produce the real QEMU migration captures in traces/real/ (run as root).

Each scenario boots Debian's qemu-system-x86_64 (7.2) with a 512-byte boot
sector whose loop keeps dirtying 16 guest pages, so that pre-copy needs
several iterations, and migrates it:

  file        migrate "exec:cat > qemu-file.mig"
  returnpath  TCP over loopback, return-path capability on both sides
  multifd     TCP over loopback, multifd with 2 channels

For the TCP scenarios tcpdump captures loopback traffic on the migration
port.  QEMU's own view is saved beside each capture: the source's and the
destination's log-backend trace (``-trace ... -msg timestamp=on -D``) and
the HMP ``info migrate`` output of both sides after completion.

Usage: python3 traces/real/capture_qemu.py [SCENARIO...] [-o DIR]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QEMU = "qemu-system-x86_64"

# 16-bit real mode: es=0x1000; loop { inc byte [es:di]; di += 0x100 } — 256
# writes per 64 KiB, so the 16 pages at 0x10000-0x1ffff are always dirty.
BOOT_CODE = bytes.fromhex(
    "fa"          # cli
    "b80010"      # mov ax, 0x1000
    "8ec0"        # mov es, ax
    "31ff"        # xor di, di
    "26fe05"      # L: inc byte [es:di]
    "81c70001"    # add di, 0x100
    "ebf7"        # jmp L
)

SRC_EVENTS = ["savevm_*", "migrate_set_state", "migration_bitmap_sync_*", "migrate_pending",
              "migration_completion_*", "migrate_transferred", "runstate_set",
              "migration_thread_*", "migrate_send_rp_message", "multifd_send*",
              "multifd_new_send_channel_async"]
DST_EVENTS = ["qemu_loadvm_state_*", "loadvm_*", "migrate_set_state", "runstate_set",
              "migrate_send_rp_message", "multifd_recv*", "migration_socket_incoming_accepted"]


def boot_image(path: Path) -> None:
    img = bytearray(512)
    img[: len(BOOT_CODE)] = BOOT_CODE
    img[510:512] = b"\x55\xaa"
    path.write_bytes(bytes(img) + bytes(512 * 7))


class Monitor:
    """A minimal HMP client over a unix socket."""

    def __init__(self, path: Path) -> None:
        for _ in range(100):
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"monitor {path} did not come up")
        self._read_prompt()

    def _read_prompt(self) -> str:
        buf = b""
        while not buf.endswith(b"(qemu) "):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")

    def cmd(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\n")
        out = self._read_prompt()
        # HMP echoes the command with terminal escapes; keep the lines after it.
        lines = out.replace("\r", "").split("\n")
        return "\n".join(lines[1:-1]) + "\n"


def qemu_cmd(work: Path, name: str, events: list[str], extra: list[str]) -> list[str]:
    cmd = [QEMU, "-machine", "pc,accel=tcg", "-m", "16", "-nodefaults", "-display", "none",
           "-drive", f"file={work / 'boot.img'},format=raw,if=floppy",
           "-monitor", f"unix:{work / (name + '.mon')},server=on,wait=off",
           "-msg", "timestamp=on", "-D", str(work / f"{name}.log")]
    for ev in events:
        cmd += ["-trace", ev]
    return cmd + extra


def wait_completed(mon: Monitor, timeout: float = 120.0, relax_after: float | None = None) -> str:
    t0 = time.monotonic()
    relaxed = False
    while time.monotonic() - t0 < timeout:
        info = mon.cmd("info migrate")
        if "Migration status: completed" in info:
            return info
        if "Migration status: failed" in info:
            raise RuntimeError(info)
        if relax_after is not None and not relaxed and time.monotonic() - t0 > relax_after:
            mon.cmd("migrate_set_parameter downtime-limit 2000")
            relaxed = True
        time.sleep(0.1)
    raise RuntimeError("migration did not complete")


def setup_source(mon: Monitor, caps: list[str], multifd: bool) -> None:
    for cap in caps:
        mon.cmd(f"migrate_set_capability {cap} on")
    if multifd:
        mon.cmd("migrate_set_parameter multifd-channels 2")
    # HMP sizes default to MiB, hence "1M" = 1 MiB/s. A tight downtime limit keeps pre-copy iterating over the dirty pages
    # until wait_completed() relaxes it; the bandwidth cap spreads the
    # first pass over several packets.
    mon.cmd("migrate_set_parameter max-bandwidth 1M")
    mon.cmd("migrate_set_parameter downtime-limit 1")


def run_file(work: Path, out: Path) -> None:
    src = subprocess.Popen(qemu_cmd(work, "src", SRC_EVENTS, []))
    try:
        mon = Monitor(work / "src.mon")
        time.sleep(1.0)
        setup_source(mon, [], False)
        mig = out / "qemu-file.mig"
        mon.cmd(f'migrate -d "exec:cat > {mig}"')
        info = wait_completed(mon, relax_after=1.0)
        (out / "qemu-file.src-info-migrate.txt").write_text(info)
        mon.cmd("quit")
    finally:
        src.wait(timeout=30)
    shutil.copy(work / "src.log", out / "qemu-file.src.log")


def run_tcp(work: Path, out: Path, name: str, caps: list[str], multifd: bool) -> None:
    port = random.randint(20000, 40000)
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-U", "-w", str(out / f"{name}.pcap"),
                             f"tcp port {port}"], stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    dst = subprocess.Popen(qemu_cmd(work, "dst", DST_EVENTS, ["-incoming", "defer"]))
    src = subprocess.Popen(qemu_cmd(work, "src", SRC_EVENTS, []))
    try:
        dmon = Monitor(work / "dst.mon")
        smon = Monitor(work / "src.mon")
        for cap in caps:
            dmon.cmd(f"migrate_set_capability {cap} on")
        if multifd:
            dmon.cmd("migrate_set_parameter multifd-channels 2")
        dmon.cmd(f"migrate_incoming tcp:127.0.0.1:{port}")
        time.sleep(1.0)
        setup_source(smon, caps, multifd)
        smon.cmd(f"migrate -d tcp:127.0.0.1:{port}")
        info = wait_completed(smon, relax_after=1.0)
        time.sleep(1.0)
        (out / f"{name}.src-info-migrate.txt").write_text(info)
        (out / f"{name}.dst-info-migrate.txt").write_text(dmon.cmd("info migrate"))
        smon.cmd("quit")
        dmon.cmd("quit")
    finally:
        for p in (src, dst):
            p.wait(timeout=30)
        time.sleep(0.5)
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=30)
    shutil.copy(work / "src.log", out / f"{name}.src.log")
    shutil.copy(work / "dst.log", out / f"{name}.dst.log")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", default=["file", "returnpath", "multifd"])
    ap.add_argument("-o", "--out", default=str(Path(__file__).parent))
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        boot_image(work / "boot.img")
        for sc in args.scenarios:
            if sc == "file":
                run_file(work, out)
            elif sc == "returnpath":
                run_tcp(work, out, "qemu-tcp-returnpath", ["return-path"], False)
            elif sc == "multifd":
                run_tcp(work, out, "qemu-tcp-multifd", ["multifd"], True)
            else:
                print(f"unknown scenario {sc}", file=sys.stderr)
                return 2
            for f in work.glob("*.log"):
                f.unlink()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LC_ALL", "C")
    sys.exit(main())
