# SPDX-License-Identifier: GPL-2.0-only
"""The source pcapng of a simulated run: QEMU's migration stream in TCP.

Units of the model become the bytes QEMU writes on the main channel, the
return path (reverse direction of the main connection) and, for QEMU 10.x,
the multifd channels — built with engineer D's builders
(:mod:`dissect.qemu.build`, qemu-migration-stream.md §3–§14); engineer C's
:func:`write_tcp_capture` turns the writes into segments, ACKs, handshake
and FIN.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dissect.capture.synth import SynthFlow, write_tcp_capture
from dissect.qemu import build as Q
from dissect.qemu import wire as W

from analysis.simulate.timeline import PAGE, Timeline, Unit, vf_idstr

SRC_IP, DST_IP = "192.168.100.1", "192.168.100.2"
DST_PORT = 49152            # libvirt's first native migration port
SRC_PORT = 41234
RAM_BLOCK = "pc.ram"
MULTIFD_PAGES_ALLOC = W.MULTIFD_PACKET_SIZE // PAGE
UUID = bytes.fromhex("6d6967747261636500000000000000a1")


def page_bytes(seed: int) -> bytes:
    """Content of a non-zero guest page (deterministic for its seed)."""
    return np.random.Generator(np.random.PCG64(seed)).bytes(PAGE)


class _Encoder:
    """Bytes of each unit kind; multifd RAM packets are queued per channel."""

    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.multifd = tl.profile.qemu.multifd_channels
        # since 9.2 a SYNC packet skips multifd_ram_fill_packet: pages_alloc 0, the 128 slots still sent
        ver = tuple(int(x) for x in tl.profile.qemu.version.split(".")[:2])
        self.sync_pages_alloc = 0 if ver >= (9, 2) else MULTIFD_PAGES_ALLOC
        self.packet_num = 0
        self.rr = 0
        self.ram = Q.RamWriter(PAGE)                   # the main channel's RAM records
        self.extra: list[tuple[str, int, bytes]] = []  # (flow, ts, bytes) written alongside main units

    def _multifd_pages(self, ts: int, zero: list[int], normal: list[int], seeds: list[int]) -> None:
        content = dict(zip(normal, seeds))
        pages = sorted(zero + normal)
        for i in range(0, len(pages), MULTIFD_PAGES_ALLOC):
            chunk = pages[i:i + MULTIFD_PAGES_ALLOC]
            nn = [p for p in chunk if p in content]
            nz = [p for p in chunk if p not in content]
            ch = self.rr % self.multifd
            self.rr += 1
            self.extra.append((f"multifd{ch}", ts, Q.multifd_ram_packet(
                packet_num=self.packet_num, ramblock=RAM_BLOCK, normal_offsets=[p * PAGE for p in nn],
                zero_offsets=[p * PAGE for p in nz], page_data=b"".join(page_bytes(content[p]) for p in nn),
                pages_alloc=MULTIFD_PAGES_ALLOC)))
            self.packet_num += 1
        if pages:  # multifd_send_sync_main: a SYNC packet on every channel
            for ch in range(self.multifd):
                self.extra.append((f"multifd{ch}", ts + 1, Q.multifd_ram_packet(
                    packet_num=self.packet_num, flags=W.MULTIFD_FLAG_SYNC, pages_alloc=self.sync_pages_alloc)))
                self.packet_num += 1

    def ram_payload(self, u: Unit) -> bytes:
        a = u.args
        out = []
        if self.multifd:
            self._multifd_pages(u.ts_ns, a["zero"], a["normal"], a["page_seeds"])
            out.append(self.ram.multifd_flush())
        else:
            content = dict(zip(a["normal"], a["page_seeds"]))
            for page in sorted(a["zero"] + a["normal"]):
                if page in content:
                    out.append(self.ram.normal_page(RAM_BLOCK, page * PAGE, page_bytes(content[page])))
                else:
                    out.append(self.ram.zero_page(RAM_BLOCK, page * PAGE))
        out.append(self.ram.eos())
        return b"".join(out)

    def encode(self, u: Unit) -> bytes:
        a, k = u.args, u.kind
        if k == "header":
            return Q.file_header() + Q.configuration(a["machine"])
        if k == "cmd_open_return_path":
            return Q.open_return_path()
        if k == "cmd_ping":
            return Q.ping(a["value"])
        if k == "cmd_switchover_start":
            return Q.switchover_start()
        if k == "ram_start":
            payload = self.ram.setup([(RAM_BLOCK, a["ram_bytes"])], multifd_flush=self.multifd > 0)
            return Q.section_start(a["section_id"], "ram", 0, 4, payload)
        if k == "ram_part":
            return Q.section_part(a["section_id"], self.ram_payload(u))
        if k == "ram_end":
            return Q.section_end(a["section_id"], self.ram_payload(u))
        if k == "vfio_start":
            return Q.section_start(a["section_id"], a["idstr"], 0, 1, Q.vfio_setup_payload())
        if k == "vfio_part":
            return Q.section_part(a["section_id"], Q.vfio_precopy_payload(
                a["data"] or None, init_data_sent=a["terminator"] == "DEV_INIT_DATA_SENT"))
        if k == "vfio_end":
            payload = b"".join(Q.vfio_data_chunk(c) for c in a["chunks"]) + Q.vfio_marker(W.VFIO_MIG_FLAG_END_OF_STATE)
            return Q.section_end(a["section_id"], payload)
        if k == "vfio_full":
            payload = (Q.vfio_config_payload(a["config"]) if a["config"] is not None
                       else Q.vfio_marker(W.VFIO_MIG_FLAG_END_OF_STATE))
            return Q.section_full(a["section_id"], a["idstr"], 0, 1, payload)
        if k == "eof":
            return Q.eof()
        if k == "vmdesc":
            return Q.vmdesc_trailer(self.vmdesc(a["vfs"]))
        if k == "multifd_init":
            return Q.multifd_init(UUID, a["channel"])
        if k == "multifd_device_state":
            if a["config"] is not None:
                return Q.multifd_device_state_packet(a["idstr"], 0, a["idx"], Q.vfio_config_payload(a["config"]),
                                                     config=True)
            return Q.multifd_device_state_packet(a["idstr"], 0, a["idx"], a["data"])
        if k == "rp_pong":
            return Q.rp_pong(a["value"])
        if k == "rp_switchover_ack":
            return Q.rp_switchover_ack()
        if k == "rp_shut":
            return Q.rp_shut(a["value"])
        raise ValueError(f"unknown unit kind {k!r}")

    def vmdesc(self, vfs: int) -> dict[str, Any]:
        """The JSON trailer (§9): the VFIO config sections as old-style ``save_state`` devices."""
        devices: list[dict[str, Any]] = []
        for vf in range(vfs):
            size = 8 if self.multifd else 16 + len(self.tl.config_blobs[vf])
            devices.append({"name": vf_idstr(vf), "instance_id": 0, "size": size,
                            "fields": [{"name": "data", "size": size, "type": "buffer"}]})
        return {"page_size": PAGE, "devices": devices}


def stream_writes(tl: Timeline) -> dict[str, list[tuple[int, str, bytes]]]:
    """Writes per flow: (capture ts, direction, bytes); main-channel units of one
    model write are concatenated."""
    enc = _Encoder(tl)
    groups: dict[tuple[str, int], list[Any]] = {}
    for u in tl.units:
        key = (u.flow, u.write) if u.direction == "c2s" else (u.flow, -u.seq - 1)
        g = groups.get(key)
        if g is None:
            g = groups[key] = [u.ts_ns, u.flow, u.direction, bytearray()]
        g[3] += enc.encode(u)
    flows: dict[str, list[tuple[int, str, bytes]]] = {"main": []}
    for ts, flow, direction, data in groups.values():
        flows.setdefault(flow, []).append((ts, direction, bytes(data)))
    for flow, ts, data in enc.extra:
        flows.setdefault(flow, []).append((ts, "c2s", data))
    for w in flows.values():
        w.sort(key=lambda x: x[0])
    return flows


def write_stream(path: Path, tl: Timeline, clock_ns: int) -> tuple[int, int]:
    """Write the source pcapng; returns (main-channel c2s bytes, multifd bytes)."""
    flows = stream_writes(tl)
    specs = []
    main = multifd = 0
    for i, (name, writes) in enumerate(sorted(flows.items(), key=lambda kv: (kv[0] != "main", kv[0]))):
        if not writes:
            continue
        nbytes = sum(len(d) for _, d_dir, d in writes if d_dir == "c2s")
        if name == "main":
            main = nbytes
        else:
            multifd += nbytes
        specs.append(SynthFlow(client=f"{SRC_IP}:{SRC_PORT + i}", server=f"{DST_IP}:{DST_PORT}",
                               writes=[(clock_ns + ts, d, b) for ts, d, b in writes],
                               isn_client=0x1000_0000 + i * 0x100_0000, isn_server=0x8000_0000 + i * 0x100_0000))
    write_tcp_capture(path, specs, fmt="pcapng")
    return main, multifd
