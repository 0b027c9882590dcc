# SPDX-License-Identifier: GPL-2.0-only
"""Record the real trace.dat fixtures in this folder (run as root, once).

What it does, in order (see traces/README.md, section "real/ftrace"):

1. mounts tracefs if needed, saves the tracing state it changes;
2. creates the instance ``migtrace_e`` and enables ``sched:sched_switch`` in
   the top-level buffer for a short window;
3. writes ``trace_marker`` lines exactly as QEMU's ftrace backend prints
   them (qemu-trace-events.md §1.1: one ``write()`` of
   ``"<event> " + printf(format, args) + "\\n"``, cut at 511 bytes; the text is
   rendered from the spec's 9.2-era format strings by
   ``dissect.qemu.trace_events.format_event``) from a thread named
   ``live_migration`` pinned to CPU 1 and from the main thread named
   ``qemu-system-x86`` pinned to CPU 0, ``trace_marker_raw`` admin-capture
   pieces (id 0x76697274, admin-capture.md), and a few plain (non-QEMU)
   markers into the instance;
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

from dissect.qemu.trace_events import format_event
from dissect.virtio.admin_capture import PIECE_HDR_LEN, AdminRecord, trace_pieces

T = Path("/sys/kernel/tracing")
INSTANCE = "migtrace_e"
HERE = Path(__file__).resolve().parent
PR_SET_NAME = 15
libc = ctypes.CDLL(None, use_errno=True)


def set_comm(name: str) -> None:
    libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0)


def write_raw(path: Path, data: bytes) -> None:
    """One write() to a tracefs file: one event, as QEMU's backend and the kernel see it."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_marker(path: Path, text: str) -> None:
    write_raw(path, text.encode())


def admin_record(direction: int, tag: int, opcode: int, payload: bytes, *,
                 owner: int = 5 << 3, subtype: int = 0) -> bytes:
    """An admin-capture record (admin-capture.md); owner defaults to 0000:00:05.0."""
    return AdminRecord(1, direction, tag, owner, opcode, subtype, payload, 0).to_bytes()


def raw_pieces(record: bytes, payload_per_piece: int) -> list[bytes]:
    """trace_marker_raw writes of ``payload_per_piece`` record bytes each (plus the 12-byte piece header)."""
    return trace_pieces(record, PIECE_HDR_LEN + payload_per_piece)


DEV = "0000:00:05.0"
# A file: migration URI whose open fails: QEMU 9.2's qmp_migrate() hands the error to
# migrate_fd_error(), whose text ("Unable to open <path>: <strerror>", io/channel-file.c)
# with a long path exceeds the ftrace backend's 511 bytes and is cut there.
LONG_PATH = "/srv/migration-images/" + "/".join(f"guest-{i:02d}-checkpoint-archive" for i in range(20)) + "/vm.mig"


def q(event: str, variant: str | None = None, **args: object) -> str:
    """The exact line QEMU's ftrace backend writes for ``event`` (qemu-trace-events.md §1.1).

    Rendered by the project's catalogue from the spec's format strings (a 9.2-era QEMU:
    decimal sizes, the 3-argument vfio_migration_set_state), cut at 511 bytes like
    QEMU's 512-byte snprintf buffer; the "\\n" is only added to an uncut line.
    """
    text = format_event(event, variant, truncate=True, **args)
    return text if len(text.encode()) >= 511 else text + "\n"


# the failed first attempt, written by the main thread before the migration thread exists
FAILED_ATTEMPT = [
    q("migrate_set_state", new_state="setup"),
    q("migrate_fd_error", error_desc=f"Unable to open {LONG_PATH}: No such file or directory"),
    q("migrate_set_state", new_state="failed"),
]

MIGRATION_LINES = [
    q("vfio_migration_set_state", "9.2-3arg", name=DEV, new_state="PRE_COPY", recover_state="ERROR"),
    q("vfio_save_setup", "9.2-dec", name=DEV, data_buffer_size=1048576),
    q("vfio_state_pending_estimate", "9.2-dec", name=DEV, precopy=16384, postcopy=0, precopy_init_size=16384,
      precopy_dirty_size=0),
    q("vfio_save_iterate_start", name=DEV),
    q("vfio_save_block", name=DEV, data_size=16384),
    q("vfio_save_iterate", "9.2-dec", name=DEV, precopy_init_size=0, precopy_dirty_size=0),
    q("vfio_state_pending_exact", "9.2-dec", name=DEV, precopy=0, postcopy=0, stopcopy_size=4743,
      precopy_init_size=0, precopy_dirty_size=0),
    q("vmstate_downtime_checkpoint", checkpoint="src-downtime-start"),
    q("vfio_migration_set_state", "9.2-3arg", name=DEV, new_state="STOP_COPY", recover_state="ERROR"),
    q("vfio_save_complete_precopy_start", name=DEV),
    q("vfio_save_block", name=DEV, data_size=4743),
    q("vfio_save_complete_precopy", "8.0", name=DEV, ret=0),
    q("vmstate_downtime_checkpoint", checkpoint="src-downtime-end"),
    q("vfio_save_cleanup", name=DEV),
]
ADMIN_AFTER = 4  # the LIST_QUERY admin command goes out after the first vfio_save_block


def migration_thread() -> None:
    set_comm("live_migration")
    os.sched_setaffinity(0, {1})
    marker, raw = T / "trace_marker", T / "trace_marker_raw"
    for i, line in enumerate(MIGRATION_LINES):
        write_marker(marker, line)
        if i == ADMIN_AFTER:
            req = admin_record(0, 1, 0x0000, struct.pack("<HH12sQ", 0, 1, bytes(12), 0))
            for p in raw_pieces(req, 4000):
                write_raw(raw, p)
            res = admin_record(1, 1, 0x0000, struct.pack("<HH4sQ", 0, 0, bytes(4), 0x1800F))
            # two pieces, to exercise the join
            for p in raw_pieces(res, 20):
                write_raw(raw, p)
        time.sleep(0.002)
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
        for line in FAILED_ATTEMPT:
            write_marker(T / "trace_marker", line)
        write_marker(T / "trace_marker", q("migrate_set_state", new_state="setup"))
        write_marker(T / "trace_marker", q("migrate_set_state", new_state="active"))
        th = threading.Thread(target=migration_thread)
        th.start()
        write_marker(inst / "trace_marker", "instance marker one\n")
        th.join()
        sw_enable.write_text(saved_sw)
        write_marker(T / "trace_marker", q("migrate_set_state", new_state="completed"))
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


def extract(out: Path, *, instance: str = INSTANCE, events: tuple[str, ...] = ("sched/sched_switch",),
            printk_lines: int = 12, top_level: bool = True, quiet: bool = False) -> None:
    """trace-cmd extract with reduced kallsyms/printk/event formats, in a private mount namespace.

    Keeps the fixture small: only the kallsyms lines around the marker functions,
    the first ``printk_lines`` printk formats, and the ftrace plus ``events`` formats.
    ``top_level`` adds the top-level buffer (``-t``) to ``instance``'s.
    """
    work = Path(tempfile.mkdtemp(prefix="migtrace-fx-"))
    try:
        lines = Path("/proc/kallsyms").read_text().splitlines()
        keep = set()
        for i, line in enumerate(lines):
            if line.endswith((" tracing_mark_write", " tracing_mark_raw_write")):
                keep.update(range(max(0, i - 3), min(len(lines), i + 4)))
        (work / "kallsyms").write_text("".join(lines[i] + "\n" for i in sorted(keep)))
        pk = (T / "printk_formats").read_text().splitlines()
        (work / "printk_formats").write_text("".join(line + "\n" for line in pk[:printk_lines]))
        ev = work / "events"
        ev.mkdir()
        for name in ("header_page", "header_event"):
            (ev / name).write_text((T / "events" / name).read_text())
        for sub in ["ftrace/" + d.name for d in (T / "events/ftrace").iterdir() if d.is_dir()] + list(events):
            d = ev / sub
            d.mkdir(parents=True)
            (d / "format").write_text((T / "events" / sub / "format").read_text())
        script = (
            f"set -e; mount --make-rprivate /; "
            f"mount --bind {work}/kallsyms /proc/kallsyms; "
            f"mount --bind {work}/printk_formats {T}/printk_formats; "
            f"mount --bind {ev} {T}/events; "
            f"trace-cmd extract {'-t ' if top_level else ''}-B {instance} -o {out}")
        subprocess.run(["unshare", "-m", "sh", "-c", script], check=True,
                       stdout=subprocess.DEVNULL if quiet else None)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
