# SPDX-License-Identifier: GPL-2.0-only
"""Admin-capture decoding speed: streaming reader, dict decoders, full emitter, scapy rdpcap.

Workload: a generated pcapng of admin commands as a migration of many VFs
produces them (virtio-admin.md §9.4, source side): per VF
RESOURCE_OBJ_CREATE, DEV_MODE_SET, DEV_PARTS_METADATA_GET (SIZE),
DEV_PARTS_GET (ALL) whose result is a 4-queue-pair virtio-net VF's parts,
RESOURCE_OBJ_DESTROY; each with its completion.

Run: ``python3 benchmarks/admin.py [--vfs N] [--seconds S] [--json]``.
Figures are per CPU second (``time.process_time``), best of the repeats,
because the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

# the repo before this folder: benchmarks/analysis.py would shadow the analysis package
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dissect.virtio import admin as A
from dissect.virtio import admin_capture as C
from dissect.virtio.admin_decode import decode_request, decode_result, request_subtype
from dissect.virtio.builders import virtio_net_vf_blob


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


def records(vfs: int) -> list[C.AdminRecord]:
    parts = virtio_net_vf_blob(4)
    out: list[C.AdminRecord] = []
    ts = 1_000_000_000
    tag = 0
    ok = bytes(8)
    for vf in range(1, vfs + 1):
        member = vf.to_bytes(8, "little")
        hdr = lambda op: op.to_bytes(2, "little") + b"\x01\x00" + bytes(12) + member  # noqa: E731
        obj = (vf % 200).to_bytes(4, "little")
        cmds = [
            (A.RESOURCE_OBJ_CREATE, hdr(0xA) + b"\0\0\0\0" + obj + bytes(16), 0, ok),
            (A.DEV_MODE_SET, hdr(0x11) + b"\x01", 0, ok),
            (A.DEV_PARTS_METADATA_GET, hdr(0xE) + b"\0\0\0\0" + obj + bytes(8), 0,
             ok + len(parts).to_bytes(4, "little") + bytes(4)),
            (A.DEV_PARTS_GET, hdr(0xF) + b"\0\0\0\0" + obj + b"\x01" + bytes(7), 1, ok + parts),
            (A.RESOURCE_OBJ_DESTROY, hdr(0xD) + b"\0\0\0\0" + obj, 0, ok),
        ]
        for op, req, sub, cpl in cmds:
            tag += 1
            out.append(C.request_record(tag, 0x3B00, req, ts, subtype=sub))
            out.append(C.completion_record(tag, 0x3B00, op, cpl, ts + 20_000, subtype=sub))
            ts += 50_000
    return out


def best(fn, seconds: float) -> float:
    """Best CPU time of repeated runs of ``fn`` within ``seconds``."""
    times = []
    deadline = time.process_time() + seconds
    while not times or time.process_time() < deadline:
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vfs", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    recs = records(a.vfs)
    n = len(recs)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "admin.pcapng"
        C.write_admin_pcapng(path, recs)

        def read():
            for _ in C.iter_admin_records(path):
                pass

        def dicts():
            sub = {}
            for r in recs:
                if r.direction == C.REQUEST:
                    d, _ = decode_request(r.payload, parts_findings=False)
                    sub[r.tag] = (d["opcode"], request_subtype(d["opcode"], d["data"]))
                else:
                    decode_result(r.payload, *sub[r.tag], parts_findings=False)

        def emit():
            from analysis.emit.admin import emit_admin_capture
            for _ in emit_admin_capture(path, SimpleNamespace(admin_linktype=None)):
                pass

        def scapy():
            from scapy.utils import rdpcap
            rdpcap(str(path))

        fig = {
            "records": n, "bytes": path.stat().st_size,
            "reader_records_per_s": n / best(read, a.seconds),
            "dict_decode_records_per_s": n / best(dicts, a.seconds),
            "emit_records_per_s": n / best(emit, a.seconds),
            "scapy_rdpcap_records_per_s": n / best(scapy, a.seconds),
        }
    if a.json:
        print(json.dumps(fig))
    else:
        for k, v in fig.items():
            print(f"{k:32} {v:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
