# SPDX-License-Identifier: GPL-2.0-only
"""Native reader of trace-cmd ``trace.dat`` files, versions 6 and 7.

Spec: trace-dat.md (§1 initial header, §2 v6 layout with the undocumented
trailing trace-clock block, §3 v7 sections and compression, §4 options,
§5 ring-buffer pages, §6 formats, §7 print-like events, §9 timestamps).

>>> td = read_trace_dat("trace.dat")          # doctest: +SKIP
>>> for ev in td.events(): ...                 # all instances and CPUs, by time
>>> df = td.dataframe()

Bad input never raises: what cannot be read becomes a :class:`Finding`
(``td.findings``) with the file offset, and everything else is decoded.
Lengths read from the file are checked against the bytes actually present
before anything is sliced or allocated.
"""
from __future__ import annotations

import heapq
import mmap
import os
import struct
from pathlib import Path
from typing import Any, Iterator

from dissect.common.findings import Finding
from dissect.ftrace.event import Event
from dissect.ftrace.formats import (MAX_RECORD, EventFormat, Kallsyms, compile_decoder, render_printf,
                                    render_raw_data, render_sched_switch, strip_nl)
from dissect.ftrace.layout import CpuStream, Instance, Option, TraceDatLayout, _Cursor, _Short
from dissect.ftrace.ring import CpuRecords, PageLayout, walk_cpu
from dissect.ftrace.tsync import Guest, TimeShift, host_sync, tsc2nsec
from dissect.ftrace.utf8 import BAD, ERRORS, Utf8Report, bad_count

__all__ = ["TraceDat", "read_trace_dat", "Option", "Instance", "CpuStream"]

# Declared (uncompressed) chunk sizes are trusted for one up-front buffer only
# up to this multiple of the compressed bytes present.  Decision: ftrace pages
# compress ~10-30x (generated and real captures alike; zero-padded pages of a
# quiet CPU more), zstd's own ceiling is far higher; a file above the bound is
# still read completely, through per-chunk output that grows with the data.
_MAX_CHUNK_RATIO = 1024


def read_trace_dat(path: str | os.PathLike) -> "TraceDat":
    """Open and parse a trace.dat file (metadata now, events lazily)."""
    return TraceDat(path)


class TraceDat(TraceDatLayout):
    """A parsed trace.dat file.

    Attributes: ``version`` (6 or 7), ``big_endian``, ``long_size`` (user-space
    long), ``kernel_long`` (from ``header_page``), ``page_size``,
    ``compression``, ``options`` (list of :class:`Option`), ``cpus`` (CPU
    count), ``instances`` (list of :class:`Instance`, top level first),
    ``formats`` (``{(system, name): EventFormat}``), ``cmdlines``
    (``{pid: comm}``), ``clock``, ``findings``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.findings: list[Finding] = []
        self.options: list[Option] = []
        self.instances: list[Instance] = []
        self.formats: dict[tuple[str, str], EventFormat] = {}
        self.formats_by_id: dict[int, EventFormat] = {}
        self.cmdlines: dict[int, str] = {}
        self.printk: dict[int, str] = {}
        self.version: int | None = None
        self.big_endian = False
        self.long_size = 8
        self.kernel_long = 8
        self.page_size = 4096
        self.compression = "none"
        self.compression_version = ""
        self.cpus = 0
        self.clock: str | None = None
        self.trace_clock_text: str | None = None
        self.header_page = ""
        self.header_event = ""
        self.layout = PageLayout()
        self.tsc2nsec: tuple[int, int, int] | None = None
        self.time_shift: TimeShift | None = None
        self.guests: list[Guest] = []
        self.apply_time_shift = True
        self.ts_offset = 0
        self.latency_text: str | None = None
        self._kallsyms_text: bytes = b""
        self._ksyms: Kallsyms | None = None
        self._records: list[tuple[Instance, CpuRecords]] | None = None
        self._unknown_ids: set[int] = set()
        self._utf8 = Utf8Report(self.findings)  # invalid_utf8 findings of events, shared by both paths
        self._raw_decoders: dict[int, Any] = {}
        with open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self._buf: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self.size = size
        self._parse()

    # ------------------------------------------------------------------ api
    def close(self) -> None:
        if isinstance(self._buf, mmap.mmap):
            self._records = None
            try:
                self._buf.close()
            except BufferError:  # a DataFrame/ndarray still views it; GC closes it
                pass

    def __enter__(self) -> "TraceDat":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def lost_events(self) -> dict[int, int]:
        """Events the kernel reported lost, per CPU (summed over instances).

        Pages that flag lost events without a stored count add nothing here;
        each is reported as a ``lost_events`` finding with ``count: None``.
        """
        out: dict[int, int] = {}
        for _, rec in self._cpu_records():
            out[rec.cpu] = out.get(rec.cpu, 0) + rec.lost
        return out

    @property
    def kallsyms(self) -> Kallsyms:
        if self._ksyms is None:
            self._ksyms = Kallsyms(self._kallsyms_text)
            self._kallsyms_text = b""
        return self._ksyms

    def format(self, system: str | None, name: str) -> EventFormat | None:
        """The format of ``system/name`` (any system when ``system`` is None)."""
        if system is not None:
            return self.formats.get((system, name))
        for (s, n), f in self.formats.items():
            if n == name:
                return f
        return None

    def timestamp_ns(self, raw: int, cpu: int = 0) -> int:
        """Raw ring-buffer time of ``cpu`` → ns, as trace-cmd 3.1.6's ``timestamp_calc``.

        A guest file's TimeShift option first maps the raw guest time onto the
        host's raw clock (per CPU, :func:`~dissect.ftrace.tsync.host_sync`;
        skipped when ``apply_time_shift`` is False), then TSC2NSEC converts with
        ``mul_u64_u32_shr(raw, mult, shift)`` whatever the clock (its ``offset``
        field is not added), then OFFSET (ns) and DATE (µs × 1000) are added.
        Checked against ``trace-cmd report`` in the tests.
        """
        if self.time_shift is not None and self.apply_time_shift:
            raw = host_sync(raw, cpu, self.time_shift)
        if self.tsc2nsec is not None:
            raw = tsc2nsec(raw, self.tsc2nsec[0], self.tsc2nsec[1])
        return _to_s64(raw + self.ts_offset)

    def timestamps_ns(self, raw: Any, cpu: Any) -> Any:
        """:meth:`timestamp_ns` over NumPy arrays (u64 raw times, their CPUs) → int64 ns."""
        import numpy as np

        from dissect.ftrace.tsync import host_sync_array, tsc2nsec_array
        ts = np.asarray(raw, dtype=np.uint64)
        if self.time_shift is not None and self.apply_time_shift:
            ts = host_sync_array(ts, cpu, self.time_shift)
        if self.tsc2nsec is not None:
            ts = tsc2nsec_array(ts, self.tsc2nsec[0], self.tsc2nsec[1])
        with np.errstate(over="ignore"):
            return (ts + np.uint64(self.ts_offset & _M64)).view(np.int64)

    def events(self) -> Iterator[Event]:
        """All events of all instances, CPU streams merged in timestamp order."""
        streams = self._cpu_records()
        iters = [self._stream_keys(k, rec, self.timestamp_ns) for k, (_, rec) in enumerate(streams)]
        comms = dict(self.cmdlines)
        bad = BAD
        # merged on the converted time, as trace-cmd merges its CPUs (a TimeShift can
        # shift each CPU differently)
        for ts, _, k, i in heapq.merge(*iters):
            inst, rec = streams[k]
            n = bad[0]
            ev = self._event(inst, rec, i, ts, comms)
            if bad[0] != n:  # a string held bytes that are not UTF-8 (or another thread decoded some)
                self._utf8_event(k, rec, i, ev)
            yield ev

    def dataframe(self, fields: str = "columns"):
        """A pandas DataFrame with one row per event, in :meth:`events` order.

        Columns: ``ts_ns``, ``cpu``, ``pid``, ``comm`` (categorical),
        ``system``, ``event`` (categorical), ``text``, ``instance``, then the
        events' own fields: one column per field name with
        ``fields="columns"`` (a name clashing with a fixed column gets a
        ``field_`` prefix; None where an event lacks the field), or one
        ``fields`` column of dicts (``Event.fields``) with ``fields="dict"``.
        """
        from dissect.ftrace.frame import records_dataframe
        return records_dataframe(self, fields)

    # ------------------------------------------------------------ decoding
    @staticmethod
    def _stream_keys(k: int, rec: CpuRecords, conv):
        cpu = rec.cpu
        for i, ts in enumerate(rec.lists()[0]):
            yield (conv(ts, cpu), cpu, k, i)

    def _cpu_records(self) -> list[tuple[Instance, CpuRecords]]:
        if self._records is None:
            out = []
            for inst in self.instances:
                slots = self._shared_slots(inst)
                for k, cs in enumerate(inst.cpus):
                    rec = self._walk(inst, cs, slots.get(k))
                    if rec is not None:
                        out.append((inst, rec))
                        self.findings.extend(rec.findings)
            self._records = out
        return self._records

    def _shared_slots(self, inst: Instance) -> dict[int, tuple[Any, int, int]]:
        """For a zstd instance, one anonymous mapping for the pages of all its CPUs:
        ``{index in inst.cpus: (mapping, offset, size)}`` for every CPU whose chunk
        table passes :meth:`_zstd_into`'s bound (so the mapping is at most
        ``_MAX_CHUNK_RATIO`` × the compressed bytes present).  The DataFrame then cuts
        the text columns of all CPUs from one buffer by one take
        (:func:`dissect.ftrace.frame._spans_column`).  Empty when fewer than two CPUs
        qualify or the mapping is refused: each CPU then gets its own buffer."""
        if not inst.compressed or self.compression != "zstd":
            return {}
        sizes: dict[int, int] = {}
        for k, cs in enumerate(inst.cpus):
            chunks, _ = self._chunk_table(cs, {"cpu": cs.cpu})
            total = sum(c[3] for c in chunks)
            if chunks and 0 < total <= _MAX_CHUNK_RATIO * sum(c[2] for c in chunks):
                sizes[k] = total
        # CPUs may point at the same chunks: bound the sum too, not only each CPU's part
        if len(sizes) < 2 or sum(sizes.values()) > _MAX_CHUNK_RATIO * self.size:
            return {}
        at, offs = 0, {}
        for k, total in sizes.items():
            offs[k] = at
            at += -(-total // mmap.PAGESIZE) * mmap.PAGESIZE  # slots page-aligned: aligned word reads
        try:
            shared = mmap.mmap(-1, at, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        except (OSError, ValueError, OverflowError):
            return {}
        return {k: (shared, offs[k], sizes[k]) for k in sizes}

    def _walk(self, inst: Instance, cs: CpuStream, slot: tuple[Any, int, int] | None = None) -> CpuRecords | None:
        ctx = {"cpu": cs.cpu}
        if inst.name:
            ctx["instance"] = inst.name
        if inst.compressed:
            data, findings = self._decompress_cpu(cs, ctx, slot)
            self.findings.extend(findings)
            if data is None:
                return None
            base = cs.offset
            if slot is not None and data is slot[0]:  # all its chunks landed in the shared mapping
                return walk_cpu(data, slot[1], slot[2], inst.page_size, self.layout, self.big_endian, cs.cpu,
                                lambda p: base, inst.name or None)
            return walk_cpu(data, 0, len(data), inst.page_size, self.layout, self.big_endian, cs.cpu,
                            lambda p: base, inst.name or None)
        if cs.offset > self.size:
            self.findings.append(Finding("error", "cpu_data_missing",
                                         f"CPU {cs.cpu} data offset {cs.offset} is past the end of the file "
                                         f"({self.size} bytes)", cs.offset, ctx))
            return None
        return walk_cpu(self._buf, cs.offset, cs.size, inst.page_size, self.layout, self.big_endian,
                        cs.cpu, None, inst.name or None)

    def _decompress_cpu(self, cs: CpuStream, ctx: dict,
                        slot: tuple[Any, int, int] | None = None) -> tuple[Any, list[Finding]]:
        """A compressed CPU stream's pages as one buffer (§3.4), and the findings.

        The chunk table is read first (every size checked against the file).
        zstd chunks are then decompressed straight into one buffer of the
        summed declared sizes (:meth:`_zstd_into`) when that sum is sane;
        otherwise, or from the first chunk that does not decompress to exactly
        its declared size, each chunk grows its own output
        (:meth:`_decompress`) and the parts are joined: same bytes either way.
        A chunk that fails to decompress is reported and skipped; the chunks
        after it are still decoded (its pages are lost, not the CPU's).
        With ``slot`` (``(mapping, offset, size)`` from :meth:`_shared_slots`) the
        chunks go to that part of a mapping shared by the instance's CPUs, and the
        mapping itself is returned when they all fit (its pages at ``offset``).
        """
        findings: list[Finding] = []
        if self.compression not in ("zstd", "zlib"):
            findings.append(Finding("error", "unknown_compression",
                                    f"CPU {cs.cpu} data is compressed with {self.compression!r}, "
                                    "which this reader does not know", cs.offset, ctx))
            return None, findings
        chunks, tail = self._chunk_table(cs, ctx)
        parts: list[Any] = []
        k = 0
        if self.compression == "zstd":
            out, k = self._zstd_into(chunks, slot)
            if k == len(chunks):
                findings.extend(tail)
                return out, findings
            if k:
                o = slot[1] if slot is not None else 0
                parts.append(out[o:o + sum(c[3] for c in chunks[:k])])
        buf = self._buf
        for at, start, csize, usize in chunks[k:]:
            data, f = self._decompress(buf[start:start + csize], usize, at)
            findings.extend(x.with_context(**ctx) for x in f)
            if data is not None:
                parts.append(data)
        findings.extend(tail)
        return b"".join(parts), findings

    def _chunk_table(self, cs: CpuStream, ctx: dict) -> tuple[list[tuple[int, int, int, int]], list[Finding]]:
        """``(header offset, blob offset, compressed size, declared size)`` per chunk, and a
        truncation finding when the table runs past the file (later chunks are unknowable)."""
        cur = _Cursor(self._buf, cs.offset, self.size, 0, self.big_endian)
        chunks: list[tuple[int, int, int, int]] = []
        try:
            count = cur.num(4)
            for _ in range(count):
                at = cur.pos
                csize, usize = cur.num(4), cur.num(4)
                if csize > cur.remaining():
                    return chunks, [Finding("error", "chunk_truncated",
                                            f"compressed chunk of {csize} bytes, {cur.remaining()} present",
                                            at, ctx)]
                chunks.append((at, cur.pos, csize, usize))
                cur.pos += csize
        except _Short:
            return chunks, [Finding("error", "chunk_truncated", "CPU data chunk headers run past the file",
                                    cur.pos, ctx)]
        return chunks, []

    def _zstd_into(self, chunks: list[tuple[int, int, int, int]],
                   slot: tuple[Any, int, int] | None = None) -> tuple[Any, int]:
        """Decompress zstd chunks into one anonymous mapping of their summed declared sizes.

        Returns the buffer and how many leading chunks it holds, each exactly
        its declared size (the rest, if any, go through :meth:`_decompress`).
        The declared sizes are untrusted: the mapping is made only when their
        sum is at most ``_MAX_CHUNK_RATIO`` × the compressed bytes actually
        present (a file lying about them falls back to output that grows with
        the real data), and it is committed only as pages are written.  A
        chunk counts only if it fills its slot exactly and its frame has no
        more output; an error, a short or a longer frame stops the fast path.
        With ``slot`` the output goes to ``slot[0][slot[1]:slot[1] + slot[2]]``
        (``slot[2]`` is this sum, sized and bounded by :meth:`_shared_slots`).
        """
        total = sum(c[3] for c in chunks)
        if not chunks or total == 0 or total > _MAX_CHUNK_RATIO * sum(c[2] for c in chunks):
            return None, 0
        d = self._zstd()
        # Private: shared anonymous memory is slower to fault in.  No MADV_HUGEPAGE:
        # it halves this loop's page-fault cost in a warm process, but in a fresh
        # one the huge pages it takes make the DataFrame build that follows stall
        # in compaction (measured: median 0.2 s more CPU; benchmarks/README.md).
        if slot is not None and slot[2] == total:
            out, o = slot[0], slot[1]
        else:
            try:
                out = mmap.mmap(-1, total, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            except (OSError, ValueError, OverflowError):  # no address space for it: grow per chunk
                return None, 0
            o = 0
        buf = self._buf
        k = 0
        with memoryview(out) as mv:
            for _, start, csize, usize in chunks:
                if usize == 0:
                    break  # a zero-sized slot cannot show an over-long frame: let _decompress judge it
                try:
                    with d.stream_reader(buf[start:start + csize]) as rd:
                        with mv[o:o + usize] as part:
                            n = rd.readinto(part)
                        more = rd.read(1)
                except Exception:  # zstandard's own errors: _decompress reports them
                    break
                if n != usize or more:
                    break
                o += usize
                k += 1
        return out, k

    def _comm(self, pid: int, comms: dict[int, str]) -> str:
        if pid == 0:
            return "<idle>"
        return comms.get(pid, "<...>")

    def _event(self, inst: Instance, rec: CpuRecords, i: int, ts_ns: int,
               comms: dict[int, str]) -> Event:
        _, offsets, lengths = rec.lists()
        buf, off, ln = rec.buf, offsets[i], lengths[i]
        fileoff = off if not inst.compressed else None
        e = ">" if self.big_endian else "<"
        if ln < 8:
            return Event("trace-dat", ts_ns, rec.cpu, None, None, None, "unknown", {"raw": bytes(buf[off:off + ln])},
                         None, fileoff, inst.name or None)
        etype, pid = struct.unpack_from(e + "H2xi", buf, off)
        fmt = self.formats_by_id.get(etype)
        comm = self._comm(pid, comms)
        if fmt is None:
            if etype not in self._unknown_ids:
                self._unknown_ids.add(etype)
                self.findings.append(Finding("warning", "unknown_event_id",
                                             f"no format for event id {etype}", fileoff,
                                             {"cpu": rec.cpu}))
            return Event("trace-dat", ts_ns, rec.cpu, pid, comm, None, f"unknown_{etype}",
                         {"raw": bytes(buf[off:off + ln])}, None, fileoff, inst.name or None)
        fields = fmt.decoder(buf, off, ln)  # type: ignore[misc]
        if fmt.bad is not None:  # a format whose fields cannot be read (bad_format_field): the bytes
            return Event("trace-dat", ts_ns, rec.cpu, pid, comm, fmt.system, fmt.name, fields, None, fileoff,
                         inst.name or None)
        text = self.render(fmt, fields)
        if fmt.name in ("sched_switch", "sched_wakeup", "sched_wakeup_new") and fmt.system == "sched":
            self._register_comms(fmt.name, fields, comms)
        return Event("trace-dat", ts_ns, rec.cpu, pid, comm, fmt.system, fmt.name, fields, text,
                     fileoff, inst.name or None)

    def _utf8_event(self, k: int, rec: CpuRecords, i: int, ev: Event) -> None:
        """Report event ``i`` of stream ``k`` if its own bytes hold strings that are not UTF-8."""
        _, offsets, lengths = rec.lists()
        off, ln = offsets[i], lengths[i]
        if ln < 8:
            return
        fmt = self.formats_by_id.get(struct.unpack_from(">H" if self.big_endian else "<H", rec.buf, off)[0])
        if fmt is not None:
            self._utf8.add((k, i), ev.offset, rec.cpu, ev.instance, ev.system, ev.event, ev.ts_ns,
                           self._utf8_fields(fmt, rec.buf, off, ln))

    def _utf8_fields(self, fmt: EventFormat, buf: Any, off: int, ln: int) -> dict[str, bytes]:
        """The fields of one record whose strings hold bytes that are not UTF-8: {name: bytes as
        stored}, in format order.  Read again from the record (char fields as bytes), so only the
        record's own bytes decide; bprint's ``%s`` arguments count as its ``buf``."""
        if fmt.bad is not None or ln < 8:
            return {}
        dec = self._raw_decoders.get(id(fmt))
        if dec is None:
            dec = self._raw_decoders[id(fmt)] = compile_decoder(fmt, self.big_endian, MAX_RECORD, text=False)
        raw = dec(buf, off, ln)
        out: dict[str, bytes] = {}
        binary = fmt.system == "ftrace" and fmt.name == "raw_data"
        for f in fmt.own_fields:
            v = raw.get(f.name)
            if f.is_char and not binary and isinstance(v, bytes) and bad_count(v)[0]:
                out[f.name] = v
        if fmt.system == "ftrace" and fmt.name in ("print", "bprint"):
            v = raw.get("buf")
            if isinstance(v, (bytes, bytearray)) and "buf" not in out:
                v = bytes(v)
                if fmt.name == "print":  # a buf that is not char (damaged format): _str decodes it
                    if bad_count(v.split(b"\0", 1)[0])[0]:
                        out["buf"] = v
                else:
                    pf = self.printk.get(_int(raw.get("fmt")))
                    text = "" if pf is None else render_printf(pf, v, self.kernel_long, self.big_endian, None,
                                                               "surrogateescape")
                    if any("\udc80" <= ch <= "\udcff" for ch in text):
                        out["buf"] = v
        return out

    @staticmethod
    def _register_comms(name: str, f: dict[str, Any], comms: dict[int, str]) -> None:
        # libtraceevent's sched plugins register comms they print, without
        # overriding the saved cmdlines (tep_register_comm).
        if name == "sched_switch":
            pairs = ((f.get("next_pid"), f.get("next_comm")), (f.get("prev_pid"), f.get("prev_comm")))
        else:
            pairs = ((f.get("pid"), f.get("comm")),)
        for pid, comm in pairs:
            if isinstance(pid, int) and isinstance(comm, str) and pid not in comms:
                comms[pid] = comm

    def render(self, fmt: EventFormat, f: dict[str, Any], plugins: bool = False) -> str | None:
        """The text trace-cmd report prints after ``<event>: `` for print-like events.

        ``Event.text`` holds this (the contract's ``text`` is for print-like
        events only).  With ``plugins=True`` also ``sched_switch`` as
        libtraceevent's plugin prints it; other events give None.
        """
        if fmt.system == "ftrace":
            # a damaged format can give fields of unexpected types: coerce, never raise
            n = fmt.name
            sym = self.kallsyms.symbol(_int(f.get("ip")))
            if n == "print":
                return f"{sym}: {strip_nl(_str(f.get('buf')))}"
            if n == "raw_data":
                buf = f.get("buf")
                return render_raw_data({"id": _int(f.get("id")),
                                        "buf": buf if isinstance(buf, (bytes, bytearray)) else b""})
            if n == "bputs":
                addr = _int(f.get("str"))
                return f"{sym}: {strip_nl(self.printk.get(addr, f'0x{addr:x}'))}"
            if n == "bprint":
                addr = _int(f.get("fmt"))
                pf = self.printk.get(addr)
                args = f.get("buf")
                if pf is None:
                    body = f"[UNKNOWN PRINTK FORMAT 0x{addr:x}]"
                else:
                    body = render_printf(pf, args if isinstance(args, (bytes, bytearray)) else b"",
                                         self.kernel_long, self.big_endian, self.kallsyms)
                return f"{sym}: {strip_nl(body)}"
            return None
        if plugins and fmt.system == "sched" and fmt.name == "sched_switch":
            return render_sched_switch(f)
        return None


_M64 = (1 << 64) - 1


def _to_s64(v: int) -> int:
    """trace-cmd's u64 time as the int64 our ``ts_ns`` columns hold."""
    v &= _M64
    return v - (1 << 64) if v >> 63 else v


def _int(v: Any) -> int:
    return v if isinstance(v, int) and v >= 0 else 0


def _str(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).split(b"\0", 1)[0].decode("utf-8", ERRORS)
    return ""
