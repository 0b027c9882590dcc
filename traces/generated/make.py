#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Write the GENERATED QEMU migration captures of traces/generated/ (not real).

QEMU 7.2 (the QEMU on this machine class) cannot migrate VFIO devices, so
VFIO-bearing streams are written by migtrace's builders
(dissect.qemu.build_migration) following the spec, with real device data
from dissect.virtio.builders / dissect.vfio.stream.build_record inside, and
packetised by dissect.capture.synth.write_tcp_capture.

    python3 traces/generated/make.py [OUTDIR]

Deterministic: the same seed gives the same bytes.
"""
from __future__ import annotations

import sys
from pathlib import Path

from dissect.capture.synth import write_tcp_capture
from dissect.qemu.build_migration import MigrationSpec, VfioDeviceSpec, build_migration

# Small RAM and a small read buffer, so records span several chunks and sections.
COMMON = dict(ram_bytes=1 << 20, extra_blocks=(("pc.bios", 64 << 10),), normal_ratio=0.05,
              final_dirty_pages=4, iterations=3)


def specs() -> dict[str, MigrationSpec]:
    return {
        # QEMU 8.1-9.x main channel, VFIO v2 pre-copy with switchover-ack, saved by exec:cat
        # (no return path on a file), one vfio-virtio VF.
        "qemu-9x-vfio.mig": MigrationSpec(profile="8.1-9.x", return_path=False, switchover_ack=False,
                                          devices=[VfioDeviceSpec(buffer_size=1024)], seed=1, **COMMON),
        # The same profile over TCP with return-path + switchover-ack, two VFs, one with the
        # kernel 6.13.0-6.15.2 8-byte trailer.
        "qemu-9x-vfio-rp.pcapng": MigrationSpec(
            profile="8.1-9.x", devices=[VfioDeviceSpec(buffer_size=1024),
                                        VfioDeviceSpec(idstr="0000:00:06.0/vfio", trailer_bug=True,
                                                       buffer_size=4096)], seed=2, **COMMON),
        # QEMU 10.x: SWITCHOVER_START, stop-copy device state in multifd packets on 2 channels.
        "qemu-10x-multifd.pcapng": MigrationSpec(profile="10.x", multifd_channels=2,
                                                 devices=[VfioDeviceSpec(buffer_size=1024)], seed=3, **COMMON),
    }


def make(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    out = []
    for name, spec in specs().items():
        m = build_migration(spec)
        path = outdir / name
        if name.endswith(".mig"):
            path.write_bytes(m.main_stream())
        else:
            write_tcp_capture(path, m.synth_flows(), fmt="pcapng", mss=1448)
        out.append(path)
    return out


if __name__ == "__main__":
    for p in make(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        print(p, p.stat().st_size)
