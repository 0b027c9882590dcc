# SPDX-License-Identifier: GPL-2.0-only
"""traces/real/guest: the tiny multiboot guest that keeps dirtying memory for real migrations.

Built with the system toolchain (skipped without gcc/ld); booted with the
system's qemu-system-x86_64 when present: it prints its banner and the
byte it writes into its buffer's pages keeps changing, while the page
after the buffer stays zero.
"""
from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "traces" / "real" / "guest" / "build.sh"
QEMU = shutil.which("qemu-system-x86_64")


@pytest.fixture(scope="module")
def guest(tmp_path_factory) -> Path:
    if not (shutil.which("gcc") and shutil.which("ld")):
        pytest.skip("gcc/ld (binutils) not installed")
    out = tmp_path_factory.mktemp("guest")
    p = subprocess.run(["bash", str(BUILD), str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(out / "dirtyguest.elf")
    return out / "dirtyguest.elf"


def test_build_gives_a_small_elf32_with_a_multiboot_header(guest):
    data = guest.read_bytes()
    assert len(data) < 8192
    # ELF32 (QEMU's multiboot loader refuses ELF64), little endian, executable, i386
    assert data[:4] == b"\x7fELF" and data[4] == 1 and data[5] == 1
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    assert (e_type, e_machine) == (2, 3)
    entry = struct.unpack_from("<I", data, 24)[0]
    assert 0x100000 <= entry < 0x100000 + 8192
    # multiboot v1: magic, flags, checksum at a 4-aligned offset in the first 8 KiB
    off = next(i for i in range(0, min(len(data), 8192) - 12, 4)
               if struct.unpack_from("<I", data, i)[0] == 0x1BADB002)
    magic, flags, checksum = struct.unpack_from("<III", data, off)
    assert (magic + flags + checksum) & 0xFFFFFFFF == 0
    assert flags & 0x10000 == 0           # no a.out kludge: QEMU loads it as ELF


class _Hmp:
    def __init__(self, path: Path) -> None:
        for _ in range(100):
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("monitor did not come up")
        self.sock.settimeout(10)
        self._prompt()

    def _prompt(self) -> str:
        buf = b""
        while not buf.endswith(b"(qemu) "):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("monitor closed")
            buf += chunk
        return buf.decode(errors="replace")

    def byte_at(self, addr: int) -> int:
        self.sock.sendall(f"xp /1bx {addr:#x}\n".encode())
        text = self._prompt()
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{addr:016x}:"))
        return int(line.split(":")[1].split()[0], 16)


@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed")
def test_guest_boots_and_keeps_dirtying_its_buffer(guest, tmp_path):
    console = tmp_path / "console.txt"
    mon = tmp_path / "mon.sock"
    proc = subprocess.Popen([QEMU, "-machine", "pc", "-accel", "tcg", "-m", "16", "-nodefaults",
                             "-display", "none", "-kernel", str(guest), "-append", "pages=100",
                             "-serial", f"file:{console}", "-monitor", f"unix:{mon},server=on,wait=off"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        hmp = _Hmp(mon)
        deadline = time.monotonic() + 20
        while b"\n" not in (console.read_bytes() if console.exists() else b""):
            assert time.monotonic() < deadline, "no banner on COM1"
            time.sleep(0.05)
        assert console.read_bytes().startswith(b"dirtyguest pages=00000064\n")
        base, last = 0x200000, 0x200000 + 99 * 4096
        seen = {hmp.byte_at(base)}
        for _ in range(20):
            time.sleep(0.05)
            seen.add(hmp.byte_at(base))
        assert len(seen) > 1                   # the first page's byte keeps changing
        assert hmp.byte_at(last) != 0          # the last page of the buffer is written
        assert hmp.byte_at(last + 4096) == 0   # the page after the buffer is not
    finally:
        proc.kill()
        proc.wait(timeout=10)
