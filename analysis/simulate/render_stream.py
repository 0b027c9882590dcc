# SPDX-License-Identifier: GPL-2.0-only
"""The source pcapng of a simulated run: QEMU's migration stream in TCP.

Units of the model become the bytes QEMU writes (qemu-migration-stream.md
§3–§14) on the main channel, the return path (reverse direction of the
main connection) and, for QEMU 10.x, the multifd channels; engineer C's
:func:`write_tcp_capture` turns the writes into segments, ACKs, handshake
and FIN.  Every structure is the one declared in :mod:`dissect.qemu.wire`
(engineer D's single definition of the stream's layouts); this module only
puts the fields in order.  When ``dissect.qemu.build`` lands it replaces
the ``_enc_*`` helpers here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dissect.capture.synth import SynthFlow, write_tcp_capture
from dissect.qemu import wire as W

from analysis.simulate.model import PAGE, Timeline, Unit, vf_idstr

SRC_IP, DST_IP = "192.168.100.1", "192.168.100.2"
DST_PORT = 49152            # libvirt's first native migration port
SRC_PORT = 41234
RAM_BLOCK = "pc.ram"
MULTIFD_PAGES_ALLOC = W.MULTIFD_PACKET_SIZE // PAGE
UUID = bytes.fromhex("6d6967747261636500000000000000a1")


def _be64(v: int) -> bytes:
    return W.BE64.pack(v)


def _idstr(s: str) -> bytes:
    b = s.encode()
    return bytes((len(b),)) + b


def _section_full_header(stype: int, sid: int, idstr: str, instance: int, version: int) -> bytes:
    return bytes((stype,)) + W.SECTION_ID.pack(sid) + _idstr(idstr) + W.SECTION_TAIL.pack(instance, version)


def _section_short_header(stype: int, sid: int) -> bytes:
    return bytes((stype,)) + W.SECTION_ID.pack(sid)


def _footer(sid: int) -> bytes:
    return W.FOOTER.pack(W.QEMU_VM_SECTION_FOOTER, sid)


def _command(cmd: int, payload: bytes = b"") -> bytes:
    return bytes((W.QEMU_VM_COMMAND,)) + W.COMMAND_HDR.pack(cmd, len(payload)) + payload


def _rp(msg: int, payload: bytes = b"") -> bytes:
    return W.RP_HDR.pack(msg, len(payload)) + payload


def page_bytes(seed: int) -> bytes:
    """Content of a non-zero guest page (deterministic for its seed)."""
    return np.random.Generator(np.random.PCG64(seed)).bytes(PAGE)


def _ram_pages(zero: list[int], normal: list[int], seeds: list[int]) -> bytes:
    """Pages in offset order; the first names the block, the rest CONTINUE (§11.2)."""
    content = dict(zip(normal, seeds))
    out = bytearray()
    first = True
    for page in sorted(zero + normal):
        off = page * PAGE
        flag = W.RAM_SAVE_FLAG_PAGE if page in content else W.RAM_SAVE_FLAG_ZERO
        if first:
            out += _be64(off | flag) + _idstr(RAM_BLOCK)
            first = False
        else:
            out += _be64(off | flag | W.RAM_SAVE_FLAG_CONTINUE)
        out += page_bytes(content[page]) if page in content else b"\0"
    return bytes(out)


def _multifd_ram_packet(zero: list[int], normal: list[int], seeds: list[int], packet_num: int,
                        flags: int = 0) -> bytes:
    """MultiFDPacket_t (9.0+ layout, §12.3): normal offsets, then zero offsets, then page data."""
    content = dict(zip(normal, seeds))
    n_sorted = sorted(normal)
    z_sorted = sorted(zero)
    fixed = W.MULTIFD_HDR.pack(W.MULTIFD_MAGIC, W.MULTIFD_VERSION, flags) + W.MULTIFD_RAM.pack(
        MULTIFD_PAGES_ALLOC, len(n_sorted), len(n_sorted) * PAGE, packet_num, len(z_sorted), 0,
        b"\0" * 24, RAM_BLOCK.encode().ljust(256, b"\0"))
    offsets = b"".join(_be64(p * PAGE) for p in n_sorted + z_sorted)
    return fixed + offsets + b"".join(page_bytes(content[p]) for p in n_sorted)


def _devstate_packet(idstr: str, idx: int, data: bytes, config: bool) -> bytes:
    body = W.VFIO_DEVICE_STATE_PACKET.pack(W.VFIO_DEVICE_STATE_PACKET_VER_CURRENT, idx,
                                           W.VFIO_DEVICE_STATE_CONFIG_STATE if config else 0) + data
    return (W.MULTIFD_HDR.pack(W.MULTIFD_MAGIC, W.MULTIFD_VERSION, W.MULTIFD_FLAG_DEVICE_STATE)
            + W.MULTIFD_DEVSTATE.pack(idstr.encode().ljust(256, b"\0"), 0, len(body)) + body)


def _config_payload(cfg: bytes) -> bytes:
    return _be64(W.VFIO_MIG_FLAG_DEV_CONFIG_STATE) + cfg + _be64(W.VFIO_MIG_FLAG_END_OF_STATE)


class _Encoder:
    """Bytes of each unit kind; multifd RAM packets are queued per channel."""

    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        self.multifd = tl.profile.qemu.multifd_channels
        self.packet_num = 0
        self.rr = 0
        self.extra: list[tuple[str, int, bytes]] = []  # (flow, ts, bytes) generated alongside main units

    def ram_payload(self, u: Unit, ts: int, start: bool = False) -> bytes:
        a = u.args
        out = b""
        if start:
            out += _be64(a["ram_bytes"] | W.RAM_SAVE_FLAG_MEM_SIZE) + _idstr(RAM_BLOCK) + _be64(a["ram_bytes"])
        elif self.multifd:
            zero, normal, seeds = a["zero"], a["normal"], a["page_seeds"]
            # pages go to the multifd channels, at most one packet's worth each
            pages = sorted(zero + normal)
            for i in range(0, len(pages), MULTIFD_PAGES_ALLOC):
                chunk = set(pages[i:i + MULTIFD_PAGES_ALLOC])
                nz = [p for p in zero if p in chunk]
                nn = [p for p in normal if p in chunk]
                ns = [s for p, s in zip(normal, seeds) if p in chunk]
                ch = self.rr % self.multifd
                self.rr += 1
                self.extra.append((f"multifd{ch}", ts, _multifd_ram_packet(nz, nn, ns, self.packet_num)))
                self.packet_num += 1
            if pages:  # multifd_send_sync_main: a SYNC packet on every channel
                for ch in range(self.multifd):
                    self.extra.append((f"multifd{ch}", ts + 1, _multifd_ram_packet([], [], [], self.packet_num,
                                                                                   W.MULTIFD_FLAG_SYNC)))
                    self.packet_num += 1
        else:
            out += _ram_pages(a["zero"], a["normal"], a["page_seeds"])
        if self.multifd:
            out += _be64(W.RAM_SAVE_FLAG_MULTIFD_FLUSH)
        return out + _be64(W.RAM_SAVE_FLAG_EOS)

    def encode(self, u: Unit) -> bytes:
        a, k = u.args, u.kind
        if k == "header":
            m = a["machine"].encode()
            return (W.FILE_HEADER.pack(W.QEMU_VM_FILE_MAGIC, W.QEMU_VM_FILE_VERSION)
                    + bytes((W.QEMU_VM_CONFIGURATION,)) + W.BE32.pack(len(m)) + m)
        if k == "cmd_open_return_path":
            return _command(W.MIG_CMD_OPEN_RETURN_PATH)
        if k == "cmd_ping":
            return _command(W.MIG_CMD_PING, W.BE32.pack(a["value"]))
        if k == "cmd_switchover_start":
            return _command(W.MIG_CMD_SWITCHOVER_START)
        if k == "ram_start":
            sid = a["section_id"]
            return (_section_full_header(W.QEMU_VM_SECTION_START, sid, "ram", 0, 4)
                    + self.ram_payload(u, u.ts_ns, start=True) + _footer(sid))
        if k in ("ram_part", "ram_end"):
            sid = a["section_id"]
            st = W.QEMU_VM_SECTION_PART if k == "ram_part" else W.QEMU_VM_SECTION_END
            return _section_short_header(st, sid) + self.ram_payload(u, u.ts_ns) + _footer(sid)
        if k == "vfio_start":
            sid = a["section_id"]
            return (_section_full_header(W.QEMU_VM_SECTION_START, sid, a["idstr"], 0, 1)
                    + _be64(W.VFIO_MIG_FLAG_DEV_SETUP_STATE) + _be64(W.VFIO_MIG_FLAG_END_OF_STATE) + _footer(sid))
        if k == "vfio_part":
            sid = a["section_id"]
            body = b""
            if a["data"]:
                body = _be64(W.VFIO_MIG_FLAG_DEV_DATA_STATE) + _be64(len(a["data"])) + a["data"]
            term = (W.VFIO_MIG_FLAG_DEV_INIT_DATA_SENT if a["terminator"] == "DEV_INIT_DATA_SENT"
                    else W.VFIO_MIG_FLAG_END_OF_STATE)
            return _section_short_header(W.QEMU_VM_SECTION_PART, sid) + body + _be64(term) + _footer(sid)
        if k == "vfio_end":
            sid = a["section_id"]
            body = b"".join(_be64(W.VFIO_MIG_FLAG_DEV_DATA_STATE) + _be64(len(c)) + c for c in a["chunks"])
            return (_section_short_header(W.QEMU_VM_SECTION_END, sid) + body
                    + _be64(W.VFIO_MIG_FLAG_END_OF_STATE) + _footer(sid))
        if k == "vfio_full":
            sid = a["section_id"]
            body = _config_payload(a["config"]) if a["config"] is not None else _be64(W.VFIO_MIG_FLAG_END_OF_STATE)
            return _section_full_header(W.QEMU_VM_SECTION_FULL, sid, a["idstr"], 0, 1) + body + _footer(sid)
        if k == "eof":
            return bytes((W.QEMU_VM_EOF,))
        if k == "vmdesc":
            return self.vmdesc(a["vfs"])
        if k == "multifd_init":
            return W.MULTIFD_INIT.pack(W.MULTIFD_MAGIC, W.MULTIFD_VERSION, UUID, a["channel"], b"\0" * 7, b"\0" * 32)
        if k == "multifd_device_state":
            if a["config"] is not None:
                return _devstate_packet(a["idstr"], a["idx"], _config_payload(a["config"]), True)
            return _devstate_packet(a["idstr"], a["idx"], a["data"], False)
        if k == "rp_pong":
            return _rp(W.MIG_RP_MSG_PONG, W.BE32.pack(a["value"]))
        if k == "rp_switchover_ack":
            return _rp(W.MIG_RP_MSG_SWITCHOVER_ACK)
        if k == "rp_shut":
            return _rp(W.MIG_RP_MSG_SHUT, W.BE32.pack(a["value"]))
        raise ValueError(f"unknown unit kind {k!r}")

    def vmdesc(self, vfs: int) -> bytes:
        """The JSON trailer (§9): the VFIO config sections as old-style ``save_state`` devices."""
        multifd = self.multifd > 0
        devices: list[dict[str, Any]] = []
        for vf in range(vfs):
            size = 8 if multifd else 16 + len(self.tl.config_blobs[vf])
            devices.append({"name": vf_idstr(vf), "instance_id": 0, "size": size,
                            "fields": [{"name": "data", "size": size, "type": "buffer"}]})
        text = json.dumps({"page_size": PAGE, "devices": devices}, separators=(", ", ": ")).encode()
        return bytes((W.QEMU_VM_VMDESCRIPTION,)) + W.VMDESC_LEN.pack(len(text)) + text


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
