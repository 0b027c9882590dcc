# SPDX-License-Identifier: GPL-2.0-only
"""multifd channels (qemu-migration-stream.md §12): init packet, RAM packets,
10.x device-state packets carrying ``VFIODeviceStatePacket`` (§10.6).

Layout decisions (docs/qemu-stream.md):

* A RAM packet's offset array holds ``pages_alloc`` entries, not
  ``normal_pages (+ zero_pages)``: QEMU sizes the packet once
  (``packet_len = sizeof(MultiFDPacket_t) + 8 * page_count``) and the
  receiver reads that fixed length before it knows how many pages are used.
  Checked against the real QEMU 7.2 capture in traces/real/.
* Page data (``next_packet_size`` bytes, ``normal_pages × page size``
  without compression) follows only when ``normal_pages`` > 0; packets
  without normal pages repeat a stale ``next_packet_size`` (real 7.2).
* 7.2 and 9.0+ RAM packets parse with one layout: bytes 32..35 are
  ``zero_pages`` in 9.0+ and an always-zero ``unused`` word before.
"""
from __future__ import annotations

from typing import Any, Protocol

from dissect.qemu import wire as W
from dissect.qemu.incremental import IncrementalParser

MAX_DEVICE_STATE_PACKET = 64 * 1024 * 1024
MAX_PAGES_ALLOC = 1 << 20


class DeviceStateSink(Protocol):
    def device_state(self, idstr: str, instance_id: int, idx: int, flags: int, data: bytes,
                     ts_ns: int, flow: int | None, offset: int) -> list[Any]: ...


class MultifdParser(IncrementalParser):
    """One multifd connection's client→server bytes; a ``StreamConsumer``."""

    def __init__(self, sink, *, flow: int | None = None, devices: DeviceStateSink | None = None,
                 page_size: int = W.DEFAULT_PAGE_SIZE) -> None:
        super().__init__(sink, flow=flow)
        self.devices = devices
        self.page_size = page_size
        self.channel: int | None = None
        self.uuid: str | None = None
        self.zero_pages = 0
        self.normal_pages = 0
        self.packets = 0
        self.blocks: dict[str, list[int]] = {}
        self._init_done = False

    def _parse(self, b: Any, p: int, end: int, base: int) -> int:
        if self._lost:
            return self._resync(b, p, end, base)
        if not self._init_done:
            if end - p < W.MULTIFD_INIT.size:
                return -p - 1
            magic, version, uuid, chan, _, _ = W.MULTIFD_INIT.unpack_from(b, p)
            off = base + p
            if magic != W.MULTIFD_MAGIC:
                self._finding("error", "multifd_bad_magic", f"init packet magic 0x{magic:08x}", off)
                self._lost = True
                return p + 1
            if version != W.MULTIFD_VERSION:
                self._finding("error", "multifd_bad_version", f"init packet version {version}", off + 4)
            self._init_done = True
            self.channel = chan
            self.uuid = bytes(uuid).hex()
            self.sink({"kind": "multifd_packet", "flow": self.flow, "offset": off, "type": "init",
                       "version": version, "flags": None, "packet_num": None, "ramblock": None,
                       "normal_pages": None, "zero_pages": None, "device_state": None,
                       "channel": chan, "uuid": _uuid(bytes(uuid)), "ts": self._ts / 1_000_000_000})
            return p + W.MULTIFD_INIT.size
        if end - p < W.MULTIFD_HDR.size:
            return -p - 1
        magic, version, flags = W.MULTIFD_HDR.unpack_from(b, p)
        off = base + p
        if magic != W.MULTIFD_MAGIC or version != W.MULTIFD_VERSION:
            self._finding("error", "multifd_bad_magic", f"packet magic 0x{magic:08x} version {version}", off)
            self._lost = True
            return p + 1
        if flags & W.MULTIFD_FLAG_DEVICE_STATE:
            return self._device_state(b, p, end, base, flags)
        if end - p < W.MULTIFD_RAM_FIXED:
            return -p - 1
        (pages_alloc, normal, next_size, packet_num, zero, _u32, _u64,
         ramblock) = W.MULTIFD_RAM.unpack_from(b, p + W.MULTIFD_HDR.size)
        if pages_alloc > MAX_PAGES_ALLOC or normal + zero > pages_alloc:
            self._finding("error", "multifd_bad_packet", f"pages_alloc {pages_alloc}, normal {normal}, "
                          f"zero {zero}", off)
            self._lost = True
            return p + 1
        comp = (flags & W.MULTIFD_FLAG_COMPRESSION_MASK) >> 1
        # Page data follows only when normal_pages > 0 (the receiver reads it only then);
        # next_packet_size is stale in packets without pages (seen in real 7.2 captures).
        data_len = (normal * self.page_size if comp == 0 else next_size) if normal else 0
        if comp == 0 and normal and next_size != data_len:
            self._finding("warning", "multifd_size_mismatch", f"next_packet_size {next_size} for {normal} "
                          f"normal pages of {self.page_size} bytes", off)
        block = W.cstr(ramblock)
        self.packets += 1
        self.normal_pages += normal
        self.zero_pages += zero
        if normal or zero:
            c = self.blocks.setdefault(block, [0, 0])
            c[0] += zero
            c[1] += normal
        obj = {"kind": "multifd_packet", "flow": self.flow, "offset": off,
               "type": "sync" if flags & W.MULTIFD_FLAG_SYNC else "ram", "version": version, "flags": flags,
               "packet_num": packet_num, "ramblock": block or None, "normal_pages": normal, "zero_pages": zero,
               "device_state": None, "pages_alloc": pages_alloc, "next_packet_size": next_size,
               "compression": W.MULTIFD_COMPRESSION.get(comp), "ts": self._ts / 1_000_000_000}
        self.sink(obj)
        q = p + W.MULTIFD_RAM_FIXED + 8 * pages_alloc + data_len
        if q > end:
            self._skip = q - end
            return end
        return q

    def _device_state(self, b: Any, p: int, end: int, base: int, flags: int) -> int:
        off = base + p
        if end - p < W.MULTIFD_DEVSTATE_FIXED:
            return -p - 1
        idstr_raw, inst, size = W.MULTIFD_DEVSTATE.unpack_from(b, p + W.MULTIFD_HDR.size)
        if size > MAX_DEVICE_STATE_PACKET or size < W.VFIO_DEVICE_STATE_PACKET.size:
            self._finding("error", "multifd_bad_packet", f"device-state packet of {size} bytes", off)
            self._lost = True
            return p + 1
        q = p + W.MULTIFD_DEVSTATE_FIXED
        if end - q < size:
            return -p - 1
        idstr = W.cstr(idstr_raw)
        ver, idx, vflags = W.VFIO_DEVICE_STATE_PACKET.unpack_from(b, q)
        if idx >= 1 << 24 and _bswap32(idx) < 1 << 24 and vflags in (0, 1 << 24):
            # Pre-release 10.0 builds wrote these fields in host (little-endian) order (§10.6).
            idx, vflags = _bswap32(idx), _bswap32(vflags)
            self._finding("warning", "vfio_packet_little_endian", "VFIODeviceStatePacket fields in "
                          "little-endian order (a pre-release QEMU 10.0 build)", base + q, device=idstr)
        if ver != W.VFIO_DEVICE_STATE_PACKET_VER_CURRENT:
            self._finding("error", "vfio_packet_version", f"VFIODeviceStatePacket version {ver}", base + q,
                          device=idstr)
        config = bool(vflags & W.VFIO_DEVICE_STATE_CONFIG_STATE)
        self.packets += 1
        self.sink({"kind": "multifd_packet", "flow": self.flow, "offset": off, "type": "device_state",
                   "version": W.MULTIFD_VERSION, "flags": flags, "packet_num": None, "ramblock": None,
                   "normal_pages": 0, "zero_pages": 0,
                   "device_state": {"idstr": idstr, "instance_id": inst, "idx": idx, "config": config,
                                    "size": size - W.VFIO_DEVICE_STATE_PACKET.size},
                   "ts": self._ts / 1_000_000_000})
        if self.devices is not None:
            data = bytes(b[q + W.VFIO_DEVICE_STATE_PACKET.size:q + size])
            for u in self.devices.device_state(idstr, inst, idx, vflags, data, self._ts, self.flow,
                                               base + q + W.VFIO_DEVICE_STATE_PACKET.size) or ():
                self.sink(u)
        return q + size

    def _resync(self, b: Any, p: int, end: int, base: int) -> int:
        """Find the next packet header (magic + version) after a gap or bad packet."""
        hb = bytes(b) if isinstance(b, memoryview) else b
        sig = W.MULTIFD_HDR.pack(W.MULTIFD_MAGIC, W.MULTIFD_VERSION, 0)[:8]
        c = hb.find(sig, p)
        if c < 0:
            return -max(p, end - 7) - 1
        self._finding("warning", "resync", "resynchronised on a multifd packet header", base + c,
                      method="multifd_magic")
        self._lost = False
        self._init_done = True
        return c


def _bswap32(v: int) -> int:
    return int.from_bytes(v.to_bytes(4, "big"), "little")


def _uuid(u: bytes) -> str:
    h = u.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
