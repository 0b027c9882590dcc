# SPDX-License-Identifier: GPL-2.0-only
"""Capture-layer benchmark: pcap reading and TCP reassembly.

    python3 benchmarks/capture.py [--file F] [--size 1GiB] [--tshark-size 64MiB] [--json]

Each measurement runs in its own process, so its peak RSS is its own
(``os.wait4``).  Measured on the same generated capture
(benchmarks/make_capture.py; created under benchmarks/data/ when missing):

* ``rawpcapreader``: scapy's ``RawPcapReader`` merely iterating the records
  (the issue's reference speed);
* ``reader``: :meth:`CaptureReader.records` iterating;
* ``reassemble``: :func:`dissect.capture.tcp.reassemble` of every flow,
  bytes handed to a consumer that drops them, with retransmission checking;
* ``tshark``: ``tshark -r F -q -z follow,tcp,raw,0`` (follow of the main
  channel only) on a smaller capture, compared with ``reassemble`` on that
  same smaller file — tshark needs minutes and GiBs for large files.

The QEMU-stream decode on top (engineer D's ``StreamParser``) is measured
end to end by the migration benchmark; this one stops at TCP.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _one(name: str, path: str) -> dict:
    """Run one measurement in this process (child mode); imports are not timed."""
    from scapy.utils import RawPcapReader

    from dissect.capture.reader import CaptureReader
    from dissect.capture.tcp import reassemble

    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    if name == "rawpcapreader":
        for _pkt, _meta in RawPcapReader(path):
            n += 1
    elif name == "reader":
        for _ in CaptureReader(path).records():
            n += 1
    elif name in ("reassemble", "reassemble-nocheck"):
        class Drop:
            def data(self, offset, data, ts_ns):
                pass

            def gap(self, start, end):
                pass

            def close(self):
                pass

        res = reassemble(path, lambda f, d: Drop(), check_overlaps=name == "reassemble")
        n = res.packets
    else:
        raise SystemExit(f"unknown measurement {name}")
    return {"name": name, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "packets": n}


def measure(name: str, path: Path) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--one", name, str(path)], stdout=subprocess.PIPE)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{name} failed with {proc.returncode}")
    r = json.loads(out)
    r["max_rss_mib"] = ru.ru_maxrss / 1024
    r["mb_s_cpu"] = path.stat().st_size / 1e6 / r["cpu_s"]
    r["mb_s_wall"] = path.stat().st_size / 1e6 / r["wall_s"]
    return r


def measure_tshark(path: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(["tshark", "-r", str(path), "-q", "-z", "follow,tcp,raw,0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    cpu = ru.ru_utime + ru.ru_stime
    return {"name": "tshark", "wall_s": wall, "cpu_s": cpu, "max_rss_mib": ru.ru_maxrss / 1024,
            "mb_s_cpu": path.stat().st_size / 1e6 / cpu, "mb_s_wall": path.stat().st_size / 1e6 / wall}


def ensure(path: Path, size: str) -> Path:
    if not path.exists():
        from benchmarks.make_capture import make_capture, parse_size

        make_capture(path, parse_size(size), multifd=2)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", nargs=2, metavar=("NAME", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--file", help="capture to measure (default: generated benchmarks/data/migration-<size>.pcap)")
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--tshark-size", default="64MiB")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(_one(*a.one)))
        return 0
    data = ROOT / "benchmarks" / "data"
    big = Path(a.file) if a.file else ensure(data / f"migration-{a.size.lower()}.pcap", a.size)
    rows = [measure(n, big) for n in ("rawpcapreader", "reader", "reassemble", "reassemble-nocheck")]
    small_rows = []
    if not a.no_tshark:
        small = ensure(data / f"migration-{a.tshark_size.lower()}.pcap", a.tshark_size)
        small_rows = [measure_tshark(small), measure("reassemble", small)]
    size_mb = big.stat().st_size / 1e6
    ref = rows[0]
    print(f"capture {big} ({size_mb:.0f} MB, {rows[0]['packets']} packets)")
    print(f"{'measurement':<22}{'cpu s':>8}{'wall s':>8}{'MB/s cpu':>10}{'MB/s wall':>10}"
          f"{'x RawPcapReader':>17}{'max RSS MiB':>13}")
    for r in rows:
        print(f"{r['name']:<22}{r['cpu_s']:>8.2f}{r['wall_s']:>8.2f}{r['mb_s_cpu']:>10.1f}{r['mb_s_wall']:>10.1f}"
              f"{ref['cpu_s'] / r['cpu_s']:>17.2f}{r['max_rss_mib']:>13.1f}")
    if small_rows:
        t, ours = small_rows
        sm = (data / f"migration-{a.tshark_size.lower()}.pcap").stat().st_size / 1e6
        print(f"\nsmaller capture ({sm:.0f} MB): tshark follow,tcp,raw,0 {t['wall_s']:.1f} s wall, {t['cpu_s']:.1f} s cpu, "
              f"{t['max_rss_mib']:.0f} MiB; reassemble (all flows) {ours['wall_s']:.2f} s wall, "
              f"{ours['cpu_s']:.2f} s cpu, {ours['max_rss_mib']:.0f} MiB -> {t['cpu_s'] / ours['cpu_s']:.0f}x "
              f"(cpu), {t['wall_s'] / ours['wall_s']:.0f}x (wall)")
        print(f"tshark extrapolated to {size_mb:.0f} MB at its measured rate: "
              f"{size_mb / t['mb_s_cpu']:.0f} s cpu (its memory grows with the capture)")
    if a.json:
        print(json.dumps({"file": str(big), "rows": rows, "tshark": small_rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
