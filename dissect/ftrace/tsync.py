# SPDX-License-Identifier: GPL-2.0-only
"""Host–guest time synchronisation options of trace.dat: TimeShift (12), GUEST (13),
and the TSC2NSEC (14) conversion they combine with.

Spec: trace-dat.md §4 lists the ids only; the layouts and the arithmetic here follow
trace-cmd 3.1.x's reader (``lib/trace-cmd/trace-input.c``: ``tsync_cpu_offsets_load``,
``tsync_offset_cmp``, ``timestamp_correction_calc``, ``timestamp_host_sync``,
``timestamp_calc``, ``trace_guest_load``), which is the oracle the tests hold it to.

A guest recorded with ``trace-cmd record -A`` carries a TimeShift option: per guest
CPU, samples ``(time, offset, scaling, fraction)`` taken while tracing, in the guest's
raw clock.  trace-cmd's reader maps every raw guest timestamp onto the host's raw
clock *before* any TSC2NSEC conversion::

    raw'  = ((raw * scaling) >> fraction) + offset'      (u64 arithmetic)
    offset' = min.offset                                        flags & INTERPOLATE == 0
    offset' = min.offset + ((raw - min.time) * (max.offset - min.offset) + delta / 2) / delta
                                                                flags & INTERPOLATE (C int64, / truncates)

where ``(min, max)`` is the pair of samples around ``raw`` (the first or last pair
outside the sampled range) and ``scaling``/``fraction`` come from ``min``.  One
sample: ``raw + offset`` (no scaling).  A CPU at or past the option's CPU count is
left as is.  Samples are sorted by time and samples with an equal time dropped (the
first kept), as trace-cmd does.  Then ``ns = mul_u64_u32_shr(raw', mult, shift)``
(TSC2NSEC, its ``offset`` field unused) and ``+ OFFSET/DATE``.

Decisions where trace-cmd's C is undefined: a CPU with no samples is left as is
(trace-cmd reads past its array); a shift count of 64 or more uses the count
modulo 64 (what x86-64 does); a TSC2NSEC ``shift`` above 32 uses the exact
product.  Every length in the option is checked against its bytes before anything
is allocated.

:func:`host_sync` and :func:`tsc2nsec` are the per-timestamp definitions;
:func:`host_sync_array` and :func:`tsc2nsec_array` their NumPy twins (the
DataFrame path), held equal by the tests.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TSYNC_FLAG_INTERPOLATE", "Sample", "TimeShift", "Guest", "parse_time_shift", "encode_time_shift",
           "parse_guest", "encode_guest", "host_sync", "host_sync_array", "tsc2nsec", "tsc2nsec_array"]

TSYNC_FLAG_INTERPOLATE = 0x1  # trace-cmd-private.h TRACECMD_TSYNC_FLAG_INTERPOLATE

_M64 = (1 << 64) - 1


def _s64(v: int) -> int:
    v &= _M64
    return v - (1 << 64) if v >> 63 else v


def _cdiv(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


@dataclass(frozen=True, slots=True)
class Sample:
    time: int
    offset: int
    scaling: int = 1
    fraction: int = 0


@dataclass(slots=True)
class TimeShift:
    """A TimeShift option: the host's trace id, the protocol flags, per guest CPU its
    samples (as trace-cmd keeps them: sorted by time, equal times dropped)."""
    peer_trace_id: int
    flags: int
    cpus: list[list[Sample]] = field(default_factory=list)
    has_fractions: bool = True


@dataclass(slots=True)
class Guest:
    """A GUEST option (written in the host's file): the guest's name and trace id, and
    for each guest vCPU the host task (pid) that ran it."""
    name: str
    trace_id: int
    vcpu_pids: dict[int, int] = field(default_factory=dict)


# ---------------------------------------------------------------- parsing
def _sorted_unique(samples: list[Sample]) -> list[Sample]:
    # tsync_offset_cmp + the equal-time filter; sorted() is stable, qsort is not:
    # among samples of one time trace-cmd may keep any, we keep the first written.
    out: list[Sample] = []
    for s in sorted(samples, key=lambda s: s.time):
        if not out or out[-1].time != s.time:
            out.append(s)
    return out


def parse_time_shift(data: bytes, big: bool = False) -> TimeShift:
    """The TimeShift option body: ``u64 peer trace id, u32 flags, u32 cpu count``, per CPU
    ``u32 count, s64 times[count], s64 offsets[count], s64 scalings[count]``, then (3.0+)
    per CPU ``s64 fractions[count]``.  Raises ValueError when a count runs past the data."""
    e = ">" if big else "<"
    n = len(data)
    if n < 16:
        raise ValueError(f"TimeShift option of {n} bytes (16 at least)")
    peer, flags, ncpu = struct.unpack_from(e + "QII", data, 0)
    pos = 16
    if ncpu > (n - pos) // 4:
        raise ValueError(f"TimeShift declares {ncpu} CPUs, {n - pos} bytes left")
    cols: list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = []
    for cpu in range(ncpu):
        if pos + 4 > n:
            raise ValueError(f"TimeShift CPU {cpu}: sample count past the data")
        (count,) = struct.unpack_from(e + "I", data, pos)
        pos += 4
        if count > (n - pos) // 24:
            raise ValueError(f"TimeShift CPU {cpu}: {count} samples, {n - pos} bytes left")
        arr = struct.unpack_from(f"{e}{3 * count}q", data, pos)
        pos += 24 * count
        cols.append((arr[:count], arr[count:2 * count], arr[2 * count:]))
    fractions: list[tuple[int, ...]] = []
    has_fr = pos < n
    if has_fr:  # trace-cmd reads the fraction arrays whenever bytes are left
        for cpu, (times, _, _) in enumerate(cols):
            if pos + 8 * len(times) > n:
                raise ValueError(f"TimeShift CPU {cpu}: fraction bits past the data")
            fractions.append(struct.unpack_from(f"{e}{len(times)}q", data, pos))
            pos += 8 * len(times)
    cpus = []
    for k, (times, offs, scal) in enumerate(cols):
        fr = fractions[k] if has_fr else (0,) * len(times)
        cpus.append(_sorted_unique([Sample(t, o, s, f) for t, o, s, f in zip(times, offs, scal, fr)]))
    return TimeShift(peer, flags, cpus, has_fr)


def encode_time_shift(ts: TimeShift, big: bool = False) -> bytes:
    """The option body trace-cmd writes (``tracecmd_write_guest_time_shift`` layout), with
    the fraction arrays when ``ts.has_fractions``."""
    e = ">" if big else "<"
    out = [struct.pack(e + "QII", ts.peer_trace_id & _M64, ts.flags, len(ts.cpus))]
    for samples in ts.cpus:
        out.append(struct.pack(e + "I", len(samples)))
        for attr in ("time", "offset", "scaling"):
            out.append(struct.pack(f"{e}{len(samples)}q", *(getattr(s, attr) for s in samples)))
    if ts.has_fractions:
        for samples in ts.cpus:
            out.append(struct.pack(f"{e}{len(samples)}q", *(s.fraction for s in samples)))
    return b"".join(out)


def parse_guest(data: bytes, big: bool = False) -> Guest:
    """The GUEST option body: NUL-terminated name, ``u64 trace id``, ``u32 vcpu count``,
    per vCPU ``u32 cpu, u32 host pid``.  Raises ValueError on short data or a vCPU id not
    below the count (trace-cmd drops such an option)."""
    e = ">" if big else "<"
    end = data.find(b"\0")
    if end < 0:
        raise ValueError("GUEST name is not NUL-terminated")
    name = data[:end].decode("utf-8", "backslashreplace")  # as every trace.dat string; layout reports it
    pos = end + 1
    if pos + 12 > len(data):
        raise ValueError("GUEST option ends before its trace id and vCPU count")
    trace_id, count = struct.unpack_from(e + "QI", data, pos)
    pos += 12
    if count > (len(data) - pos) // 8:
        raise ValueError(f"GUEST declares {count} vCPUs, {len(data) - pos} bytes left")
    pids: dict[int, int] = {}
    for _ in range(count):
        cpu, pid = struct.unpack_from(e + "Ii", data, pos)
        pos += 8
        if cpu >= count:
            raise ValueError(f"GUEST vCPU {cpu} is not below the vCPU count {count}")
        pids[cpu] = pid
    return Guest(name, trace_id, pids)


def encode_guest(g: Guest, big: bool = False) -> bytes:
    e = ">" if big else "<"
    body = [g.name.encode() + b"\0", struct.pack(e + "QI", g.trace_id & _M64, len(g.vcpu_pids))]
    body.extend(struct.pack(e + "Ii", c, p) for c, p in sorted(g.vcpu_pids.items()))
    return b"".join(body)


# ------------------------------------------------------- per-timestamp (definition)
def _correct(ts: int, flags: int, lo: Sample, hi: Sample) -> int:
    """``timestamp_correction_calc``: C's int64 / u64 arithmetic, wrapping."""
    if flags & TSYNC_FLAG_INTERPOLATE:
        delta = _s64(hi.time - lo.time)
        off = _s64((_s64(ts) - lo.time) * _s64(hi.offset - lo.offset))
        tscor = _s64(lo.offset + _cdiv(_s64(off + _cdiv(delta, 2)), delta)) if delta else lo.offset
    else:
        tscor = lo.offset
    ts = ((ts * (lo.scaling & _M64)) & _M64) >> (lo.fraction & 63)
    return (ts + tscor) & _M64


def host_sync(ts: int, cpu: int, shift: TimeShift) -> int:
    """``timestamp_host_sync``: a raw guest timestamp of ``cpu`` on the host's raw clock."""
    if cpu >= len(shift.cpus):
        return ts
    s = shift.cpus[cpu]
    n = len(s)
    if n == 0:
        return ts
    if n == 1:
        return (ts + s[0].offset) & _M64
    if n == 2:
        return _correct(ts, shift.flags, s[0], s[1])
    # the comparisons are unsigned (u64 ts against s64 times), as in C
    if ts <= s[0].time & _M64:
        return _correct(ts, shift.flags, s[0], s[1])
    if ts >= s[-1].time & _M64:
        return _correct(ts, shift.flags, s[-2], s[-1])
    lo, hi = 0, n - 1
    mid = (lo + hi) // 2
    while lo <= hi:
        t = s[mid].time & _M64
        if ts < t:
            hi = mid - 1
        elif ts > t:
            lo = mid + 1
        else:
            break
        mid = (lo + hi) // 2
    return _correct(ts, shift.flags, s[mid], s[mid + 1])


def tsc2nsec(ts: int, mult: int, shift: int) -> int:
    """``mul_u64_u32_shr(ts, mult, shift)`` as trace-cmd calls it (``mult`` is a C int,
    sign-extended to the u64 multiplier); 0 ``mult`` means no conversion."""
    if not mult:
        return ts
    mul = _s64(mult if mult < 1 << 31 else mult - (1 << 32)) & _M64
    if shift > 32:
        return ((ts * mul) >> shift) & _M64
    al, ah = ts & 0xFFFFFFFF, ts >> 32
    ret = ((al * mul) & _M64) >> shift
    if ah:
        ret += (((ah * mul) & _M64) << (32 - shift)) & _M64
    return ret & _M64


# ------------------------------------------------------------ NumPy twins
def _cdiv_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    q = a // b
    fix = ((a - q * b) != 0) & ((a < 0) != (b < 0))
    return q + fix


def _correct_array(ts: np.ndarray, flags: int, lo: np.ndarray, hi: np.ndarray,
                   t: np.ndarray, o: np.ndarray, sc: np.ndarray, fr: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        if flags & TSYNC_FLAG_INTERPOLATE:
            delta = t[hi] - t[lo]
            off = (ts.view(np.int64) - t[lo]) * (o[hi] - o[lo])
            tscor = o[lo] + _cdiv_array(off + _cdiv_array(delta, np.full_like(delta, 2)), delta)
        else:
            tscor = o[lo]
        out = (ts * sc[lo].view(np.uint64)) >> (fr[lo] & 63).astype(np.uint64)
        return out + tscor.view(np.uint64)


def host_sync_array(ts: np.ndarray, cpu: np.ndarray, shift: TimeShift) -> np.ndarray:
    """:func:`host_sync` over arrays (``ts`` u64, ``cpu`` int): one searchsorted per CPU."""
    ts = np.asarray(ts, dtype=np.uint64)
    out = ts.copy()
    cpu = np.asarray(cpu)
    for c, s in enumerate(shift.cpus):
        n = len(s)
        if n == 0:
            continue
        sel = np.flatnonzero(cpu == c)
        if not len(sel):
            continue
        x = ts[sel]
        if n == 1:
            out[sel] = x + np.uint64(s[0].offset & _M64)
            continue
        t = np.array([v.time for v in s], dtype=np.int64)
        o = np.array([v.offset for v in s], dtype=np.int64)
        sc = np.array([v.scaling for v in s], dtype=np.int64)
        fr = np.array([v.fraction for v in s], dtype=np.int64)
        tu = t.view(np.uint64)
        if n > 2 and np.any(np.diff(tu) <= 0):  # not monotone as u64 (negative times): the C search
            out[sel] = [host_sync(v, c, shift) for v in x.tolist()]
            continue
        # the sample pair the C search lands on: the last sample <= ts, clipped to [0, n-2]
        lo = np.clip(np.searchsorted(tu, x, side="right") - 1, 0, n - 2) if n > 2 else np.zeros(len(x), np.int64)
        if np.any(t[lo + 1] == t[lo]):  # a zero delta cannot occur after the dedup; keep C's path if it does
            out[sel] = [host_sync(v, c, shift) for v in x.tolist()]
            continue
        out[sel] = _correct_array(x, shift.flags, lo, lo + 1, t, o, sc, fr)
    return out


def tsc2nsec_array(ts: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """:func:`tsc2nsec` over a u64 array."""
    ts = np.asarray(ts, dtype=np.uint64)
    if not mult:
        return ts.copy()
    if shift > 32:
        return np.array([tsc2nsec(v, mult, shift) for v in ts.tolist()], dtype=np.uint64)
    mul = np.uint64(_s64(mult if mult < 1 << 31 else mult - (1 << 32)) & _M64)
    with np.errstate(over="ignore"):
        al = ts & np.uint64(0xFFFFFFFF)
        ah = ts >> np.uint64(32)
        ret = (al * mul) >> np.uint64(shift)
        ret += (ah * mul) << np.uint64(32 - shift)  # 0 where ah is 0, as C's `if (ah)`
    return ret
