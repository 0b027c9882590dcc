# SPDX-License-Identifier: GPL-2.0-only
"""Whole migrations as QEMU 8.0, 8.1–9.x and 10.x write them, from the pieces
of :mod:`dissect.qemu.build` (qemu-migration-stream.md §14 order).

:func:`iter_migration` yields timed writes ``(flow, ts_ns, direction, bytes)``
lazily (flow 0 = main channel with its return path, 1.. = multifd
channels), so a capture of any size can be written with bounded memory;
:func:`build_migration` collects them into a :class:`BuiltMigration`.
Both fill an :class:`Expected` with what was put in (sections, page counts,
vfio-virtio records with the phase of the chunk carrying their header,
config blobs, return-path messages) for tests to compare decodes against.

Device data is real layer output: GET ALL snapshots from
``dissect.virtio.builders.virtio_net_vf_blob`` inside records from
``dissect.vfio.stream.build_record``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterator

from dissect.qemu import build as B
from dissect.qemu import wire as W

Write = tuple[int, str, bytes]
PROFILES = ("8.0", "8.1-9.x", "10.x")


@dataclass
class VfioDeviceSpec:
    """One vfio-virtio VF: its idstr, how much pre-copy data and how QEMU reads it."""

    idstr: str = "0000:00:05.0/vfio"
    queue_pairs: int = 4
    rss_table_size: int = 128
    #: DEVICE_DATA records produced during pre-copy (first = initial data, then re-snapshots).
    precopy_snapshots: int = 2
    trailer_bug: bool = False
    #: QEMU's data buffer: min(1 MiB, stop_copy_size); every read() returns at most this.
    buffer_size: int = W.VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE
    config: bytes | None = None


@dataclass
class VmsdDeviceSpec:
    """An ordinary VMSD device (FULL section described by vmdesc)."""

    idstr: str
    vmsd_name: str
    version: int
    fields: list[tuple[str, str, int]]
    subsections: list[tuple[str, int, list[tuple[str, str, int]]]] = field(default_factory=list)
    instance_id: int = 0


DEFAULT_VMSD = [
    VmsdDeviceSpec("timer", "timer", 2, [("cpu_ticks_offset", "int64", 8), ("unused", "int64", 8),
                                        ("cpu_clock_offset", "int64", 8)],
                   [("timer/dticks", 1, [("dticks", "int64", 8)])]),
    VmsdDeviceSpec("globalstate", "globalstate", 1, [("size", "uint32", 4), ("runstate", "buffer", 100)]),
]


@dataclass
class MigrationSpec:
    """A migration to generate.  ``profile``: ``8.0`` (stop-copy only), ``8.1-9.x``
    (pre-copy, switchover-ack), ``10.x`` (SWITCHOVER_START, multifd device state)."""

    profile: str = "8.1-9.x"
    machine_type: str | None = None
    ram_bytes: int = 4 << 20
    extra_blocks: tuple[tuple[str, int], ...] = (("/rom@etc/acpi/tables", 128 << 10), ("pc.bios", 256 << 10))
    iterations: int = 3
    normal_ratio: float = 0.1
    final_dirty_pages: int = 16
    devices: list[VfioDeviceSpec] = field(default_factory=lambda: [VfioDeviceSpec()])
    vmsd_devices: list[VmsdDeviceSpec] = field(default_factory=lambda: list(DEFAULT_VMSD))
    return_path: bool = True
    switchover_ack: bool = True
    multifd_channels: int = 0
    #: 10.1 ``x-migration-load-config-after-iter``: FULL carries DEV_CONFIG_LOAD_READY.
    load_config_after_iter: bool = False
    vmdesc: bool = True
    seed: int = 0
    start_ns: int = 1_750_000_000_000_000_000
    write_interval_ns: int = 20_000
    iteration_interval_ns: int = 10_000_000
    #: Pages per write when page data is produced (bounds memory for big RAM).
    pages_per_write: int = 256

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}")
        if self.switchover_ack and not self.return_path:
            raise ValueError("switchover-ack requires return-path")
        if self.profile == "10.x" and self.devices and self.multifd_channels < 1:
            raise ValueError("10.x multifd device state needs multifd_channels >= 1")


@dataclass
class ExpectedRecord:
    device: str
    index: int
    offset: int
    payload: bytes           # parts bytes (without the trailer)
    record: bytes            # the whole record as written to the device stream
    phase: str
    parts: int


@dataclass
class Expected:
    sections: list[tuple[str, int, str]] = field(default_factory=list)   # (type, section_id, idstr)
    zero_pages: int = 0
    normal_pages: int = 0
    records: dict[str, list[ExpectedRecord]] = field(default_factory=dict)
    config: dict[str, bytes] = field(default_factory=dict)
    device_stream: dict[str, bytes] = field(default_factory=dict)
    rp_messages: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    vfio_chunks: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # (phase, size)


@dataclass
class BuiltMigration:
    spec: MigrationSpec
    flows: dict[int, list[Write]]
    expected: Expected

    def main_stream(self) -> bytes:
        """The main channel's client→server bytes (a raw stream file)."""
        return b"".join(d for _, direction, d in self.flows[0] if direction == "c2s")

    def return_path(self) -> bytes:
        return b"".join(d for _, direction, d in self.flows[0] if direction == "s2c")

    def channel(self, n: int) -> bytes:
        return b"".join(d for _, direction, d in self.flows[n] if direction == "c2s")

    def synth_flows(self, client: str = "192.0.2.1", server: str = "192.0.2.2:49152") -> list[dict[str, Any]]:
        """Flows for ``dissect.capture.synth.write_tcp_capture`` (main first)."""
        return [{"client": f"{client}:{40000 + n}", "server": server, "writes": self.flows[n]}
                for n in sorted(self.flows)]


def _device_records(dev: VfioDeviceSpec, snapshots: int) -> list[tuple[bytes, bytes, int]]:
    """(parts, record, parts count) for ``snapshots`` pre-copy records + the final one."""
    from dissect.vfio.stream import build_record
    from dissect.virtio.builders import build_parts, virtio_net_vf_parts

    out = []
    for g in range(snapshots + 1):
        parts = virtio_net_vf_parts(dev.queue_pairs, rss_table_size=dev.rss_table_size, generation=g)
        blob = build_parts(parts)
        out.append((blob, build_record(blob, trailer_bug=dev.trailer_bug), len(parts)))
    return out


def _vmsd_payload(d: VmsdDeviceSpec, rng: random.Random) -> tuple[bytes, dict[str, Any]]:
    body = b"".join(rng.randbytes(size) for _, _, size in d.fields)
    desc: dict[str, Any] = {"name": d.idstr, "instance_id": d.instance_id, "vmsd_name": d.vmsd_name,
                            "version": d.version,
                            "fields": [{"name": n, "type": t, "size": s} for n, t, s in d.fields]}
    subs = []
    for name, ver, fields in d.subsections:
        body += B.subsection(name, ver, b"".join(rng.randbytes(s) for _, _, s in fields))
        subs.append({"vmsd_name": name, "version": ver,
                     "fields": [{"name": n, "type": t, "size": s} for n, t, s in fields]})
    if subs:
        desc["subsections"] = subs
    return body, desc


def iter_migration(spec: MigrationSpec, expected: Expected | None = None) -> Iterator[tuple[int, int, str, bytes]]:
    """Yield ``(flow, ts_ns, direction, data)`` writes of a whole migration in time order."""
    exp = expected if expected is not None else Expected()
    rng = random.Random(spec.seed)
    ps = W.DEFAULT_PAGE_SIZE
    t = spec.start_ns
    ten = spec.profile == "10.x"
    precopy = spec.profile != "8.0"
    machine = spec.machine_type or {"8.0": "pc-q35-8.0", "8.1-9.x": "pc-q35-9.2", "10.x": "pc-q35-10.0"}[spec.profile]
    pool = [rng.randbytes(ps) for _ in range(64)]
    ram = B.RamWriter(ps)
    blocks = [("pc.ram", spec.ram_bytes)] + list(spec.extra_blocks)
    multifd = spec.multifd_channels > 0
    packet_num = 0
    mf_ram = [B.RamWriter(ps) for _ in range(spec.multifd_channels)]

    def tick(n: int = 1) -> int:
        nonlocal t
        t += spec.write_interval_ns * n
        return t

    def sec(kind: str, sid: int, idstr: str) -> None:
        exp.sections.append((kind, sid, idstr))

    # section ids in registration order (timer 0, ram 2, devices, then other VMSDs)
    ids: dict[str, int] = {"timer": 0, "ram": 2}
    for i, d in enumerate(spec.devices):
        ids[d.idstr] = 3 + i
    for i, v in enumerate(spec.vmsd_devices):
        ids.setdefault(v.idstr, 10 + i)

    # device streams and chunk plans
    dev_plan: dict[str, dict[str, Any]] = {}
    for d in spec.devices:
        recs = _device_records(d, d.precopy_snapshots if precopy else 0)
        pre = b"".join(r for _, r, _ in recs[:-1])
        stop = recs[-1][1]
        stream = pre + stop
        exp.device_stream[d.idstr] = stream
        # Pre-copy: first read() returns the initial record's bytes (≤ buffer), later re-snapshots.
        pre_chunks = B.split_chunks(pre, d.buffer_size) if pre else []
        first_len = len(recs[0][1]) if precopy else 0
        init_idx = -1
        acc = 0
        for j, c in enumerate(pre_chunks):
            acc += len(c)
            if acc >= first_len and init_idx < 0:
                init_idx = j
        dev_plan[d.idstr] = {"spec": d, "recs": recs, "pre_chunks": pre_chunks, "init_idx": init_idx,
                             "stop_chunks": B.split_chunks(stop, d.buffer_size),
                             "config": d.config if d.config is not None else B.vfio_pci_config_blob(seed=len(dev_plan)),
                             "phases": []}
        exp.vfio_chunks[d.idstr] = []

    def add_phase(idstr: str, phase: str, size: int) -> None:
        dev_plan[idstr]["phases"].append((phase, size))
        exp.vfio_chunks[idstr].append((phase, size))

    main = 0
    # 1. header, configuration; 2. return path
    yield main, tick(), "c2s", B.file_header() + B.configuration(machine)
    if spec.return_path:
        yield main, tick(), "c2s", B.open_return_path() + B.ping(1)
        exp.commands += ["OPEN_RETURN_PATH", "PING"]
        yield main, tick(5), "s2c", B.rp_pong(1)
        exp.rp_messages.append("PONG")
    if multifd:
        uuid = rng.randbytes(16)
        for c in range(spec.multifd_channels):
            yield 1 + c, tick(), "c2s", B.multifd_init(uuid, c)
    # 5. setup
    yield main, tick(), "c2s", B.section_start(ids["ram"], "ram", 0, 4, ram.setup(blocks, multifd_flush=multifd))
    sec("START", ids["ram"], "ram")
    for d in spec.devices:
        yield main, tick(), "c2s", B.section_start(ids[d.idstr], d.idstr, 0, 1, B.vfio_setup_payload())
        sec("START", ids[d.idstr], d.idstr)

    # RAM plan: one pass over every block spread over the iterations, then dirty pages in END.
    pages = [(name, off) for name, size in blocks for off in range(0, size, ps)]
    n_iter = max(spec.iterations, max((len(p["pre_chunks"]) for p in dev_plan.values()), default=0))
    per_iter = -(-len(pages) // max(1, n_iter))

    def ram_pages(batch: list[tuple[str, int]], ratio: float) -> Iterator[tuple[int, int, str, bytes]]:
        """Pages as main-channel records or, with multifd, multifd packets (9.0+ layout)."""
        nonlocal packet_num
        if not multifd:
            buf = []
            for k, (name, off) in enumerate(batch):
                if rng.random() < ratio:
                    buf.append(ram.normal_page(name, off, pool[k & 63]))
                    exp.normal_pages += 1
                else:
                    buf.append(ram.zero_page(name, off))
                    exp.zero_pages += 1
                if len(buf) >= spec.pages_per_write:
                    yield main, tick(), "c2s", b"".join(buf)
                    buf = []
            if buf:
                yield main, tick(), "c2s", b"".join(buf)
            return
        for i in range(0, len(batch), 128):
            grp = batch[i:i + 128]
            by_block: dict[str, tuple[list[int], list[int]]] = {}
            for name, off in grp:
                nz = by_block.setdefault(name, ([], []))
                (nz[0] if rng.random() < ratio else nz[1]).append(off)
            for name, (normal, zero) in by_block.items():
                ch = packet_num % spec.multifd_channels
                data = b"".join(pool[k & 63] for k in range(len(normal)))
                yield 1 + ch, tick(), "c2s", B.multifd_ram_packet(packet_num=packet_num, ramblock=name,
                                                                  normal_offsets=normal, zero_offsets=zero,
                                                                  page_data=data)
                packet_num += 1
                exp.normal_pages += len(normal)
                exp.zero_pages += len(zero)

    def multifd_sync() -> Iterator[tuple[int, int, str, bytes]]:
        nonlocal packet_num
        for c in range(spec.multifd_channels):
            # 9.2+/10.x: a SYNC packet skips the RAM fill (pages_alloc 0) but keeps the full array.
            yield 1 + c, tick(), "c2s", B.multifd_ram_packet(packet_num=packet_num, flags=W.MULTIFD_FLAG_SYNC,
                                                              pages_alloc=0 if ten else None)
            packet_num += 1

    acked = False
    pending_init = {d.idstr for d in spec.devices if precopy and dev_plan[d.idstr]["init_idx"] >= 0}
    # 6. iterations
    for it in range(n_iter):
        t += spec.iteration_interval_ns
        batch = pages[it * per_iter:(it + 1) * per_iter]
        yield main, tick(), "c2s", bytes([W.QEMU_VM_SECTION_PART]) + W.SECTION_ID.pack(ids["ram"])
        yield from ram_pages(batch, spec.normal_ratio)
        tail = b""
        if multifd and it == n_iter - 1:
            yield from multifd_sync()
            tail = ram.multifd_flush()
        yield main, tick(), "c2s", tail + ram.eos() + B.footer(ids["ram"])
        sec("PART", ids["ram"], "ram")
        if not precopy:
            continue
        for d in spec.devices:
            plan = dev_plan[d.idstr]
            chunk = plan["pre_chunks"][it] if it < len(plan["pre_chunks"]) else None
            init = spec.switchover_ack and it == plan["init_idx"]
            if chunk:
                add_phase(d.idstr, "precopy", len(chunk))
            yield main, tick(), "c2s", B.section_part(ids[d.idstr], B.vfio_precopy_payload(chunk, init_data_sent=init))
            sec("PART", ids[d.idstr], d.idstr)
            if init:
                pending_init.discard(d.idstr)
        if spec.switchover_ack and not acked and not pending_init and spec.devices:
            yield main, tick(20), "s2c", B.rp_switchover_ack()
            exp.rp_messages.append("SWITCHOVER_ACK")
            acked = True
    # 7. switchover
    t += spec.iteration_interval_ns
    if ten:
        yield main, tick(), "c2s", B.switchover_start()
        exp.commands.append("SWITCHOVER_START")
    dirty = [("pc.ram", rng.randrange(0, spec.ram_bytes // ps) * ps) for _ in range(spec.final_dirty_pages)]
    yield main, tick(), "c2s", bytes([W.QEMU_VM_SECTION_END]) + W.SECTION_ID.pack(ids["ram"])
    yield from ram_pages(dirty, 1.0)
    tail = b""
    if multifd:
        yield from multifd_sync()
        tail = ram.multifd_flush()
    yield main, tick(), "c2s", tail + ram.eos() + B.footer(ids["ram"])
    sec("END", ids["ram"], "ram")
    for d in spec.devices:
        plan = dev_plan[d.idstr]
        if ten:
            yield main, tick(), "c2s", B.section_end(ids[d.idstr], B.vfio_marker(W.VFIO_MIG_FLAG_END_OF_STATE))
            for idx, c in enumerate(plan["stop_chunks"]):
                add_phase(d.idstr, "stopcopy", len(c))
                yield 1 + idx % spec.multifd_channels, tick(), "c2s", B.multifd_device_state_packet(d.idstr, 0, idx, c)
            cfg = B.vfio_config_payload(plan["config"])
            yield 1 + len(plan["stop_chunks"]) % spec.multifd_channels, tick(), "c2s", \
                B.multifd_device_state_packet(d.idstr, 0, len(plan["stop_chunks"]), cfg, config=True)
        else:
            for c in plan["stop_chunks"]:
                add_phase(d.idstr, "stopcopy", len(c))
            yield main, tick(), "c2s", B.section_end(ids[d.idstr], B.vfio_stopcopy_payload(
                b"".join(plan["stop_chunks"]), buffer_size=d.buffer_size))
        sec("END", ids[d.idstr], d.idstr)
        exp.config[d.idstr] = plan["config"]
    # FULL sections in section-id order: VMSDs and the VFIO config
    desc_devices: list[dict[str, Any]] = []
    fulls: list[tuple[int, Any]] = [(ids[v.idstr], v) for v in spec.vmsd_devices] + \
        [(ids[d.idstr], d) for d in spec.devices]
    for sid, obj in sorted(fulls, key=lambda x: x[0]):
        if isinstance(obj, VmsdDeviceSpec):
            body, desc = _vmsd_payload(obj, rng)
            yield main, tick(), "c2s", B.section_full(sid, obj.idstr, obj.instance_id, obj.version, body)
        else:
            if ten:
                body = B.vfio_marker(W.VFIO_MIG_FLAG_DEV_CONFIG_LOAD_READY if spec.load_config_after_iter
                                     else W.VFIO_MIG_FLAG_END_OF_STATE)
            else:
                body = B.vfio_config_payload(dev_plan[obj.idstr]["config"])
            desc = {"name": obj.idstr, "instance_id": 0, "size": len(body),
                    "fields": [{"name": "data", "size": len(body), "type": "buffer"}]}
            yield main, tick(), "c2s", B.section_full(sid, obj.idstr, 0, 1, body)
        desc_devices.append(desc)
        sec("FULL", sid, obj.idstr)
    # 8./9. EOF and vmdesc
    tail = B.eof()
    if spec.vmdesc:
        tail += B.vmdesc_trailer({"page_size": ps, "devices": desc_devices})
    yield main, tick(), "c2s", tail
    if spec.return_path:
        yield main, tick(50), "s2c", B.rp_shut(0)
        exp.rp_messages.append("SHUT")
    # expected records with the phase of the chunk carrying each header
    for d in spec.devices:
        plan = dev_plan[d.idstr]
        bounds = []
        pos = 0
        for phase, size in plan["phases"]:
            bounds.append((pos, pos + size, phase))
            pos += size
        lst = exp.records[d.idstr] = []
        off = 0
        for i, (blob, rec, nparts) in enumerate(plan["recs"] if precopy else plan["recs"][-1:]):
            phase = next((ph for s, e, ph in bounds if s <= off < e), "stopcopy")
            lst.append(ExpectedRecord(d.idstr, i, off, blob, rec, phase, nparts))
            off += len(rec)


def build_migration(spec: MigrationSpec | None = None, **kw: Any) -> BuiltMigration:
    """A whole migration in memory (for small ones; use :func:`iter_migration` for big ones)."""
    spec = spec or MigrationSpec(**kw)
    exp = Expected()
    flows: dict[int, list[Write]] = {0: []}
    for c in range(spec.multifd_channels):
        flows[1 + c] = []
    for flow, ts, direction, data in iter_migration(spec, exp):
        flows[flow].append((ts, direction, data))
    return BuiltMigration(spec, flows, exp)
