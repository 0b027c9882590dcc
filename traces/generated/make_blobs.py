#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Write the three GENERATED sample blobs of traces/generated/ (not real) that the
README's and ``migtrace decode --help``'s ``--as`` examples decode.

- ``vf0-parts.bin``: a DEV_PARTS_GET(ALL) result of a running virtio-net VF with 2
  queue pairs (the device parts the PF's admin queue returns).
- ``vf0-dev-parts-get-completion.bin``: the same result as a whole admin command
  completion buffer (status OK, status qualifier OK, 4 reserved bytes, then the
  parts), for ``--as admin-completion --opcode 0xf --subtype 1``.
- ``vf0-saved-device-data.bin``: what QEMU reads from a vfio-virtio migration fd
  over a whole migration: two pre-copy DEVICE_DATA records (two snapshots, the
  second with moved ring addresses) and the stop-copy one, each a 16-byte header
  plus the parts (vfio-virtio-stream.md).

Both come from migtrace's builders (dissect.virtio.builders, dissect.vfio.stream)
following the specs; deterministic.

    python3 traces/generated/make_blobs.py [OUTDIR]
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

from dissect.vfio.stream import build_record
from dissect.virtio.builders import virtio_net_vf_blob

QUEUE_PAIRS = 2


def blobs() -> dict[str, bytes]:
    snaps = [virtio_net_vf_blob(QUEUE_PAIRS, rss_table_size=16, generation=g) for g in (0, 1, 2)]
    return {"vf0-parts.bin": snaps[0],
            "vf0-dev-parts-get-completion.bin": struct.pack("<HH4x", 0, 0) + snaps[0],
            "vf0-saved-device-data.bin": b"".join(build_record(s) for s in snaps)}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    for name, data in blobs().items():
        (out / name).write_bytes(data)
        print(f"{out / name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
