# SPDX-License-Identifier: GPL-2.0-only
"""Write trace-cmd ``trace.dat`` files (v6, v7 uncompressed / zstd / zlib).

Spec: trace-dat.md §1–§5.  The files are laid out as trace-cmd 3.1.6 lays
them out (v6: sequential blocks, ``options``, ``flyrecord`` with the trailing
clock block; v7: metadata sections, an OPTIONS section chained to a second
one that holds the BUFFER options, BUFFER sections, STRINGS), so that
``trace-cmd report`` reads them back with the same event text, pids, CPUs and
timestamps; the tests check exactly that with the real tool.

Input is a list of :class:`~dissect.ftrace.event.Event`:

* ``print``: ``fields["buf"]`` (the marker text) or ``text`` (a leading
  ``tracing_mark_write: `` is removed; a ``\\n`` is appended as the kernel does);
* ``raw_data``: ``fields["id"]`` and ``fields["buf"]`` (bytes);
* ``bputs``/``bprint``: ``fields`` as the reader returns them;
* any other event: its format text in ``formats`` (or the built-in
  ``sched_switch``), and ``fields`` by the format's field names.

``Event.instance`` selects the buffer instance (None = top level);
``Event.ts_ns`` is the timestamp trace-cmd will print (an ``offset_ns``
option is subtracted from the raw ring-buffer time and written as OFFSET).
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from dissect.ftrace.event import Event
from dissect.ftrace.headers import OptionId as O
from dissect.ftrace.formats import EventFormat, parse_format
from dissect.ftrace.tsync import Guest, TimeShift, encode_guest, encode_time_shift

__all__ = ["write_trace_dat", "ftrace_format_texts", "sched_switch_format", "SCHED_SWITCH_FORMAT",
           "tracing_mark_write_ip", "default_kallsyms", "build_pages", "encode_record"]

# Symbols the written kallsyms holds, so trace-cmd resolves print/raw ips (%ps)
# the way it does on a real kernel.
_SYMS = ((0x814986E0, "t", "tracing_mark_raw_write"), (0x81498830, "T", "__pfx_trace_dump_stack"),
         (0x81498A90, "t", "tracing_mark_write"), (0x81498C00, "T", "__pfx_trace_vbprintk"))


def kernel_base(long_size: int) -> int:
    """High bits of kernel text addresses: x86_64 ``0xffffffff…``, i386 ``0xc…`` (3G/1G split)."""
    return 0xFFFFFFFF00000000 if long_size == 8 else 0x40000000


def tracing_mark_write_ip(long_size: int = 8) -> int:
    """The ``ip`` a marker write records (inside ``tracing_mark_write``) for a kernel long size."""
    return kernel_base(long_size) | 0x81498A90


def default_kallsyms(long_size: int = 8) -> str:
    w = 2 * long_size
    return "".join(f"{kernel_base(long_size) | a:0{w}x} {t} {n}\n" for a, t, n in _SYMS)

_COMMON = ("\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
           "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
           "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
           "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n")


def _fmt(name: str, eid: int, fields: list[tuple[str, int, int, int]], pfmt: str) -> str:
    body = "".join(f"\tfield:{d};\toffset:{o};\tsize:{s};\tsigned:{g};\n" for d, o, s, g in fields)
    return f"name: {name}\nID: {eid}\nformat:\n{_COMMON}{body}\nprint fmt: {pfmt}\n"


def ftrace_format_texts(long_size: int = 8) -> dict[str, str]:
    """The ftrace-internal formats of Linux 6.18 (IDs 5, 6, 15, 19) for a kernel long size."""
    L = long_size
    return {
        "print": _fmt("print", 5, [("unsigned long ip", 8, L, 0), ("char buf[]", 8 + L, 0, 0)],
                      '"%ps: %s", (void *)REC->ip, REC->buf'),
        "bprint": _fmt("bprint", 6, [("unsigned long ip", 8, L, 0), ("const char * fmt", 8 + L, L, 0),
                                     ("u32 buf[]", 8 + 2 * L, 0, 0)],
                       '"%ps: %s", (void *)REC->ip, REC->fmt'),
        "bputs": _fmt("bputs", 15, [("unsigned long ip", 8, L, 0), ("const char * str", 8 + L, L, 0)],
                      '"%ps: %s", (void *)REC->ip, REC->str'),
        "raw_data": _fmt("raw_data", 19, [("unsigned int id", 8, 4, 0), ("char buf[]", 12, 0, 0)],
                         '"id:%04x %08x", REC->id, (int)REC->buf[0]'),
    }


def sched_switch_format(long_size: int = 8) -> str:
    """``sched/sched_switch`` as Linux 6.18 declares it (prev_state is a long)."""
    L = long_size
    return _fmt("sched_switch", 372, [
        ("char prev_comm[16]", 8, 16, 0), ("pid_t prev_pid", 24, 4, 1), ("int prev_prio", 28, 4, 1),
        ("long prev_state", 32, L, 1), ("char next_comm[16]", 32 + L, 16, 0),
        ("pid_t next_pid", 48 + L, 4, 1), ("int next_prio", 52 + L, 4, 1)],
        '"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s ==> next_comm=%s next_pid=%d '
        'next_prio=%d", REC->prev_comm, REC->prev_pid, REC->prev_prio, REC->prev_state ? "S" : "R", '
        'REC->next_comm, REC->next_pid, REC->next_prio')


SCHED_SWITCH_FORMAT = sched_switch_format(8)

HEADER_EVENT = ("# compressed entry header\n\ttype_len    :    5 bits\n\ttime_delta  :   27 bits\n"
                "\tarray       :   32 bits\n\n\tpadding     : type == 29\n\ttime_extend : type == 30\n"
                "\ttime_stamp : type == 31\n\tdata max type_len  == 28\n")


def header_page_text(long_size: int, page_size: int) -> str:
    data = 8 + long_size
    return (f"\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
            f"\tfield: local_t commit;\toffset:8;\tsize:{long_size};\tsigned:1;\n"
            f"\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
            f"\tfield: char data;\toffset:{data};\tsize:{page_size - data};\tsigned:0;\n")


TRACE_CLOCKS = "local global counter uptime perf mono mono_raw boot tai x86-tsc"


def _clock_text(clock: str) -> str:
    names = TRACE_CLOCKS.split()
    if clock not in names:
        names.append(clock)
    return " ".join(f"[{n}]" if n == clock else n for n in names) + "\n"


# ---------------------------------------------------------------- records

def _pack_int(e: str, size: int, signed: bool, v: int) -> bytes:
    code = {1: "b", 2: "h", 4: "i", 8: "q"}[size]
    if not signed:
        code = code.upper()
        v &= (1 << (8 * size)) - 1
    return struct.pack(e + code, v)


def _value_bytes(f, value: Any, e: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode() + b"\0"
    if isinstance(value, (list, tuple)):
        return b"".join(_pack_int(e, f.elem_size, f.signed, int(x)) for x in value)
    if value is None:
        return b""
    return _pack_int(e, f.elem_size if f.elem_size in (1, 2, 4, 8) else 4, f.signed, int(value))


def encode_record(fmt: EventFormat, pid: int, fields: dict[str, Any], big: bool,
                  flags: int = 0, preempt: int = 0) -> bytes:
    """One event record (common header + the format's fields), padded to 4 bytes."""
    e = ">" if big else "<"
    fixed = 0
    for f in fmt.fields:
        fixed = max(fixed, f.offset + f.size)
    rec = bytearray(fixed)
    tail = bytearray()

    def put(off: int, b: bytes) -> None:
        rec[off:off + len(b)] = b

    common = {"common_type": fmt.id, "common_flags": flags, "common_preempt_count": preempt, "common_pid": pid}
    for f in fmt.fields:
        if f.name in common:
            put(f.offset, _pack_int(e, f.size, f.signed, common[f.name]))
            continue
        v = fields.get(f.name)
        if f.kind == "scalar":
            put(f.offset, _pack_int(e, f.size, f.signed and not f.is_pointer, int(v or 0)))
        elif f.kind in ("array", "string"):
            b = _value_bytes(f, v, e)[:f.size]
            put(f.offset, b + bytes(f.size - len(b)))
        elif f.kind in ("dynamic", "rel"):
            data = _value_bytes(f, v, e)
            start = fixed + len(tail)
            tail.extend(data)
            off = start - (f.offset + f.size) if f.kind == "rel" else start
            put(f.offset, struct.pack(e + "I", (len(data) << 16) | (off & 0xFFFF)))
    flex = [f for f in fmt.fields if f.kind == "flex"]
    out = bytes(rec) + bytes(tail)
    if flex:
        f = flex[0]
        data = _value_bytes(f, fields.get(f.name), e)
        out = out[:f.offset] + data
    return out + bytes((-len(out)) % 4)


def _print_fields(ev: Event, long_size: int) -> dict[str, Any]:
    buf = ev.fields.get("buf")
    if buf is None:
        buf = ev.text or ""
        if buf.startswith("tracing_mark_write: "):
            buf = buf[len("tracing_mark_write: "):]
    if isinstance(buf, (bytes, bytearray, memoryview)):
        # raw bytes are written as the kernel stores a write: as is, \n appended, NUL-terminated
        raw = bytes(buf)
        buf = (raw if raw.endswith(b"\n") else raw + b"\n") + b"\0"
    elif not buf.endswith("\n"):
        buf += "\n"
    return {"ip": ev.fields.get("ip", tracing_mark_write_ip(long_size)), "buf": buf}


# ---------------------------------------------------------------- pages

def _event_header(big: bool, type_len: int, delta: int) -> bytes:
    return struct.pack(">I", (type_len << 27) | delta) if big else struct.pack("<I", (delta << 5) | type_len)


def build_pages(records: Sequence[tuple[int, bytes]], page_size: int, long_size: int, big: bool) -> bytes:
    """Ring-buffer pages for one CPU from ``(raw_ts, record)`` in time order."""
    e = ">" if big else "<"
    data_off = 8 + long_size
    cap = page_size - data_off
    pages: list[bytes] = []
    body = bytearray()
    page_ts = last = None

    def flush() -> None:
        nonlocal body, page_ts
        if page_ts is None:
            return
        commit = _pack_int(e, long_size, False, len(body))
        page = struct.pack(e + "Q", page_ts) + commit + bytes(body)
        pages.append(page + bytes(page_size - len(page)))
        body = bytearray()
        page_ts = None

    for ts, rec in records:
        n = len(rec)
        ev = (4 + n) if 0 < n <= 112 else (8 + n)
        if ev > cap:
            raise ValueError(f"a {n}-byte record does not fit a {page_size}-byte page")
        if page_ts is not None:
            delta = ts - last  # type: ignore[operator]
            if delta < 0:
                raise ValueError("records of one CPU must be in time order")
            need = ev + (8 if delta >= 1 << 27 else 0)
            if len(body) + need > cap:
                flush()
        if page_ts is None:
            page_ts = last = ts
        delta = ts - last
        if delta >= 1 << 27:
            body += _event_header(big, 30, delta & ((1 << 27) - 1)) + struct.pack(e + "I", delta >> 27)
            delta = 0
        if 0 < n <= 112:
            body += _event_header(big, n // 4, delta) + rec
        else:
            body += _event_header(big, 0, delta) + struct.pack(e + "I", n + 4) + rec
        last = ts
    flush()
    return b"".join(pages)


# ---------------------------------------------------------------- file

@dataclass
class _Compressor:
    name: str

    def compress(self, data: bytes) -> bytes:
        if self.name == "zstd":
            import zstandard
            return zstandard.ZstdCompressor(level=3).compress(data)
        if self.name == "zlib":
            return zlib.compress(data)
        raise ValueError(self.name)

    @property
    def version(self) -> str:
        if self.name == "zstd":
            import zstandard
            return ".".join(str(x) for x in zstandard.ZSTD_VERSION)
        if self.name == "zlib":
            return zlib.ZLIB_VERSION
        return ""


def write_trace_dat(path: str | os.PathLike, events: Iterable[Event], *, version: int = 7,
                    compression: str = "zstd", cpus: int | None = None, big_endian: bool = False,
                    long_size: int = 8, page_size: int = 4096, formats: dict[tuple[str, str], str] | None = None,
                    cmdlines: dict[int, str] | None = None, kallsyms: str | None = None,
                    printk: dict[int, str] | None = None, clock: str = "local", offset_ns: int = 0,
                    uname: str = "Linux migtrace 6.18.0 x86_64", trace_id: int = 0x6D69677472616365,
                    extra_options: Sequence[tuple[int, bytes]] = (), chunk_pages: int = 64,
                    time_shift: TimeShift | None = None, guests: Sequence[Guest] = ()) -> Path:
    """Write ``events`` as a trace.dat file; returns the path.

    ``compression`` is ``"none"``, ``"zstd"`` or ``"zlib"`` (v7 only; v6 is
    never compressed).  ``formats`` maps ``(system, name)`` to format text
    for events other than the ftrace ones and ``sched_switch``.  ``cmdlines``
    defaults to the (pid, comm) pairs of the events.  ``extra_options`` are
    written verbatim (id, data) — e.g. to add options this writer does not
    produce itself.

    Host–guest pairs (``trace-cmd record -A``): ``time_shift`` writes a guest
    file's TimeShift option (its ``peer_trace_id`` is the host file's
    ``trace_id``); the events' ``ts_ns`` are then the *guest's* raw clock and
    trace-cmd prints them mapped onto the host clock
    (:func:`dissect.ftrace.tsync.host_sync`).  ``guests`` writes a host file's
    GUEST options (name, the guest file's trace id, vCPU → host pid).
    """
    if version not in (6, 7):
        raise ValueError("version must be 6 or 7")
    if version == 6:
        compression = "none"
    if compression not in ("none", "zstd", "zlib"):
        raise ValueError(f"unknown compression {compression!r}")
    big = big_endian
    e = ">" if big else "<"
    evs = list(events)
    # formats: ftrace ones always present; others on demand
    ftexts = ftrace_format_texts(long_size)
    ftrace_fmts = {n: parse_format(t, "ftrace", long_size) for n, t in ftexts.items()}
    sys_texts: dict[str, dict[str, str]] = {}
    known = dict(formats or {})
    known.setdefault(("sched", "sched_switch"), sched_switch_format(long_size))
    parsed: dict[tuple[str, str], EventFormat] = {("ftrace", n): f for n, f in ftrace_fmts.items()}  # type: ignore[misc]
    for ev in evs:
        key = (ev.system or "ftrace", ev.event)
        if key in parsed:
            continue
        text = known.get(key)
        if text is None:
            raise ValueError(f"no format for event {key[0]}/{key[1]}: pass it in formats=")
        fmt = parse_format(text, key[0], long_size)
        if fmt is None:
            raise ValueError(f"format text of {key[0]}/{key[1]} does not parse")
        parsed[key] = fmt
        sys_texts.setdefault(key[0], {})[key[1]] = text
    # records per (instance, cpu)
    ncpu = cpus if cpus is not None else max([ev.cpu or 0 for ev in evs], default=0) + 1
    streams: dict[str, dict[int, list[tuple[int, int, bytes]]]] = {"": {}}
    comms: dict[int, str] = {}
    for seq, ev in enumerate(evs):
        key = (ev.system or "ftrace", ev.event)
        fmt = parsed[key]
        if key == ("ftrace", "print"):
            fields = _print_fields(ev, long_size)
        elif key == ("ftrace", "raw_data"):
            fields = {"id": ev.fields.get("id", 0), "buf": bytes(ev.fields.get("buf") or b"")}
        else:
            fields = ev.fields
        if key[0] == "ftrace" and key[1] in ("bputs", "bprint") and "ip" not in fields:
            fields = dict(fields, ip=tracing_mark_write_ip(long_size))
        rec = encode_record(fmt, ev.pid or 0, fields, big)
        raw_ts = ev.ts_ns - offset_ns
        if raw_ts < 0:
            raise ValueError("timestamp before offset_ns")
        cpu = ev.cpu or 0
        if cpu >= ncpu:
            raise ValueError(f"event on CPU {cpu} but cpus={ncpu}")
        streams.setdefault(ev.instance or "", {}).setdefault(cpu, []).append((raw_ts, seq, rec))
        if ev.pid and ev.comm and ev.comm != "<...>":
            comms.setdefault(ev.pid, ev.comm)
    if cmdlines is not None:
        comms = dict(cmdlines)
    pages = {inst: {cpu: build_pages([(t, r) for t, _, r in sorted(recs, key=lambda x: (x[0], x[1]))],
                                     page_size, long_size, big)
                    for cpu, recs in sorted(cpus_.items())}
             for inst, cpus_ in streams.items()}

    u16 = lambda v: struct.pack(e + "H", v)  # noqa: E731
    u32 = lambda v: struct.pack(e + "I", v)  # noqa: E731
    u64 = lambda v: struct.pack(e + "Q", v)  # noqa: E731

    header_info = (b"header_page\0" + u64(len(hp := header_page_text(long_size, page_size).encode())) + hp
                   + b"header_event\0" + u64(len(HEADER_EVENT)) + HEADER_EVENT.encode())
    ftrace_blk = u32(len(ftexts)) + b"".join(u64(len(t.encode())) + t.encode() for t in ftexts.values())
    ev_blk = u32(len(sys_texts)) + b"".join(
        s.encode() + b"\0" + u32(len(names)) + b"".join(u64(len(t.encode())) + t.encode() for t in names.values())
        for s, names in sys_texts.items())
    ks = (kallsyms if kallsyms is not None else default_kallsyms(long_size)).encode()
    ks_blk = u32(len(ks)) + ks
    pk = "".join(f"0x{a:x} : \"{_c_escape(s)}\"\n" for a, s in (printk or {}).items()).encode()
    pk_blk = u32(len(pk)) + pk
    cl = "".join(f"{p} {c}\n" for p, c in sorted(comms.items())).encode()
    cl_blk = u64(len(cl)) + cl
    clock_text = _clock_text(clock).encode()

    def opt(oid: int, data: bytes) -> bytes:
        return u16(oid) + u32(len(data)) + data

    common_opts = [opt(O.TRACECLOCK, clock_text), opt(O.UNAME, uname.encode() + b"\0"),
                   opt(O.VERSION, b"3.1.6 migtrace\0"), opt(O.TRACEID, u64(trace_id))]
    if offset_ns:
        common_opts.append(opt(O.OFFSET, f"{offset_ns}".encode() + b"\0"))
    common_opts.extend(opt(O.GUEST, encode_guest(g, big)) for g in guests)
    if time_shift is not None:
        common_opts.append(opt(O.TIME_SHIFT, encode_time_shift(time_shift, big)))
    common_opts.extend(opt(i, d) for i, d in extra_options)
    common_opts.append(opt(O.CPUCOUNT, u32(ncpu)))

    head = b"\x17\x08\x44tracing" + str(version).encode() + b"\0" + bytes([1 if big else 0, long_size]) + u32(page_size)
    if version == 6:
        return _write_v6(Path(path), head, header_info, ftrace_blk, ev_blk, ks_blk, pk_blk, cl_blk,
                         ncpu, common_opts, pages, clock_text, page_size, u16, u32, u64, opt)
    return _write_v7(Path(path), head, compression, [header_info, ftrace_blk, ev_blk, ks_blk, pk_blk, cl_blk],
                     ncpu, common_opts, pages, clock, page_size, chunk_pages, u16, u32, u64, opt)


def _c_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _write_v6(path, head, header_info, ftrace_blk, ev_blk, ks_blk, pk_blk, cl_blk, ncpu, common_opts, pages,
              clock_text, page_size, u16, u32, u64, opt) -> Path:
    out = bytearray(head + header_info + ftrace_blk + ev_blk + ks_blk + pk_blk + cl_blk + u32(ncpu))
    insts = [n for n in pages if n]
    # options, with BUFFER options whose offsets are patched once the layout is known
    out += b"options  \0"
    patch: dict[str, int] = {}
    for o in common_opts:
        out += o
    for name in insts:
        out += u16(O.BUFFER) + u32(8 + len(name.encode()) + 1)
        patch[name] = len(out)
        out += u64(0) + name.encode() + b"\0"
    out += u16(O.DONE)
    out += b"flyrecord\0"
    table_at = len(out)
    out += bytes(16 * ncpu) + u64(len(clock_text)) + clock_text
    inst_tables: dict[str, int] = {}
    for name in insts:
        inst_tables[name] = len(out)
        out[patch[name]:patch[name] + 8] = u64(len(out))
        out += b"flyrecord\0" + bytes(16 * ncpu) + u64(len(clock_text)) + clock_text
    for name, at in [("", table_at)] + [(n, inst_tables[n] + 10) for n in insts]:
        for cpu in range(ncpu):
            data = pages.get(name, {}).get(cpu, b"")
            if not data:
                continue
            out += bytes(_align(len(out), page_size) - len(out))
            out[at + 16 * cpu:at + 16 * cpu + 16] = u64(len(out)) + u64(len(data))
            out += data
    Path(path).write_bytes(bytes(out))
    return Path(path)


def _write_v7(path, head, compression, meta_blocks, ncpu, common_opts, pages, clock, page_size, chunk_pages,
              u16, u32, u64, opt) -> Path:
    comp = _Compressor(compression) if compression != "none" else None
    strings = bytearray()
    string_ids: dict[str, int] = {}

    def sid(desc: str) -> int:
        if desc not in string_ids:
            string_ids[desc] = len(strings)
            strings.extend(desc.encode() + b"\0")
        return string_ids[desc]

    def section(sec_id: int, desc: str, body: bytes, compress: bool) -> bytes:
        flags = 0
        if compress and comp is not None:
            blob = comp.compress(body)
            body = u32(len(blob)) + u32(len(body)) + blob
            flags = 1
        return u16(sec_id) + u16(flags) + u32(sid(desc)) + u64(len(body)) + body

    out = bytearray(head + (compression.encode() + b"\0") + ((comp.version if comp else "").encode() + b"\0"))
    opts_ptr = len(out)
    out += u64(0)
    meta_offsets = []
    descs = ["headers", "ftrace events", "events format", "kallsyms", "printk", "command lines"]
    for i, (blk, desc) in enumerate(zip(meta_blocks, descs)):
        meta_offsets.append(len(out))
        out += section(O.HEADER_INFO + i, desc, blk, True)
    # first OPTIONS section: metadata offsets + common options, DONE → second OPTIONS section
    first_opts = len(out)
    out[opts_ptr:opts_ptr + 8] = u64(first_opts)
    body = b"".join(opt(O.HEADER_INFO + i, u64(o)) for i, o in enumerate(meta_offsets)) + b"".join(common_opts)
    # DONE's payload (next OPTIONS offset) is patched below; OPTIONS stays uncompressed here so
    # the patch is a plain overwrite.
    sec = section(O.DONE, "options", body + u16(O.DONE) + u32(8) + u64(0), False)
    out += sec
    done_at = len(out) - 8
    # BUFFER sections
    buf_opts = []
    for name in sorted(pages, key=lambda n: (n != "", n)):
        sec_at = len(out)
        hdr_at = len(out)
        out += bytes(16)
        body_start = len(out)
        cpu_entries = []
        for cpu in range(ncpu):
            data = pages[name].get(cpu, b"")
            if not data:
                continue
            if comp is None:
                out += bytes(_align(len(out), page_size) - len(out))
                cpu_entries.append((cpu, len(out), len(data)))
                out += data
            else:
                at = len(out)
                step = page_size * max(1, chunk_pages)
                chunks = [data[i:i + step] for i in range(0, len(data), step)]
                out += u32(len(chunks))
                total = 0
                for ch in chunks:
                    blob = comp.compress(ch)
                    out += u32(len(blob)) + u32(len(ch)) + blob
                    total += 8 + len(blob)
                # trace-cmd 3.1.6 records Σ(8 + compressed size), without the chunk count
                cpu_entries.append((cpu, at, total))
        flags = 1 if comp is not None else 0
        out[hdr_at:hdr_at + 16] = (u16(O.BUFFER) + u16(flags) + u32(sid(f"buffer flyrecord {name}"))
                                   + u64(len(out) - body_start))
        data = (u64(sec_at) + name.encode() + b"\0" + clock.encode() + b"\0" + u32(page_size)
                + u32(len(cpu_entries)) + b"".join(u32(c) + u64(o) + u64(s) for c, o, s in cpu_entries))
        buf_opts.append(opt(O.BUFFER, data))
    second = len(out)
    out[done_at:done_at + 8] = u64(second)
    out += section(O.DONE, "options", b"".join(buf_opts) + u16(O.DONE) + u32(8) + u64(0), False)
    sid("strings")
    out += u16(O.STRINGS) + u16(0) + u32(string_ids["strings"]) + u64(len(strings)) + bytes(strings)
    Path(path).write_bytes(bytes(out))
    return Path(path)
