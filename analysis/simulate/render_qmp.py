# SPDX-License-Identifier: GPL-2.0-only
"""The source's QMP ``query-migrate`` reply after the migration (qemu-trace-events.md §7).

What a user saves next to the captures: ``{"return": {...}}`` with the
fields QEMU reports for a finished migration, computed from the simulated
run the way QEMU computes them (§7.1): ``total-time`` and ``downtime`` in
whole milliseconds, ``ram.transferred`` = main channel + multifd bytes,
``vfio.transferred`` = chunk payload bytes (plus whole device-state packets
incl. their 12-byte header with 10.x multifd).
"""
from __future__ import annotations

from typing import Any

from dissect.qemu.build import vfio_config_payload

from analysis.simulate.timeline import MS, PAGE, Timeline

VFIO_PACKET_HEADER = 12  # VFIODeviceStatePacket: version, idx, flags


def _ms(ns: int) -> int:
    return int(ns // MS)


def query_migrate(tl: Timeline, bytes_main: int, bytes_multifd: int, dirty_syncs: int) -> dict[str, Any]:
    m = tl.marks
    vfio = 0
    for u in tl.units:
        if u.kind == "vfio_part" and u.args.get("data"):
            vfio += len(u.args["data"])
        elif u.kind == "vfio_end":
            vfio += sum(len(c) for c in u.args["chunks"])
        elif u.kind == "multifd_device_state":
            data = u.args["data"] if u.args["config"] is None else vfio_config_payload(u.args["config"])
            vfio += VFIO_PACKET_HEADER + len(data)
    total_ms = _ms(m["downtime_end"] - m["start"])
    setup_ms = _ms(m["setup_end"] - m["start"])
    transferred = bytes_main + bytes_multifd
    ram = {
        "transferred": transferred,
        "remaining": 0,
        "total": tl.profile.ram_bytes,
        "duplicate": tl.ram["zero"],
        "skipped": 0,
        "normal": tl.ram["normal"],
        "normal-bytes": tl.ram["normal"] * PAGE,
        "dirty-sync-count": dirty_syncs,
        "page-size": PAGE,
        "multifd-bytes": bytes_multifd,
        "mbps": round(transferred * 8 / max(1, total_ms - setup_ms) / 1000, 6),
        "postcopy-requests": 0,
        "dirty-sync-missed-zero-copy": 0,
    }
    ret: dict[str, Any] = {"status": tl.outcome, "setup-time": setup_ms, "total-time": total_ms, "ram": ram,
                           "vfio": {"transferred": vfio}}
    if tl.outcome == "completed":
        ret["downtime"] = _ms(m["downtime_end"] - m["downtime_start"])
    else:
        ret["error-desc"] = "Error while loading the migration stream on the destination (simulated)"
    return {"return": ret}
