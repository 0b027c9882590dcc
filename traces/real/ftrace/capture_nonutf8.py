# SPDX-License-Identifier: GPL-2.0-only
"""Record the real trace.dat fixture whose strings hold bytes that are not UTF-8 (run as root, once).

What it does, in order (see traces/README.md, section "real/ftrace"):

1. creates the tracefs instance ``migtrace_u8`` and enables ``sched:sched_switch``,
   ``task:task_rename`` and ``sched:sched_process_exec`` in it (the top-level buffer
   and its events are not touched);
2. forks a child and limits the instance to it (``set_event_pid``, written before
   ``tracing_on``: no other task's events are recorded, only its switches from and
   to others); the child waits for that, names itself ``mig\\xe9\\x80x`` (bytes e9 80:
   not UTF-8) through ``/proc/self/comm``, writes ``MARKERS`` to the instance's
   ``trace_marker`` (one ``write()`` each, a sleep after each so ``sched_switch``
   records the comm), then executes
   ``/bin/true`` through a symlink whose path holds bytes ff and e9 80 (its
   basename is the comm again, so the comm stays the same);
3. stops the instance, runs ``trace-cmd extract -B migtrace_u8`` with reduced
   kallsyms/printk/event formats in a private mount namespace
   (:func:`capture.extract`), converts the file to v6 uncompressed, and writes
   ``trace-cmd report`` and ``trace-cmd report -t`` of it (the oracles: trace-cmd
   prints the bytes as they are);
4. disables the events and removes the instance (``trace-cmd extract`` may have
   removed it already).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capture import HERE, T, extract  # noqa: E402

INSTANCE = "migtrace_u8"
COMM = b"mig\xe9\x80x"
MARKERS = [b"bytes \x80\xff here\n", b"latin1 caf\xe9\n", b"utf8 caf\xc3\xa9\n", b"back\\x80slash\n"]
EVENTS = ("sched/sched_switch", "task/task_rename", "sched/sched_process_exec")


def child(inst: Path, exe: bytes, go: int) -> None:
    try:
        os.read(go, 1)  # the parent has set set_event_pid and tracing_on
        fd = os.open("/proc/self/comm", os.O_WRONLY)
        os.write(fd, COMM)
        os.close(fd)
        time.sleep(0.01)
        for m in MARKERS:
            fd = os.open(inst / "trace_marker", os.O_WRONLY)
            os.write(fd, m)
            os.close(fd)
            time.sleep(0.01)
        os.execv(exe, [exe])
    finally:
        os._exit(1)


def main() -> int:
    if os.geteuid() != 0:
        print("must run as root", file=sys.stderr)
        return 1
    inst = T / "instances" / INSTANCE
    work = Path(tempfile.mkdtemp(prefix="migtrace-u8-"))
    exe_dir = os.fsencode(work) + b"/dir\xff"
    os.mkdir(exe_dir)
    exe = exe_dir + b"/" + COMM
    os.symlink(b"/bin/true", exe)
    out = HERE / "nonutf8.dat"
    try:
        inst.mkdir()
        for ev in EVENTS:
            (inst / "events" / ev / "enable").write_text("1\n")
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(wr)
            child(inst, exe, rd)
        os.close(rd)
        (inst / "set_event_pid").write_text(f"{pid}\n")
        (inst / "tracing_on").write_text("1\n")
        os.write(wr, b"g")
        os.close(wr)
        _, status = os.waitpid(pid, 0)
        time.sleep(0.05)
        (inst / "tracing_on").write_text("0\n")
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"child failed: {status}", file=sys.stderr)
            return 1
        extract(out, instance=INSTANCE, events=EVENTS, top_level=False)
    finally:
        if inst.exists():
            for ev in EVENTS:
                (inst / "events" / ev / "enable").write_text("0\n")
            inst.rmdir()
        os.unlink(exe)
        os.rmdir(exe_dir)
        os.rmdir(work)
    v6 = HERE / "nonutf8-v6.dat"
    subprocess.run(["trace-cmd", "convert", "-i", str(out), "-o", str(v6), "--file-version", "6",
                    "--compression", "none"], check=True)
    for flags, name in (([], "nonutf8.report.txt"), (["-t"], "nonutf8.report-t.txt")):
        text = subprocess.run(["trace-cmd", "report", *flags, str(out)], check=True, capture_output=True).stdout
        (HERE / name).write_bytes(text)
    for f in (out, v6, HERE / "nonutf8.report.txt", HERE / "nonutf8.report-t.txt"):
        print(f.name, f.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
