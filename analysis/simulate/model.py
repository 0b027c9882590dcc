# SPDX-License-Identifier: GPL-2.0-only
"""The migration model: a deterministic timeline as plain data.

:func:`build_timeline` runs one migration of a VM with vfio-virtio VFs and
returns a :class:`Timeline`: pre-copy iterations, RAM pages per iteration,
the kernel's DEVICE_DATA records and QEMU's reads of them (chunks), the
PRE_COPY info calls per driver policy, every admin command with its
latency, the stream units written on each flow with their capture
timestamps, QEMU trace events and the downtime checkpoints.  Nothing here
encodes bytes of any wire format except the record payloads, which come
from B's builders (:mod:`analysis.simulate.device`) and the record header
(B's ``build_record``); the renderers turn units into captures.

Behaviour modelled (sources in the docstrings of the pieces):
  * QEMU migration loop, ``migration_iteration_run``
    (qemu-trace-events.md §7.3): estimate, exact when estimate < threshold,
    switchover when pending < threshold and the switchover-ack arrived.
  * VFIO save handlers (``hw/vfio/migration.c``; qemu-migration-stream.md
    §10.4): setup, one read per PART, INIT_DATA_SENT, reads until EOF in END.
  * The vfio-virtio producer (vfio-virtio-stream.md §4, §7, §9): snapshots,
    the two PRE_COPY policies, METADATA_GET per MIG_DATA_SIZE query, the
    8-byte trailer (§6).
  * The destination as one loader that processes units in arrival order,
    one DEV_PARTS_SET per complete record (§5), approve-switchover, VM
    start and RP SHUT after it (qemu-trace-events.md §7.2).

The data types live in :mod:`analysis.simulate.timeline`, the source
kernel/device (admin queue, saving migration file) in
:mod:`analysis.simulate.kernel`, the destination in
:mod:`analysis.simulate.destination`, QEMU's VFIO save handlers in
:mod:`analysis.simulate.vfio_save`.  Approximations are listed in
docs/simulator.md.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dissect.qemu.build import vfio_pci_config_blob

from analysis.simulate.destination import Destination
from analysis.simulate.kernel import AdminQueue, SourceMigf
from analysis.simulate.profiles import SimProfile
from analysis.simulate.timeline import (CAP_CALLS, DST_OWNER, DST_PID, HZ_NS, MS, PAGE, QEMU_BUFFER_MAX,  # noqa: F401
                                        RUN_STATE, SRC_OWNER, SRC_PID, US, WINDOW_NS, AdminCmd, Chunk, Ioctl,
                                        Iteration, Record, Timeline, TraceEvent, Unit, _Threads, vf_host_name,
                                        vf_idstr)
# QEMU's VFIO save handlers live in vfio_save (a base class of _Model); _QVf stays importable from here
from analysis.simulate.vfio_save import _QVf, _VfioSave  # noqa: F401


# -------------------------------------------------------------------- model

class _Model(_VfioSave):
    def __init__(self, p: SimProfile, seed: int) -> None:
        self.p = p
        self.q = p.qemu
        self.family = p.qemu.family
        self.seed = seed
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.units: list[Unit] = []
        self.events: list[TraceEvent] = []
        self.admin: list[AdminCmd] = []
        self.ioctls: list[Ioctl] = []
        self.src_admin = AdminQueue("source", p, self.rng, self.admin)
        self.dst_admin = AdminQueue("destination", p, self.rng, self.admin)
        self.vfs = [SourceMigf(i, p, self.src_admin, self.rng) for i in range(p.vfs)]
        self.qv = [_QVf(section_id=3 + i) for i in range(p.vfs)]
        self.chunks: list[list[Chunk]] = [[] for _ in range(p.vfs)]
        self.iterations: list[Iteration] = []
        self.marks: dict[str, int] = {}
        self.sth = _Threads(self.family, "source")
        self.dth = _Threads(self.family, "destination")
        self.bw = p.link_gbit_per_s * 1e9 / 8 / 1e9       # bytes per ns
        self.lat = int(p.link_latency_us * US)
        self.wire_free = {"main": 0}                       # time each flow's link is free
        self.pending: list[tuple[Unit, int]] = []          # QEMUFile buffer of the main channel
        self.write_id = 0
        self.seq = 0
        self.ram_pages = p.ram_bytes // PAGE
        self.nonzero: set[int] = set()
        self.ram_totals = {"zero": 0, "normal": 0}
        self.window_start = 0
        self.window_bytes = 0
        self.transferred = 0
        self.multifd_bytes = 0
        self.multifd_packet_num = 0
        self.outcome = "completed"
        # VFIOPCIDevice state (PCI config space, IRQ state, MSI-X table, PBA) from D's builder
        self.config_blobs = [vfio_pci_config_blob(config_size=256, msix_entries=2 * p.firmware.queue_pairs + 2,
                                                  seed=vf) for vf in range(p.vfs)]
        self.threshold = self.q.threshold_bytes
        self.ack_needed = self.q.switchover_ack
        # switchover-ack requires the return-path capability
        self.rp = self.q.switchover_ack or self.q.return_path
        if not self.rp and any(f.kind == "parts_set_reject" for f in p.firmware.failures):
            raise ValueError("a rejected DEV_PARTS_SET needs a return path in this model (the source "
                             "learns of the failure only through RP SHUT)")
        self.ack_arrival: int | None = None
        self.dst = Destination(self)

    # -- primitives -----------------------------------------------------------
    def ev(self, side: str, t: int, thread: tuple[int, str], event: str, /, **args: Any) -> None:
        self.events.append(TraceEvent(side, t, thread[0], thread[1], event, args))

    def sev(self, t: int, event: str, /, **args: Any) -> None:
        self.ev("source", t, self.sth.mig, event, **args)

    def send(self, t: int, kind: str, nbytes: int, flow: str = "main", **args: Any) -> int:
        """Queue a unit on a source→destination flow.  The main channel is a
        buffered QEMUFile: units leave together at the next :meth:`flush`;
        multifd packets are written at once.  ``nbytes`` is the pacing
        estimate of the unit's size.  Returns ``t`` (main) or when the packet
        has left (multifd)."""
        unit = Unit(t, flow, "c2s", kind, args, self.seq)
        self.seq += 1
        self.units.append(unit)
        self.last_unit = unit
        self.window_bytes += nbytes
        self.transferred += nbytes
        if flow == "main":
            self.pending.append((unit, nbytes))
            return t
        self.multifd_bytes += nbytes
        return self._write(t, flow, [(unit, nbytes)])

    def flush(self, t: int) -> int:
        """``qemu_fflush``: the buffered main-channel units leave in one write."""
        if not self.pending:
            return t
        batch, self.pending = self.pending, []
        return self._write(t, "main", batch)

    def _write(self, t: int, flow: str, batch: list[tuple[Unit, int]]) -> int:
        start = max(t, self.wire_free.get(flow, 0))
        # C's writer spaces the segments of one write 1 us apart
        mss, seg_ns = self.p.mss, US
        off = 0
        self.write_id += 1
        for unit, nbytes in batch:
            off += nbytes
            unit.ts_ns, unit.write = start, self.write_id
            unit.end_ns = start + ((max(off, 1) - 1) // mss) * seg_ns
        nseg = -(-off // mss)
        end = start + max(int(off / self.bw), nseg * seg_ns) + 1
        self.wire_free[flow] = end
        for unit, _n in batch:
            self.dst.feed(unit, unit.end_ns + self.lat)
        return end

    def rp_send(self, t_dst: int, kind: str, **args: Any) -> int:
        """Destination writes an RP message at ``t_dst``; the source capture sees
        it one link latency later.  Returns the arrival time."""
        arrival = t_dst + self.lat
        self.units.append(Unit(arrival, "main", "s2c", kind, args, self.seq))
        self.seq += 1
        return arrival

    def jitter(self, ms: float, sigma: float) -> int:
        return int(ms * MS * math.exp(self.rng.normal(0.0, sigma)))

    def set_state_ev(self, side: str, t: int, thread: tuple[int, str], vf: int, new: str, recover: str) -> None:
        name = vf_host_name(vf)
        if self.family == "8.1":
            self.ev(side, t, thread, "vfio_migration_set_state", name=name, state=new)
        else:
            self.ev(side, t, thread, "vfio_migration_set_device_state", name=name, state=new)
            self.ev(side, t, thread, "vfio_migration_set_state", name=name, new_state=new,
                    recover_state=recover)

    def ioctl(self, side: str, thread: tuple[int, str], start: int, end: int, call: str, fd: int,
              cmd: int | None, ret: int, count: int = 0) -> None:
        self.ioctls.append(Ioctl(side, thread[0], thread[1], start, end, call, fd, cmd, ret, count))

    def window_tick(self, t: int) -> None:
        """QEMU's per-BUFFER_DELAY bandwidth bookkeeping (``migrate_transferred``)."""
        if t - self.window_start < WINDOW_NS:
            return
        spent_ms = max(1, (t - self.window_start) // MS)
        bw = self.window_bytes // spent_ms
        if self.family == "8.1":
            self.sev(t, "migrate_transferred", tranferred=self.window_bytes, time_spent=spent_ms,
                     bandwidth=bw, size=self.threshold)
        else:
            self.sev(t, "migrate_transferred", transferred=self.window_bytes, time_spent=spent_ms,
                     bandwidth=bw, avail_bw=self.q.switchover_bandwidth, size=self.threshold)
        self.window_start, self.window_bytes = t, 0

    # -- RAM ------------------------------------------------------------------
    def dirty_since(self, t_prev: int, t_now: int, busy_end: int) -> int:
        p = self.p
        dt = (t_now - t_prev) / 1e9
        rate = p.busy_dirty_pages_per_s if t_now < busy_end else p.idle_dirty_pages_per_s
        n = int(self.rng.poisson(rate * dt)) if rate > 0 else 0
        if t_now < busy_end:
            # the busy workload keeps the dirty set above the switchover threshold
            n = max(n, self.threshold // PAGE + 1)
        return min(n, self.ram_pages)

    def pick_pages(self, n: int) -> tuple[list[int], list[int]]:
        """Choose ``n`` dirty page indexes; a few become (or stay) non-zero."""
        if n <= 0:
            return [], []
        # the workload writes a buffer in the upper half of RAM; the pages that were
        # non-zero at the start (kernel, page tables) sit in the lower half
        half = self.ram_pages // 2
        n = min(n, self.ram_pages - half)
        idx = sorted(half + int(x) for x in self.rng.choice(self.ram_pages - half, size=n, replace=False))
        normal = []
        zero = []
        for i in idx:
            # the workload mostly writes zeros: each dirtied page holds data with this probability
            (normal if self.rng.random() < self.p.dirty_normal_fraction else zero).append(i)
        return zero, normal

    def ram_section(self, t: int, kind: str, zero: list[int], normal: list[int], **extra: Any) -> int:
        self.ram_totals["zero"] += len(zero)
        self.ram_totals["normal"] += len(normal)
        nbytes = 24 + 9 * len(zero) + (PAGE + 8) * len(normal)
        seeds = [int(self.rng.integers(0, 2**31)) for _ in normal]
        return self.send(t, kind, nbytes, zero=zero, normal=normal, page_seeds=seeds,
                         multifd=self.q.multifd_channels > 0, **extra)

    # -- the run ----------------------------------------------------------------
    def run(self) -> Timeline:
        p, q = self.p, self.q
        t = 0
        self.marks["start"] = t
        self.sev(t, "migrate_set_state", new_state="setup")
        t += 200 * US
        # destination: it was started with -incoming and is waiting
        self.sev(t, "savevm_state_header")
        t = self.send(t, "header", 64, machine=q.machine)
        if self.rp:
            self.sev(t, "savevm_send_open_return_path")
            self.sev(t, "savevm_command_send", command=1, len=0)
            # qemu_savevm_command_send() flushes after every command
            t = self.flush(self.send(t, "cmd_open_return_path", 5))
            self.ev("source", t, self.sth.rp, "source_return_path_thread_entry")
            self.ev("source", t, self.sth.rp, "source_return_path_thread_loop_top")
            self.sev(t, "savevm_send_ping", val=1)
            self.sev(t, "savevm_command_send", command=2, len=4)
            t = self.flush(self.send(t, "cmd_ping", 9, value=1))
        if q.multifd_channels:
            # the main channel's first bytes leave before the multifd channels connect
            t = self.flush(t)
            for ch in range(q.multifd_channels):
                self.ev("source", t, (SRC_PID + 10 + ch, f"mig/src/send_{ch}"), "multifd_send_thread_start", id=ch)
                self.send(t, "multifd_init", 64, flow=f"multifd{ch}", channel=ch)
        self.sev(t, "savevm_state_setup")
        # RAM START (ram_save_setup: the first bitmap sync, all pages dirty)
        self.sev(t, "savevm_section_start", id="ram", section_id=2)
        self.sev(t, "migration_bitmap_sync_start")
        t += 100 * US
        self.sev(t, "migration_bitmap_sync_end", dirty_pages=self.ram_pages)
        t = self.send(t, "ram_start", 40, section_id=2, ram_bytes=p.ram_bytes)
        self.sev(t, "savevm_section_end", id="ram", section_id=2, ret=0)
        # VFIO START per device (vfio_save_setup)
        for vf, (kv, qv) in enumerate(zip(self.vfs, self.qv)):
            name = vf_host_name(vf)
            self.sev(t, "savevm_section_start", id=vf_idstr(vf), section_id=qv.section_id)
            t0 = t
            t, size = kv.mig_data_size(t + 20 * US)
            self.ioctl("source", self.sth.mig, t0, t, "ioctl", 30 + vf, 0x3B75, 0)
            qv.stop_copy_size = size
            qv.buffer_size = min(QEMU_BUFFER_MAX, size)
            t0 = t
            t = kv.enter_precopy(t + 10 * US)
            self.ioctl("source", self.sth.mig, t0, t, "ioctl", 30 + vf, 0x3B75, 0)
            self.set_state_ev("source", t, self.sth.mig, vf, "PRE_COPY", "RUNNING")
            t0 = t
            t, ret, qv.init, qv.dirty = kv.precopy_info(t + 5 * US)
            self.ioctl("source", self.sth.mig, t0, t, "ioctl", 40 + vf, 0x3B79, ret)
            self.sev(t, "vfio_save_setup", name=name, data_buffer_size=qv.buffer_size)
            t = self.send(t, "vfio_start", 40, vf=vf, section_id=qv.section_id, idstr=vf_idstr(vf))
            self.sev(t, "savevm_section_end", id=vf_idstr(vf), section_id=qv.section_id, ret=0)
        t = self.flush(t)
        self.marks["setup_end"] = t
        self.sev(t, "migrate_set_state", new_state="active")
        self.window_start = t
        # destination side of setup runs as units arrive (see _destination)
        busy_end = t + int(p.busy_s * 1e9)
        last_sync = t
        dirty_pending = self.ram_pages          # bulk stage: everything is dirty
        bulk = True
        it = 0
        while True:
            it += 1
            it_start = t
            # -- pending estimate
            ram_pending = dirty_pending * PAGE
            est = ram_pending
            self.sev(t, "migrate_pending_estimate", size=est + sum(v.init + v.dirty for v in self.qv),
                     pre=est + sum(v.init + v.dirty for v in self.qv), post=0)
            for vf, qv in enumerate(self.qv):
                est += qv.init + qv.dirty
                self.vfio_est_ev(t, vf, est, qv)
            exact = False
            pending = est
            vfio_it: list[dict[str, int]] = [dict(init=v.init, dirty=v.dirty, stop_copy=v.stop_copy_size, chunk=0,
                                                  snapshot=0) for v in self.qv]
            if est < self.threshold:
                exact = True
                # RAM: bitmap sync
                self.sev(t, "migration_bitmap_sync_start")
                t += 150 * US
                n = self.dirty_since(last_sync, t, busy_end)
                last_sync = t
                dirty_pending = n
                self.sev(t, "migration_bitmap_sync_end", dirty_pages=n)
                pending = n * PAGE
                for vf, (kv, qv) in enumerate(zip(self.vfs, self.qv)):
                    t0 = t
                    t, size = kv.mig_data_size(t + 5 * US)
                    self.ioctl("source", self.sth.mig, t0, t, "ioctl", 30 + vf, 0x3B75, 0)
                    qv.stop_copy_size = size
                    nrec = len(kv.records)
                    t0 = t
                    t, ret, qv.init, qv.dirty = kv.precopy_info(t + 5 * US)
                    self.ioctl("source", self.sth.mig, t0, t, "ioctl", 40 + vf, 0x3B79, ret)
                    vfio_it[vf].update(init=qv.init, dirty=qv.dirty, stop_copy=size,
                                       snapshot=len(kv.records) - nrec)
                    pending += size + qv.init + qv.dirty
                    self.vfio_exact_ev(t, vf, pending, qv)
                self.sev(t, "migrate_pending_exact", size=pending, pre=pending, post=0)
            can_switch = (not self.ack_needed) or (self.ack_arrival is not None and self.ack_arrival <= t)
            if exact and pending < self.threshold and can_switch and not bulk:
                self.iterations.append(Iteration(it, it_start, t, exact, 0, 0, 0, pending, self.threshold, vfio_it))
                self.marks["switchover_decision"] = t
                self.sev(t, "migration_thread_low_pending", pending=pending)
                break
            # -- iterate: one PART per active iterable
            self.sev(t, "savevm_state_iterate")
            zero, normal = self.pick_pages(dirty_pending) if not bulk else self.bulk_pages()
            bulk = False
            self.sev(t, "savevm_section_start", id="ram", section_id=2)
            t = self.ram_section(t + 30 * US, "ram_part", zero, normal, section_id=2, iteration=it)
            self.sev(t, "savevm_section_end", id="ram", section_id=2, ret=1)
            nz, nn = len(zero), len(normal)
            dirty_pending = 0
            for vf, (kv, qv) in enumerate(zip(self.vfs, self.qv)):
                t = self.vfio_iterate(t, vf, kv, qv, it, vfio_it[vf])
            t = self.flush(t)
            self.iterations.append(Iteration(it, it_start, t, exact, nz + nn, nz, nn, pending,
                                             self.threshold, vfio_it))
            self.window_tick(t)
            t += self.jitter(q.iteration_ms, q.iteration_sigma)
            if it > 5000:
                raise RuntimeError("simulated migration does not converge")
        self.complete(t, last_sync, busy_end)
        return self.timeline()

    def bulk_pages(self) -> tuple[list[int], list[int]]:
        n0 = min(self.p.initial_normal_pages, self.ram_pages)
        normal = sorted(int(x) for x in self.rng.choice(self.ram_pages // 2, size=n0, replace=False))
        self.nonzero.update(normal)
        ns = set(normal)
        zero = [i for i in range(self.ram_pages) if i not in ns]
        return zero, normal

    # -- switchover -------------------------------------------------------------
    def complete(self, t: int, last_sync: int, busy_end: int) -> None:
        p, q, fam = self.p, self.q, self.family
        new = fam != "8.1"
        m = self.marks
        m["downtime_start"] = t
        if new:
            self.sev(t, "vmstate_downtime_checkpoint", checkpoint="src-downtime-start")
        # vm_stop_force_state(RUN_STATE_FINISH_MIGRATE)
        self.sev(t, "runstate_set", current_state=RUN_STATE["running"], current_state_str="running",
                 new_state=RUN_STATE["finish-migrate"], new_state_str="finish-migrate")
        self.sev(t, "vm_state_notify", running=0, reason=RUN_STATE["finish-migrate"], reason_str="finish-migrate")
        t += self.jitter(q.src_vm_stop_ms, 0.1)
        if new:  # 8.2+: P2P prepare step for every device first
            for vf, kv in enumerate(self.vfs):
                t0 = t
                t = self.src_admin.run(t, vf, "DEV_MODE_SET", "stop", mode_flags=1).done_ns
                self.ioctl("source", self.sth.mig, t0, t, "ioctl", 30 + vf, 0x3B75, 0)
                kv.state = "PRE_COPY_P2P"
                self.set_state_ev("source", t, self.sth.mig, vf, "PRE_COPY_P2P", "ERROR")
                self.sev(t, "vfio_vmstate_change_prepare", name=vf_host_name(vf), running=0,
                         reason="finish-migrate", dev_state="PRE_COPY_P2P")
        m["device_stop_start"] = t
        for vf, kv in enumerate(self.vfs):
            t0 = t
            if not new:
                t = self.src_admin.run(t, vf, "DEV_MODE_SET", "stop", mode_flags=1).done_ns
            t, cmd = kv.metadata_get(t, "stopcopy", kv.obj_id or 0)
            t = kv.snapshot(t, "stopcopy")
            kv.migf, kv.state = "COMPLETE", "STOP_COPY"
            self.ioctl("source", self.sth.mig, t0, t, "ioctl", 30 + vf, 0x3B75, 0)
            self.set_state_ev("source", t, self.sth.mig, vf, "STOP_COPY", "ERROR")
            self.sev(t, "vfio_vmstate_change", name=vf_host_name(vf), running=0, reason="finish-migrate",
                     dev_state="STOP_COPY")
        m["vm_stopped"] = t
        if new:
            self.sev(t, "vmstate_downtime_checkpoint", checkpoint="src-vm-stopped")
        self.sev(t, "migration_completion_vm_stop", ret=0)
        if fam == "10.x":
            self.sev(t, "migrate_set_state", new_state="device")
            self.sev(t, "savevm_send_switchover_start")
            self.sev(t, "savevm_command_send", command=11, len=0)
            self.send(t, "cmd_switchover_start", 5)
            t = self.flush(t)  # the destination starts its load thread on it
            m["wire_t0"] = self.last_unit.ts_ns
        self.sev(t, "savevm_state_complete_precopy")
        vfio_units: list[Unit] = []
        multifd = fam == "10.x" and q.multifd_channels > 0
        threads_end = t
        if multifd:  # 10.x: device-state save threads are spawned before the END sections
            for vf, (kv, qv) in enumerate(zip(self.vfs, self.qv)):
                threads_end = max(threads_end, self.vfio_thread(t + 20 * US, vf, kv, qv, vfio_units))
        # RAM END: final sync and the last dirty pages (ram_save_complete flushes)
        self.sev(t, "migration_bitmap_sync_start")
        t += 150 * US
        n = self.dirty_since(last_sync, t, busy_end)
        self.sev(t, "migration_bitmap_sync_end", dirty_pages=n)
        zero, normal = self.pick_pages(n)
        self.sev(t, "savevm_section_start", id="ram", section_id=2)
        ram_t0 = t
        t = self.ram_section(t + 100 * US, "ram_end", zero, normal, section_id=2)
        ram_unit = self.last_unit
        self.sev(t, "savevm_section_end", id="ram", section_id=2, ret=0)
        if new:
            self.sev(t, "vmstate_downtime_save", type="iterable", idstr="ram", instance_id=0,
                     downtime=(t - ram_t0) // US)
        self.ram_final = (len(zero), len(normal))
        t = self.flush(t)
        # VFIO END per device
        for vf, (kv, qv) in enumerate(zip(self.vfs, self.qv)):
            t = self.vfio_complete(t, vf, kv, qv, vfio_units)
        t = max(t, threads_end)  # join the device-state save threads
        if new:
            self.sev(t, "vmstate_downtime_checkpoint", checkpoint="src-iterable-saved")
        # FULL sections: VFIO config (in 10.x multifd it travelled in the last packet)
        for vf, qv in enumerate(self.qv):
            self.sev(t, "savevm_section_start", id=vf_idstr(vf), section_id=qv.section_id)
            c0 = t
            if fam == "10.x" and q.multifd_channels:
                t = self.send(t, "vfio_full", 18, vf=vf, section_id=qv.section_id, idstr=vf_idstr(vf),
                              config=None)
            else:
                self.sev(t, "vfio_save_device_config_state", name=vf_host_name(vf))
                t += self.jitter(0.3, 0.1)
                t = self.send(t, "vfio_full", 40 + len(self.config_blobs[vf]), vf=vf,
                              section_id=qv.section_id, idstr=vf_idstr(vf), config=self.config_blobs[vf])
            self.sev(t, "savevm_section_end", id=vf_idstr(vf), section_id=qv.section_id, ret=0)
            if new:
                self.sev(t, "vmstate_downtime_save", type="non-iterable", idstr=vf_idstr(vf), instance_id=0,
                         downtime=(t - c0) // US)
        if new:
            self.sev(t, "vmstate_downtime_checkpoint", checkpoint="src-non-iterable-saved")
        t = self.send(t, "eof", 1)
        t = self.send(t + 50 * US, "vmdesc", 200, vfs=p.vfs)
        last = self.last_unit
        t = self.flush(t)
        # wire marks: capture times of the first byte after the last PART and of
        # the segments holding the last byte of RAM END, of the VFIO stop-copy
        # data (main channel or multifd) and of the vmdesc trailer
        if "wire_t0" not in m:
            m["wire_t0"] = ram_unit.ts_ns
        m["ram_end"] = ram_unit.end_ns
        m["vfio_end"] = max([m["ram_end"]] + [u.end_ns for u in vfio_units])
        m["last_src_byte"] = last.end_ns
        if self.rp:
            self.sev(t, "migration_return_path_end_before")
            # the destination processed every unit as it arrived; its SHUT ends the return path
            shut_arrival = m["shut_arrival"]
            t = max(t, shut_arrival) + 30 * US
            self.ev("source", shut_arrival, self.sth.rp, "source_return_path_thread_shut",
                    val=1 if self.outcome == "failed" else 0)
            self.ev("source", shut_arrival + 5 * US, self.sth.rp, "source_return_path_thread_end")
            if fam == "8.1":
                self.sev(t, "migration_return_path_end_after", rp_error=0)
            else:
                self.sev(t, "migration_return_path_end_after")
        else:  # no return path: the source is done when its last byte has left
            t += 30 * US
        if self.outcome == "failed":
            self.sev(t, "migrate_set_state", new_state="failed")
            # the source resumes the VM: devices back to RUNNING (STOP_COPY→STOP→RUNNING_P2P→RUNNING)
            m["downtime_end"] = t
            for vf, kv in enumerate(self.vfs):
                t = self.src_admin.run(t, vf, "RESOURCE_OBJ_DESTROY", "resume", obj_id=kv.obj_id).done_ns
                t = self.src_admin.run(t, vf, "DEV_MODE_SET", "resume", mode_flags=0).done_ns
                self.set_state_ev("source", t, self.sth.main, vf, "RUNNING", "ERROR")
            self.sev(t, "runstate_set", current_state=RUN_STATE["finish-migrate"],
                     current_state_str="finish-migrate", new_state=RUN_STATE["running"], new_state_str="running")
            m["src_vm_resumed"] = t
        else:
            self.sev(t, "migrate_set_state", new_state="completed")
            m["downtime_end"] = t
            if new:
                self.sev(t, "vmstate_downtime_checkpoint", checkpoint="src-downtime-end")
            self.sev(t, "runstate_set", current_state=RUN_STATE["finish-migrate"],
                     current_state_str="finish-migrate", new_state=RUN_STATE["postmigrate"],
                     new_state_str="postmigrate")
            for vf, kv in enumerate(self.vfs):
                t = self.src_admin.run(t + 20 * US, vf, "RESOURCE_OBJ_DESTROY", "cleanup", obj_id=kv.obj_id).done_ns
                self.set_state_ev("source", t, self.sth.mig, vf, "STOP", "ERROR")
                self.sev(t, "vfio_save_cleanup", name=vf_host_name(vf))
        m["end"] = t

    def timeline(self) -> Timeline:
        for cs in self.chunks:
            for c in cs:
                if c.unit is not None:
                    c.ts_ns = c.unit.ts_ns
        recs = [kv.records for kv in self.vfs]
        # phase of each record = phase of the chunk carrying its header
        for vf, rs in enumerate(recs):
            for r in rs:
                for c in self.chunks[vf]:
                    if c.data_offset <= r.offset < c.data_offset + c.size:
                        r.phase, r.header_ts_ns = c.phase, c.ts_ns
                        break
        self.units.sort(key=lambda u: (u.ts_ns, u.seq))
        self.events.sort(key=lambda e: e.ts_ns)
        ram = dict(self.ram_totals, pages=self.ram_pages, final=getattr(self, "ram_final", (0, 0)))
        return Timeline(self.p, self.seed, self.units, self.events, self.admin, self.ioctls, recs,
                        self.chunks, self.iterations, self.marks, [kv.info_log for kv in self.vfs],
                        self.config_blobs, ram, self.outcome)


def build_timeline(profile: SimProfile, seed: int) -> Timeline:
    """Run the model: deterministic for (profile, seed)."""
    return _Model(profile, seed).run()
