# SPDX-License-Identifier: GPL-2.0-only
"""The source side's kernel and device: admin commands with firmware
latencies and failures, and the vfio-virtio saving migration file with the
two PRE_COPY policies (vfio-virtio-stream.md §4, §6, §7, §9;
virtio-admin.md §9)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dissect.vfio.stream import build_record

from analysis.simulate import device as D
from analysis.simulate.profiles import SimProfile
from analysis.simulate.timeline import CAP_CALLS, HZ_NS, MS, PAGE, US, AdminCmd, Record

class AdminQueue:
    """Issues admin commands with firmware latencies and injected failures."""

    def __init__(self, side: str, profile: SimProfile, rng: np.random.Generator, out: list[AdminCmd]):
        self.side, self.fw, self.rng, self.out = side, profile.firmware, rng, out
        self.tag = 0
        self.precopy_metadata = 0

    def _latency(self, opcode: str, nbytes: int, mode_flags: int | None) -> int:
        fw = self.fw
        base = {"RESOURCE_OBJ_CREATE": fw.obj_create_ms, "RESOURCE_OBJ_DESTROY": fw.obj_destroy_ms,
                "DEV_PARTS_METADATA_GET": fw.metadata_get_ms,
                "DEV_PARTS_GET": fw.parts_get_ms + fw.parts_get_per_kib_ms * nbytes / 1024,
                "DEV_PARTS_SET": fw.parts_set_ms + fw.parts_set_per_kib_ms * nbytes / 1024,
                "DEV_MODE_SET": fw.mode_stop_ms if mode_flags else fw.mode_resume_ms}[opcode]
        factor = math.exp(self.rng.normal(0.0, fw.latency_sigma)) if fw.latency_sigma else 1.0
        return max(1 * US, int(round(base * factor * MS)))

    def run(self, t: int, vf: int, opcode: str, reason: str, **kw: Any) -> AdminCmd:
        nbytes = len(kw.get("parts") or b"")
        cmd = AdminCmd(self.side, vf, self.tag, opcode, t,
                       self._latency(opcode, nbytes, kw.get("mode_flags")), reason, **kw)
        self.tag += 1
        for f in self.fw.failures:
            if (f.kind == "precopy_metadata_einval" and self.side == "source"
                    and opcode == "DEV_PARTS_METADATA_GET" and reason == "precopy-info"):
                self.precopy_metadata += 1
                if self.precopy_metadata == f.nth:
                    cmd.status, cmd.qualifier, cmd.size = f.status, f.qualifier, None
            if (f.kind == "parts_set_reject" and self.side == "destination"
                    and opcode == "DEV_PARTS_SET" and reason == "load-stopcopy"):
                cmd.status, cmd.qualifier = f.status, f.qualifier
        self.out.append(cmd)
        return cmd


class SourceMigf:
    """Source kernel state of one VF's saving migration file (vfio-virtio-stream.md §4, §7)."""

    def __init__(self, vf: int, profile: SimProfile, admin: AdminQueue, rng: np.random.Generator):
        self.vf, self.p, self.admin, self.rng = vf, profile, admin, rng
        self.stream = bytearray()     # everything queued so far (max_pos = len)
        self.pos = 0                  # bytes read by QEMU
        self.records: list[Record] = []
        self.generation = 0
        self.obj_id: int | None = None
        self.state = "RUNNING"
        self.migf = None              # None | PRECOPY | COMPLETE | ERROR
        self.pre_copy_initial_bytes = 0
        self.calls = 0
        self.rl_begin: int | None = None
        self.stale = bytearray(rng.bytes(PAGE))  # recycled, never zeroed buffer pages
        self.info_log: list[dict[str, int]] = []

    @property
    def max_pos(self) -> int:
        return len(self.stream)

    def current_parts_len(self) -> int:
        return len(D.context(self.p.firmware, self.vf, self.generation).payload)

    def metadata_get(self, t: int, reason: str, obj_id: int) -> tuple[int, AdminCmd]:
        size = D.metadata_size(self.p.firmware, self.current_parts_len())
        cmd = self.admin.run(t, self.vf, "DEV_PARTS_METADATA_GET", reason, obj_id=obj_id, size=size)
        return cmd.done_ns, cmd

    def snapshot(self, t: int, reason: str) -> int:
        """DEV_PARTS_GET(ALL) and queue one record; returns the time after it."""
        ctx = D.context(self.p.firmware, self.vf, self.generation)
        cmd = self.admin.run(t, self.vf, "DEV_PARTS_GET", reason, obj_id=self.obj_id,
                             parts=ctx.payload, record=len(self.records))
        n = len(ctx.payload)
        need = -(-(n + 8) // PAGE) * PAGE
        if len(self.stale) < need:
            self.stale += self.rng.bytes(need - len(self.stale))
        self.stale[:n] = ctx.payload
        trailer = bytes(self.stale[n:n + 8]) if self.p.trailer_bug else b""
        data = build_record(ctx.payload, trailer_bug=bool(trailer), trailer=trailer or b"\0" * 8)
        rec = Record(self.vf, len(self.records), self.generation, self.max_pos, n, trailer,
                     cmd.done_ns, reason, data, ctx.part_types)
        self.records.append(rec)
        self.stream += data
        self.generation += 1
        return cmd.done_ns

    # -- VFIO arcs ------------------------------------------------------------
    def enter_precopy(self, t: int) -> int:
        """RUNNING→PRE_COPY: CREATE(GET), METADATA_GET, DEV_PARTS_GET (§9)."""
        self.obj_id = 0
        t = self.admin.run(t, self.vf, "RESOURCE_OBJ_CREATE", "precopy-entry", obj_id=0, obj_op=0).done_ns
        t, cmd = self.metadata_get(t, "precopy-entry", 0)
        t = self.snapshot(t, "precopy-entry")
        self.pre_copy_initial_bytes = self.max_pos
        self.migf = "PRECOPY"
        self.state = "PRE_COPY"
        return t

    def mig_data_size(self, t: int) -> tuple[int, int]:
        """VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: METADATA_GET on the saving object,
        or around a temporary GET object when none exists (§9)."""
        if self.obj_id is None:
            t = self.admin.run(t, self.vf, "RESOURCE_OBJ_CREATE", "mig-data-size", obj_id=0, obj_op=0).done_ns
            t, cmd = self.metadata_get(t, "mig-data-size", 0)
            t = self.admin.run(t, self.vf, "RESOURCE_OBJ_DESTROY", "mig-data-size", obj_id=0).done_ns
        else:
            t, cmd = self.metadata_get(t, "mig-data-size", self.obj_id)
        return t, cmd.size or 0

    def precopy_info(self, t: int) -> tuple[int, int, int, int]:
        """VFIO_MIG_GET_PRECOPY_INFO per policy → (time after, ret, initial, dirty)."""
        policy = self.p.policy
        t0 = t
        ctx_size = 0
        queried = False
        ret = 0
        if policy == "cap128":
            self.calls += 1
            if self.calls > CAP_CALLS:
                # V0: success without touching the device; QEMU's zeroed struct echoes back
                self.info_log.append(dict(ts_ns=t0, call=self.calls, queried=0, snapshot=0,
                                          initial=0, dirty=0, ret=0))
                return t, 0, 0, 0
            queried = True
        else:
            if self.rl_begin is None or t > self.rl_begin + HZ_NS:
                self.rl_begin = t
                queried = True
        if queried:
            t, cmd = self.metadata_get(t, "precopy-info", self.obj_id or 0)
            if cmd.status:
                ret = -cmd.status
                self.info_log.append(dict(ts_ns=t0, call=self.calls, queried=1, snapshot=0,
                                          initial=0, dirty=0, ret=ret))
                return t, ret, 0, 0
            ctx_size = cmd.size or 0
        snap = 0
        if self.pre_copy_initial_bytes > self.pos:
            initial, dirty = self.pre_copy_initial_bytes - self.pos, 0
        else:
            initial = 0
            dirty = (self.max_pos - self.pos) + ctx_size
            if self.max_pos == self.pos and ctx_size:
                t = self.snapshot(t, "precopy-info")
                snap = 1
        self.info_log.append(dict(ts_ns=t0, call=self.calls, queried=int(queried), snapshot=snap,
                                  initial=initial, dirty=dirty, ret=ret))
        return t, ret, initial, dirty

    def read(self, n: int) -> bytes | None:
        """``read()`` on the data fd: bytes, or None for ENOMSG (pre-copy empty)/EOF."""
        if self.pos >= self.max_pos:
            return None
        data = bytes(self.stream[self.pos:self.pos + n])
        self.pos += len(data)
        return data


