# SPDX-License-Identifier: GPL-2.0-only
"""Write a large generated migration capture for the benchmarks (never "real").

    python3 benchmarks/make_capture.py [--size 1GiB] [--out benchmarks/data/migration-1g.pcap]
        [--fmt pcap|pcapng] [--multifd N] [--content random | MODULE:FUNC] [--seed N]

The capture holds a main channel (client → server), its return path (a few
small server → client messages) and ``--multifd`` extra connections to the
same server port, as QEMU opens them (qemu-migration-stream.md §1.1), all
written by :func:`dissect.capture.synth.write_tcp_capture` with MSS 1448,
handshakes, delayed ACKs every second segment and FINs, streamed to disk.

The bytes inside the connections come from ``--content``:

* ``random`` (default): opaque pseudo-random bytes — enough to measure the
  capture and TCP layers, which never look inside.
* ``MODULE:FUNC``: ``FUNC(total_bytes: int, seed: int, multifd: int)``
  returns ``{"main": iter, "rp": iter, "multifd0": iter, ...}``, each an
  iterator of ``(ts_ns, bytes)`` writes in time order.  This is how the
  QEMU stream builders (dissect.qemu.build: RAM sections with zero and
  normal pages, a VFIO device) feed the end-to-end decode benchmark.
"""
from __future__ import annotations

import argparse
import importlib
import os
import random
import sys
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dissect.capture.synth import SynthFlow, write_tcp_capture  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
T0 = 1_700_000_000_000_000_000
RATE = 1.0  # bytes per ns: a 1 GB/s link, so timestamps look like a fast migration


def parse_size(s: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "kb": 10**3, "mb": 10**6, "gb": 10**9}
    t = s.strip().lower().removesuffix("ib").removesuffix("i")
    for u in sorted(units, key=len, reverse=True):
        if t.endswith(u):
            return int(float(t[: -len(u)]) * units[u])
    return int(t)


def random_content(total: int, seed: int, multifd: int) -> dict[str, Iterator[tuple[int, bytes]]]:
    """Opaque bytes: 1 MiB writes on the main channel (and the multifd ones),
    an 8-byte return-path message every 64 MiB."""
    rnd = random.Random(seed)
    pool = [rnd.randbytes(1 << 20) for _ in range(4)]  # rotating buffers: no RNG in the loop
    chans = ["main"] + [f"multifd{i}" for i in range(multifd)]
    share = total // len(chans)

    def writes(k: int) -> Iterator[tuple[int, bytes]]:
        left, ts, j = share, T0 + 10_000_000 + k * 1000, k
        while left > 0:
            b = pool[j % 4][: min(left, 1 << 20)]
            yield ts, b
            left -= len(b)
            ts += int(len(b) * len(chans) / RATE)
            j += 1

    def rp() -> Iterator[tuple[int, bytes]]:
        ts = T0 + 20_000_000
        for _ in range(max(1, share // (64 << 20))):
            yield ts, b"\x00\x03\x00\x04\x00\x00\x00\x01"  # a PONG-shaped message (§13)
            ts += int((64 << 20) * len(chans) / RATE)

    out = {c: writes(k) for k, c in enumerate(chans)}
    out["rp"] = rp()
    return out


def make_capture(out: Path, size: int, *, fmt: str = "pcap", multifd: int = 0, content: str = "random",
                 seed: int = 1) -> int:
    if content == "random":
        gen = random_content
    else:
        mod, _, func = content.partition(":")
        gen = getattr(importlib.import_module(mod), func)
    streams = gen(size, seed, multifd)
    server = "10.0.0.2:4444"

    def main_writes() -> Iterator[tuple[int, str, bytes]]:
        import heapq

        c2s = ((ts, "c2s", b) for ts, b in streams["main"])
        s2c = ((ts, "s2c", b) for ts, b in streams.get("rp", iter(())))
        yield from heapq.merge(c2s, s2c, key=lambda w: w[0])

    flows = [SynthFlow("10.0.0.1:50000", server, main_writes())]
    for i in range(multifd):
        it = streams[f"multifd{i}"]
        flows.append(SynthFlow(f"10.0.0.1:{50001 + i}", server, ((ts, "c2s", b) for ts, b in it)))
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_tcp_capture(out, flows, fmt=fmt, mss=1448)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1GiB", help="payload bytes over all connections (default 1GiB)")
    ap.add_argument("--out", help="output file (default benchmarks/data/migration-<size>.<fmt>)")
    ap.add_argument("--fmt", default="pcap", choices=["pcap", "pcapng"])
    ap.add_argument("--multifd", type=int, default=0)
    ap.add_argument("--content", default="random")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    size = parse_size(a.size)
    out = Path(a.out) if a.out else DATA / f"migration-{a.size.lower()}.{a.fmt}"
    t = time.perf_counter()
    n = make_capture(out, size, fmt=a.fmt, multifd=a.multifd, content=a.content, seed=a.seed)
    dt = time.perf_counter() - t
    print(f"{out}: {n} packets, {os.path.getsize(out) / 2**20:.1f} MiB file, {size / 2**20:.1f} MiB payload, "
          f"written in {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
