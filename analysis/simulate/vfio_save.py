# SPDX-License-Identifier: GPL-2.0-only
"""QEMU's VFIO save handlers in the model (``hw/vfio/migration.c``; qemu-migration-stream.md
§10.4, §10.6): the pending estimate/exact events, ``vfio_save_iterate`` (one read per PART),
the END section's reads until EOF and, in 10.x with multifd, the save thread's
device-state packets.  :class:`_VfioSave` is a base class of
:class:`analysis.simulate.model._Model`, which holds the state used here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.simulate.kernel import SourceMigf
from analysis.simulate.timeline import US, Chunk, Unit, _Threads, vf_host_name, vf_idstr


@dataclass
class _QVf:
    """QEMU's per-device migration state (hw/vfio/migration.c)."""

    buffer_size: int = 0
    stop_copy_size: int = 0
    init: int = 0
    dirty: int = 0
    initial_data_sent: bool = False
    empty_hit: bool = False
    section_id: int = 0


class _VfioSave:
    """The VFIO save handlers of :class:`~analysis.simulate.model._Model` (its state and
    primitives: ``sev``/``ev``/``send``/``ioctl``)."""

    q: Any
    family: str
    sth: _Threads
    chunks: list[list[Chunk]]
    config_blobs: list[bytes]
    multifd_packet_num: int
    last_unit: Unit

    def vfio_est_ev(self, t: int, vf: int, precopy: int, qv: _QVf) -> None:
        self.sev(t, "vfio_state_pending_estimate", name=vf_host_name(vf), precopy=precopy, postcopy=0,
                 precopy_init_size=qv.init, precopy_dirty_size=qv.dirty)

    def vfio_exact_ev(self, t: int, vf: int, precopy: int, qv: _QVf) -> None:
        self.sev(t, "vfio_state_pending_exact", name=vf_host_name(vf), precopy=precopy, postcopy=0,
                 stopcopy_size=qv.stop_copy_size, precopy_init_size=qv.init, precopy_dirty_size=qv.dirty)

    def vfio_iterate(self, t: int, vf: int, kv: SourceMigf, qv: _QVf, it: int, log: dict[str, int]) -> int:
        """``vfio_save_iterate``: one read, then END_OF_STATE or INIT_DATA_SENT."""
        name = vf_host_name(vf)
        self.sev(t, "savevm_section_start", id=vf_idstr(vf), section_id=qv.section_id)
        if self.family != "8.1":
            self.sev(t, "vfio_save_iterate_start", name=name)
        t0 = t
        data = kv.read(qv.buffer_size)
        t += 15 * US
        self.ioctl("source", self.sth.mig, t0, t, "read", 40 + vf, None, len(data) if data else -42,
                   qv.buffer_size)
        chunk = None
        if data:
            qv.empty_hit = False
            chunk = Chunk(vf, "precopy", kv.pos - len(data), len(data), t, it)
            self.sev(t, "vfio_save_block", name=name, data_size=len(data))
            size = len(data)
            if qv.init:
                take = min(qv.init, size)
                qv.init -= take
                size -= take
            qv.dirty -= min(qv.dirty, size)
            log["chunk"] = len(data)
        else:
            if self.family != "8.1" and not qv.empty_hit:
                self.sev(t, "vfio_save_block_precopy_empty_hit", name=name)
            qv.empty_hit = True
            qv.init = qv.dirty = 0
        term = "END_OF_STATE"
        if self.q.switchover_ack and not qv.init and not qv.initial_data_sent:
            term = "DEV_INIT_DATA_SENT"
            qv.initial_data_sent = True
        nbytes = 5 + 8 + (16 + len(data) if data else 0) + 5
        t_end = self.send(t, "vfio_part", nbytes, vf=vf, section_id=qv.section_id,
                          data=data, terminator=term, iteration=it)
        if chunk is not None:
            chunk.unit = self.last_unit
            self.chunks[vf].append(chunk)
        self.sev(t, "vfio_save_iterate", name=name, precopy_init_size=qv.init, precopy_dirty_size=qv.dirty)
        self.sev(t, "savevm_section_end", id=vf_idstr(vf), section_id=qv.section_id, ret=1)
        return t_end

    def vfio_thread(self, td: int, vf: int, kv: SourceMigf, qv: _QVf, out: list[Unit]) -> int:
        """10.x multifd device state: the save thread reads until EOF and queues one
        device-state packet per read, the config state last (§10.6)."""
        name = vf_host_name(vf)
        q = self.q
        th = (self.sth.dev[0] + vf, f"vfio-save-{vf}")
        self.ev("source", td, th, "vfio_save_complete_precopy_thread_start", name=name,
                idstr=vf_idstr(vf), instance_id=0)
        idx = 0
        while True:
            data = kv.read(qv.buffer_size)
            self.ioctl("source", th, td, td + 12 * US, "read", 40 + vf, None, len(data) if data else 0,
                       qv.buffer_size)
            td += 12 * US
            if not data:
                break
            ch = idx % q.multifd_channels
            self.ev("source", td, th, "vfio_save_block", name=name, data_size=len(data))
            self.send(td, "multifd_device_state", 276 + 12 + len(data), flow=f"multifd{ch}", vf=vf,
                      idstr=vf_idstr(vf), idx=idx, data=data, config=None, packet_num=self.multifd_packet_num)
            self.chunks[vf].append(Chunk(vf, "stopcopy", kv.pos - len(data), len(data),
                                         self.last_unit.ts_ns, None, self.last_unit))
            out.append(self.last_unit)
            self.multifd_packet_num += 1
            idx += 1
        ch = idx % q.multifd_channels
        td += 300 * US
        self.ev("source", td, th, "vfio_save_device_config_state", name=name)
        end = self.send(td, "multifd_device_state", 276 + 12 + 24 + len(self.config_blobs[vf]),
                        flow=f"multifd{ch}", vf=vf, idstr=vf_idstr(vf), idx=idx, data=None,
                        config=self.config_blobs[vf], packet_num=self.multifd_packet_num)
        out.append(self.last_unit)
        self.multifd_packet_num += 1
        self.ev("source", end, th, "vfio_save_complete_precopy_thread_end", name=name, ret=0)
        return end

    def vfio_complete(self, t: int, vf: int, kv: SourceMigf, qv: _QVf, out: list[Unit]) -> int:
        """END section: reads until EOF (main channel, or a multifd save thread in 10.x)."""
        name = vf_host_name(vf)
        q = self.q
        multifd = self.family == "10.x" and q.multifd_channels > 0
        self.sev(t, "savevm_section_start", id=vf_idstr(vf), section_id=qv.section_id)
        if self.family != "8.1" and not multifd:
            self.sev(t, "vfio_save_complete_precopy_start", name=name)
        t0 = t
        if multifd:
            t = self.send(t, "vfio_end", 18, vf=vf, section_id=qv.section_id, chunks=[])
            self.sev(t, "savevm_section_end", id=vf_idstr(vf), section_id=qv.section_id, ret=0)
        else:
            chunks = []
            while True:
                data = kv.read(qv.buffer_size)
                self.ioctl("source", self.sth.mig, t, t + 12 * US, "read", 40 + vf, None,
                           len(data) if data else 0, qv.buffer_size)
                t += 12 * US
                if not data:
                    break
                self.sev(t, "vfio_save_block", name=name, data_size=len(data))
                chunks.append(data)
                self.chunks[vf].append(Chunk(vf, "stopcopy", kv.pos - len(data), len(data), 0, None))
            t = self.send(t, "vfio_end", 18 + sum(16 + len(c) for c in chunks), vf=vf,
                          section_id=qv.section_id, chunks=chunks)
            out.append(self.last_unit)
            for c in self.chunks[vf][-len(chunks):] if chunks else []:
                c.unit = self.last_unit
            self.sev(t, "vfio_save_complete_precopy", name=name, ret=0)
            self.sev(t, "savevm_section_end", id=vf_idstr(vf), section_id=qv.section_id, ret=0)
        if self.family != "8.1":
            self.sev(t, "vmstate_downtime_save", type="iterable", idstr=vf_idstr(vf), instance_id=0,
                     downtime=(t - t0) // US)
        return t
