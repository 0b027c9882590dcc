# SPDX-License-Identifier: GPL-2.0-only
"""A hand-built migration as contract units (json-lines.md), with known answers.

One VFIO device ``0000:00:05.0/vfio`` (host name ``0000:3b:00.1`` in traces),
QEMU 8.1–9.x layout with a return path, four pre-copy iterations one second
apart, three pre-copy snapshots (records of 984, 1000, 1016 bytes) and one
stop-copy record of 1184 bytes made of three part types.  Times in ms after
``T`` (wall clock).  The expected values in the tests are worked out by hand
from these numbers (see the comments there).
"""
from __future__ import annotations

import copy
from typing import Any

T = 1_700_000_000_000_000_000            # wall-clock ns
BOOT = T - 5_000_000_000                 # the trace clock started 5 s before T
LAG = 50_000                             # trace events fire 50 µs before the bytes hit the wire
DEV = "0000:00:05.0/vfio"
HOST = "0000:3b:00.1"


def ms(x: float) -> int:
    return T + int(x * 1_000_000)


def _sec(off: int, t_ms: float, typ: str, sid: int, idstr: str, length: int) -> dict[str, Any]:
    return {"kind": "section", "flow": 0, "offset": off, "length": length, "type": typ, "section_id": sid,
            "idstr": idstr, "instance_id": 0, "version_id": 4 if idstr == "ram" else 1, "ts_ns": ms(t_ms)}


def _ram(sid: int, typ: str, zero: int, normal: int, nbytes: int) -> dict[str, Any]:
    return {"kind": "ram", "section_id": sid, "section_type": typ, "zero_pages": zero, "normal_pages": normal,
            "xbzrle_pages": 0, "compressed_pages": 0, "bytes": nbytes, "blocks": {}}


def _chunk(t_ms: float, phase: str, off: int, data_off: int, size: int) -> dict[str, Any]:
    return {"kind": "vfio_chunk", "device": DEV, "section_id": 2, "phase": phase, "offset": off,
            "data_offset": data_off, "size": size, "ts_ns": ms(t_ms)}


def _record(t_ms: float, idx: int, off: int, size: int, phase: str, nparts: int, trailer: int = 0) -> dict[str, Any]:
    return {"kind": "vfio_record", "device": DEV, "index": idx, "offset": off, "record_size": size, "flags": 0,
            "tag": 0, "tag_name": "DEVICE_DATA", "optional": False, "phase": phase, "parts": nparts,
            "trailer_bytes": trailer, "ts_ns": ms(t_ms)}


def _part(idx: int, ptype: int, name: str, length: int, *, record: int | None = 3,
          admin_tag: int | None = None) -> dict[str, Any]:
    return {"kind": "dev_part", "device": DEV if record is not None else None, "record": record,
            "admin_tag": admin_tag, "index": idx, "offset": 0, "part_type": ptype, "part_type_name": name,
            "flags": 0, "optional": False, "selector": {}, "length": length, "value": {}}


#: the stop-copy record's parts: 24 + 2×56 + 1048 = 1184 bytes
LAST_PARTS = [(0, "DEV_FEATURES", 8), (0x100, "VQ_CFG", 40), (0x100, "VQ_CFG", 40), (0x200, "NET_CVQ_CFG", 1032)]


def stream_units() -> list[dict[str, Any]]:
    u: list[dict[str, Any]] = [
        {"kind": "flow", "flow": 0, "client": "10.0.0.1:40000", "server": "10.0.0.2:4444", "role": "main",
         "c2s_bytes": 27000, "s2c_bytes": 24, "retransmitted_bytes": 0, "gaps": [],
         "first_ts_ns": ms(0), "last_ts_ns": ms(3151)},
        {"kind": "command", "flow": 0, "offset": 50, "cmd": 1, "cmd_name": "OPEN_RETURN_PATH", "len": 0, "value": None},
        _sec(100, 1, "START", 1, "ram", 200), _ram(1, "START", 10, 0, 150),
        _sec(300, 2, "START", 2, DEV, 40),
    ]
    # iterations: RAM PART at 10, 1010, 2010, 3010 ms; VFIO PART 10 ms later
    off, data_off = 400, 0
    sizes = [984, 1000, 1016]
    for i in range(4):
        t = 10 + 1000 * i
        u += [_sec(off, t, "PART", 1, "ram", 5000), _ram(1, "PART", 1, 1, 4100)]
        off += 5000
        if i < 3:
            u += [_sec(off, t + 10, "PART", 2, DEV, 16 + sizes[i] + 16 + 1 + 4 + 8),
                  _chunk(t + 10, "precopy", off + 5, data_off, 16 + sizes[i]),
                  _record(t + 10, i, data_off, sizes[i], "precopy", 3)]
            data_off += 16 + sizes[i]
            off += 16 + sizes[i] + 16 + 1 + 4 + 8
        else:
            u += [_sec(off, t + 10, "PART", 2, DEV, 30)]
            off += 30
    # switchover at 3100 ms
    u += [_sec(off, 3100, "END", 1, "ram", 8300), _ram(1, "END", 0, 2, 8200)]
    off += 8300
    # the device's stop-copy data leaves at 3128 ms, after 18 ms of reading the device
    u += [_sec(off, 3110, "END", 2, DEV, 1240), _chunk(3128, "stopcopy", off + 5, data_off, 1200),
          _record(3128, 3, data_off, 1184, "stopcopy", 4)]
    u += [_part(i, t, n, length) for i, (t, n, length) in enumerate(LAST_PARTS)]
    off += 1240
    u += [_sec(off, 3130, "FULL", 2, DEV, 80)]
    off += 80
    u += [_sec(off, 3135, "FULL", 3, "timer", 50)]
    u += [{"kind": "rp_message", "flow": 0, "offset": 0, "type": 2, "type_name": "PONG", "len": 4, "value": 1,
           "ts_ns": ms(1.5)},
          {"kind": "rp_message", "flow": 0, "offset": 8, "type": 1, "type_name": "SHUT", "len": 4, "value": 0,
           "ts_ns": ms(3150)}]
    return u


def _ev(t_ms: float, event: str, **args: Any) -> dict[str, Any]:
    """A source trace event on the trace clock (BOOT-based), LAG before the wire."""
    ts = ms(t_ms) - BOOT - LAG
    return {"kind": "event", "source": "trace-dat", "ts_ns": ts, "cpu": 0, "pid": 100,
            "comm": "live_migration", "system": "ftrace", "event": "print", "fields": {},
            "text": event, "qemu": {"event": event, "args": args}}


def trace_units() -> list[dict[str, Any]]:
    u = []
    blocks = [(20, 1000), (1020, 1016), (2020, 1032)]
    reported = [(1000, 0), (0, 1016), (0, 1032), (0, 0)]
    for i in range(4):
        t = 9 + 1000 * i
        u.append(_ev(t, "savevm_state_iterate"))
        if i < 3:
            u.append(_ev(blocks[i][0], "vfio_save_block", name=HOST, data_size=blocks[i][1]))
        u.append(_ev(t + 12, "vfio_save_iterate", name=HOST, precopy_init_size=reported[i][0],
                     precopy_dirty_size=reported[i][1]))
    u.append(_ev(3090, "vfio_state_pending_exact", name=HOST, precopy=0, postcopy=0, stopcopy_size=1200,
                 precopy_init_size=0, precopy_dirty_size=0))
    u.append(_ev(3095, "vmstate_downtime_checkpoint", checkpoint="src-downtime-start"))
    u.append(_ev(3128, "vfio_save_block", name=HOST, data_size=1200))
    u.append(_ev(3152, "vmstate_downtime_checkpoint", checkpoint="src-downtime-end"))
    return u


def admin_units() -> list[dict[str, Any]]:
    def cmd(tag: int, op: int, name: str, t: float) -> dict[str, Any]:
        return {"kind": "admin_cmd", "tag": tag, "owner": "0000:3b:00.0", "ts_ns": ms(t), "opcode": op,
                "opcode_name": name, "group_type": 1, "group_type_name": "SRIOV", "group_member_id": 1, "data": {}}

    def res(tag: int, op: int, name: str, t: float) -> dict[str, Any]:
        return {"kind": "admin_result", "tag": tag, "owner": "0000:3b:00.0", "ts_ns": ms(t), "opcode": op,
                "opcode_name": name, "status": 0, "status_name": "OK", "status_qualifier": 0,
                "status_qualifier_name": "OK", "result": {}}
    u = [cmd(1, 0x11, "DEV_MODE_SET", 3100), res(1, 0x11, "DEV_MODE_SET", 3101),
         cmd(2, 0x0f, "DEV_PARTS_GET", 3102), res(2, 0x0f, "DEV_PARTS_GET", 3105)]
    u += [_part(i, t, n, length, record=None, admin_tag=2) for i, (t, n, length) in enumerate(LAST_PARTS)]
    return u


def units(**changes: Any) -> dict[int, list[dict[str, Any]]]:
    """capture index → units: 0 stream, 1 source trace, 2 admin capture."""
    return copy.deepcopy({0: stream_units(), 1: trace_units(), 2: admin_units()})
