# SPDX-License-Identifier: GPL-2.0-only
"""TimeShift / GUEST options and the host–guest time arithmetic (dissect/ftrace/tsync.py).

Expected values are worked by hand from trace-cmd 3.1.x's ``timestamp_correction_calc``
(C int64 arithmetic, ``/`` truncating) and checked against ``trace-cmd report`` itself on
files we write; the NumPy twins are held equal to the per-timestamp definitions.
"""
from __future__ import annotations

import random
import re
import struct
import subprocess

import numpy as np
import pytest

from dissect.ftrace.event import Event
from dissect.ftrace.tracedat import read_trace_dat
from dissect.ftrace.tsync import (Guest, Sample, TimeShift, encode_guest, encode_time_shift, host_sync,
                                  host_sync_array, parse_guest, parse_time_shift, tsc2nsec, tsc2nsec_array)
from dissect.ftrace.writer import write_trace_dat
from tests.conftest import require_tool

INTERP = TimeShift(0x1234, 1, [[Sample(1000, 100), Sample(2000, 300), Sample(4000, -500)],
                               [Sample(0, 10**6, 3, 1)]])
# raw guest time, cpu -> host raw time, by hand:
#   cpu 0, 1000: pair (0,1), (0*200 + 500)/1000 = 0          -> 1000 + 100
#   cpu 0, 1500: (500*200 + 500)/1000 = 100                   -> 1500 + 200
#   cpu 0, 2600: pair (1,2), (600*-800 + 1000)/2000 = -239 (C truncates -239.5) -> 2600 + 61
#   cpu 0, 5000: past the last sample, pair (1,2): (3000*-800 + 1000)/2000 = -1199 -> 5000 - 899
#   cpu 1, 1200: one sample: + offset, no scaling             -> 1001200
#   cpu 2, 1300: beyond the option's CPU count: as is
INTERP_CASES = [(1000, 0, 1100), (1500, 0, 1700), (2600, 0, 2661), (5000, 0, 4101), (1200, 1, 1001200),
                (3000, 1, 1003000), (1300, 2, 1300)]
SCALED = TimeShift(0x55, 0, [[Sample(0, -400, 3, 1), Sample(10000, 5000, 3, 1)]])
# no INTERPOLATE flag: min's offset; (ts * 3) >> 1, then + offset (a negative one subtracts)
SCALED_CASES = [(1000, 0, 1100), (3000, 0, 4100), (20000, 0, 29600)]


@pytest.mark.parametrize("shift,cases", [(INTERP, INTERP_CASES), (SCALED, SCALED_CASES)])
def test_host_sync_by_hand(shift, cases):
    for raw, cpu, want in cases:
        assert host_sync(raw, cpu, shift) == want, (raw, cpu)
    raw = np.array([c[0] for c in cases], dtype=np.uint64)
    cpu = np.array([c[1] for c in cases])
    assert host_sync_array(raw, cpu, shift).tolist() == [c[2] for c in cases]


def test_host_sync_exact_sample_time_and_search():
    """More than 2 samples: a time equal to an inner sample uses that sample and the next."""
    s = TimeShift(0, 1, [[Sample(t, o) for t, o in ((0, 0), (100, 1000), (200, 1000), (300, 4000))]])
    assert host_sync(100, 0, s) == 1100  # pair (1,2): offset 1000 flat
    assert host_sync(250, 0, s) == 250 + 1000 + (50 * 3000 + 50) // 100  # pair (2,3): 1000 + 1500
    assert host_sync(99, 0, s) == 99 + (99 * 1000 + 50) // 100  # pair (0,1)
    assert host_sync_array(np.array([100, 250, 99], np.uint64), np.zeros(3, int), s).tolist() == [1100, 2750, 1089]


def test_twins_equal_on_random_samples():
    rnd = random.Random(7)
    for trial in range(60):
        cpus = []
        for _ in range(rnd.randint(0, 3)):
            n = rnd.choice([0, 1, 2, 3, 5, 9])
            times = sorted(rnd.sample(range(0, 10**7, 13), n))
            cpus.append([Sample(t, rnd.randint(-10**9, 10**9), rnd.choice([1, 1, 3, 7, 2**20]),
                                rnd.choice([0, 0, 1, 4, 20])) for t in times])
        sh = TimeShift(trial, rnd.choice([0, 1]), cpus)
        raw = [rnd.choice([0, 13 * rnd.randint(0, 10**6), rnd.randint(0, 2**40), rnd.randint(0, 2**63)])
               for _ in range(300)]
        cpu = [rnd.randint(0, 4) for _ in raw]
        want = [host_sync(r, c, sh) for r, c in zip(raw, cpu)]
        got = host_sync_array(np.array(raw, dtype=np.uint64), np.array(cpu), sh).tolist()
        assert got == want, trial


def test_tsc2nsec_is_mul_u64_u32_shr():
    # the guest trace's own values; a value with high bits set (two partial products)
    assert tsc2nsec(63430235715905, 735842807, 31) == (63430235715905 * 735842807) >> 31
    big = (5 << 32) + 7
    assert tsc2nsec(big, 3, 1) == ((7 * 3) >> 1) + ((5 * 3) << 31)
    assert tsc2nsec(1234, 0, 5) == 1234  # mult 0: no conversion, as trace-cmd's `if (mult)`
    rnd = random.Random(3)
    vals = [rnd.randint(0, 2**64 - 1) for _ in range(500)] + [0, 1, 2**32 - 1, 2**32, 2**64 - 1]
    for mult, shift in ((735842807, 31), (3, 1), (2**31 + 5, 10), (1, 0), (7, 32), (9, 40)):
        assert tsc2nsec_array(np.array(vals, dtype=np.uint64), mult, shift).tolist() == \
            [tsc2nsec(v, mult, shift) for v in vals], (mult, shift)


def test_option_bytes_roundtrip_and_layout():
    body = encode_time_shift(SCALED)
    # u64 peer, u32 flags, u32 cpus; u32 count, times, offsets, scalings; then fractions
    assert body == struct.pack("<QII", 0x55, 0, 1) + struct.pack("<I2q2q2q", 2, 0, 10000, -400, 5000, 3, 3) \
        + struct.pack("<2q", 1, 1)
    assert parse_time_shift(body) == SCALED
    old = parse_time_shift(body[:-16])  # written before the fraction bits existed
    assert not old.has_fractions and [s.fraction for s in old.cpus[0]] == [0, 0]
    # samples come back sorted by time, an equal time kept once
    unsorted = TimeShift(1, 0, [[Sample(50, 2), Sample(10, 1), Sample(50, 3)]])
    assert parse_time_shift(encode_time_shift(unsorted)).cpus == [[Sample(10, 1), Sample(50, 2)]]
    g = Guest("vm1", 0xABC, {0: 4242, 1: 4243})
    assert encode_guest(g) == b"vm1\0" + struct.pack("<QI", 0xABC, 2) + struct.pack("<IiIi", 0, 4242, 1, 4243)
    assert parse_guest(encode_guest(g)) == g
    assert parse_guest(encode_guest(g, True), True) == g and parse_time_shift(encode_time_shift(SCALED, True), True) == SCALED


@pytest.mark.parametrize("data", [b"\0" * 15, struct.pack("<QII", 1, 0, 1000),
                                  struct.pack("<QIII", 1, 0, 1, 2**31), struct.pack("<QIII", 1, 0, 1, 1) + b"\0" * 20,
                                  struct.pack("<QIII", 1, 0, 1, 1) + b"\0" * 24 + b"\0" * 3])
def test_bad_time_shift_is_refused_not_allocated(data):
    with pytest.raises(ValueError):
        parse_time_shift(data)


def test_bad_guest_refused():
    for data in (b"noterm", b"vm\0" + b"\0" * 11, b"vm\0" + struct.pack("<QI", 1, 10**6),
                 b"vm\0" + struct.pack("<QI", 1, 1) + struct.pack("<Ii", 3, 9)):
        with pytest.raises(ValueError):
            parse_guest(data)


def _events(pairs):
    return [Event("x", t, c, 5, "g", "ftrace", "print", {"buf": f"e{i}\n"}, None) for i, (t, c) in enumerate(pairs)]


def test_reader_applies_time_shift_and_frame_equals_events(tmp_path):
    path = write_trace_dat(tmp_path / "guest.dat", _events([(r, c) for r, c, _ in INTERP_CASES]), cpus=3,
                           time_shift=INTERP, compression="none")
    td = read_trace_dat(path)
    assert td.time_shift == INTERP and td.findings == []
    evs = list(td.events())
    # merged on the shifted time (CPU 1 lands 1 ms later)
    assert [(e.cpu, e.ts_ns) for e in evs] == sorted(((c, w) for _, c, w in INTERP_CASES), key=lambda x: (x[1], x[0]))
    df = td.dataframe()
    assert df["ts_ns"].tolist() == [e.ts_ns for e in evs] and df["cpu"].tolist() == [e.cpu for e in evs]
    td.apply_time_shift = False
    assert sorted(e.ts_ns for e in td.events()) == sorted(r for r, _, _ in INTERP_CASES)


def test_damaged_time_shift_is_a_finding(tmp_path):
    bad = struct.pack("<QII", 1, 1, 1) + struct.pack("<I", 2) + b"\0" * 8  # 2 samples declared, 8 bytes
    path = write_trace_dat(tmp_path / "bad.dat", _events([(1000, 0)]), cpus=1, extra_options=[(12, bad)])
    td = read_trace_dat(path)
    assert td.time_shift is None
    assert [f.code for f in td.findings] == ["bad_option"]
    assert [e.ts_ns for e in td.events()] == [1000]


def _report(path):
    tool = require_tool("trace-cmd")
    proc = subprocess.run([tool, "report", "-t", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [(int(m.group(1)), int(m.group(2)) * 10**9 + int(m.group(3)))
            for m in re.finditer(r"\[(\d+)\]\s+(\d+)\.(\d{9}):", proc.stdout)]


@pytest.mark.needs_tool
@pytest.mark.parametrize("compression", ["none", "zstd"])
@pytest.mark.parametrize("shift,cases", [(INTERP, INTERP_CASES), (SCALED, SCALED_CASES)])
def test_written_time_shift_read_by_trace_cmd(tmp_path, compression, shift, cases):
    """A guest file we write with a TimeShift: trace-cmd report prints the host-clock times
    worked out by hand above, and our reader gives the same."""
    ncpu = max(c for _, c, _ in cases) + 1
    path = write_trace_dat(tmp_path / "g.dat", _events([(r, c) for r, c, _ in cases]), cpus=ncpu,
                           time_shift=shift, compression=compression)
    theirs = _report(path)
    assert theirs == sorted(((c, w) for _, c, w in cases), key=lambda x: (x[1], x[0]))
    assert [(e.cpu, e.ts_ns) for e in read_trace_dat(path).events()] == theirs


@pytest.mark.needs_tool
def test_written_guest_and_time_shift_as_trace_cmd_dumps_them(tmp_path):
    tool = require_tool("trace-cmd")
    g = Guest("vm1", 0xABC, {0: 4242, 1: 4243})
    path = write_trace_dat(tmp_path / "h.dat", _events([(1000, 0)]), cpus=1, guests=[g], time_shift=SCALED)
    out = subprocess.run([tool, "dump", "--options", str(path)], capture_output=True, text=True, timeout=60).stdout
    assert "vm1 [Guest name]\n0xABC [trace id]\n2 [Guest CPUs]\n  0 4242 [guest cpu, host pid]\n" \
           "  1 4243 [guest cpu, host pid]" in out
    assert "0x55 [peer's trace id]\n0x0 [peer's protocol flags]\n0x1 [peer's CPU count]\n" \
           "2 [samples count for CPU 0]\n\t-400 3 1 0[offset * scaling >> fraction @ time]\n" \
           "\t5000 3 1 10000[offset * scaling >> fraction @ time]" in out
    td = read_trace_dat(path)
    assert td.guests == [g] and td.time_shift == SCALED
