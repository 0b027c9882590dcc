# SPDX-License-Identifier: GPL-2.0-only
"""Incremental parser of QEMU's main migration channel (qemu-migration-stream.md).

:class:`StreamParser` is a ``StreamConsumer`` (INTERFACES.md, C): it is fed
the reassembled bytes as they arrive (``data``), told about missing ranges
(``gap``) and the end (``close``).  It never waits for the whole stream:
state survives between calls; the only bytes it keeps are an unfinished
record header (a few hundred bytes), an unfinished FULL section whose end
is found by footer resynchronisation, or the vmdesc JSON.  RAM page bodies
are skipped without copying and VFIO chunk data is handed to a
:class:`DeviceSink` piece by piece as it arrives.

Units go to ``sink(item)``: contract dicts (``section``, ``command``,
``ram``, ``vfio_marker``, ``vfio_chunk``, ``vmdesc`` plus ``configuration``
and ``eof``), :class:`~dissect.common.findings.Finding` objects, and
whatever the device sink returns (decoded VFIO records).  The units of a
section are delivered when the section ends, the ``section`` unit first,
so the output is in byte-stream order of section starts.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from dissect.common.findings import Finding
from dissect.qemu import ram as _ram
from dissect.qemu import wire as W
from dissect.qemu.records import RecordHandlers, payload_kind
# section lifecycle and RAM handlers live in sections.py; _Section stays importable from here
from dissect.qemu.sections import SectionHandlers, _Section  # noqa: F401
from dissect.qemu.states import (S_DONE, S_FIXED, S_FOOTER, S_HEADER, S_LOST, S_MAPPED, S_RAM, S_RECORD, S_SCAN,
                                 S_VFIO, S_VFIO_CFG, stamp)
from dissect.qemu.vfio import VfioHandlers
from dissect.qemu.vmdesc import MAX_VMDESC, VmDesc



class DeviceSink(Protocol):
    """Receives VFIO device data in stream order (session.DeviceAssembler)."""

    def data(self, device: str, phase: str, data: bytes, ts_ns: int, offset: int) -> list[Any]: ...

    def lost(self, device: str, nbytes: int, offset: int) -> list[Any]: ...

    def config(self, device: str, blob: bytes, ts_ns: int, offset: int) -> list[Any]: ...


class StreamParser(RecordHandlers, VfioHandlers, SectionHandlers):
    """Main-channel parser; a ``StreamConsumer``.

    ``sink`` receives units; ``devices`` (optional) receives VFIO chunk data;
    ``vmdesc`` (optional, e.g. read from the end of a stream file first) lets
    FULL sections of ordinary devices be delimited by their described size.
    ``flow`` is copied into every unit; ``expect_header`` is False for a
    nested stream or one captured after its start.
    """

    def __init__(self, sink: Callable[[Any], None], *, flow: int | None = None,
                 devices: DeviceSink | None = None, vmdesc: VmDesc | None = None,
                 expect_header: bool = True, page_size: int = W.DEFAULT_PAGE_SIZE,
                 stream_size: int | None = None, midstream: bool = False) -> None:
        self.sink = sink
        self.flow = flow
        self.devices = devices
        self.vmdesc = vmdesc
        self.page_size = page_size
        self.ram = _ram.RamState(page_size)
        self.ram.size_limit = stream_size
        self.footers: bool | None = None
        self.sections: dict[int, tuple[str, int, int]] = {}
        self.full_seen: dict[tuple[str, int], int] = {}
        self.footer_delimited: list[tuple[str, int, int, int]] = []  # idstr, inst, nth, payload len
        self.capabilities: list[str] = []
        self.machine_type: str | None = None
        self.eof_offset: int | None = None
        self._outer_eof: int | None = None  # the first EOF outside a PACKAGED blob
        self._eof_run_end = -1  # end of the last run of EOF bytes after it (one finding per run)
        self.findings: list[Finding] = []
        self.vmdesc_seen: VmDesc | None = None
        self._state = S_HEADER if expect_header else S_RECORD
        self._pos = 0
        self._buf = bytearray()
        self._buf_off = 0
        self._marks: list[tuple[int, int]] = [(0, 0)]
        self._ts = 0
        self._skip = 0
        self._dev_left = 0
        self._dev_off = 0
        self._sec: _Section | None = None
        self._pkg_ends: list[int] = []
        self._scan_from = 0
        self._fixed_len = 0
        self._closed = False
        self._lost_since: int | None = None
        self._vfio_term = False
        self._mapped_end = 0
        self._mapped_block: str | None = None
        #: a connection captured after its start (dissect/qemu/midstream.py): begin lost, take the
        #: first record after a section footer, learn section ids from their data
        self.midstream = midstream
        self._unnamed: set[int] = set()
        #: of those, the sections whose data is VFIO's (walked by the VFIO handler)
        self._vfio_unnamed: set[int] = set()
        if midstream:
            self._state = S_LOST
            self._lost_since = 0

    # ---- StreamConsumer -------------------------------------------------
    def data(self, offset: int, data: bytes | memoryview, ts_ns: int) -> int | None:
        """Consume the bytes at ``offset``.

        Returns the number of bytes right after ``data`` that the parser
        does not need (the rest of a RAM page body), or None: a caller may
        drop them and pass the next bytes at their own offset (the jump is
        taken as those bytes skipped, not as a gap) — tcp.Reassembler does,
        so the packets inside a page body cost no call.  Callers that ignore
        the hint pass every byte as before.
        """
        n = len(data)
        if offset != self._pos or self._closed:
            if self._closed:
                return None
            if offset > self._pos:
                if offset - self._pos <= self._skip and not self._buf:
                    # The caller honoured a skip hint: those bytes were not needed.
                    self._skip -= offset - self._pos
                    self._pos = offset
                    if not n:
                        return None
                else:
                    self.gap(self._pos, offset)
            else:
                cut = self._pos - offset
                if cut >= n:
                    return None
                data = memoryview(data)[cut:]
                offset += cut
                n -= cut
        self._ts = ts_ns
        self._pos = offset + n
        skip = self._skip
        if skip:
            # Hot path: inside a page body (most packets of a RAM-heavy capture).
            if skip >= n:
                self._skip = skip - n
                return skip - n
            self._skip = 0
            i = skip
        else:
            i = 0
        if self._dev_left:
            k = self._dev_left if self._dev_left < n - i else n - i
            self._route(bytes(data[i:i + k]), offset + i, ts_ns)
            self._dev_left -= k
            i += k
            if self._dev_left:
                return None
        if i == n:
            return None
        if self._state == S_RAM and not self._buf:
            # Hot path of a RAM-heavy stream: page records straight from the packet
            # (what _run/_ram would do, without their call layers).
            sec = self._sec
            q, skip, status = self.ram.walk(sec.ram, data, i, n, offset, self._finding)  # type: ignore[union-attr]
            if skip:
                self._skip = skip
                return skip
            if status == _ram.EOS:
                sec.ram.bytes = offset + q - sec.payload_start  # type: ignore[union-attr]
                self._state = S_FOOTER
            elif status == _ram.BAD:
                self.ram.abandon_list(sec.ram)  # type: ignore[union-attr]
                sec.delimited_by = "footer"  # type: ignore[union-attr]
                self._scan_from = offset + q
                self._state = S_SCAN
            elif status == _ram.MAPPED:
                self._state = S_MAPPED
            # NEED: the general path below buffers data[q:] (the walk stops at once again)
            i = q
            if i == n:
                return None
        if self._buf:
            self._buf += data[i:] if i else data
            self._marks.append((offset + i, ts_ns))
            b: Any = self._buf
            base = self._buf_off
            p = 0
        else:
            b = data
            base = offset
            p = i
            self._marks = [(offset + i, ts_ns)]
        q = self._run(b, p, base)
        if q < len(b):
            if b is self._buf:
                if q:
                    del self._buf[:q]  # no views of _buf outlive a call, so resizing is safe
            else:
                self._buf = bytearray(b[q:])
            off = self._buf_off = base + q
            if len(self._marks) > 1:
                self._marks = [(off, self._ts_at(off))] + [m for m in self._marks if m[0] > off]
        elif b is self._buf:
            self._buf = bytearray()
        if self._skip and not self._buf:
            return self._skip
        return None

    def gap(self, start: int, end: int) -> None:
        """Bytes [start, end) are missing: keep going where the structure allows."""
        if self._closed or end <= start:
            return
        if start > self._pos:
            start = self._pos
        n = end - start
        self._pos = max(self._pos, end)
        if self._skip and not self._buf and n <= self._skip:
            # Inside page data (or a described FULL payload): structure is intact.
            self._skip -= n
            self._finding("warning", "stream_gap", f"{n} bytes missing at {start}..{end} inside skipped data; "
                          "structure intact, parsing continues", start, gap_end=end)
            return
        if self._dev_left and not self._buf and n <= self._dev_left:
            self._dev_left -= n
            sec = self._sec
            self._finding("error", "stream_gap", f"{n} bytes of VFIO chunk data missing at {start}..{end}",
                          start, gap_end=end, device=sec.idstr if sec else None)
            key = self._dev_key()
            if self.devices and key is not None:
                self._emit_many(self.devices.lost(key, n, self._dev_off))
            self._dev_off += n
            return
        if self._dev_left and self.devices and self._dev_key() is not None:
            self._emit_many(self.devices.lost(self._dev_key(), self._dev_left, self._dev_off))
        self._finding("error", "stream_gap", f"{n} bytes missing at {start}..{end}; "
                      "resynchronising on the next section footer", start, gap_end=end)
        self._abandon_section("gap")
        self._skip = 0
        self._dev_left = 0
        self._buf = bytearray()
        self._buf_off = end
        self._marks = [(end, self._ts)]
        self._lost_since = end
        self._state = S_LOST

    def close(self) -> None:
        if self._closed:
            return
        if self._buf and self._state in (S_SCAN, S_VFIO_CFG):
            # The stream ended: a footer at the very end needs no lookahead.
            b = self._buf
            self._closing = True
            q = self._run(b, 0, self._buf_off)
            self._buf = bytearray(b[q:])
            self._buf_off += q
        pending = len(self._buf) + self._skip + self._dev_left
        if self._state == S_LOST:
            self._finding("error", "resync_failed", "no section footer found after the gap until the end "
                          "of the stream", self._lost_since)
        elif self._state == S_HEADER and self._pos == 0:
            self._finding("error", "empty_stream", "the stream holds no bytes", 0)
        elif pending or self._sec is not None or self._state not in (S_RECORD, S_DONE):
            off = self._buf_off if self._buf else self._pos
            self._finding("error", "stream_truncated",
                          f"stream ends inside a record ({pending} bytes pending or missing)", off)
            if self._dev_left and self.devices and self._dev_key() is not None:
                self._emit_many(self.devices.lost(self._dev_key(), self._dev_left, self._dev_off))
        region = self.ram.region
        if region is not None or (self._mapped_end and self._pos < self._mapped_end):
            name = region.block if region is not None else self._mapped_block
            self._finding("error", "mapped_ram_truncated", f"the file ends at {self._pos} inside ramblock {name}'s "
                          f"mapped-ram bitmap/page region (to {region.region_end if region else self._mapped_end})",
                          self._pos, ramblock=name)
        self._abandon_section("truncated")
        if self.footer_delimited and self.vmdesc_seen is None:
            self._finding("info", "full_sections_by_footer",
                          f"{len(self.footer_delimited)} FULL sections were delimited by footer "
                          "resynchronisation (without footers: by the next record); the stream holds no "
                          "vmdesc trailer to confirm them", None)
        if self.eof_offset is None and self._state != S_LOST:
            self._finding("warning", "no_eof", "the stream has no QEMU_VM_EOF", self._pos)
        self._closed = True

    # ---- helpers ----------------------------------------------------------
    _closing = False

    def _ts_at(self, off: int) -> int:
        marks = self._marks
        for i in range(len(marks) - 1, -1, -1):
            if marks[i][0] <= off:
                return marks[i][1]
        return marks[0][1]

    def _emit(self, obj: Any) -> None:
        if self._sec is not None:
            self._sec.units.append(obj)
        else:
            self.sink(obj)

    def _emit_many(self, objs: list[Any] | None) -> None:
        if objs:
            for o in objs:
                self._emit(o)

    def _finding(self, severity: str, code: str, msg: str, offset: int | None, **ctx: Any) -> None:
        if self.flow is not None:
            ctx.setdefault("flow", self.flow)
        sec = self._sec
        if sec is not None:
            ctx.setdefault("section_id", sec.id)
        f = Finding(severity, code, msg, offset, ctx)  # type: ignore[arg-type]
        self.findings.append(f)
        self._emit(f)

    def _unit(self, kind: str, **fields: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {"kind": kind, "flow": self.flow}
        obj.update(fields)
        return obj

    def _route(self, data: bytes, offset: int, ts: int) -> None:
        key = self._dev_key()
        if self.devices is not None and key is not None:
            self._emit_many(self.devices.data(key, W.VFIO_PHASE.get(self._sec.type, "precopy"), data, ts, offset))
        self._dev_off += len(data)

    def _dev_key(self) -> str | int | None:
        """The device sink's key for the open section's VFIO data: the section's idstr, or its id
        for a section picked up mid-stream whose name has not been seen (DeviceAssembler holds
        that data until a later section names the device)."""
        sec = self._sec
        if sec is None:
            return None
        if sec.idstr:
            return sec.idstr
        return sec.id if sec.handler == "vfio" else None

    # ---- the loop ---------------------------------------------------------
    def _run(self, b: Any, p: int, base: int) -> int:
        end = len(b)
        while p < end:
            st = self._state
            if st == S_RAM:
                q = self._ram(b, p, end, base)
            elif st == S_RECORD:
                q = self._record(b, p, end, base)
            elif st == S_VFIO:
                q = self._vfio(b, p, end, base)
            elif st == S_FOOTER:
                q = self._footer(b, p, end, base)
            elif st == S_SCAN:
                q = self._scan(b, p, end, base)
            elif st == S_VFIO_CFG:
                q = self._vfio_cfg(b, p, end, base)
            elif st == S_FIXED:
                q = self._fixed(b, p, end, base)
            elif st == S_MAPPED:
                q = self._mapped(b, p, end, base)
            elif st == S_HEADER:
                q = self._header(b, p, end, base)
            elif st == S_LOST:
                q = self._lost(b, p, end, base)
            else:  # S_DONE: bytes after the trailer
                self._finding("warning", "trailing_data", f"{end - p} bytes after the vmdesc trailer", base + p)
                self._state = S_RECORD
                q = p
            if q < 0:
                return -q - 1
            p = q
            if self._skip or self._dev_left:
                return end
        return p

    # ---- header, records ----------------------------------------------------
    def _header(self, b: Any, p: int, end: int, base: int) -> int:
        if end - p < 8:
            return -p - 1
        magic, version = W.FILE_HEADER.unpack_from(b, p)
        if magic != W.QEMU_VM_FILE_MAGIC:
            self._finding("error", "bad_magic", f"file magic 0x{magic:08x} is not QEVM", base + p)
            self._state = S_LOST
            self._lost_since = base + p
            return p + 1
        if version != W.QEMU_VM_FILE_VERSION:
            self._finding("error" if version == W.QEMU_VM_FILE_VERSION_COMPAT else "warning", "bad_version",
                          f"file version {version} (expected 3)", base + p + 4)
        self._emit(self._unit("header", offset=base + p, magic="QEVM", version=version, **stamp(self._ts_at(base + p))))
        self._state = S_RECORD
        return p + 8

    def _record(self, b: Any, p: int, end: int, base: int) -> int:
        off = base + p
        while self._pkg_ends and off >= self._pkg_ends[-1]:
            if off > self._pkg_ends[-1]:
                self._finding("error", "packaged_overrun", "a record crossed the end of its PACKAGED blob", off)
            self._pkg_ends.pop()
        t = b[p]
        if t in (W.QEMU_VM_SECTION_START, W.QEMU_VM_SECTION_FULL):
            if end - p < 6:
                return -p - 1
            (sid,) = W.SECTION_ID.unpack_from(b, p + 1)
            ln = b[p + 5]
            hl = 6 + ln + 8
            if end - p < hl:
                return -p - 1
            idstr = bytes(b[p + 6:p + 6 + ln]).decode("utf-8", "replace")
            inst, ver = W.SECTION_TAIL.unpack_from(b, p + 6 + ln)
            self.sections[sid] = (idstr, inst, ver)
            self._begin_section(t, sid, idstr, inst, ver, off)
            return p + hl
        if t in (W.QEMU_VM_SECTION_PART, W.QEMU_VM_SECTION_END):
            if end - p < 5:
                return -p - 1
            (sid,) = W.SECTION_ID.unpack_from(b, p + 1)
            known = self.sections.get(sid)
            if known is None and self.midstream:
                kind = payload_kind(b, p + 5, end, self.ram.mask)
                if kind is None:
                    return -p - 1
                known = self._learn_section(sid, kind, off)
                if known is None:  # announced before the capture, data not recognised: opaque
                    self._begin_section(t, sid, None, None, None, off)
                    return p + 5
            if known is None:
                self._sec = None
                self._finding("error", "unknown_section_id", f"{W.SECTION_TYPES[t]} for section {sid} "
                              "that no START/FULL announced", off, section_id=sid)
                self._begin_section(t, sid, None, None, None, off)
            else:
                self._begin_section(t, sid, known[0], known[1], known[2], off)
            return p + 5
        if t == W.QEMU_VM_COMMAND:
            return self._command(b, p, end, base)
        if t == W.QEMU_VM_EOF:
            if self._outer_eof is not None and not self._pkg_ends:
                # QEMU's loader stops at the first EOF of the outer stream: a run of further EOF
                # bytes (zero fill) is one finding, not one unit per byte
                q = p + 1
                while q < end and b[q] == W.QEMU_VM_EOF:
                    q += 1
                if off != self._eof_run_end:
                    self._finding("warning", "trailing_data", f"QEMU_VM_EOF bytes after the stream's EOF at "
                                  f"{self._outer_eof} (a run starting here)", off)
                self._eof_run_end = base + q
                return q
            self.eof_offset = off
            if not self._pkg_ends:
                self._outer_eof = off
            self._emit(self._unit("eof", offset=off, packaged=len(self._pkg_ends) or None,
                                  **stamp(self._ts_at(off))))
            return p + 1
        if t == W.QEMU_VM_VMDESCRIPTION:
            if end - p < 5:
                return -p - 1
            (n,) = W.VMDESC_LEN.unpack_from(b, p + 1)
            if n > MAX_VMDESC:
                self._finding("error", "vmdesc_too_large", f"vmdesc length {n} exceeds {MAX_VMDESC}", off)
                return self._go_lost(p + 1, base)
            if end - p < 5 + n:
                return -p - 1
            self._vmdesc(bytes(b[p + 5:p + 5 + n]), off)
            self._state = S_DONE
            return p + 5 + n
        if t == W.QEMU_VM_CONFIGURATION:
            return self._configuration(b, p, end, base)
        self._finding("error", "unknown_record_type", f"record type byte 0x{t:02x} is not a QEMU_VM_* value", off)
        return self._go_lost(p, base)

    def _learn_section(self, sid: int, kind: str, off: int) -> tuple[str, int, int] | None:
        """Mid-stream: a PART/END for a section whose START came before the capture.  RAM data
        makes it the ``ram`` section (version 4); anything else stays unnamed (one info finding)."""
        if kind == "ram":
            self.sections[sid] = ("ram", 0, 4)
            if self.ram.block is None:
                self.ram.block = "?"  # CONTINUE pages of a block named before the capture
            self._finding("info", "section_inferred", f"section {sid} is taken for ram: its data starts with "
                          "a RAM page header (its START section came before the capture)", off, section_id=sid)
            return self.sections[sid]
        if sid not in self._unnamed:
            self._unnamed.add(sid)
            if kind == "vfio":
                self._finding("info", "section_unnamed", f"section {sid} holds VFIO device data; its name came "
                              "in its START section, before the capture: its markers are walked and its data "
                              "held until a later section names the device (the FULL config section at "
                              "switchover)", off, section_id=sid)
            else:
                self._finding("info", "section_unnamed", f"section {sid} holds data this decoder does not "
                              "recognise; its name came in its START section, before the capture: kept opaque",
                              off, section_id=sid)
        if kind == "vfio":
            self._vfio_unnamed.add(sid)
        return None

    def _go_lost(self, p: int, base: int) -> int:
        self._state = S_LOST
        self._lost_since = base + p
        return p


__all__ = ["StreamParser", "DeviceSink"]
