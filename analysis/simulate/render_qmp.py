# SPDX-License-Identifier: GPL-2.0-only
"""The source's QMP ``query-migrate`` reply after the migration (qemu-trace-events.md §7),
and the time series a recorder polls during it (run-manifest.md role ``qmp-source``).

What a user saves next to the captures: ``{"return": {...}}`` with the
fields QEMU reports for a finished migration, computed from the simulated
run the way QEMU computes them (§7.1): ``total-time`` and ``downtime`` in
whole milliseconds, ``ram.transferred`` = main channel + multifd bytes,
``vfio.transferred`` = chunk payload bytes (plus whole device-state packets
incl. their 12-byte header with 10.x multifd).
"""
from __future__ import annotations

import json
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


#: ``migtrace record`` polls at about 10 Hz
POLL_NS = 100 * MS


def query_migrate_series(tl: Timeline, final: dict[str, Any], epoch_ns: int, poll_ns: int = POLL_NS) -> str:
    """JSON Lines: one reply per poll from the start to the end of the migration, ``ts_ns`` on the
    capture's clock, then the final reply.  Each poll holds what QEMU would report at that time:
    status, setup/total time, ``dirty-sync-count`` (bitmap syncs so far), ``remaining`` (dirty pages
    of the last sync less the pages sent since, as QEMU's migration_dirty_pages), ``duplicate`` /
    ``normal`` (pages sent so far); byte counters only in the final reply (the simulator paces
    writes by estimated sizes; exact bytes exist only once the stream is rendered)."""
    m = tl.marks
    syncs = sorted((e.ts_ns, int(e.args.get("dirty_pages", 0))) for e in tl.events
                   if e.side == "source" and e.name == "migration_bitmap_sync_end")
    sent = sorted((u.ts_ns, len(u.args.get("zero", ())), len(u.args.get("normal", ())))
                  for u in tl.units if u.kind in ("ram_part", "ram_end") and u.direction == "c2s")
    lines = []
    t = m["start"]
    end = m["downtime_end"]
    while t < end:
        ret: dict[str, Any] = {"status": "setup" if t < m["setup_end"] else "active", "total-time": _ms(t - m["start"])}
        if t >= m["setup_end"]:
            ret["setup-time"] = _ms(m["setup_end"] - m["start"])
        done = [sv for sv in syncs if sv[0] <= t]
        if done:
            last_sync, dirty = done[-1]
            since = sum(z + n for ts, z, n in sent if last_sync < ts <= t)
            upto = [(z, n) for ts, z, n in sent if ts <= t]
            ret["ram"] = {"total": tl.profile.ram_bytes, "remaining": max(0, dirty - since) * PAGE,
                          "dirty-sync-count": len(done), "page-size": PAGE,
                          "duplicate": sum(z for z, _ in upto), "normal": sum(n for _, n in upto)}
        lines.append(json.dumps({"ts_ns": epoch_ns + t, **ret}, separators=(",", ":")))
        t += poll_ns
    lines.append(json.dumps({"ts_ns": epoch_ns + end, **final.get("return", final)}, separators=(",", ":")))
    return "\n".join(lines) + "\n"
