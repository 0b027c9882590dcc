# SPDX-License-Identifier: GPL-2.0-only
"""Record the real trace.dat fixtures in this folder (run as root, once).

What it does, in order (see traces/README.md, section "real/ftrace"):

1. mounts tracefs if needed, saves the tracing state it changes;
2. creates the instance ``migtrace_e`` and enables ``sched:sched_switch`` in
   the top-level buffer for a short window;
3. writes QEMU-style ``trace_marker`` lines (QEMU's ftrace backend: one
   ``write()`` of ``"<event> <args>\\n"``) from a thread named
   ``live_migration`` pinned to CPU 1 and from the main thread named
   ``qemu-system-x86`` pinned to CPU 0, ``trace_marker_raw`` admin-capture
   pieces (id 0x76697274, admin-capture.md), and a few markers into the
   instance;
4. in a private mount namespace (``unshare -m``), bind-mounts reduced copies
   of ``/proc/kallsyms``, ``printk_formats`` and the ``events`` directory so the
   file stays small, and runs ``trace-cmd extract -t -B migtrace_e``;
5. ``trace-cmd convert`` to v6 and to v7 uncompressed;
6. restores the tracing state and removes the instance.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

T = Path("/sys/kernel/tracing")
INSTANCE = "migtrace_e"
HERE = Path(__file__).resolve().parent
PR_SET_NAME = 15
libc = ctypes.CDLL(None, use_errno=True)


def set_comm(name: str) -> None:
    libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0)


def write_marker(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def write_raw(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def admin_record(direction: int, tag: int, opcode: int, payload: bytes) -> bytes:
    owner = (0 << 16) | (0 << 8) | (5 << 3) | 0  # 0000:00:05.0
    return struct.pack("<BBHIIHH", 1, direction, 0, tag, owner, opcode, 0) + payload


def raw_pieces(record: bytes, max_piece: int) -> list[bytes]:
    out = []
    for off in range(0, len(record), max_piece):
        piece = record[off:off + max_piece]
        out.append(struct.pack("<III", 0x76697274, len(record), off) + piece)
    return out


MIGRATION_LINES = [
    "vfio_migration_set_state  (0000:00:05.0) new state PRE_COPY, recover state ERROR\n",
    "vfio_save_setup  (0000:00:05.0) data buffer size 1048576\n",
    "vfio_state_pending_estimate  (0000:00:05.0) precopy 16384 postcopy 0 precopy initial size 16384 precopy dirty size 0\n",
    "vfio_save_iterate  0000:00:05.0 precopy initial size 0x4000 precopy dirty size 0x0\n",
    "vfio_save_block  (0000:00:05.0) data_size 16384\n",
    "vfio_state_pending_exact  (0000:00:05.0) precopy 0 postcopy 0 stopcopy size 4743 precopy initial size 0 precopy dirty size 0\n",
    "vmstate_downtime_checkpoint src-downtime-start\n",
    "vfio_migration_set_state  (0000:00:05.0) new state STOP_COPY, recover state ERROR\n",
    "vfio_save_complete_precopy_start  (0000:00:05.0)\n",
    "vfio_save_block  (0000:00:05.0) data_size 4743\n",
    "vfio_save_complete_precopy  (0000:00:05.0) ret 0\n",
    "vmstate_downtime_checkpoint src-downtime-end\n",
]


def migration_thread() -> None:
    set_comm("live_migration")
    os.sched_setaffinity(0, {1})
    marker, raw = T / "trace_marker", T / "trace_marker_raw"
    for i, line in enumerate(MIGRATION_LINES):
        write_marker(marker, line)
        if i == 4:
            req = admin_record(0, 1, 0x0000, struct.pack("<HH12sQ", 0, 1, bytes(12), 0))
            for p in raw_pieces(req, 4000):
                write_raw(raw, p)
            res = admin_record(1, 1, 0x0000, struct.pack("<HH4sQ", 0, 0, bytes(4), 0x1800F))
            # two pieces, to exercise the join
            for p in raw_pieces(res, 20):
                write_raw(raw, p)
        time.sleep(0.002)
    # a line truncated at 511 bytes as QEMU's ftrace backend does (no \n)
    write_marker(marker, ("vfio_load_state  (0000:00:05.0) data 0x" + "f" * 600)[:511])
    write_raw(raw, struct.pack("<I", 0x2a) + bytes(range(1, 17)))


def main() -> int:
    if os.geteuid() != 0:
        print("must run as root", file=sys.stderr)
        return 1
    if not (T / "trace_marker").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(T)], check=True)
    saved = {p: (T / p).read_text() for p in ("tracing_on", "buffer_size_kb")}
    sw_enable = T / "events/sched/sched_switch/enable"
    saved_sw = sw_enable.read_text()
    inst = T / "instances" / INSTANCE
    try:
        inst.mkdir(exist_ok=True)
        (T / "tracing_on").write_text("1\n")
        (T / "trace").write_text("")  # clear the top-level buffer
        set_comm("qemu-system-x86")
        os.sched_setaffinity(0, {0})
        sw_enable.write_text("1\n")
        write_marker(T / "trace_marker", "migrate_set_state new state active\n")
        th = threading.Thread(target=migration_thread)
        th.start()
        write_marker(inst / "trace_marker", "instance marker one\n")
        th.join()
        sw_enable.write_text(saved_sw)
        write_marker(T / "trace_marker", "migrate_set_state new state completed\n")
        write_marker(inst / "trace_marker", "instance marker two\n")
        os.sched_setaffinity(0, {1})
        write_marker(inst / "trace_marker", "instance marker three on cpu1\n")
        extract(HERE / "markers-v7-zstd.dat")
    finally:
        for p, v in saved.items():
            (T / p).write_text(v)
        sw_enable.write_text(saved_sw)
        if inst.exists():
            inst.rmdir()
    src = HERE / "markers-v7-zstd.dat"
    subprocess.run(["trace-cmd", "convert", "-i", str(src), "-o", str(HERE / "markers-v6.dat"),
                    "--file-version", "6", "--compression", "none"], check=True)
    subprocess.run(["trace-cmd", "convert", "-i", str(src), "-o", str(HERE / "markers-v7-none.dat"),
                    "--file-version", "7", "--compression", "none"], check=True)
    for f in sorted(HERE.glob("*.dat")):
        print(f.name, f.stat().st_size)
    return 0


def extract(out: Path) -> None:
    """trace-cmd extract with reduced kallsyms/printk/event formats, in a private mount namespace."""
    work = Path(tempfile.mkdtemp(prefix="migtrace-fx-"))
    try:
        lines = Path("/proc/kallsyms").read_text().splitlines()
        keep = set()
        for i, line in enumerate(lines):
            if line.endswith((" tracing_mark_write", " tracing_mark_raw_write")):
                keep.update(range(max(0, i - 3), min(len(lines), i + 4)))
        (work / "kallsyms").write_text("".join(lines[i] + "\n" for i in sorted(keep)))
        pk = (T / "printk_formats").read_text().splitlines()
        (work / "printk_formats").write_text("".join(line + "\n" for line in pk[:12]))
        ev = work / "events"
        ev.mkdir()
        for name in ("header_page", "header_event"):
            (ev / name).write_text((T / "events" / name).read_text())
        for sub in ["ftrace/" + d.name for d in (T / "events/ftrace").iterdir() if d.is_dir()] + [
                "sched/sched_switch"]:
            d = ev / sub
            d.mkdir(parents=True)
            (d / "format").write_text((T / "events" / sub / "format").read_text())
        script = (
            f"set -e; mount --make-rprivate /; "
            f"mount --bind {work}/kallsyms /proc/kallsyms; "
            f"mount --bind {work}/printk_formats {T}/printk_formats; "
            f"mount --bind {ev} {T}/events; "
            f"trace-cmd extract -t -B {INSTANCE} -o {out}")
        subprocess.run(["unshare", "-m", "sh", "-c", script], check=True)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
