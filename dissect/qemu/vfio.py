# SPDX-License-Identifier: GPL-2.0-only
"""VFIO section payloads (qemu-migration-stream.md §10.3–10.4): markers,
DEV_DATA_STATE chunks streamed to the device sink as they arrive, the config
blob of the FULL section.  A mixin of :class:`dissect.qemu.stream.StreamParser`.
"""
from __future__ import annotations

from typing import Any

from dissect.qemu import wire as W
from dissect.qemu.states import MAX_SCAN, S_FOOTER, S_SCAN, S_VFIO_CFG, stamp


class VfioHandlers:
    """Handlers ``(b, p, end, base) -> pos | -(keep + 1)`` used by StreamParser._run."""

    def _vfio(self, b: Any, p: int, end: int, base: int) -> int:
        sec = self._sec
        dev = sec.idstr  # None: picked up mid-stream, not yet named (StreamParser._dev_key)
        phase = W.VFIO_PHASE.get(sec.type, "precopy")
        while True:
            if self._vfio_term:
                # After END_OF_STATE / INIT_DATA_SENT / CONFIG_LOAD_READY: another marker
                # (0xff…), a footer, or (no footers) the next record follows.
                if b[p] != 0xFF:
                    self._vfio_term = False
                    self._state = S_FOOTER
                    return p
                self._vfio_term = False
            if end - p < 8:
                return -p - 1
            (v,) = W.BE64.unpack_from(b, p)
            name = W.VFIO_MARKERS.get(v)
            off = base + p
            if name is None:
                self._finding("error", "vfio_unknown_marker", f"0x{v:016x} is not a VFIO_MIG_FLAG value", off,
                              device=dev)
                sec.delimited_by = "footer"
                self._scan_from = off
                self._state = S_SCAN
                return p
            if v == W.VFIO_MIG_FLAG_DEV_DATA_STATE:
                if end - p < 16:
                    return -p - 1
                (size,) = W.BE64.unpack_from(b, p + 8)
                ts = self._ts_at(off)
                self._emit(self._unit("vfio_marker", device=dev, section_id=sec.id, offset=off, marker=name,
                                      value=v))
                data_off = self.devices_offset(self._dev_key())
                self._emit(self._unit("vfio_chunk", device=dev, section_id=sec.id, phase=phase, offset=off,
                                      data_offset=data_off, size=size, **stamp(ts)))
                if size > W.VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE:
                    self._finding("info", "vfio_chunk_large", f"chunk of {size} bytes exceeds QEMU's 1 MiB "
                                  "buffer", off, device=dev)
                p += 16
                avail = end - p
                k = size if size < avail else avail
                if k:
                    self._route(bytes(b[p:p + k]), base + p, self._ts_at(base + p))
                p += k
                if k < size:
                    self._dev_left = size - k
                    return end
                continue
            self._emit(self._unit("vfio_marker", device=dev, section_id=sec.id, offset=off, marker=name, value=v))
            p += 8
            if v == W.VFIO_MIG_FLAG_DEV_CONFIG_STATE:
                self._scan_from = base + p
                self._state = S_VFIO_CFG
                return p
            if v == W.VFIO_MIG_FLAG_DEV_SETUP_STATE:
                continue
            self._vfio_term = True
            if p >= end:
                return p

    def devices_offset(self, dev: str | int | None) -> int | None:
        get = getattr(self.devices, "data_offset", None)
        return get(dev) if get and dev is not None else None

    def _vfio_cfg(self, b: Any, p: int, end: int, base: int) -> int:
        sec = self._sec
        eos = W.BE64.pack(W.VFIO_MIG_FLAG_END_OF_STATE)
        sig = eos + (bytes([W.QEMU_VM_SECTION_FOOTER]) + W.SECTION_ID.pack(sec.id) if self.footers else b"")
        start = max(p, self._scan_from - base - len(sig))
        hay = bytes(b[start:end])
        while True:
            c = hay.find(sig)
            if c < 0:
                self._scan_from = base + end
                if end - p > MAX_SCAN:
                    self._finding("error", "vfio_config_unterminated", "no END_OF_STATE after the config state "
                                  f"within {MAX_SCAN} bytes", base + p, device=sec.idstr)
                    self._abandon_section("config_unterminated")
                    return self._go_lost(end, base)
                return -p - 1
            c += start
            if not self.footers:
                ok = self._plausible(b, c + 8, end)
                if ok is None and not self._closing:
                    self._scan_from = base + c
                    return -p - 1
                if ok is False:
                    hay = hay[c - start + 1:]
                    start = c + 1
                    continue
            blob = bytes(b[p:c])
            off = base + p
            self._emit(self._unit("vfio_chunk", device=sec.idstr, section_id=sec.id, phase="config",
                                  offset=off - 8, data_offset=None, size=len(blob), **stamp(self._ts_at(off)),
                                  data=blob.hex()))
            if self.devices is not None:
                self._emit_many(self.devices.config(sec.idstr or "", blob, self._ts_at(off), off))
            self._emit(self._unit("vfio_marker", device=sec.idstr, section_id=sec.id, offset=base + c,
                                  marker="END_OF_STATE", value=W.VFIO_MIG_FLAG_END_OF_STATE))
            if self.vmdesc is not None:
                want = self.vmdesc.payload_length(sec.idstr or "", sec.instance_id or 0, 0)
                if want is not None and want != len(blob) + 16:
                    self._finding("warning", "vmdesc_length_mismatch", f"VFIO config payload is {len(blob) + 16} "
                                  f"bytes, vmdesc describes {want}", off, device=sec.idstr)
            self._state = S_FOOTER
            return c + 8
