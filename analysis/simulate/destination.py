# SPDX-License-Identifier: GPL-2.0-only
"""The destination QEMU and kernel: loads units in arrival order.

One loader (QEMU's incoming coroutine) handles main-channel units one after
the other: a unit starts when it has arrived and the previous one is done.
The vfio-virtio target (vfio-virtio-stream.md §5) turns every complete
DEVICE_DATA record into one DEV_PARTS_SET; with QEMU 10.x multifd device
state, packets are buffered by idx and a load thread writes them after
SWITCHOVER_START (qemu-migration-stream.md §10.6).  At EOF the VM starts
(RESUMING→RUNNING_P2P→RUNNING: DESTROY, DEV_MODE_SET 0) and the return
path's SHUT follows (qemu-trace-events.md §5.2, §7.2).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dissect.qemu import wire as W
from dissect.vfio.stream import RecordSplitter

from analysis.simulate.timeline import RUN_STATE, US, Unit, vf_host_name, vf_idstr

if TYPE_CHECKING:
    from analysis.simulate.model import _Model

#: marker name -> value, from the stream's one table
MARK = {name: v for v, name in W.VFIO_MARKERS.items()}


class _DstVf:
    """Target kernel load state of one VF: accumulate bytes, SET per record."""

    def __init__(self) -> None:
        self.splitter = RecordSplitter()
        self.records = 0
        self.failed = False


class Destination:
    def __init__(self, model: "_Model") -> None:
        self.m = model
        self.fam = model.family
        self.new = self.fam != "8.1"
        self.th = model.dth
        self.busy = 0
        self.vfs = [_DstVf() for _ in range(model.p.vfs)]
        self.ack_pending = model.p.vfs if model.q.switchover_ack else 0
        self.buffers: dict[int, dict[int, Unit]] = {vf: {} for vf in range(model.p.vfs)}
        self.load_thread_started: int | None = None
        self.load_thread_done = 0
        self.next_idx = [0] * model.p.vfs
        self.failed = False
        self.done = False
        self.sets: list[int] = []  # DEV_PARTS_SET latencies, for truth

    # -- helpers ----------------------------------------------------------------
    def ev(self, t: int, event: str, thread: tuple[int, str] | None = None, /, **args: Any) -> None:
        self.m.ev("destination", t, thread or self.th.main, event, **args)

    def set_state(self, t: int, vf: int, new: str, recover: str) -> None:
        self.m.set_state_ev("destination", t, self.th.main, vf, new, recover)

    def write_fd(self, t: int, vf: int, data: bytes, phase: str, thread: tuple[int, str] | None = None) -> int:
        """``write()`` on the resuming fd; every completed record is a DEV_PARTS_SET."""
        d = self.vfs[vf]
        if d.failed:
            return t
        ret = len(data)
        for rec in d.splitter.feed(data):
            payload = rec.payload
            reason = "load-stopcopy" if phase == "stopcopy" else "load-precopy"
            cmd = self.m.dst_admin.run(t, vf, "DEV_PARTS_SET", reason, obj_id=0, parts=payload,
                                       record=d.records)
            d.records += 1
            self.sets.append(cmd.latency_ns)
            t = cmd.done_ns
            if cmd.status:
                d.failed = True
                ret = -cmd.status
                break
        th = thread or self.th.main
        self.m.ioctl("destination", th, t - 10 * US, t, "write", 50 + vf, None, ret, len(data))
        # 8.x prints the size in hex, 9.2+ in decimal: the renderer picks the variant
        self.ev(t, "vfio_load_state_device_data", th, name=vf_host_name(vf), data_size=len(data), ret=min(ret, 0))
        if ret < 0:
            self.fail(t, ret)
        return t

    def fail(self, t: int, ret: int) -> None:
        if self.failed:
            return
        self.failed = True
        self.m.outcome = "failed"
        self.ev(t, "process_incoming_migration_co_end", ret=ret, ps=0)
        self.shut(t + 200 * US, 1)

    def shut(self, t: int, value: int) -> None:
        """migration_incoming_state_destroy: RP SHUT when there is a return path."""
        self.m.marks["shut_sent"] = t
        self.done = True
        if not self.m.rp:
            return
        self.ev(t, "migrate_send_rp_message", msg_type=1, len=4)
        self.m.marks["shut_arrival"] = self.m.rp_send(t, "rp_shut", value=value)

    # -- the loader ---------------------------------------------------------------
    def feed(self, u: Unit, arrival: int) -> None:
        if self.failed or self.done:
            return
        if u.flow != "main":
            self.multifd(u, arrival)
            return
        t = max(arrival, self.busy)
        t = getattr(self, "_" + u.kind)(t, u)
        self.busy = t

    def _header(self, t: int, u: Unit) -> int:
        self.m.marks["dst_first_byte"] = t
        self.ev(t, "loadvm_state_setup")
        for vf in range(self.m.p.vfs):
            # RUNNING→RUNNING_P2P (DEV_MODE_SET stop) →STOP→RESUMING (CREATE SET)
            t = self.m.dst_admin.run(t + 20 * US, vf, "DEV_MODE_SET", "load-setup", mode_flags=1).done_ns
            t = self.m.dst_admin.run(t, vf, "RESOURCE_OBJ_CREATE", "load-setup", obj_id=0, obj_op=1).done_ns
            self.m.ioctl("destination", self.th.main, t - 10 * US, t, "ioctl", 30 + vf, 0x3B75, 0)
            self.set_state(t, vf, "RESUMING", "RUNNING")
        if self.ack_pending:
            self.ev(t, "loadvm_state_switchover_ack_needed", switchover_ack_pending_num=self.ack_pending)
        return t + 50 * US

    def _cmd_open_return_path(self, t: int, u: Unit) -> int:
        self.ev(t, "loadvm_process_command", s="OPEN_RETURN_PATH", len=0)
        return t + 20 * US

    def _cmd_ping(self, t: int, u: Unit) -> int:
        self.ev(t, "loadvm_process_command", s="PING", len=4)
        self.ev(t, "loadvm_process_command_ping", val=u.args["value"])
        self.ev(t, "migrate_send_rp_message", msg_type=2, len=4)
        arrival = self.m.rp_send(t + 5 * US, "rp_pong", value=u.args["value"])
        self.m.ev("source", arrival, self.m.sth.rp, "source_return_path_thread_pong", val=u.args["value"])
        return t + 10 * US

    def _multifd_init(self, t: int, u: Unit) -> int:
        return t

    def _ram(self, t: int, u: Unit, stype: int) -> int:
        self.ev(t, "qemu_loadvm_state_section", section_type=stype)
        if stype in (1, 4):
            self.ev(t, "qemu_loadvm_state_section_startfull", section_id=u.args["section_id"], idstr="ram",
                    instance_id=0, version_id=4)
        else:
            self.ev(t, "qemu_loadvm_state_section_partend", section_id=u.args["section_id"])
        pages = len(u.args.get("zero", ())) + len(u.args.get("normal", ()))
        return t + 20 * US + pages * 200  # ~0.2 us per page

    def _ram_start(self, t: int, u: Unit) -> int:
        return self._ram(t, u, 1)

    def _ram_part(self, t: int, u: Unit) -> int:
        return self._ram(t, u, 2)

    def _ram_end(self, t: int, u: Unit) -> int:
        return self._ram(t, u, 3)

    def _vfio_section(self, t: int, u: Unit, stype: int) -> None:
        self.ev(t, "qemu_loadvm_state_section", section_type=stype)
        if stype in (1, 4):
            self.ev(t, "qemu_loadvm_state_section_startfull", section_id=u.args["section_id"],
                    idstr=vf_idstr(u.args["vf"]), instance_id=0, version_id=1)
        else:
            self.ev(t, "qemu_loadvm_state_section_partend", section_id=u.args["section_id"])

    def _vfio_start(self, t: int, u: Unit) -> int:
        self._vfio_section(t, u, 1)
        self.ev(t, "vfio_load_state", name=vf_host_name(u.args["vf"]), data=MARK["DEV_SETUP_STATE"])
        return t + 10 * US

    def _vfio_part(self, t: int, u: Unit) -> int:
        vf = u.args["vf"]
        name = vf_host_name(vf)
        self._vfio_section(t, u, 2)
        if u.args.get("data"):
            self.ev(t, "vfio_load_state", name=name, data=MARK["DEV_DATA_STATE"])
            t = self.write_fd(t + 5 * US, vf, u.args["data"], "precopy")
            if self.failed:
                return t
        if u.args["terminator"] == "DEV_INIT_DATA_SENT":
            self.ev(t, "vfio_load_state", name=name, data=MARK["DEV_INIT_DATA_SENT"])
            self.ack_pending -= 1
            self.ev(t, "loadvm_approve_switchover", switchover_ack_pending_num=self.ack_pending)
            if self.ack_pending == 0:
                self.ev(t, "migrate_send_rp_message", msg_type=7, len=0)
                arrival = self.m.rp_send(t + 5 * US, "rp_switchover_ack")
                self.m.ack_arrival = arrival
                self.m.marks["switchover_ack_arrival"] = arrival
                self.m.ev("source", arrival, self.m.sth.rp, "source_return_path_thread_switchover_acked")
        return t + 10 * US

    def _cmd_switchover_start(self, t: int, u: Unit) -> int:
        self.ev(t, "loadvm_process_command", s="SWITCHOVER_START", len=0)
        self.load_thread_started = t
        self.load_thread_done = t
        for vf in range(self.m.p.vfs):
            self.ev(t, "vfio_load_bufs_thread_start", self.th.dev, name=vf_host_name(vf))
        self.drain(t)
        return t + 10 * US

    def _vfio_end(self, t: int, u: Unit) -> int:
        vf = u.args["vf"]
        name = vf_host_name(vf)
        self._vfio_section(t, u, 3)
        for data in u.args.get("chunks", ()):
            self.ev(t, "vfio_load_state", name=name, data=MARK["DEV_DATA_STATE"])
            t = self.write_fd(t + 5 * US, vf, data, "stopcopy")
            if self.failed:
                return t
        return t + 10 * US

    def _vfio_full(self, t: int, u: Unit) -> int:
        vf = u.args["vf"]
        self._vfio_section(t, u, 4)
        if u.args.get("config") is None:
            # 10.x multifd: the config came in the last device-state packet; wait for the load thread
            return max(t, self.load_thread_done) + 10 * US
        self.ev(t, "vfio_load_state", name=vf_host_name(vf), data=MARK["DEV_CONFIG_STATE"])
        self.ev(t, "vfio_load_device_config_state", name=vf_host_name(vf))
        return t + self.m.jitter(0.5, 0.1)

    def _eof(self, t: int, u: Unit) -> int:
        return t + 5 * US

    def _vmdesc(self, t: int, u: Unit) -> int:
        m, q, new = self.m, self.m.q, self.new
        t = max(t, self.load_thread_done) + m.jitter(q.dst_devices_load_ms, 0.1)
        self.ev(t, "qemu_loadvm_state_post_main", ret=0)
        m.marks["dst_loadvm_completed"] = t
        if new:
            self.ev(t, "vmstate_downtime_checkpoint", checkpoint="dst-precopy-loadvm-completed")
        t += 100 * US
        if new:
            self.ev(t, "vmstate_downtime_checkpoint", checkpoint="dst-precopy-bh-enter")
            self.ev(t, "vmstate_downtime_checkpoint", checkpoint="dst-precopy-bh-announced")
        self.ev(t, "runstate_set", current_state=RUN_STATE["inmigrate"], current_state_str="inmigrate",
                new_state=RUN_STATE["running"], new_state_str="running")
        self.ev(t, "vm_state_notify", running=1, reason=RUN_STATE["running"], reason_str="running")
        for vf in range(m.p.vfs):
            # RESUMING→STOP (DESTROY) →RUNNING_P2P
            t = m.dst_admin.run(t, vf, "RESOURCE_OBJ_DESTROY", "vm-start", obj_id=0).done_ns
            if new:
                self.set_state(t, vf, "RUNNING_P2P", "ERROR")
                self.ev(t, "vfio_vmstate_change_prepare", name=vf_host_name(vf), running=1, reason="running",
                        dev_state="RUNNING_P2P")
        for vf in range(m.p.vfs):
            # RUNNING_P2P→RUNNING: DEV_MODE_SET resume
            t = m.dst_admin.run(t, vf, "DEV_MODE_SET", "vm-start", mode_flags=0).done_ns
            self.set_state(t, vf, "RUNNING", "ERROR")
            self.ev(t, "vfio_vmstate_change", name=vf_host_name(vf), running=1, reason="running",
                    dev_state="RUNNING")
        t += m.jitter(q.dst_vm_start_ms, 0.1)
        m.marks["dst_vm_started"] = t
        if new:
            self.ev(t, "vmstate_downtime_checkpoint", checkpoint="dst-precopy-bh-vm-started")
        for vf in range(m.p.vfs):
            self.ev(t + 20 * US, "vfio_load_cleanup", name=vf_host_name(vf))
        self.ev(t + 30 * US, "process_incoming_migration_co_end", ret=0, ps=0)
        self.shut(t + 50 * US, 0)
        return t + 60 * US

    # -- 10.x multifd device state ---------------------------------------------------
    def multifd(self, u: Unit, arrival: int) -> None:
        if u.kind != "multifd_device_state":
            return
        vf = u.args["vf"]
        self.ev(arrival, "vfio_load_state_device_buffer_incoming", self.th.dev, name=vf_host_name(vf),
                idx=u.args["idx"])
        self.buffers[vf][u.args["idx"]] = u
        u.args["_arrival"] = arrival
        if self.load_thread_started is not None:
            self.drain(arrival)

    def drain(self, t: int) -> None:
        """The load thread writes buffered packets in idx order."""
        th = self.th.dev
        for vf in range(self.m.p.vfs):
            while self.next_idx[vf] in self.buffers[vf]:
                u = self.buffers[vf].pop(self.next_idx[vf])
                idx = self.next_idx[vf]
                t0 = max(self.load_thread_done, u.args["_arrival"], t)
                name = vf_host_name(vf)
                self.ev(t0, "vfio_load_state_device_buffer_load_start", th, name=name, idx=idx)
                if u.args.get("config") is not None:
                    self.ev(t0, "vfio_load_device_config_state_start", th, name=name)
                    t1 = t0 + self.m.jitter(0.5, 0.1)
                    self.ev(t1, "vfio_load_device_config_state_end", th, name=name)
                    self.ev(t1, "vfio_load_bufs_thread_end", th, name=name)
                else:
                    t1 = self.write_fd(t0 + 5 * US, vf, u.args["data"], "stopcopy", thread=th)
                self.ev(t1, "vfio_load_state_device_buffer_load_end", th, name=name, idx=idx)
                self.load_thread_done = t1
                self.next_idx[vf] += 1
                if self.failed:
                    return
