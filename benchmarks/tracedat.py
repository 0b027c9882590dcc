# SPDX-License-Identifier: GPL-2.0-only
"""Benchmark: a trace.dat of >= 1,000,000 events read into a pandas DataFrame.

Writes the file with dissect.ftrace.writer (QEMU-style print markers on two
CPUs, with some raw_data admin pieces and sched_switch events), then times

* ``TraceDat(path).dataframe()`` (metadata, page walk, decoding, rendering), and
* ``trace-cmd report <path> > /dev/null`` (when trace-cmd is installed),

and prints events/s for both and the ratio (ours / trace-cmd; > 1 = faster).

    python3 benchmarks/tracedat.py [--events N] [--compression none|zstd] [--version 6|7] [--keep PATH]
                                   [--file PATH] [--repeat N]

``--file`` reads an existing trace (e.g. one kept earlier) instead of writing one.
The fresh-process figures include the child's peak RSS (``ru_maxrss``).
"""
from __future__ import annotations

import argparse
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a checkout

from dissect.ftrace.event import Event  # noqa: E402
from dissect.ftrace.tracedat import TraceDat  # noqa: E402
from dissect.ftrace.writer import write_trace_dat  # noqa: E402

LINES = [
    "vfio_save_iterate  (0000:00:05.0) precopy initial size {a} precopy dirty size {b}",
    "vfio_save_block  (0000:00:05.0) data_size {a}",
    "vfio_state_pending_exact  (0000:00:05.0) precopy {a} postcopy 0 stopcopy size {b} "
    "precopy initial size {a} precopy dirty size {b}",
    "vmstate_downtime_checkpoint src-downtime-start",
    "migrate_set_state new state active",
]


def make_events(n: int) -> list[Event]:
    evs: list[Event] = []
    ts = 1_000_000_000
    piece = struct.pack("<II", 40, 0) + bytes(40)
    for i in range(n):
        cpu = i & 1
        ts += 713 + (i % 17)
        k = i % 50
        if k == 49:
            evs.append(Event("trace-dat", ts, cpu, 4000 + cpu, "qemu", "ftrace", "raw_data",
                             {"id": 0x76697274, "buf": piece}))
        elif k == 48:
            evs.append(Event("trace-dat", ts, cpu, 4000 + cpu, "qemu", "sched", "sched_switch", {
                "prev_comm": "qemu-system-x86", "prev_pid": 4000 + cpu, "prev_prio": 120, "prev_state": 1,
                "next_comm": "swapper", "next_pid": 0, "next_prio": 120}))
        else:
            line = LINES[i % len(LINES)].format(a=i * 4096, b=i % 977)
            evs.append(Event("trace-dat", ts, cpu, 4000 + cpu, "live_migration" if cpu else "qemu-system-x86",
                             "ftrace", "print", {"buf": line + "\n"}))
    return evs


# A first call in a fresh interpreter, measured as trace-cmd is: the child's
# user + sys CPU (interpreter start, imports, reading, DataFrame).  The child
# prints its own CPU time up to the read, so the import share can be told apart.
_FRESH = (
    "import resource, sys, time\n"
    "sys.path.insert(0, sys.argv[2])\n"
    "import pandas, pyarrow\n"
    "from dissect.ftrace.tracedat import TraceDat\n"
    "import dissect.ftrace.frame\n"
    "c0 = time.process_time()\n"
    "df = TraceDat(sys.argv[1]).dataframe()\n"
    "assert len(df) == int(sys.argv[3])\n"
    "print(c0, time.process_time() - c0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def fresh_run(path: Path, n: int) -> tuple[float, float, float, float]:
    """(whole child CPU, its CPU before reading, its CPU reading + DataFrame, its peak RSS in MB)
    of one fresh process."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", _FRESH, str(path), str(Path(__file__).resolve().parent.parent),
                          str(n)], check=True, capture_output=True, text=True).stdout.split()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), float(out[0]), float(out[1]),
            int(out[2]) / 1024)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--compression", default="none", choices=["none", "zstd"])
    ap.add_argument("--version", type=int, default=7, choices=[6, 7])
    ap.add_argument("--keep", type=Path, help="write the trace here and keep it")
    ap.add_argument("--file", type=Path, help="read this trace (of --events events) instead of writing one")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; best of them is reported")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="migtrace-bench-"))
    path = args.file or args.keep or tmp / "bench.dat"
    try:
        if args.file is None:
            t0 = time.perf_counter()
            write_trace_dat(path, make_events(args.events), version=args.version, compression=args.compression,
                            cpus=2)
            t_write = time.perf_counter() - t0
            print(f"wrote {args.events} events, v{args.version} {args.compression}, "
                  f"{path.stat().st_size / 1e6:.1f} MB in {t_write:.1f} s")
        else:
            print(f"reading {path} ({path.stat().st_size / 1e6:.1f} MB)")
        tool = shutil.which("trace-cmd")
        best = tbest = cbest = tcbest = pbest = None
        fresh: list[tuple[float, float, float, float]] = []
        # Interleaved, best of --repeat each.  The machine is shared: wall time swings
        # with other load, so CPU time (ours: process_time; trace-cmd: the
        # child's user+sys from getrusage) is reported too and used for the ratio.
        for _ in range(args.repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            td = TraceDat(path)
            td._cpu_records()  # metadata, decompression, page walk: timed apart, same total
            cp = time.process_time() - c0
            df = td.dataframe()
            dt, ct = time.perf_counter() - t0, time.process_time() - c0
            assert len(df) == args.events, len(df)
            best = dt if best is None else min(best, dt)
            cbest = ct if cbest is None else min(cbest, ct)
            pbest = cp if pbest is None else min(pbest, cp)
            del df
            td.close()
            if tool:
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                with open("/dev/null", "wb") as null:
                    subprocess.run([tool, "report", str(path)], stdout=null, stderr=subprocess.DEVNULL,
                                   check=True)
                dt = time.perf_counter() - t0
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                ct = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
                tbest = dt if tbest is None else min(tbest, dt)
                tcbest = ct if tcbest is None else min(tcbest, ct)
            fresh.append(fresh_run(path, args.events))
        assert best is not None and cbest is not None
        n = args.events
        print(f"migtrace TraceDat(path).dataframe(): wall {best:.2f} s ({n / best:,.0f} events/s), "
              f"CPU {cbest:.2f} s ({n / cbest:,.0f} events/s)  [best of {args.repeat}]")
        print(f"  of which metadata + decompression + page walk: CPU {pbest:.3f} s (best of {args.repeat})")
        whole, before, reading, _ = min(fresh)
        print(f"fresh process (python3 -c: start, imports, read, DataFrame): CPU {whole:.2f} s, "
              f"of which reading + DataFrame {reading:.2f} s, start + imports {before:.2f} s  "
              f"[best of {args.repeat}, by whole CPU]")
        print(f"  all rounds, whole CPU s: {' '.join(f'{f[0]:.2f}' for f in fresh)}; "
              f"peak RSS MB: {' '.join(f'{f[3]:.0f}' for f in fresh)}")
        if tbest is not None and tcbest is not None:
            print(f"trace-cmd report > /dev/null:        wall {tbest:.2f} s ({n / tbest:,.0f} events/s), "
                  f"CPU {tcbest:.2f} s ({n / tcbest:,.0f} events/s)  [best of {args.repeat}]")
            print(f"ratio migtrace / trace-cmd (events/s): CPU {tcbest / cbest:.2f}x, wall {tbest / best:.2f}x")
            print(f"ratio, fresh process (CPU): whole {tcbest / whole:.2f}x, "
                  f"reading + DataFrame only {tcbest / reading:.2f}x")
        else:
            print("trace-cmd not installed: no ratio")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
