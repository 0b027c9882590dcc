# SPDX-License-Identifier: GPL-2.0-only
"""Sections of QEMU's main channel (qemu-migration-stream.md §6, §11, mapped-ram): a
section's start (which handler walks its payload), its end and footer, and the RAM and
mapped-ram payload handlers.  A mixin of :class:`dissect.qemu.stream.StreamParser`.
"""
from __future__ import annotations

from typing import Any

from dissect.qemu import ram as _ram
from dissect.qemu import wire as W
from dissect.qemu.states import S_FIXED, S_FOOTER, S_MAPPED, S_RAM, S_RECORD, S_SCAN, S_VFIO, stamp


class _Section:
    __slots__ = ("type", "id", "idstr", "instance_id", "version_id", "offset", "ts", "units",
                 "payload_start", "handler", "ram", "delimited_by", "packaged", "nth")

    def __init__(self, stype: int, sid: int, idstr: str | None, inst: int | None, ver: int | None,
                 offset: int, ts: int, packaged: int) -> None:
        self.type = stype
        self.id = sid
        self.idstr = idstr
        self.instance_id = inst
        self.version_id = ver
        self.offset = offset
        self.ts = ts
        self.units: list[Any] = []
        self.payload_start = 0
        self.handler = ""
        self.ram: _ram.RamSection | None = None
        self.delimited_by = "payload"
        self.packaged = packaged
        self.nth = 0


class SectionHandlers:
    """Section lifecycle and the handlers ``(b, p, end, base) -> pos | -(keep + 1)`` of RAM
    payloads used by StreamParser._run."""

    def _begin_section(self, t: int, sid: int, idstr: str | None, inst: int | None, ver: int | None,
                       off: int) -> None:
        sec = _Section(t, sid, idstr, inst, ver, off, self._ts_at(off), len(self._pkg_ends))
        self._sec = sec
        hdr_len = 6 + len((idstr or "").encode()) + 8 if t in W.SECTION_NAMED else 5
        sec.payload_start = off + hdr_len
        if idstr == "ram":
            if ver != 4:
                self._finding("warning", "ram_version", f"RAM section version {ver} (decoder knows 4)", off)
            sec.handler = "ram"
            sec.ram = self.ram.begin(t, sid)
            self._state = S_RAM
        elif (idstr is not None and W.is_vfio_idstr(idstr)) or (idstr is None and sid in self._vfio_unnamed):
            sec.handler = "vfio"
            self._state = S_VFIO
            note = getattr(self.devices, "section", None)
            if note is not None and idstr is not None:
                # multifd device-state chunks are reported with this section id; data held for
                # this id since a mid-stream pick-up is split now that the device is named
                self._emit_many(note(idstr, sid) or [])
                self._vfio_unnamed.discard(sid)
        elif t == W.QEMU_VM_SECTION_FULL and idstr is not None:
            sec.handler = "vmsd"
            key = (idstr, inst or 0)
            sec.nth = self.full_seen.get(key, 0)
            self.full_seen[key] = sec.nth + 1
            n = self.vmdesc.payload_length(idstr, inst or 0, sec.nth) if self.vmdesc else None
            if n is not None:
                sec.delimited_by = "vmdesc"
                self._fixed_len = n
                self._state = S_FIXED
            else:
                sec.delimited_by = "footer"
                self._scan_from = sec.payload_start
                self._state = S_SCAN
        else:
            # A live handler this decoder does not walk (e.g. block-dirty-bitmap): footer resync.
            sec.handler = "opaque"
            sec.delimited_by = "footer"
            self._scan_from = sec.payload_start
            self._state = S_SCAN

    def _end_section(self, end_off: int | None, reason: str | None = None) -> None:
        sec = self._sec
        if sec is None:
            return
        self._sec = None
        obj = self._unit("section", offset=sec.offset,
                         length=None if end_off is None else end_off - sec.offset,
                         type=W.SECTION_TYPES[sec.type], section_id=sec.id, idstr=sec.idstr,
                         instance_id=sec.instance_id, version_id=sec.version_id, **stamp(sec.ts),
                         delimited_by=sec.delimited_by)
        if sec.packaged:
            obj["packaged"] = sec.packaged
        if reason:
            obj["incomplete"] = reason
        self.sink(obj)
        if sec.ram is not None:
            self.sink(self.ram.unit(sec.ram, self.flow, sec.type))
        for u in sec.units:
            self.sink(u)

    def _abandon_section(self, reason: str) -> None:
        self._vfio_term = False
        if self._sec is not None:
            if self._sec.ram is not None:
                self.ram.abandon_list(self._sec.ram)
                self.ram.flush(self._sec.ram)
            self._end_section(None, reason)

    def _footer(self, b: Any, p: int, end: int, base: int) -> int:
        sec = self._sec
        off = base + p
        if self.footers is False:
            self._end_section(off)
            self._state = S_RECORD
            return p
        if b[p] != W.QEMU_VM_SECTION_FOOTER:
            if self.footers is None:
                self.footers = False
                self._end_section(off)
            else:
                self._finding("error", "footer_missing", f"section {sec.id if sec else '?'}: byte 0x{b[p]:02x} "
                              "where the section footer 0x7e belongs", off)
                self._end_section(off)
            self._state = S_RECORD
            return p
        if end - p < 5:
            return -p - 1
        _, fid = W.FOOTER.unpack_from(b, p)
        self.footers = True
        if sec is not None and fid != sec.id:
            self._finding("error", "footer_mismatch", f"footer names section {fid}, the section is {sec.id}", off)
        self._end_section(off + 5)
        self._state = S_RECORD
        return p + 5

    # ---- RAM ----------------------------------------------------------------
    def _ram(self, b: Any, p: int, end: int, base: int) -> int:
        sec = self._sec
        q, skip, status = self.ram.walk(sec.ram, b, p, end, base, self._finding)
        if skip:
            self._skip = skip
            return end
        if status == _ram.NEED:
            return -q - 1
        if status == _ram.EOS:
            sec.ram.bytes = base + q - sec.payload_start
            self._state = S_FOOTER
            return q
        if status == _ram.MAPPED:
            self._state = S_MAPPED
            return q
        # bad RAM data: find the section footer
        self.ram.abandon_list(sec.ram)
        sec.delimited_by = "footer"
        self._scan_from = base + q
        self._state = S_SCAN
        return q

    # ---- mapped-ram ---------------------------------------------------------
    def _mapped(self, b: Any, p: int, end: int, base: int) -> int:
        """A mapped-ram block's bitmap and page region (mapped_ram.py): keep the bitmap, skip the
        rest; the block list resumes at ``pages_offset + used_length``."""
        region = self.ram.region
        sec = self._sec
        assert region is not None and sec is not None and sec.ram is not None
        off = base + p
        if region.bitmap_size and len(region.bitmap) < region.bitmap_size:
            if off < region.bitmap_offset:
                return self._jump(p, end, region.bitmap_offset - off)
            k = min(region.bitmap_size - len(region.bitmap), end - p)
            region.bitmap += b[p:p + k]
            p += k
            if len(region.bitmap) < region.bitmap_size:
                return p
            off = base + p
        region.finish()
        if region.tail_bits:
            self._finding("warning", "mapped_ram_bitmap_tail", f"ramblock {region.block}: {region.tail_bits} bits "
                          f"set past its {region.num_pages} pages", region.bitmap_offset, ramblock=region.block)
        self.ram.mapped_done(sec.ram, region)
        sec.units.extend(region.units(self.flow, sec.id))
        self._mapped_end = region.region_end
        self._mapped_block = region.block
        self._state = S_RAM
        return self._jump(p, end, region.region_end - off)

    def _jump(self, p: int, end: int, n: int) -> int:
        """Skip ``n`` bytes from ``p`` (into later data when they run past ``end``)."""
        if n <= end - p:
            return p + n
        self._skip = n - (end - p)
        return end
