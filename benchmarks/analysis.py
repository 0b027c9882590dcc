# SPDX-License-Identifier: GPL-2.0-only
"""Benchmark: analysis.load from contract units, metrics and summary, for growing migrations.

    python3 benchmarks/analysis.py [--iterations 100 1000 5000]

Builds a synthetic migration as contract units (the shape of
tests/test_analysis_fixture.py, repeated: per iteration one RAM PART, one VFIO
PART with a chunk and a record of 5 parts, 20 trace events), then times
``analysis.load(units=…)`` (frames, alignment, phases, iterations, checks) and
``summary_objects``.  Decoding is the decoders' benchmark, not this one.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# this script is named like the package it measures: keep its own folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

T = 1_700_000_000_000_000_000
DEV = "0000:00:05.0/vfio"
HOST = "0000:3b:00.1"


def make_units(n_iter: int) -> dict[int, list[dict]]:
    ms = lambda x: T + int(x * 1_000_000)  # noqa: E731
    s = [{"kind": "flow", "flow": 0, "client": "a:1", "server": "b:2", "role": "main", "c2s_bytes": 0,
          "s2c_bytes": 0, "retransmitted_bytes": 0, "gaps": [], "first_ts_ns": ms(0), "last_ts_ns": ms(0)}]
    ev = []
    off = data = 0

    def sec(t, typ, sid, idstr, length):
        nonlocal off
        s.append({"kind": "section", "flow": 0, "offset": off, "length": length, "type": typ,
                  "section_id": sid, "idstr": idstr, "instance_id": 0, "version_id": 1, "ts_ns": ms(t)})
        off += length

    sec(1, "START", 1, "ram", 100)
    sec(2, "START", 2, DEV, 40)
    for i in range(n_iter):
        t = 10 + 20 * i
        sec(t, "PART", 1, "ram", 4000)
        s.append({"kind": "ram", "section_id": 1, "section_type": "PART", "zero_pages": 1, "normal_pages": 1,
                  "bytes": 3990})
        sec(t + 5, "PART", 2, DEV, 1100)
        s.append({"kind": "vfio_chunk", "device": DEV, "section_id": 2, "phase": "precopy", "offset": off - 1000,
                  "data_offset": data, "size": 1000, "ts_ns": ms(t + 5)})
        s.append({"kind": "vfio_record", "device": DEV, "index": i, "offset": data, "record_size": 984,
                  "flags": 0, "tag": 0, "tag_name": "DEVICE_DATA", "optional": False, "phase": "precopy",
                  "parts": 5, "trailer_bytes": 0, "ts_ns": ms(t + 5)})
        s += [{"kind": "dev_part", "device": DEV, "record": i, "admin_tag": None, "index": k, "offset": 0,
               "part_type": k, "part_type_name": f"T{k}", "flags": 0, "optional": False, "selector": {},
               "length": 180, "value": {}} for k in range(5)]
        data += 1000
        for k in range(20):
            name = ("savevm_state_iterate", "vfio_save_block", "vfio_save_iterate")[k] if k < 3 else "other"
            args = {"name": HOST, "data_size": 1000} if name == "vfio_save_block" else (
                {"name": HOST, "precopy_init_size": 0, "precopy_dirty_size": 1000} if name == "vfio_save_iterate" else {})
            ev.append({"kind": "event", "source": "trace-dat", "ts_ns": ms(t + 5) - 5_000_000 - k, "cpu": 0,
                       "pid": 1, "comm": "q", "system": "ftrace", "event": "print", "fields": {}, "text": name,
                       "qemu": {"event": name, "args": args}})
    t = 10 + 20 * n_iter
    sec(t, "END", 1, "ram", 8000)
    sec(t + 5, "END", 2, DEV, 2000)
    sec(t + 9, "FULL", 2, DEV, 80)
    s.append({"kind": "rp_message", "flow": 0, "offset": 0, "type": 1, "type_name": "SHUT", "len": 4, "value": 0,
              "ts_ns": ms(t + 20)})
    return {0: s, 1: ev}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, nargs="+", default=[100, 1000, 5000])
    args = ap.parse_args()
    import analysis

    analysis.load()  # imports
    print(f"{'iterations':>10} {'units':>9} {'load s':>8} {'summary s':>9} {'units/s':>10}")
    for n in args.iterations:
        u = make_units(n)
        nunits = sum(len(v) for v in u.values())
        t0 = time.perf_counter()
        m = analysis.load("s", "t", units=u)
        t1 = time.perf_counter()
        objs = analysis.summary_objects(m)
        t2 = time.perf_counter()
        assert objs[1]["precopy_chunks"] == n
        print(f"{n:>10} {nunits:>9} {t1 - t0:>8.2f} {t2 - t1:>9.2f} {nunits / (t1 - t0):>10.0f}")


if __name__ == "__main__":
    main()
