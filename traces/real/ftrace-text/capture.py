# SPDX-License-Identifier: GPL-2.0-only
"""Record the real ftrace text fixtures in this folder (run as root, once).

Everything happens in a private tracefs instance (``migtrace_f``) so the
top-level buffer other users may be recording is left alone:

1. creates the instance, limits event recording to this process tree
   (``set_event_pid`` + ``event-fork``) and enables ``sched:sched_process_exec``;
2. writes QEMU-style lines to the instance's ``trace_marker`` exactly as
   QEMU's ftrace backend does (one ``write()`` of ``"<event> <args>\\n"``,
   511-byte cut without ``\\n`` for a long line) from a thread named
   ``live_migration`` on CPU 1 and the main thread ``qemu-system-x86`` on
   CPU 0; ``trace_marker_raw`` writes of an admin-capture record in two
   pieces (id 0x76697274, admin-capture.md) and one other raw write; execs
   ``/bin/true`` once for a kernel event.  The lines are written by hand
   from the format strings of qemu-trace-events.md (9.2+ forms);
3. copies the instance's ``trace`` file three times: as is (``trace.txt``),
   with ``options/record-tgid`` (``trace-tgid.txt``) and without
   ``options/irq-info`` (``trace-noirq.txt``);
4. in a private mount namespace (``unshare -m``) bind-mounts reduced copies
   of ``/proc/kallsyms``, ``printk_formats`` and ``events/`` and runs
   ``trace-cmd extract -B migtrace_f`` (``markers.dat``, v7 zstd), then
   ``trace-cmd report`` (``report.txt``) and ``trace-cmd report -t``
   (``report-t.txt``) of that file;
5. shrinks the instance buffer to 4 KiB per CPU, writes 400 markers per CPU
   and reads ``trace_pipe`` for a second (``trace-pipe-lost.txt``: real
   ``CPU:N [LOST M EVENTS]`` lines);
6. removes the instance (``trace-cmd extract`` already removed the first one).
"""
from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _sibling(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# The tracefs helpers and the reduced-extract of the trace.dat fixtures' script.
_fx = _sibling("migtrace_ftrace_capture", HERE.parent / "ftrace" / "capture.py")
T = _fx.T
INSTANCE = "migtrace_f"
I = T / "instances" / INSTANCE
set_comm = _fx.set_comm
write = _fx.write_raw

# Hand-written from the spec's format strings (QEMU 9.2+ forms unless noted).
MAIN_LINES = [
    "migrate_set_state new state setup\n",
    "savevm_state_header \n",
    "savevm_send_open_return_path \n",
    "savevm_send_ping 0x1\n",
    "savevm_state_setup \n",
]
MIGRATION_LINES = [
    "vfio_save_setup  (0000:3b:00.1) data buffer size 1048576\n",
    "vfio_migration_set_state  (0000:3b:00.1) new state PRE_COPY, recover state ERROR\n",
    "migrate_set_state new state active\n",
    "migrate_pending_estimate estimate pending size 8192 (pre = 8192 post=0)\n",
    "vfio_state_pending_estimate  (0000:3b:00.1) precopy 16384 postcopy 0 precopy initial size 16384 precopy dirty size 0\n",
    "savevm_state_iterate \n",
    "savevm_section_start ram, section_id 2\n",
    "vfio_save_iterate_start  (0000:3b:00.1)\n",
    "vfio_save_block  (0000:3b:00.1) data_size 16384\n",
    "vfio_save_iterate  (0000:3b:00.1) precopy initial size 16384 precopy dirty size 0\n",
    "migration_bitmap_sync_start \n",
    "migration_bitmap_sync_end dirty_pages 12\n",
    "migrate_transferred transferred 1074176 time_spent 100 bandwidth 10741 switchover_bw 0 max_size 3222300\n",
    "vfio_state_pending_exact  (0000:3b:00.1) precopy 0 postcopy 0 stopcopy size 4743 precopy initial size 0 precopy dirty size 0\n",
    "source_return_path_thread_switchover_acked \n",
    "migration_thread_low_pending 49152\n",
    "vmstate_downtime_checkpoint src-downtime-start\n",
    "runstate_set current_run_state 9 (running) new_state 7 (finish-migrate)\n",
    "vm_state_notify running 0 reason 7 (finish-migrate)\n",
    "vfio_vmstate_change  (0000:3b:00.1) running 0 reason finish-migrate device state STOP_COPY\n",
    "vmstate_downtime_checkpoint src-vm-stopped\n",
    "migration_completion_vm_stop ret 0\n",
    "savevm_state_complete_precopy \n",
    "vfio_save_complete_precopy_start  (0000:3b:00.1)\n",
    "vfio_save_block  (0000:3b:00.1) data_size 4743\n",
    "vfio_save_complete_precopy  (0000:3b:00.1) ret 0\n",
    "vmstate_downtime_save type=iterable idstr=0000:3b:00.1/vfio instance_id=0 downtime=812\n",
    "vmstate_downtime_checkpoint src-iterable-saved\n",
    "vfio_save_device_config_state  (0000:3b:00.1)\n",
    "vmstate_downtime_checkpoint src-non-iterable-saved\n",
    "migrate_set_state new state completed\n",
    "vmstate_downtime_checkpoint src-downtime-end\n",
    # 8.1-9.1 hex forms, as an older QEMU writes them
    "vfio_save_iterate  (0000:3b:00.1) precopy initial size 0x4000 precopy dirty size 0x0\n",
    "vfio_migration_set_state  (0000:3b:00.1) state STOP\n",
]
# QEMU's ftrace backend: snprintf into 512 bytes -> 511 characters, no "\n".
TRUNCATED = ("vmstate_downtime_save type=non-iterable idstr="
             + "0000:3b:00.1/" + "x" * 480 + " instance_id=0 downtime=7\n")[:511]


def admin_record(direction: int, tag: int, opcode: int, subtype: int, payload: bytes) -> bytes:
    return _fx.admin_record(direction, tag, opcode, payload, owner=0x3b << 8, subtype=subtype)  # the PF 0000:3b:00.0


pieces = _fx.raw_pieces


def migration_thread() -> None:
    set_comm("live_migration")
    os.sched_setaffinity(0, {1})
    for i, line in enumerate(MIGRATION_LINES):
        write(I / "trace_marker", line.encode())
        if i == 8:
            # LIST_QUERY (opcode 0) request: group_type SRIOV (1), no data
            req = admin_record(0, 7, 0x0000, 0, struct.pack("<HH12sQ", 0x0000, 1, bytes(12), 0))
            for p in pieces(req, 4000):
                write(I / "trace_marker_raw", p)
            # completion: status OK, result = 8-byte opcode bitmap, written in two pieces
            res = admin_record(1, 7, 0x0000, 0, struct.pack("<HH4sQ", 0, 0, bytes(4), 0x7))
            for p in pieces(res, 20):
                write(I / "trace_marker_raw", p)
        time.sleep(0.001)
    write(I / "trace_marker", TRUNCATED.encode())
    write(I / "trace_marker_raw", struct.pack("<I", 0x2a) + bytes(range(1, 18)))


def extract(out: Path) -> None:
    """trace-cmd extract of this instance only, with reduced kallsyms/printk/event formats."""
    _fx.extract(out, instance=INSTANCE, events=("sched/sched_process_exec",), printk_lines=8,
                top_level=False, quiet=True)


def main() -> int:
    if os.geteuid() != 0:
        print("must run as root", file=sys.stderr)
        return 1
    if not (T / "trace_marker").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(T)], check=True)
    if I.exists():
        I.rmdir()
    I.mkdir()
    try:
        (I / "options/event-fork").write_text("1\n")
        (I / "set_event_pid").write_text(f"{os.getpid()}\n")
        (I / "events/sched/sched_process_exec/enable").write_text("1\n")
        set_comm("qemu-system-x86")
        os.sched_setaffinity(0, {0})
        for line in MAIN_LINES:
            write(I / "trace_marker", line.encode())
        th = threading.Thread(target=migration_thread)
        th.start()
        th.join()
        subprocess.run(["/bin/true"], check=True)
        (I / "events/sched/sched_process_exec/enable").write_text("0\n")
        (HERE / "trace.txt").write_text((I / "trace").read_text())
        (I / "options/record-tgid").write_text("1\n")
        (HERE / "trace-tgid.txt").write_text((I / "trace").read_text())
        (I / "options/record-tgid").write_text("0\n")
        (I / "options/irq-info").write_text("0\n")
        (HERE / "trace-noirq.txt").write_text((I / "trace").read_text())
        (I / "options/irq-info").write_text("1\n")
        dat = HERE / "markers.dat"
        extract(dat)
        for name, extra in (("report.txt", []), ("report-t.txt", ["-t"])):
            with open(HERE / name, "w") as f:
                subprocess.run(["trace-cmd", "report", *extra, str(dat)], check=True, stdout=f,
                               stderr=subprocess.DEVNULL)
        # lost events: a 4 KiB buffer per CPU overflows; trace_pipe reports the loss.
        # (trace-cmd extract removes the instance when it finishes: make a fresh one.)
        if not I.exists():
            I.mkdir()
        (I / "buffer_size_kb").write_text("4\n")
        for cpu in (0, 1):
            os.sched_setaffinity(0, {cpu})
            fd = os.open(I / "trace_marker", os.O_WRONLY)
            for n in range(400):
                os.write(fd, b"migration_bitmap_sync_end dirty_pages %d\n" % n)
            os.close(fd)
        os.sched_setaffinity(0, {0})
        proc = subprocess.run(["timeout", "1", "cat", str(I / "trace_pipe")], capture_output=True, text=True)
        (HERE / "trace-pipe-lost.txt").write_text(proc.stdout)
    finally:
        if I.exists():
            I.rmdir()
    for f in sorted(HERE.glob("*")):
        print(f.name, f.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
