# SPDX-License-Identifier: GPL-2.0-only
"""Text traces: lines per second of the three text readers (target >= 500,000 lines/s).

Writes generated traces of N lines (default 1,000,000) in each text form to a
temporary directory, a realistic mix of QEMU marker lines (VFIO and
migration-core events, the thread names QEMU uses) and kernel events, then
times:

- *per-line events*: iterating a reader with every line through the per-line
  code (``reader._per_line = True``; the reference path, what iterating did
  before the scanner),
- *events*: iterating a reader (``read_ftrace_text`` / ``read_report_text`` /
  ``read_qemu_log``: chunks through the byte scanner ``dissect.ftrace.text_scan``,
  one ``Event`` per line),
- optionally the reader plus QEMU event typing (``Catalogue.parse`` of every
  marker), which is what ``migtrace decode`` does before JSON encoding,
- ``reader.dataframe(bulk=False)`` (the frame from the per-line events) and
  ``reader.dataframe()`` (the bulk frame: scanned chunks straight into
  columns, no ``Event`` per line).

Both wall-clock and process CPU time are reported; the machine is shared, so
CPU time is the steadier figure.

    python3 benchmarks/text.py [--lines N] [--repeat R] [--typing]
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dissect.ftrace.text import read_ftrace_text, read_qemu_log, read_report_text  # noqa: E402
from dissect.qemu.trace_events import Catalogue  # noqa: E402

QEMU_LINES = [
    "vfio_save_block  (0000:3b:00.1) data_size {n}",
    "vfio_state_pending_estimate  (0000:3b:00.1) precopy {n} postcopy 0 precopy initial size {n} precopy dirty size 0",
    "vfio_save_iterate  (0000:3b:00.1) precopy initial size {n} precopy dirty size 0",
    "savevm_state_iterate ",
    "migration_bitmap_sync_end dirty_pages {n}",
    "migrate_transferred transferred {n} time_spent 100 bandwidth 10741 switchover_bw 0 max_size 3222300",
    "vmstate_downtime_checkpoint src-downtime-start",
]
THREADS = [("live_migration", 4242, 1), ("qemu-system-x86", 4200, 0), ("mig/src/send_1", 4250, 1)]


def generate(dirpath: Path, n: int) -> dict[str, Path]:
    paths = {k: dirpath / k for k in ("trace", "report", "report-t", "qemu-log")}
    with open(paths["trace"], "w") as tr, open(paths["report"], "w") as rp, \
            open(paths["report-t"], "w") as rt, open(paths["qemu-log"], "w") as ql:
        tr.write("# tracer: nop\n#\n# entries-in-buffer/entries-written: %d/%d   #P:2\n#\n" % (n, n))
        rp.write("cpus=2\n")
        rt.write("cpus=2\n")
        ts = 1142_000_000_000
        for i in range(n):
            ts += 1733
            comm, pid, cpu = THREADS[i % 3]
            sec, ns = divmod(ts, 1_000_000_000)
            # µs rounded to nearest with the carry into the seconds, as the kernel and trace-cmd print
            sec_us, us = divmod((ts + 500) // 1000, 1_000_000)
            if i % 10 == 9:  # one kernel event in ten
                payload = f"sched_process_exec: filename=/usr/bin/true pid={pid} old_pid={pid}"
                tr.write(f"{comm:>16}-{pid:<7} [{cpu:03d}] ..... {sec_us:5d}.{us:06d}: {payload}\n")
                rp.write(f"{comm:>16}-{pid:<5} [{cpu:03d}] {sec_us:5d}.{us:06d}: sched_process_exec:   "
                         f"filename=/usr/bin/true pid={pid} old_pid={pid}\n")
                rt.write(f"{comm:>16}-{pid:<5} [{cpu:03d}] {sec:5d}.{ns:09d}: sched_process_exec:   "
                         f"filename=/usr/bin/true pid={pid} old_pid={pid}\n")
                ql.write(f"{pid}@{1795632355 + sec_us}.{us:06d}:migration_bitmap_sync_start \n")
                continue
            q = QEMU_LINES[i % len(QEMU_LINES)].format(n=i * 4096)
            tr.write(f"{comm:>16}-{pid:<7} [{cpu:03d}] ...1. {sec_us:5d}.{us:06d}: tracing_mark_write: {q}\n")
            rp.write(f"{comm:>16}-{pid:<5} [{cpu:03d}] {sec_us:5d}.{us:06d}: print:                "
                     f"tracing_mark_write: {q}\n")
            rt.write(f"{comm:>16}-{pid:<5} [{cpu:03d}] {sec:5d}.{ns:09d}: print:                "
                     f"tracing_mark_write: {q}\n")
            ql.write(f"{pid}@{1795632355 + sec_us}.{us:06d}:{q}\n")
    return paths


def measure(fn, repeat: int) -> tuple[float, float, int]:
    best_wall = best_cpu = float("inf")
    n = 0
    for _ in range(repeat):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        n = fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--typing", action="store_true", help="add the reader + QEMU typing column")
    ap.add_argument("--no-typing", dest="typing", action="store_false", help=argparse.SUPPRESS)
    a = ap.parse_args()
    cat = Catalogue.default()
    # machine calibration: the floor of any reader that yields one Event per line
    from dissect.ftrace.event import Event

    def floor() -> int:
        n = 0
        for i in range(a.lines):
            Event("ftrace-text", i, 1, 4242, "live_migration", "ftrace", "print",
                  {"ip": "tracing_mark_write", "buf": "x\n"}, "tracing_mark_write: x", i)
            n += 1
        return n

    _, c, n = measure(floor, a.repeat)
    print(f"calibration: {n / c:,.0f} bare Event() constructions/s (CPU) on this machine")
    with tempfile.TemporaryDirectory() as d:
        paths = generate(Path(d), a.lines)
        print(f"{a.lines:,} lines per file; best of {a.repeat}; load average {os.getloadavg()[0]:.1f}")
        print("lines/s; cpu = time.process_time, wall = perf_counter")
        print(f"{'form':<10}{'MB':>5}{'per-line ev':>13}{'events':>11}{'(wall)':>11}{'+typing':>10}"
              f"{'frame lines':>13}{'bulk frame':>12}{'(wall)':>11}")
        for kind, reader in (("trace", read_ftrace_text), ("report", read_report_text),
                             ("report-t", read_report_text), ("qemu-log", read_qemu_log)):
            p = paths[kind]

            def read_per_line() -> int:
                r = reader(p)
                r._per_line = True
                for _ in r:
                    pass
                return r.lines

            def read_only() -> int:
                r = reader(p)
                for _ in r:
                    pass
                return r.lines

            def read_typed() -> int:
                r = reader(p)
                parse = cat.parse
                for ev in r:
                    buf = ev.fields.get("buf") if ev.system == "ftrace" else None
                    if isinstance(buf, str):
                        parse(buf[:-1])
                    elif ev.system == "qemu":
                        parse(ev.text)
                return r.lines

            def frame_lines() -> int:
                r = reader(p)
                r.dataframe(bulk=False)
                return r.lines

            def frame_bulk() -> int:
                r = reader(p)
                r.dataframe(bulk=True)
                return r.lines

            _, c0, _ = measure(read_per_line, a.repeat)
            w, c, n = measure(read_only, a.repeat)
            _, c2, _ = measure(read_typed, a.repeat) if a.typing else (0, float("nan"), 0)
            _, c3, _ = measure(frame_lines, a.repeat)
            w4, c4, _ = measure(frame_bulk, a.repeat)
            mb = p.stat().st_size / 1e6
            print(f"{kind:<10}{mb:5.0f}{n / c0:13,.0f}{n / c:11,.0f}{n / w:11,.0f}{n / c2:10,.0f}"
                  f"{n / c3:13,.0f}{n / c4:12,.0f}{n / w4:11,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
