# SPDX-License-Identifier: GPL-2.0-only
"""End-to-end decode of a large GENERATED migration capture (issue 3 benchmark).

    python3 benchmarks/stream.py [--size 1GiB] [--small 64MiB] [--skip-tshark] [--json]
    python3 benchmarks/stream.py --pcapng [--small 64MiB] [--json]

1. Writes (once, cached in benchmarks/data/) a pcap of ``--size`` payload:
   a QEMU 8.1–9.x main channel built by ``dissect.qemu.build_migration``
   (RAM pages, 60 % normal / 40 % zero, over MSS-1448 TCP via
   ``benchmarks/make_capture.py`` / ``dissect.capture.synth``), with its
   return path and a vfio-virtio VF (64 queue pairs, 40 pre-copy snapshots
   + stop-copy, 1 MiB QEMU buffer).
2. Times, each in a fresh subprocess (CPU seconds of the child from
   ``getrusage(RUSAGE_CHILDREN)``, which the shared machine's load disturbs
   far less than wall time; wall time too; peak RSS of the decoder):
   ``migtrace decode --json CAPTURE > /dev/null`` (everything down to device
   parts, JSON written), scapy's ``RawPcapReader`` merely iterating the
   file, and ``tshark -q -z follow,tcp,raw,0`` on a ``--small`` capture of
   the same kind (tshark on the full file takes too long; said so in the
   figures); and, in one process, TCP reassembly alone (null consumers)
   against reassembly + the QEMU stream parsers (no JSON), to show which
   layer costs what.
3. ``--pcapng`` instead: the ``--small`` capture as pcap against the same
   capture converted with ``editcap -F pcapng`` (cached next to it), CPU time
   of ``decode_capture`` (reassembly + QEMU parsers, no JSON) and of
   ``reassemble`` alone (null consumers), best of 5, in one child with the
   runs interleaved (so the three see the same load):
   pcap (fused pcap loop), pcapng (fused pcapng loop) and pcapng through the
   generic path (``CaptureReader.records()`` + ``Reassembler.feed``, what
   pcapng took before the fused loop).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT / "benchmarks" / "data"
NORMAL_RATIO = 0.6
BYTES_PER_PAGE = NORMAL_RATIO * (8 + 4096) + (1 - NORMAL_RATIO) * 9


def _spec(total: int, seed: int) -> Any:
    from dissect.qemu.build_migration import MigrationSpec, VfioDeviceSpec

    pages = int(total / BYTES_PER_PAGE)
    return MigrationSpec(profile="8.1-9.x", ram_bytes=pages * 4096, extra_blocks=(("pc.bios", 256 << 10),),
                         iterations=max(3, pages // 20000), normal_ratio=NORMAL_RATIO, final_dirty_pages=256,
                         devices=[VfioDeviceSpec(queue_pairs=64, precopy_snapshots=40)], seed=seed,
                         pages_per_write=256, write_interval_ns=1_000_000)


def qemu_content(total: int, seed: int, multifd: int) -> dict[str, Iterator[tuple[int, bytes]]]:
    """``benchmarks/make_capture.py --content benchmarks.stream:qemu_content``: a QEMU
    8.1–9.x migration of about ``total`` bytes (main channel + return path)."""
    from dissect.qemu.build_migration import iter_migration

    if multifd:
        raise ValueError("the stream benchmark uses the 8.1-9.x main channel only")
    a, b = itertools.tee(iter_migration(_spec(total, seed)))
    return {"main": ((ts, d) for _, ts, direction, d in a if direction == "c2s"),
            "rp": ((ts, d) for _, ts, direction, d in b if direction == "s2c")}


def ensure_capture(size: int, label: str) -> Path:
    path = DATA / f"stream-{label.lower()}.pcap"
    if not path.exists():
        from benchmarks.make_capture import make_capture

        t = time.perf_counter()
        n = make_capture(path, size, fmt="pcap", content="benchmarks.stream:qemu_content", seed=1)
        print(f"wrote {path}: {n} packets, {path.stat().st_size / 2**20:.1f} MiB in "
              f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
    return path


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _child(code: str, *args: str) -> tuple[float, float, str]:
    """Run python code in a child; (wall s, CPU s, stdout)."""
    t, c = time.perf_counter(), _cpu()
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    dt, dc = time.perf_counter() - t, _cpu() - c
    if p.returncode not in (0, 1):
        raise RuntimeError(p.stderr[-2000:])
    return dt, dc, p.stdout


DECODE = """
import sys, resource, collections
from analysis.cli.main import main
sys.stdout = open('/dev/null', 'w')
rc = main(['decode', '--json', sys.argv[1]])
sys.stdout = sys.__stdout__
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

COUNT = """
import sys, collections, resource
from analysis.emit.migration import emit_capture
c = collections.Counter(o['kind'] for o in emit_capture(sys.argv[1]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(dict(c))
"""

RAWPCAP = """
import sys, resource
from scapy.utils import RawPcapReader
n = 0
for pkt, meta in RawPcapReader(sys.argv[1]):
    n += 1
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(n)
"""


BREAKDOWN = """
import sys, time
from dissect.capture.tcp import reassemble
from dissect.qemu.session import decode_capture
class Null:
    def data(self, o, d, t): pass
    def gap(self, a, b): pass
    def close(self): pass
t = time.process_time(); reassemble(sys.argv[1], lambda i, d: Null()); a = time.process_time() - t
t = time.process_time(); n = sum(1 for _ in decode_capture(sys.argv[1])); b = time.process_time() - t
print(a, b)
"""


PCAPNG = """
import sys, time, json, resource
from dissect.capture.tcp import Reassembler, reassemble
from dissect.qemu.session import decode_capture
class Null:
    def data(self, o, d, t): pass
    def gap(self, a, b): pass
    def close(self): pass
fused = Reassembler.feed_pcapng
def generic(self, reader):
    self.feed(reader.records())
best = {}
units = {}
split = {}
for _ in range(5):
    for name, path, feed in (("pcap", sys.argv[1], fused), ("pcapng", sys.argv[2], fused),
                             ("pcapng_generic", sys.argv[2], generic)):
        Reassembler.feed_pcapng = feed
        t = time.process_time(); n = sum(1 for _ in decode_capture(path)); dt = time.process_time() - t
        best["decode_capture_" + name] = min(best.get("decode_capture_" + name, dt), dt)
        units[name] = n
        a = resource.getrusage(resource.RUSAGE_SELF)
        reassemble(path, lambda i, d: Null())
        z = resource.getrusage(resource.RUSAGE_SELF)
        dt = z.ru_utime - a.ru_utime + z.ru_stime - a.ru_stime
        if dt < best.get("reassemble_" + name, 1e9):
            best["reassemble_" + name] = dt
            split["reassemble_" + name] = (round(z.ru_utime - a.ru_utime, 3), round(z.ru_stime - a.ru_stime, 3),
                                           z.ru_minflt - a.ru_minflt)
print(json.dumps({"best": best, "units": units, "split": split}))
"""


def pcapng_copy(pcap: Path) -> Path:
    """``editcap -F pcapng`` of ``pcap`` (cached next to it)."""
    ng = pcap.with_suffix(".pcapng")
    if not ng.exists():
        subprocess.run(["editcap", "-F", "pcapng", str(pcap), str(ng)], check=True)
    return ng


def pcapng_compare(size: str) -> dict[str, Any]:
    from benchmarks.make_capture import parse_size

    pcap = ensure_capture(parse_size(size), size)
    ng = pcapng_copy(pcap)
    res: dict[str, Any] = {"capture": str(pcap.relative_to(ROOT)), "pcap_MB": round(pcap.stat().st_size / 1e6, 1),
                           "pcapng_MB": round(ng.stat().st_size / 1e6, 1), "load_before": os.getloadavg()}
    _, _, out = _child(PCAPNG, str(pcap), str(ng))
    got = json.loads(out)
    if len(set(got["units"].values())) != 1:
        raise RuntimeError(f"the decodes disagree: {got['units']}")
    b = got["best"]
    res.update({f"{k}_cpu_s_best_of_5": round(v, 3) for k, v in b.items()})
    res["units"] = got["units"]["pcap"]
    # The page cache's layout of each file shows in the system time and minor faults.
    res.update({f"{k}_user_sys_s_minflt": v for k, v in got["split"].items()})
    for what in ("decode_capture", "reassemble"):
        for ng in ("pcapng", "pcapng_generic"):
            res[f"{what}_{ng}_over_pcap"] = round(b[f"{what}_{ng}"] / b[f"{what}_pcap"], 2)
    res["load_after"] = os.getloadavg()
    return res


def _rss(out: str) -> float:
    return int(out.split()[0]) / 1024


def tshark_follow(path: Path) -> tuple[float, float]:
    """(wall s, CPU s) of ``tshark -q -z follow,tcp,raw,0`` on ``path``."""
    t, c = time.perf_counter(), _cpu()
    subprocess.run(["tshark", "-r", str(path), "-q", "-z", "follow,tcp,raw,0"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t, _cpu() - c


def main(argv: list[str] | None = None) -> int:
    from benchmarks.make_capture import parse_size

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--small", default="64MiB", help="capture size for the tshark comparison")
    ap.add_argument("--skip-tshark", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--pcapng", action="store_true",
                    help="only compare the --small capture as pcap and as pcapng (decode_capture, best of 5)")
    a = ap.parse_args(argv)
    if a.pcapng:
        res = pcapng_compare(a.small)
        if a.json:
            print(json.dumps(res))
        else:
            for k, v in res.items():
                print(f"{k:>40}: {v}")
        return 0
    big = ensure_capture(parse_size(a.size), a.size)
    mb = big.stat().st_size / 1e6
    res: dict[str, Any] = {"capture": str(big.relative_to(ROOT)), "file_MB": round(mb, 1),
                           "load_before": os.getloadavg()[0]}
    dt, cpu, out = _child(DECODE, str(big))
    res.update(decode_wall_s=round(dt, 2), decode_cpu_s=round(cpu, 2), decode_MBps_cpu=round(mb / cpu, 1),
               decode_MBps_wall=round(mb / dt, 1), decode_peak_rss_MiB=round(_rss(out), 1))
    dt, cpu, out = _child(RAWPCAP, str(big))
    res.update(rawpcapreader_wall_s=round(dt, 2), rawpcapreader_cpu_s=round(cpu, 2),
               rawpcapreader_MBps_cpu=round(mb / cpu, 1))
    res["ratio_to_rawpcapreader_cpu"] = round(res["decode_MBps_cpu"] / res["rawpcapreader_MBps_cpu"], 2)
    res["ratio_to_rawpcapreader_wall"] = round(res["rawpcapreader_wall_s"] / res["decode_wall_s"], 2)
    _, _, out = _child(BREAKDOWN, str(big))
    a_s, b_s = map(float, out.split())
    res.update(reassembly_only_cpu_s=round(a_s, 2), reassembly_plus_qemu_parse_cpu_s=round(b_s, 2),
               qemu_parse_MBps_cpu=round(mb / max(b_s - a_s, 1e-9), 1))
    _, _, out = _child(COUNT, str(big))
    res["units"] = json.loads(out.splitlines()[1].replace("'", '"'))
    if not a.skip_tshark:
        small = ensure_capture(parse_size(a.small), a.small)
        smb = small.stat().st_size / 1e6
        dt, cpu = tshark_follow(small)
        res.update(tshark_capture=str(small.relative_to(ROOT)), tshark_file_MB=round(smb, 1),
                   tshark_wall_s=round(dt, 2), tshark_cpu_s=round(cpu, 2), tshark_MBps_cpu=round(smb / cpu, 1))
        res["ratio_to_tshark_cpu"] = round(res["decode_MBps_cpu"] / res["tshark_MBps_cpu"], 1)
    res["load_after"] = os.getloadavg()[0]
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>26}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
