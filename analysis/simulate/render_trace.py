# SPDX-License-Identifier: GPL-2.0-only
"""trace.dat captures of a simulated run: QEMU ftrace-backend events + syscalls.

QEMU events are ``ftrace:print`` events whose buffer is the text QEMU
writes to ``trace_marker`` (qemu-trace-events.md §1.1), rendered by
engineer F's catalogue with the variant of the simulated QEMU release
(hex sizes before 9.2, decimal after, …).  Kernel events are the
``syscalls:sys_enter_ioctl``/``sys_exit_ioctl`` pairs of QEMU's VFIO ioctls
(VFIO_DEVICE_FEATURE 0x3b75, VFIO_MIG_GET_PRECOPY_INFO 0x3b79) and the
``sys_enter_read``/``sys_exit_read`` / ``write`` pairs on the migration
data fd — there are no vfio-virtio tracepoints (vfio-virtio-stream.md §11).
Optionally the admin records travel as ``raw_data`` events
(admin-capture.md, ftrace container).
Files are written with engineer E's :func:`write_trace_dat` (v7, zstd).

Clock: ftrace's ``local`` clock counts from the host's boot, so each host's
trace has its own offset to the capture clock (run.json ``truth.clock``).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from dissect.ftrace.event import Event
from dissect.virtio.admin_capture import AdminRecord, trace_pieces
from dissect.ftrace.writer import tracing_mark_write_ip, write_trace_dat
from dissect.qemu.trace_events import Catalogue

from analysis.simulate.timeline import Ioctl, TraceEvent

_COMMON = ("\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
           "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
           "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
           "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n")


def _syscall_format(name: str, eid: int, args: list[tuple[str, str]], pfmt: str) -> str:
    body = "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
    off = 16
    for decl, signed in args:
        body += f"\tfield:{decl};\toffset:{off};\tsize:8;\tsigned:{signed};\n"
        off += 8
    return f"name: {name}\nID: {eid}\nformat:\n{_COMMON}{body}\nprint fmt: {pfmt}\n"


#: syscall tracepoint formats as x86_64 Linux 6.x declares them (event ids are per kernel build)
SYSCALL_FORMATS: dict[tuple[str, str], str] = {
    ("syscalls", "sys_enter_ioctl"): _syscall_format(
        "sys_enter_ioctl", 781, [("unsigned int fd", "0"), ("unsigned int cmd", "0"), ("unsigned long arg", "0")],
        '"fd: 0x%08lx, cmd: 0x%08lx, arg: 0x%08lx", ((unsigned long)(REC->fd)), '
        '((unsigned long)(REC->cmd)), ((unsigned long)(REC->arg))'),
    ("syscalls", "sys_exit_ioctl"): _syscall_format("sys_exit_ioctl", 780, [("long ret", "1")],
                                                    '"0x%lx", REC->ret'),
    ("syscalls", "sys_enter_read"): _syscall_format(
        "sys_enter_read", 707, [("unsigned int fd", "0"), ("char * buf", "0"), ("size_t count", "0")],
        '"fd: 0x%08lx, buf: 0x%08lx, count: 0x%08lx", ((unsigned long)(REC->fd)), '
        '((unsigned long)(REC->buf)), ((unsigned long)(REC->count))'),
    ("syscalls", "sys_exit_read"): _syscall_format("sys_exit_read", 706, [("long ret", "1")],
                                                   '"0x%lx", REC->ret'),
    ("syscalls", "sys_enter_write"): _syscall_format(
        "sys_enter_write", 705, [("unsigned int fd", "0"), ("const char * buf", "0"), ("size_t count", "0")],
        '"fd: 0x%08lx, buf: 0x%08lx, count: 0x%08lx", ((unsigned long)(REC->fd)), '
        '((unsigned long)(REC->buf)), ((unsigned long)(REC->count))'),
    ("syscalls", "sys_exit_write"): _syscall_format("sys_exit_write", 704, [("long ret", "1")],
                                                    '"0x%lx", REC->ret'),
}


@lru_cache(maxsize=1)
def _catalogue() -> Catalogue:
    return Catalogue.default()


def _vkey(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".")[:2] if x.isdigit())


def _in_range(versions: str | None, ver: tuple[int, ...]) -> bool:
    if not versions or versions == "-":
        return True
    lo, _, hi = versions.partition("-") if "-" in versions else (versions, "", versions)
    if lo and ver < _vkey(lo):
        return False
    if hi and ver > _vkey(hi):
        return False
    return True


@lru_cache(maxsize=4096)
def _variant(name: str, argnames: frozenset[str], version: str) -> str | None:
    ver = _vkey(version)
    decls = [d for d in _catalogue().declarations(name) if set(d.arg_names) == argnames]
    if not decls:
        raise KeyError(f"{name}: no declaration with arguments {sorted(argnames)}")
    for d in decls:
        if _in_range(d.versions, ver):
            return d.variant
    return decls[-1].variant


def qemu_text(ev: TraceEvent, version: str) -> str:
    """The line QEMU's ftrace backend writes for ``ev`` (without the newline)."""
    variant = _variant(ev.name, frozenset(ev.args), version)
    return _catalogue().format(ev.name, variant, truncate=True, **ev.args)


def _cpu(tid: int, ncpu: int) -> int:
    return tid % ncpu


def trace_events(events: Iterable[TraceEvent], ioctls: Iterable[Ioctl], side: str, version: str,
                 clock_ns: int, ncpu: int = 4) -> list[Event]:
    # at equal timestamps: syscall exits, then QEMU's prints, then syscall entries
    out: list[tuple[int, int, int, Event]] = []
    ip = tracing_mark_write_ip(8)
    seq = 0
    for ev in events:
        if ev.side != side:
            continue
        text = qemu_text(ev, version)
        out.append((ev.ts_ns, 1, seq, Event("trace-dat", clock_ns + ev.ts_ns, _cpu(ev.tid, ncpu), ev.tid, ev.comm,
                                         "ftrace", "print", {"ip": ip, "buf": text + "\n"})))
        seq += 1
    for io in ioctls:
        if io.side != side:
            continue
        cpu = _cpu(io.tid, ncpu)
        if io.call == "ioctl":
            enter: dict[str, Any] = {"__syscall_nr": 16, "fd": io.fd, "cmd": io.cmd, "arg": 0x7FFD_2000_0000 + io.fd * 64}
        else:
            nr = 0 if io.call == "read" else 1
            enter = {"__syscall_nr": nr, "fd": io.fd, "buf": 0x7F00_4000_0000, "count": io.count}
        exit_ = {"__syscall_nr": enter["__syscall_nr"], "ret": io.ret}
        out.append((io.start_ns, 2, seq, Event("trace-dat", clock_ns + io.start_ns, cpu, io.tid, io.comm, "syscalls",
                                            f"sys_enter_{io.call}", enter)))
        out.append((io.end_ns, 0, seq + 1, Event("trace-dat", clock_ns + io.end_ns, cpu, io.tid, io.comm, "syscalls",
                                              f"sys_exit_{io.call}", exit_)))
        seq += 2
    out.sort(key=lambda x: (x[0], x[1], x[2]))
    return [e for *_, e in out]


#: the admin-queue capture helper that writes records to trace_marker_raw
ADMIN_HELPER = (777, "avq-capture")


def admin_trace_events(records: Iterable[AdminRecord], cpu: int = 0) -> list[Event]:
    """Admin records as ``ftrace:raw_data`` events (A's ``trace_pieces``; the
    kernel keeps the first u32 of each write as the event id)."""
    out = []
    for rec in records:
        for piece in trace_pieces(rec.to_bytes()):
            out.append(Event("trace-dat", rec.ts_ns, cpu, ADMIN_HELPER[0], ADMIN_HELPER[1], "ftrace", "raw_data",
                             {"id": int.from_bytes(piece[:4], "little"), "buf": piece[4:]}))
    return out


def write_trace(path: Path, events: Iterable[TraceEvent], ioctls: Iterable[Ioctl], side: str, version: str,
                clock_ns: int, uname: str, admin: Iterable[AdminRecord] = ()) -> Path:
    evs = trace_events(events, ioctls, side, version, clock_ns)
    extra = admin_trace_events(admin)
    if extra:
        evs = sorted(evs + extra, key=lambda e: e.ts_ns)
    return write_trace_dat(path, evs, version=7, compression="zstd", cpus=4, formats=SYSCALL_FORMATS,
                           uname=uname)
