# SPDX-License-Identifier: GPL-2.0-only
"""trace.dat file layout: initial header, v6 blocks, v7 sections, options, compression.

Spec: trace-dat.md §1 (initial header), §2 (v6 layout, including the
undocumented trailing trace-clock block), §3 (v7 sections and compression),
§4 (options).  :class:`TraceDatLayout` fills a :class:`~dissect.ftrace.tracedat.TraceDat`
with the file's metadata, instances and CPU streams; every length read from
the file is checked against the bytes present, and every problem becomes a
:class:`~dissect.common.findings.Finding` with its offset.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any

from construct import ConstructError

from dissect.common.findings import Finding
from dissect.ftrace import headers as H
from dissect.ftrace.formats import compile_decoder, parse_cmdlines, parse_format, parse_printk, record_bound
# the cursor and records live in layout_types; their names stay importable from here
from dissect.ftrace.layout_types import CpuStream, Instance, Option, _Cursor, _Short
from dissect.ftrace.ring import PageLayout
from dissect.ftrace.tsync import Guest, TimeShift, parse_guest, parse_time_shift
from dissect.ftrace.utf8 import bad_count, metadata_text

__all__ = ["TraceDatLayout", "Option", "Instance", "CpuStream"]


_COMPRESSORS = ("none", "zlib", "zstd")

O = H.OptionId
# options whose value is a NUL-terminated string / a u64 (trace-dat.md §4)
_STRING_OPTIONS = frozenset((O.DATE, O.CPUSTAT, O.TRACECLOCK, O.UNAME, O.HOOK, O.OFFSET, O.VERSION, O.PROCMAPS,
                             O.LAST_BOOT_INFO))
_U64_OPTIONS = frozenset((O.TRACEID, O.HEADER_INFO, O.FTRACE_EVENTS, O.EVENT_FORMATS, O.KALLSYMS, O.PRINTK,
                          O.CMDLINES))


class TraceDatLayout:
    """Metadata parsing of trace.dat; :class:`~dissect.ftrace.tracedat.TraceDat` builds on it."""

    # set by TraceDat.__init__
    findings: list[Finding]
    options: list[Option]
    instances: list[Instance]
    size: int
    _buf: Any

    _zstd_dctx: Any = None

    def _zstd(self) -> Any:
        """One ``zstandard.ZstdDecompressor`` per file, reused by every blob (used one at a time)."""
        if self._zstd_dctx is None:
            import zstandard
            self._zstd_dctx = zstandard.ZstdDecompressor()
        return self._zstd_dctx

    def _decompress(self, blob: bytes, usize: int, at: int) -> tuple[bytes | None, list[Finding]]:
        """Decompress one blob; output grows with the real data, never with ``usize``."""
        try:
            if self.compression == "zstd":
                data = self._zstd().decompressobj().decompress(blob)
            elif self.compression == "zlib":
                data = zlib.decompressobj().decompress(blob)
            else:
                return None, [Finding("error", "unknown_compression",
                                      f"compression {self.compression!r} is not supported", at)]
        except Exception as exc:  # zstd/zlib raise their own error types
            return None, [Finding("error", "decompress_failed", f"{self.compression}: {exc}", at)]
        out = []
        if len(data) != usize:
            out.append(Finding("warning", "decompressed_size",
                               f"blob decompressed to {len(data)} bytes, header says {usize}", at))
        return data, out

    # ------------------------------------------------------------- parsing
    def _finding(self, sev: str, code: str, msg: str, off: int | None, **ctx: Any) -> None:
        self.findings.append(Finding(sev, code, msg, off, ctx))  # type: ignore[arg-type]

    def _text(self, data: bytes, what: str, at: int | None, **ctx: Any) -> str:
        return metadata_text(self.findings, data, what, at, **ctx)

    def _parse(self) -> None:
        buf = self._buf
        head = bytes(buf[:64])
        if not head.startswith(H.MAGIC):
            self._finding("error", "not_trace_dat", "missing the trace.dat magic 17 08 44 'tracing'", 0)
            return
        try:
            ih = H.initial_header.parse(head)
        except ConstructError:
            self._finding("error", "truncated_header", "initial header is incomplete", 0)
            return
        pos = 10 + len(ih.version) + 1 + 2
        try:
            self.version = int(ih.version)
        except ValueError:
            self._finding("error", "unknown_version",
                          f"version {ih.version.decode('ascii', 'backslashreplace')!r} is not a number", 10)
            return
        self.big_endian = ih.endian == 1
        if ih.endian not in (0, 1):
            self._finding("warning", "bad_endian", f"endianness byte {ih.endian}; assuming little", 10)
        self.long_size = ih.long_size
        if ih.long_size not in (4, 8):
            self._finding("warning", "bad_long_size", f"long size {ih.long_size}; assuming 8", 10 + len(ih.version) + 2)
            self.long_size = 8
        if len(head) < pos + 4:
            self._finding("error", "truncated_header", "file ends inside the initial header", pos)
            return
        self.page_size = H.page_size_field(self.big_endian).parse(head[pos:pos + 4])
        pos += 4
        if self.version not in (6, 7):
            self._finding("error" if self.version < 6 else "warning", "unknown_version",
                          f"trace.dat version {self.version}; reading as "
                          f"{'v6' if self.version < 7 else 'v7'}", 10)
            if self.version < 6:
                return
        if self.version >= 7:
            self._parse_v7(pos)
        else:
            self._parse_v6(pos)
        self._finish()

    def _finish(self) -> None:
        lay = PageLayout.from_header_page(self.header_page, self.long_size)
        if (lay.ts_size not in (4, 8) or lay.commit_size not in (4, 8)
                or lay.data_offset < max(lay.ts_offset + lay.ts_size, lay.commit_offset + lay.commit_size)
                or lay.data_offset % 4 or lay.data_offset >= 1024):
            self._finding("warning", "bad_header_page",
                          f"header_page layout {lay} is not usable; assuming u64 timestamp, "
                          f"{self.long_size}-byte commit", None)
            lay = PageLayout(0, 8, 8, self.long_size, 8 + self.long_size)
        elif not self.header_page:
            self._finding("warning", "bad_header_page", "no header_page text; assuming the usual layout", None)
        self.layout = lay
        self.kernel_long = self.layout.commit_size
        bound = record_bound(max([self.page_size] + [i.page_size or 0 for i in self.instances]))
        for fmt in self.formats.values():
            fmt.decoder = compile_decoder(fmt, self.big_endian, bound)
            if fmt.bad is not None:
                self._finding("warning", "bad_format_field",
                              f"{fmt.system}/{fmt.name} (id {fmt.id}): {fmt.bad}; its events are kept as raw bytes",
                              fmt.offset, event_id=fmt.id)
        top = [i for i in self.instances if i.name == ""]
        if top and top[0].clock is None:
            top[0].clock = self.clock

    # ---------- metadata blocks shared by v6 and v7 (trace-dat.md §2 items 1–7)
    def _read_headers(self, cur: _Cursor) -> None:
        for tag, attr in ((b"header_page\0", "header_page"), (b"header_event\0", "header_event")):
            at = cur.file_offset
            got = cur.take(len(tag))
            if got != tag:
                self._finding("error", "bad_header_tag", f"expected {tag[:-1].decode()!r}", at)
                raise _Short(0)
            setattr(self, attr, self._sized_text(cur, 8, attr))

    def _sized(self, cur: _Cursor, width: int, what: str) -> bytes:
        """A ``width``-byte size, then that many bytes (what is there when the size runs past the end)."""
        at = cur.file_offset
        n = cur.num(width)
        if n > cur.remaining():
            self._finding("error", "bad_size", f"{what}: size {n} but only {cur.remaining()} bytes remain; "
                          "reading what is there", at)
            n = cur.remaining()
        return cur.take(n)

    def _sized_text(self, cur: _Cursor, width: int, what: str) -> str:
        at = cur.file_offset
        return self._text(self._sized(cur, width, what), what, at)

    def _read_ftrace_formats(self, cur: _Cursor) -> None:
        count = cur.num(4)
        for _ in range(count):
            at = cur.file_offset
            self._add_format(self._sized_text(cur, 8, "ftrace event format"), "ftrace", at)

    def _read_event_formats(self, cur: _Cursor) -> None:
        nsys = cur.num(4)
        for _ in range(nsys):
            at = cur.file_offset
            system = self._text(cur.cstr(), "event system name", at)
            count = cur.num(4)
            for _ in range(count):
                at = cur.file_offset
                self._add_format(self._sized_text(cur, 8, f"{system} event format"), system, at)

    def _add_format(self, text: str, system: str, at: int) -> None:
        fmt = parse_format(text, system, self.long_size)
        if fmt is None:
            self._finding("warning", "bad_format", f"unparseable {system} event format", at)
            return
        fmt.offset = at
        self.formats[(system, fmt.name)] = fmt
        if fmt.id in self.formats_by_id and self.formats_by_id[fmt.id] is not fmt:
            old = self.formats_by_id[fmt.id]
            self._finding("warning", "duplicate_event_id",
                          f"id {fmt.id} used by {old.system}/{old.name} and {system}/{fmt.name}", at)
        self.formats_by_id[fmt.id] = fmt

    def _read_kallsyms(self, cur: _Cursor) -> None:
        at = cur.file_offset
        self._kallsyms_text = data = self._sized(cur, 4, "kallsyms")
        if not data.isascii():  # parsed lazily (Kallsyms), checked now: the finding belongs here
            self._text(data, "kallsyms", at)

    def _read_printk(self, cur: _Cursor) -> None:
        at = cur.file_offset
        data = self._sized(cur, 4, "printk")
        self.printk = parse_printk(self._text(data, "printk", at) if not data.isascii() else data)

    def _read_cmdlines(self, cur: _Cursor) -> None:
        at = cur.file_offset
        data = self._sized(cur, 8, "cmdlines")
        skipped: list[int] = []
        if data.isascii():
            self.cmdlines = parse_cmdlines(data, skipped)
        else:
            # the entries (pid, comm bytes) whose comm is not UTF-8, rather than the whole section's bytes
            bad = [{"pid": int(p), "raw": c.hex()} for p, _, c in (ln.partition(b" ") for ln in data.split(b"\n"))
                   if p.isdigit() and not c.isascii() and bad_count(c)[0]]
            self.cmdlines = parse_cmdlines(self._text(data, "cmdlines", at, raw=None, entries=bad[:100],
                                                      entry_count=len(bad)), skipped)
        if skipped:
            self._finding("warning", "bad_cmdline",
                          f"cmdlines: {len(skipped)} line(s) without a pid_t pid and a comm skipped "
                          f"(first: line {skipped[0]})", at)

    # ---------- options (§4)
    def _option(self, oid: int, data: bytes, at: int | None) -> Option:
        name = H.OPTION_NAMES.get(oid, f"UNKNOWN_{oid}")
        big = self.big_endian
        value: Any = data
        try:
            if oid in _STRING_OPTIONS:
                value = self._text(data.split(b"\0", 1)[0], f"option {name}", at)
            elif oid == O.CPUCOUNT and len(data) >= 4:
                value = int.from_bytes(data[:4], "big" if big else "little")
            elif oid in _U64_OPTIONS and len(data) >= 8:
                value = int.from_bytes(data[:8], "big" if big else "little")
            elif oid == O.TSC2NSEC and len(data) >= 16:
                v = H.tsc2nsec_option(big).parse(data)
                value = {"mult": v.mult, "shift": v.shift, "offset": v.offset}
            elif oid == O.TIME_SHIFT and len(data) >= 16:  # trace-cmd ignores a shorter one
                value = parse_time_shift(data, big)
            elif oid == O.GUEST:
                value = parse_guest(data, big)
                self._text(data.split(b"\0", 1)[0], "option GUEST name", at)  # for its finding
            elif oid == O.BUFFER:
                if self.version and self.version >= 7:
                    v = H.buffer_option_v7(big).parse(data)
                    value = {"offset": v.offset, "name": self._text(v.name, "option BUFFER name", at),
                             "clock": self._text(v.clock, "option BUFFER clock", at), "page_size": v.page_size,
                             "cpus": [(c.cpu, c.offset, c.size) for c in v.cpus]}
                else:
                    v = H.buffer_option_v6(big).parse(data)
                    value = {"offset": v.offset, "name": self._text(v.name, "option BUFFER name", at)}
        except (ConstructError, UnicodeDecodeError, ValueError, struct.error):
            self._finding("warning", "bad_option", f"option {name} ({len(data)} bytes) does not parse; kept raw",
                          at, option=oid)
            value = data
        return Option(oid, name, value, data, at)

    def _apply_option(self, opt: Option) -> None:
        v = opt.value
        if opt.id == O.DATE and isinstance(v, str):
            if v.strip():
                try:
                    self.ts_offset += int(v.strip(), 0) * 1000  # µs, "0x…" ASCII
                except ValueError:
                    self._finding("warning", "bad_option", f"DATE {v!r} is not a number", opt.offset)
        elif opt.id == O.OFFSET and isinstance(v, str):
            try:
                self.ts_offset += int(v.strip(), 0)
            except ValueError:
                self._finding("warning", "bad_option", f"OFFSET {v!r} is not a number", opt.offset)
        elif opt.id == O.TSC2NSEC and isinstance(v, dict):
            self.tsc2nsec = (v["mult"], v["shift"], v["offset"])
        elif opt.id == O.TIME_SHIFT and isinstance(v, TimeShift):
            self.time_shift = v  # a later one replaces it, as in trace-cmd
        elif opt.id == O.GUEST and isinstance(v, Guest):
            self.guests.append(v)
        elif opt.id == O.CPUCOUNT and isinstance(v, int):
            self.cpus = self.cpus or v
        elif opt.id == O.TRACECLOCK and isinstance(v, str):
            self.trace_clock_text = v
            self.clock = _selected_clock(v) or self.clock

    def _read_options_v6(self, cur: _Cursor) -> list[Option]:
        opts = []
        while True:
            at = cur.file_offset
            oid = cur.num(2)
            if oid == O.DONE:
                break
            size = cur.num(4)
            if size > cur.remaining():
                self._finding("error", "bad_option_size", f"option {oid} size {size} exceeds the file", at)
                raise _Short(size)
            opts.append(self._option(oid, cur.take(size), at))
        return opts

    # ---------- version 6 (§2)
    def _parse_v6(self, pos: int) -> None:
        cur = _Cursor(self._buf, pos, self.size, 0, self.big_endian)
        step = "headers"
        try:
            self._read_headers(cur)
            step = "ftrace formats"
            self._read_ftrace_formats(cur)
            step = "event formats"
            self._read_event_formats(cur)
            step = "kallsyms"
            self._read_kallsyms(cur)
            step = "printk"
            self._read_printk(cur)
            step = "cmdlines"
            self._read_cmdlines(cur)
            step = "cpu count"
            self.cpus = cur.num(4)
            step = "data tag"
            tag = cur.take(10)
            if tag == b"options  \0":
                step = "options"
                for opt in self._read_options_v6(cur):
                    self.options.append(opt)
                    self._apply_option(opt)
                step = "data tag"
                tag = cur.take(10)
            if tag == b"latency  \0":
                self.latency_text = self._text(bytes(self._buf[cur.pos:]), "latency data", cur.file_offset)
                self._finding("info", "latency_data", "file holds latency (text) data, no ring buffers",
                              cur.file_offset)
                return
            if tag != b"flyrecord\0":
                self._finding("error", "bad_data_tag", f"unknown data tag {tag!r}", cur.file_offset - 10)
                return
            step = "flyrecord"
            top = Instance("", None, self.page_size)
            top.cpus = self._read_cpu_table_v6(cur, self.cpus)
            step = "trace clock"
            # Undocumented but always written: u64 size + the trace_clock file.
            if cur.remaining() >= 8:
                clock_text = self._sized_text(cur, 8, "trace clock")
                self.trace_clock_text = clock_text
                self.clock = _selected_clock(clock_text)
            self.instances.append(top)
        except _Short:
            self._finding("error", "truncated_metadata", f"file ends inside the {step} block", cur.file_offset)
            return
        for opt in self.options:
            if opt.id == O.BUFFER and isinstance(opt.value, dict):
                self._v6_instance(opt.value["name"], opt.value["offset"], opt.offset)

    def _read_cpu_table_v6(self, cur: _Cursor, cpus: int) -> list[CpuStream]:
        out = []
        for cpu in range(cpus):
            at = cur.file_offset
            off, size = cur.num(8), cur.num(8)
            if size == 0:
                continue
            if off + size > self.size:
                self._finding("error", "cpu_data_truncated",
                              f"CPU {cpu} data [{off}, {off + size}) runs past the end of the file ({self.size})",
                              at, cpu=cpu)
            out.append(CpuStream(cpu, off, size))
        return out

    def _v6_instance(self, name: str, offset: int, at: int | None) -> None:
        cur = _Cursor(self._buf, offset, self.size, 0, self.big_endian)
        try:
            tag = cur.take(10)
            if tag != b"flyrecord\0":
                self._finding("error", "bad_data_tag", f"instance {name!r}: no flyrecord tag at {offset}", offset)
                return
            inst = Instance(name, None, self.page_size)
            inst.cpus = self._read_cpu_table_v6(cur, self.cpus)
            if cur.remaining() >= 8:
                at2 = cur.file_offset
                n = cur.num(8)
                if 0 < n <= min(cur.remaining(), 4096):
                    inst.clock = _selected_clock(self._text(cur.take(n), f"instance {name!r} trace clock", at2))
                else:
                    cur.pos = at2 - cur.base
            self.instances.append(inst)
        except _Short:
            self._finding("error", "truncated_metadata", f"file ends inside instance {name!r}'s table", offset)

    # ---------- version 7 (§3)
    def _parse_v7(self, pos: int) -> None:
        big = self.big_endian
        try:
            pre = H.v7_preamble(big).parse(bytes(self._buf[pos:pos + 256]))
        except ConstructError:
            self._finding("error", "truncated_header", "v7 compression header is incomplete", pos)
            return
        self.compression = self._text(pre.compression, "compression name", pos)
        self.compression_version = self._text(pre.compression_version, "compression version", pos)
        if self.compression not in _COMPRESSORS:
            self._finding("error", "unknown_compression",
                          f"compression {self.compression!r} is not supported; compressed sections are skipped",
                          pos)
        first = pos + len(pre.compression) + 1 + len(pre.compression_version) + 1 + 8
        sections = self._walk_sections(first)
        # The OPTIONS chain.
        seen: set[int] = set()
        off = pre.options_offset
        buffers: list[Option] = []
        meta: dict[int, int] = {}
        while off:
            if off in seen:
                self._finding("error", "options_loop", f"OPTIONS chain returns to {off}", off)
                break
            seen.add(off)
            body = self._section(off, expect=O.DONE)  # an OPTIONS section has the id of DONE
            if body is None:
                break
            data, base = body
            cur = _Cursor(data, 0, len(data), base, big)
            nxt = 0
            try:
                while True:
                    at = cur.file_offset
                    oid, size = cur.num(2), cur.num(4)
                    if size > cur.remaining():
                        self._finding("error", "bad_option_size",
                                      f"option {oid} size {size} exceeds its section", at)
                        break
                    raw = cur.take(size)
                    if oid == O.DONE:
                        nxt = int.from_bytes(raw[:8], "big" if big else "little") if len(raw) >= 8 else 0
                        break
                    opt = self._option(oid, raw, at)
                    self.options.append(opt)
                    self._apply_option(opt)
                    if oid == O.BUFFER and isinstance(opt.value, dict):
                        buffers.append(opt)
                    elif O.HEADER_INFO <= oid <= O.CMDLINES and isinstance(opt.value, int):
                        meta[oid] = opt.value
            except _Short:
                self._finding("error", "truncated_options", "OPTIONS section ends without DONE", cur.file_offset)
            off = nxt
        # Metadata sections: by the offsets in the options, else the first of that id.
        readers = {O.HEADER_INFO: self._read_headers, O.FTRACE_EVENTS: self._read_ftrace_formats,
                   O.EVENT_FORMATS: self._read_event_formats, O.KALLSYMS: self._read_kallsyms,
                   O.PRINTK: self._read_printk, O.CMDLINES: self._read_cmdlines}
        for sid, reader in readers.items():
            soff = meta.get(sid)
            if soff is None:
                soff = next((o for o, s in sections.items() if s == sid), None)
            if soff is None:
                if sid in (O.HEADER_INFO, O.FTRACE_EVENTS, O.EVENT_FORMATS):
                    self._finding("warning", "missing_section", f"no {H.OPTION_NAMES[sid]} section", None)
                continue
            body = self._section(soff, expect=sid)
            if body is None:
                continue
            data, base = body
            cur = _Cursor(data, 0, len(data), base, big)
            try:
                reader(cur)
            except _Short:
                self._finding("error", "truncated_section",
                              f"{H.OPTION_NAMES[sid]} section ends early", cur.file_offset)
        for opt in buffers:
            v = opt.value
            inst = Instance(v["name"], v["clock"] or None, v["page_size"] or self.page_size)
            inst.section_offset = v["offset"]
            hdr = self._section_header(v["offset"])
            if hdr is None:
                continue
            if hdr[0] != 3:
                self._finding("warning", "bad_section_id",
                              f"buffer {v['name']!r} section at {v['offset']} has id {hdr[0]}, expected 3",
                              v["offset"])
            inst.compressed = bool(hdr[1] & H.SECTION_FL_COMPRESS)
            inst.cpus = [CpuStream(c, o, s) for c, o, s in v["cpus"] if s or inst.compressed and o]
            for cs in inst.cpus:
                if not inst.compressed and cs.offset + cs.size > self.size:
                    self._finding("error", "cpu_data_truncated",
                                  f"CPU {cs.cpu} data [{cs.offset}, {cs.offset + cs.size}) runs past the end "
                                  f"of the file ({self.size})", opt.offset, cpu=cs.cpu,
                                  **({"instance": inst.name} if inst.name else {}))
            if inst.name == "":
                self.instances.insert(0, inst)
                self.clock = inst.clock or self.clock
            else:
                self.instances.append(inst)
        if not buffers:
            self._finding("warning", "no_buffers", "no BUFFER option: the file holds no ring-buffer data", None)

    def _walk_sections(self, first: int) -> dict[int, int]:
        """Section headers back to back from ``first``: {offset: id}; reports a size past EOF."""
        out: dict[int, int] = {}
        off = first
        hs = H.section_header(self.big_endian)
        while off + 16 <= self.size:
            h = hs.parse(bytes(self._buf[off:off + 16]))
            if h.id not in H.OPTION_NAMES:
                self._finding("warning", "bad_section_id", f"unknown section id {h.id}; section walk stops", off)
                break
            out[off] = h.id
            if h.size > self.size - off - 16:
                self._finding("error", "bad_section_size",
                              f"section {H.OPTION_NAMES.get(h.id, h.id)} claims {h.size} bytes, "
                              f"{self.size - off - 16} remain", off)
                break
            off += 16 + h.size
        else:
            if 0 < self.size - off < 16:
                self._finding("error", "truncated_section",
                              f"{self.size - off} bytes at the end of the file are not a whole section header",
                              off)
        return out

    def _section_header(self, off: int) -> tuple[int, int, int] | None:
        if off + 16 > self.size:
            self._finding("error", "bad_section_offset", f"section offset {off} is past the end of the file",
                          off)
            return None
        h = H.section_header(self.big_endian).parse(bytes(self._buf[off:off + 16]))
        return h.id, h.flags, h.size

    def _section(self, off: int, expect: int) -> tuple[bytes, int] | None:
        """Body of the section at ``off`` (decompressed when flagged) and its file base."""
        hdr = self._section_header(off)
        if hdr is None:
            return None
        sid, flags, size = hdr
        if sid != expect:
            self._finding("error", "bad_section_id",
                          f"section at {off} has id {sid}, expected {expect} ({H.OPTION_NAMES.get(expect)})", off)
            return None
        start = off + 16
        if size > self.size - start:
            self._finding("error", "bad_section_size",
                          f"section {H.OPTION_NAMES.get(sid, sid)} claims {size} bytes, {self.size - start} "
                          "remain; reading what is there", off)
            size = self.size - start
        if not flags & H.SECTION_FL_COMPRESS:
            return bytes(self._buf[start:start + size]), start
        if size < 8:
            self._finding("error", "bad_section_size", "compressed section shorter than its 8-byte header", off)
            return None
        cb = H.compressed_block(self.big_endian).parse(bytes(self._buf[start:start + 8]))
        if cb.compressed_size > size - 8:
            self._finding("error", "bad_section_size",
                          f"compressed size {cb.compressed_size} exceeds the section ({size - 8})", start)
            return None
        if self.compression not in ("zstd", "zlib"):
            self._finding("error", "unknown_compression",
                          f"section {H.OPTION_NAMES.get(sid, sid)} is compressed with {self.compression!r}", off)
            return None
        data, f = self._decompress(bytes(self._buf[start + 8:start + 8 + cb.compressed_size]),
                                   cb.uncompressed_size, start)
        self.findings.extend(f)
        if data is None:
            return None
        # Positions inside a decompressed body are not file offsets: findings
        # there report section offset + position in the decompressed body.
        return data, off


def _selected_clock(text: str) -> str | None:
    """``[local] global counter`` → ``local``; a bare name is returned as is."""
    text = text.strip()
    if "[" in text and "]" in text:
        return text[text.index("[") + 1:text.index("]")]
    return text.split()[0] if text else None
