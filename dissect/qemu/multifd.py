# SPDX-License-Identifier: GPL-2.0-only
"""multifd channels (qemu-migration-stream.md §12): init packet, RAM packets,
10.x device-state packets carrying ``VFIODeviceStatePacket`` (§10.6).

Layout decisions (docs/qemu-stream.md, from QEMU's source):

* A RAM packet's offset array always has ``MULTIFD_PACKET_SIZE / page size``
  slots (128 with 4 KiB pages): sender and receiver size the packet once
  (``packet_len = sizeof(MultiFDPacket_t) + 8 * page_count``) and the
  receiver reads that fixed length before it looks at any field.  In 7.2–9.1
  ``pages_alloc`` always equals that count; since 9.2 (10.x) SYNC packets
  carry ``pages_alloc`` 0 (``multifd_ram_fill_packet`` is skipped for them)
  but still the full array, so ``pages_alloc`` must not size the array.
  A ``pages_alloc`` other than 0 or the slot count is taken as the sender's
  page count (a target page size other than the one assumed) when the
  packet that follows confirms it; which layout was used is reported once
  per channel (info ``multifd_layout``).
* Page data (``normal_pages × page size`` without compression) follows only
  when ``normal_pages`` > 0; packets without normal pages repeat a stale
  ``next_packet_size`` (real 7.2).
* 7.2 and 9.0+ RAM packets parse with one layout: bytes 32..35 are
  ``zero_pages`` in 9.0+ and an always-zero ``unused`` word before; the
  offsets of zero pages follow those of the normal pages.
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
        #: Slots of every RAM packet's offset array (MULTIFD_PACKET_SIZE / page size).
        self.slots = W.MULTIFD_PACKET_SIZE // page_size
        self.evidence: set[str] = set()
        self._choice: dict[int, int] = {}
        self._closing = False
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
                       "channel": chan, "uuid": _uuid(bytes(uuid)), "ts": self._ts / 1_000_000_000, "ts_ns": self._ts})
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
        comp = (flags & W.MULTIFD_FLAG_COMPRESSION_MASK) >> 1
        if pages_alloc > MAX_PAGES_ALLOC:
            self._finding("error", "multifd_bad_packet", f"pages_alloc {pages_alloc}", off)
            self._lost = True
            return p + 1
        slots = self._slots_for(pages_alloc)
        if slots is None:
            slots = self._decide(b, p, end, base, pages_alloc, normal, comp, next_size)
            if slots is None:
                return -p - 1
        if slots > MAX_PAGES_ALLOC or normal + zero > slots or (pages_alloc and normal + zero > pages_alloc):
            self._finding("error", "multifd_bad_packet", f"pages_alloc {pages_alloc}, normal {normal}, "
                          f"zero {zero} (offset array of {slots})", off)
            self._lost = True
            return p + 1
        ps = self._page_size(slots)
        # Page data follows only when normal_pages > 0 (the receiver reads it only then);
        # next_packet_size is stale in packets without pages (seen in real 7.2 captures).
        data_len = (normal * ps if comp == 0 else next_size) if normal else 0
        if comp == 0 and normal and next_size != data_len:
            self._finding("warning", "multifd_size_mismatch", f"next_packet_size {next_size} for {normal} "
                          f"normal pages of {ps} bytes", off)
        block = W.cstr(ramblock)
        sync = bool(flags & W.MULTIFD_FLAG_SYNC)
        self.packets += 1
        self.normal_pages += normal
        self.zero_pages += zero
        if zero:
            self.evidence.add("zero_pages")
        if sync and not pages_alloc:
            self.evidence.add("sync_pages_alloc_0")
        if normal or zero:
            c = self.blocks.setdefault(block, [0, 0])
            c[0] += zero
            c[1] += normal
        obj = {"kind": "multifd_packet", "flow": self.flow, "offset": off,
               "type": "sync" if sync else "ram", "version": version, "flags": flags,
               "packet_num": packet_num, "ramblock": block or None, "normal_pages": normal, "zero_pages": zero,
               "device_state": None, "pages_alloc": pages_alloc, "next_packet_size": next_size,
               "compression": W.MULTIFD_COMPRESSION.get(comp), "ts": self._ts / 1_000_000_000, "ts_ns": self._ts}
        self.sink(obj)
        q = p + W.MULTIFD_RAM_FIXED + 8 * slots + data_len
        if q > end:
            self._skip = q - end
            return end
        return q

    # ---- offset-array size --------------------------------------------------
    def _slots_for(self, pages_alloc: int) -> int | None:
        """Slots of the offset array of a packet with this ``pages_alloc``, None when undecided."""
        if pages_alloc == self.slots:
            return self.slots
        return self._choice.get(pages_alloc)

    def _page_size(self, slots: int) -> int:
        return W.MULTIFD_PACKET_SIZE // slots if slots else self.page_size

    def _decide(self, b: Any, p: int, end: int, base: int, pages_alloc: int, normal: int, comp: int,
                next_size: int) -> int | None:
        """``pages_alloc`` differs from the slot count: pick the array size after which the next
        packet header (or the end of the stream) follows; None until enough bytes are here."""
        cands = [self.slots]
        if pages_alloc and W.MULTIFD_PACKET_SIZE % pages_alloc == 0 \
                and W.MULTIFD_PACKET_SIZE // pages_alloc >= 512:
            cands.insert(0, pages_alloc)  # the sender's page count: a page size other than assumed
        elif not pages_alloc:
            cands.append(0)  # a 0-slot array (no QEMU writes it; kept to say so if seen)
        sig = _SIG
        found = None
        for slots in cands:
            dl = (normal * self._page_size(slots) if comp == 0 else next_size) if normal else 0
            q = p + W.MULTIFD_RAM_FIXED + 8 * slots + dl
            if q + 8 <= end:
                if bytes(b[q:q + 8]) == sig:
                    found = slots
                    break
            elif not self._closing:
                return None
            elif q == end:
                found = slots
                break
        how = "the next packet header follows it" if found is not None else \
            "no candidate is followed by a packet header; the receiver's fixed size is kept"
        if found is None:
            found = self.slots
        self._choice[pages_alloc] = found
        if found and found != self.slots:
            self.slots = found  # the sender's page count: later packets use it too
        self._finding("info", "multifd_layout", f"packet with pages_alloc {pages_alloc}: offset array of "
                      f"{found} slots ({W.MULTIFD_PACKET_SIZE} / {self._page_size(found)}-byte pages); {how}",
                      base + p, pages_alloc=pages_alloc, slots=found)
        return found

    @property
    def profile(self) -> str | None:
        """QEMU generation the packets show: ``10.x`` (device state), ``9.2+`` (SYNC packets with
        pages_alloc 0), ``9.0+`` (zero pages in packets), else None (7.2–9.1 look alike)."""
        if "device_state" in self.evidence:
            return "10.x"
        if "sync_pages_alloc_0" in self.evidence:
            return "9.2+"
        if "zero_pages" in self.evidence:
            return "9.0+"
        return None

    def close(self) -> None:
        if not self._closed and self._buf and not self._lost:
            # No more bytes will come: a pending layout decision is taken with what is here.
            self._closing = True
            self.data(self._pos, b"", self._ts)
        super().close()

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
        self.evidence.add("device_state")
        self.sink({"kind": "multifd_packet", "flow": self.flow, "offset": off, "type": "device_state",
                   "version": W.MULTIFD_VERSION, "flags": flags, "packet_num": None, "ramblock": None,
                   "normal_pages": 0, "zero_pages": 0,
                   "device_state": {"idstr": idstr, "instance_id": inst, "idx": idx, "config": config,
                                    "size": size - W.VFIO_DEVICE_STATE_PACKET.size},
                   "ts": self._ts / 1_000_000_000, "ts_ns": self._ts})
        if self.devices is not None:
            data = bytes(b[q + W.VFIO_DEVICE_STATE_PACKET.size:q + size])
            for u in self.devices.device_state(idstr, inst, idx, vflags, data, self._ts, self.flow,
                                               base + q + W.VFIO_DEVICE_STATE_PACKET.size) or ():
                self.sink(u)
        return q + size

    def _resync(self, b: Any, p: int, end: int, base: int) -> int:
        """Find the next packet header (magic + version) after a gap or bad packet."""
        hb = bytes(b) if isinstance(b, memoryview) else b
        c = hb.find(_SIG, p)
        if c < 0:
            return -max(p, end - 7) - 1
        self._finding("warning", "resync", "resynchronised on a multifd packet header", base + c,
                      method="multifd_magic")
        self._lost = False
        self._init_done = True
        return c


_SIG = W.MULTIFD_HDR.pack(W.MULTIFD_MAGIC, W.MULTIFD_VERSION, 0)[:8]


def _bswap32(v: int) -> int:
    return int.from_bytes(v.to_bytes(4, "big"), "little")


def _uuid(u: bytes) -> str:
    h = u.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
