# SPDX-License-Identifier: GPL-2.0-only
"""Main-channel records other than live payloads (qemu-migration-stream.md §5, §8,
§9, §15): commands (PACKAGED opens a nested stream), the CONFIGURATION record,
the vmdesc trailer, FULL sections delimited by vmdesc size or by footer
resynchronisation, and resynchronisation after a gap.  A mixin of
:class:`dissect.qemu.stream.StreamParser`.
"""
from __future__ import annotations

from typing import Any

from dissect.qemu import wire as W
from dissect.qemu.states import MAX_SCAN, S_FOOTER, S_RECORD, S_SCAN, stamp
from dissect.qemu.vmdesc import VmDesc


# records that may follow a plausible QEMU_VM_EOF besides the vmdesc trailer (resync, _plausible)
_AFTER_EOF = W.SECTION_NAMED + W.SECTION_BY_ID + (W.QEMU_VM_COMMAND,)
_FOOTER_BYTE = bytes([W.QEMU_VM_SECTION_FOOTER])


def payload_kind(b: Any, q: int, end: int, mask: int) -> str | None:
    """What the data of a PART/END section at ``q`` starts with: ``"ram"`` (a RAM page header:
    a zero or normal page, with a block name unless CONTINUE; an EOS or MULTIFD_FLUSH flag alone),
    ``"vfio"`` (a VFIO migration marker), ``""`` (neither) or None (fewer than 8 bytes here)."""
    if end - q < 8:
        return None
    v = W.BE64.unpack_from(b, q)[0]
    if v in W.VFIO_MARKERS:
        return "vfio"
    flags = v & mask
    if flags in (W.RAM_SAVE_FLAG_EOS, W.RAM_SAVE_FLAG_MULTIFD_FLUSH):
        return "ram" if v == flags else ""
    base = flags & ~W.RAM_SAVE_FLAG_CONTINUE
    if base not in (W.RAM_SAVE_FLAG_ZERO, W.RAM_SAVE_FLAG_PAGE):
        return ""
    if flags & W.RAM_SAVE_FLAG_CONTINUE:
        return "ram"
    if end - q < 9:
        return None
    ln = b[q + 8]
    if end - q < 9 + ln:
        return None
    name = bytes(b[q + 9:q + 9 + ln])
    return "ram" if ln and all(0x20 < c < 0x7F for c in name) else ""


class RecordHandlers:
    """Handlers ``(b, p, end, base) -> pos | -(keep + 1)`` used by StreamParser._run."""

    def _command(self, b: Any, p: int, end: int, base: int) -> int:
        if end - p < 5:
            return -p - 1
        off = base + p
        cmd, ln = W.COMMAND_HDR.unpack_from(b, p + 1)
        if end - p < 5 + ln:
            return -p - 1
        payload = bytes(b[p + 5:p + 5 + ln])
        name = W.COMMANDS.get(cmd)
        value: Any = None
        want = W.COMMAND_LEN.get(cmd, ())
        if name is None or cmd == 0:
            self._finding("error", "unknown_command", f"MIG_CMD value {cmd}", off)
        elif want is not None and ln not in want:
            self._finding("error", "bad_command_length", f"{name} with len {ln} (expected {want})", off)
        else:
            value = _command_value(cmd, payload)
        self._emit(self._unit("command", offset=off, cmd=cmd, cmd_name=name if cmd else "INVALID", len=ln,
                              value=value, **stamp(self._ts_at(off))))
        if cmd == W.MIG_CMD_PACKAGED and isinstance(value, dict):
            self._pkg_ends.append(off + 5 + ln + value["length"])
        if name is None:
            return self._go_lost(p + 5 + ln, base)
        return p + 5 + ln

    def _configuration(self, b: Any, p: int, end: int, base: int) -> int:
        off = base + p
        if end - p < 5:
            return -p - 1
        (n,) = W.BE32.unpack_from(b, p + 1)
        if n > 1024:
            self._finding("error", "bad_configuration", f"machine type length {n}", off)
            return self._go_lost(p + 1, base)
        q = p + 5 + n
        if q > end:
            return -p - 1
        machine = bytes(b[p + 5:q]).decode("utf-8", "replace")
        subs: dict[str, Any] = {}
        while True:
            if q >= end:
                if self._closing:
                    break
                return -p - 1
            if b[q] != W.QEMU_VM_SUBSECTION:
                break
            if q + 2 > end:
                return -p - 1
            ln = b[q + 1]
            if q + 2 + ln + 4 > end:
                return -p - 1
            name = bytes(b[q + 2:q + 2 + ln]).decode("utf-8", "replace")
            r = q + 2 + ln + 4
            if name == "configuration/target-page-bits":
                if r + 4 > end:
                    return -p - 1
                bits = W.BE32.unpack_from(b, r)[0]
                subs["target_page_bits"] = bits
                if 10 <= bits <= 24:
                    self.page_size = 1 << bits
                    self.ram.set_page_size(self.page_size)
                r += 4
            elif name == "configuration/capabilities":
                if r + 4 > end:
                    return -p - 1
                count = W.BE32.unpack_from(b, r)[0]
                r += 4
                caps = []
                for _ in range(min(count, 256)):
                    if r >= end:
                        return -p - 1
                    cl = b[r]
                    if r + 1 + cl > end:
                        return -p - 1
                    caps.append(bytes(b[r + 1:r + 1 + cl]).decode("utf-8", "replace"))
                    r += 1 + cl
                subs["capabilities"] = caps
                self.capabilities = caps
                if "x-ignore-shared" in caps:
                    self.ram.ignore_shared = True
                # mapped-ram is validated (so announced) whenever it is on (savevm.c, 9.0+).
                self.ram.mapped_ram = "mapped-ram" in caps
            elif name == "configuration/uuid":
                if r + 16 > end:
                    return -p - 1
                subs["uuid"] = bytes(b[r:r + 16]).hex()
                r += 16
            else:
                self._finding("error", "unknown_subsection", f"configuration subsection {name!r}", base + q)
                self.machine_type = machine
                self._emit(self._unit("configuration", offset=off, machine_type=machine, **subs,
                                      **stamp(self._ts_at(off))))
                return self._go_lost(r, base)
            q = r
        self.machine_type = machine
        self._emit(self._unit("configuration", offset=off, machine_type=machine, **subs, **stamp(self._ts_at(off))))
        return q

    def _vmdesc(self, raw: bytes, off: int) -> None:
        try:
            vd = VmDesc.from_json(raw, offset=off)
        except (ValueError, UnicodeDecodeError) as e:
            self._finding("error", "bad_vmdesc", f"vmdesc JSON does not parse: {e}", off + 5)
            return
        self.vmdesc_seen = vd
        self._emit(self._unit("vmdesc", offset=off, page_size=vd.page_size, devices=len(vd.devices),
                              length=len(raw), **stamp(self._ts_at(off))))
        if vd.page_size and vd.page_size != self.page_size:
            self._finding("warning", "page_size_mismatch", f"vmdesc page_size {vd.page_size}, "
                          f"parser used {self.page_size}", off)
        # Check the FULL sections delimited by footer resync against the description.
        bad = 0
        for idstr, inst, nth, n in self.footer_delimited:
            want = vd.payload_length(idstr, inst, nth)
            if want is not None and want != n:
                bad += 1
                self._finding("warning", "full_section_length_mismatch",
                              f"FULL {idstr} instance {inst}: footer resync found {n} payload bytes, "
                              f"vmdesc describes {want}", None, idstr=idstr)
        if self.footer_delimited:
            self._finding("info", "full_sections_by_footer",
                          f"{len(self.footer_delimited)} FULL sections were delimited by footer "
                          "resynchronisation (without footers: by the next record); the vmdesc trailer "
                          f"confirms {len(self.footer_delimited) - bad}",
                          off)

    # ---- FULL sections: described length or footer scan ----------------------
    def _fixed(self, b: Any, p: int, end: int, base: int) -> int:
        n = self._fixed_len
        sec = self._sec
        need = n + (5 if self.footers is not False else 0)
        if need > MAX_SCAN:
            self._skip = max(0, n - (end - p))
            self._state = S_FOOTER
            return min(end, p + n)
        if end - p < need:
            if self._closing:
                self._finding("error", "stream_truncated", "stream ends inside a FULL section", base + p)
                return self._go_lost(end, base)
            return -p - 1
        if self.footers is not False and (b[p + n] != W.QEMU_VM_SECTION_FOOTER
                                          or W.SECTION_ID.unpack_from(b, p + n + 1)[0] != sec.id):
            self._finding("warning", "vmdesc_length_mismatch", f"FULL {sec.idstr}: no footer after the "
                          f"{n} payload bytes vmdesc describes; resynchronising on the footer", base + p)
            sec.delimited_by = "footer"
            self._scan_from = base + p
            self._state = S_SCAN
            return p
        self._state = S_FOOTER
        return p + n

    def _scan(self, b: Any, p: int, end: int, base: int) -> int:
        if self.footers is False:
            return self._scan_next_record(b, p, end, base)
        sec = self._sec
        sig = bytes([W.QEMU_VM_SECTION_FOOTER]) + W.SECTION_ID.pack(sec.id)
        start = max(p, self._scan_from - base - 4)
        hb = bytes(b) if isinstance(b, memoryview) else b
        while True:
            c = hb.find(sig, start)
            if c < 0:
                self._scan_from = base + max(p, end - 4)
                if end - p > MAX_SCAN:
                    self._finding("error", "footer_not_found", f"no footer for section {sec.id} within "
                                  f"{MAX_SCAN} bytes", sec.offset)
                    self._abandon_section("footer_not_found")
                    return self._go_lost(end, base)
                return -p - 1
            ok = self._plausible(b, c + 5, end)
            if ok is None:
                if self._closing:
                    ok = True  # the stream ends before the next record could be judged
                else:
                    self._scan_from = base + c
                    return -p - 1
            if ok:
                n = c - p
                sec.delimited_by = "footer"
                if sec.handler == "vmsd":
                    self.footer_delimited.append((sec.idstr or "", sec.instance_id or 0, sec.nth,
                                                  c - (sec.payload_start - base)))
                self.footers = True
                self._state = S_FOOTER
                return p + n
            start = c + 1

    def _scan_next_record(self, b: Any, p: int, end: int, base: int) -> int:
        """No footers (send-section-footer=off) and no vmdesc: the section ends where
        a plausible FULL header (type 04, be32 id < 65536) or EOF + VMDESCRIPTION starts."""
        sec = self._sec
        start = max(p, self._scan_from - base - 8)
        hb = bytes(b) if isinstance(b, memoryview) else b
        while True:
            cands = [x for x in (hb.find(b"\x04\x00\x00", start), hb.find(b"\x00\x06", start)) if x >= 0]
            if not cands:
                self._scan_from = base + max(p, end - 8)
                if end - p > MAX_SCAN:
                    self._finding("error", "footer_not_found", f"no end for section {sec.id} within "
                                  f"{MAX_SCAN} bytes (no footers, no vmdesc)", sec.offset)
                    self._abandon_section("footer_not_found")
                    return self._go_lost(end, base)
                if self._closing:
                    # The stream ends: with EOF (no trailer, e.g. suppress-vmdesc) or just ends.
                    return self._end_by_next_record(end - 1 if hb[end - 1:end] == b"\x00" else end, p, base)
                return -p - 1
            c = min(cands)
            ok = self._plausible(b, c, end)
            if ok is None:
                if not self._closing:
                    self._scan_from = base + c
                    return -p - 1
                ok = True
            if ok:
                return self._end_by_next_record(c, p, base)
            start = c + 1

    def _end_by_next_record(self, c: int, p: int, base: int) -> int:
        sec = self._sec
        sec.delimited_by = "next_record"
        if sec.handler == "vmsd":
            self.footer_delimited.append((sec.idstr or "", sec.instance_id or 0, sec.nth,
                                          c - (sec.payload_start - base)))
        self._end_section(base + c)
        self._state = S_RECORD
        return c

    def _plausible(self, b: Any, p: int, end: int) -> bool | None:
        """Could a record start at ``p``?  None = need more bytes to tell."""
        if p >= end:
            return None
        t = b[p]
        if t == W.QEMU_VM_EOF:
            if p + 1 >= end:
                return None
            return b[p + 1] == W.QEMU_VM_VMDESCRIPTION or b[p + 1] in _AFTER_EOF
        if t in W.SECTION_BY_ID:
            if end - p < 5:
                return None
            sid = W.SECTION_ID.unpack_from(b, p + 1)[0]
            if sid in self.sections:
                return True
            if not self.midstream or sid > 0xFFFF:
                return False
            # mid-stream: section ids are not known yet; the data must say what it is
            kind = payload_kind(b, p + 5, end, self.ram.mask)
            return None if kind is None else kind in ("ram", "vfio")
        if t in W.SECTION_NAMED:
            if end - p < 6:
                return None
            sid = W.SECTION_ID.unpack_from(b, p + 1)[0]
            ln = b[p + 5]
            if ln == 0 or sid > 0xFFFF:
                return False
            if end - p < 6 + ln + 8:
                return None
            name = bytes(b[p + 6:p + 6 + ln])
            if not all(0x20 < c < 0x7F for c in name):
                return False
            known = self.sections.get(sid)
            return known is None or known[0] == name.decode()
        if t == W.QEMU_VM_COMMAND:
            if end - p < 5:
                return None
            cmd, ln = W.COMMAND_HDR.unpack_from(b, p + 1)
            want = W.COMMAND_LEN.get(cmd, ())
            return cmd in W.COMMANDS and cmd != 0 and (want is None or ln in want)
        return False

    def _lost(self, b: Any, p: int, end: int, base: int) -> int:
        """After a gap or garbage: find ``7e`` + known section id + a plausible record."""
        q = p
        hb = bytes(b) if isinstance(b, memoryview) else b
        while True:
            c = hb.find(_FOOTER_BYTE, q)
            if c < 0:
                return -max(p, end - 1) - 1 if end - p > 0 else -p - 1
            if end - c < 5:
                return -c - 1
            sid = W.SECTION_ID.unpack_from(b, c + 1)[0]
            if sid in self.sections or not self.sections or self.midstream:
                ok = self._plausible(b, c + 5, end)
                if ok is None:
                    if self._closing:
                        return end
                    return -c - 1
                if ok:
                    self._finding("warning", "resync", f"resynchronised on the footer of section {sid} after "
                                  f"{base + c + 5 - (self._lost_since or 0)} bytes", base + c + 5,
                                  method="footer")
                    self._lost_since = None
                    self._state = S_RECORD
                    return c + 5
            q = c + 1


def _command_value(cmd: int, payload: bytes) -> Any:
    """The contract's ``command.value``: the decoded payload (None when empty)."""
    if cmd == W.MIG_CMD_PING:
        return W.BE32.unpack(payload)[0]
    if cmd == W.MIG_CMD_PACKAGED:
        return {"length": W.BE32.unpack(payload)[0]}
    if cmd == W.MIG_CMD_POSTCOPY_ADVISE and len(payload) == 16:
        a, t = W.BE64.unpack_from(payload, 0)[0], W.BE64.unpack_from(payload, 8)[0]
        return {"ram_pagesize_summary": a, "target_page_size": t}
    if cmd == W.MIG_CMD_POSTCOPY_RAM_DISCARD and len(payload) >= 3:
        ln = payload[1]
        name = payload[2:2 + ln].decode("utf-8", "replace")
        rest = payload[2 + ln + 1:]
        ranges = [list(W.BE64.unpack_from(rest, i)) + [W.BE64.unpack_from(rest, i + 8)[0]]
                  for i in range(0, len(rest) - 15, 16)]
        return {"version": payload[0], "block": name, "ranges": ranges}
    if cmd == W.MIG_CMD_RECV_BITMAP and payload:
        return {"block": payload[1:1 + payload[0]].decode("utf-8", "replace")}
    return None
