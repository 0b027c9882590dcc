# SPDX-License-Identifier: GPL-2.0-only
"""Exact integer nanoseconds end to end (issue 11 §6).

Epoch nanoseconds (~1.8e18) need 61 bits; a float keeps 53, so a timestamp that
passes through float seconds comes back a multiple of 256 ns.  Both captures here
carry odd-nanosecond timestamps, made with the project's writers; the oracle is
tshark's ``frame.time_epoch`` (printed as decimal text, never a float) and the
timestamps written into the trace.dat.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

import analysis
from dissect.capture.synth import write_tcp_capture
from dissect.qemu.build_migration import MigrationSpec, VfioDeviceSpec, build_migration
from tests.conftest import TRACES, run_cli

START = 1_795_000_000_000_000_001  # odd, epoch scale


@pytest.fixture(scope="module")
def odd_pcapng(tmp_path_factory):
    spec = MigrationSpec(profile="8.1-9.x", devices=[VfioDeviceSpec(buffer_size=700)], ram_bytes=1 << 20,
                         iterations=3, seed=7, start_ns=START)
    path = tmp_path_factory.mktemp("ns") / "odd.pcapng"
    write_tcp_capture(path, build_migration(spec).synth_flows())  # pcapng, if_tsresol 9 (ns)
    return path


def _tshark_ns(path) -> set[int]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian package tshark): no independent packet-time oracle")
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch"],
                         capture_output=True, text=True, check=True).stdout.split()
    return {int(s.replace(".", "")) for s in out}  # "1795000000.000017001" -> exact ns


def test_frames_keep_odd_nanoseconds_of_a_pcapng(odd_pcapng):
    packets = _tshark_ns(odd_pcapng)
    assert len(packets) > 100 and sum(t % 2 for t in packets) > len(packets) // 2  # odd: never a float's
    m = analysis.load(odd_pcapng)
    for name, col in (("records", "ts_ns"), ("records", "capture_ts_ns"), ("sections", "ts_ns"),
                      ("chunks", "ts_ns"), ("phases", "start_ns"), ("rp_messages", "ts_ns"),
                      ("iterations", "ts_ns")):
        vals = [int(v) for v in getattr(m, name)[col].dropna()]
        assert vals, (name, col)
        assert set(vals) <= packets, (name, col, sorted(set(vals) - packets)[:3])
        assert any(v % 256 for v in vals), (name, col)  # not squeezed through a float
    assert m.records["ts_ns"].dtype == "Int64" and m.phases["start_ns"].dtype == "Int64"
    # the phase boundaries are packet times, so their durations are exact differences
    ph = m.phases.dropna(subset=["start_ns", "end_ns"])
    assert list(ph["duration_ns"]) == [int(e) - int(s) for s, e in zip(ph["start_ns"], ph["end_ns"])]


def test_json_lines_carry_integer_ts_ns(odd_pcapng):
    packets = _tshark_ns(odd_pcapng)
    proc = run_cli("decode", "--json", str(odd_pcapng))
    assert proc.returncode in (0, 1), proc.stderr
    objs = [json.loads(x) for x in proc.stdout.splitlines()]
    timed = [o for o in objs if o["kind"] in ("section", "vfio_chunk", "vfio_record", "rp_message", "command")]
    assert {o["kind"] for o in timed} >= {"section", "vfio_chunk", "vfio_record", "rp_message"}
    for o in timed:
        assert isinstance(o["ts_ns"], int) and o["ts_ns"] in packets, o
        assert o["ts"] == o["ts_ns"] / 1_000_000_000  # the contract's float seconds, correctly rounded


def test_trace_dat_at_epoch_scale_keeps_odd_nanoseconds(tmp_path):
    """The simulator's source trace moved to an odd epoch-scale clock: every event time and the
    phases derived from the trace move by exactly the shift."""
    from dissect.ftrace.tracedat import TraceDat
    from dissect.ftrace.writer import write_trace_dat

    import dataclasses

    src = TRACES / "sim" / "compare" / "fw-28.40-s1" / "source.dat"
    events = [e for e in TraceDat(src).events() if e.system == "ftrace"]  # the QEMU print events
    shift = START - events[0].ts_ns
    moved = [dataclasses.replace(e, ts_ns=e.ts_ns + shift) for e in events]
    base = analysis.load(write_trace_dat(tmp_path / "boot.dat", events))
    path = write_trace_dat(tmp_path / "epoch.dat", moved)
    m = analysis.load(path)
    assert [int(v) for v in m.events["ts_ns"]] == [e.ts_ns for e in moved]
    assert int(m.events["ts_ns"].iloc[0]) == START
    assert len(m.phases) == len(base.phases) >= 3
    assert [int(v) for v in m.phases["start_ns"]] == [int(v) + shift for v in base.phases["start_ns"]]
    assert [int(v) for v in m.iterations["ts_ns"].dropna()] == \
        [int(v) + shift for v in base.iterations["ts_ns"].dropna()]
    if shutil.which("trace-cmd"):  # the independent reader agrees to the nanosecond
        out = subprocess.run(["trace-cmd", "report", "-t", "-i", str(path)], capture_output=True, text=True,
                             check=True).stdout
        first = next(ln for ln in out.splitlines() if ": " in ln and "[" in ln)
        secs = first.split("]")[1].split(":")[0].split()[-1]
        assert int(secs.replace(".", "")) == START
