# SPDX-License-Identifier: GPL-2.0-only
"""``--follow``: a capture read while a writer appends to it (``tail -f``).

A writer thread appends a real capture in small chunks with sleeps (records
cut anywhere: the reader must wait for the rest of a partial record); the
follower must end on its own once the migration's stream ended and give
exactly the file's units.  SIGINT and ``--idle-timeout`` end it early with
the summary of what was read.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, TRACES, run_cli
from tests.test_live_pipe import _pcap_record_offsets, assert_same_units, lines

CLI = [sys.executable, "-m", "analysis.cli.main"]


def _writer(src: bytes, dst: Path, chunk: int, pause: float, stop_at: int | None = None) -> threading.Thread:
    def run() -> None:
        end = len(src) if stop_at is None else stop_at
        with open(dst, "ab", buffering=0) as f:
            for i in range(0, end, chunk):
                f.write(src[i:min(i + chunk, end)])
                time.sleep(pause)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("name", ["real/qemu-tcp-returnpath.pcap", "generated/qemu-9x-vfio-rp.pcapng"])
def test_follow_growing_file_equals_file_decode(name: str, tmp_path: Path):
    src = TRACES / name
    data = src.read_bytes()
    dst = tmp_path / ("growing" + src.suffix)
    dst.write_bytes(b"")
    proc = subprocess.Popen([*CLI, "decode", "--json", "--follow", "--idle-timeout", "20", str(dst)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    t = _writer(data, dst, 7001, 0.005)  # 7001: chunks end inside records and headers
    out, err = proc.communicate(timeout=120)
    t.join()
    assert dst.stat().st_size == len(data)
    f = run_cli("decode", "--json", str(src))
    assert proc.returncode == f.returncode == 0, err
    got = [json.loads(x) for x in out.splitlines()]
    # it ended because the migration ended, not on the idle timeout
    assert not [o for o in got if o.get("code") == "capture_idle_timeout"]
    assert_same_units(lines(f), got)


def test_follow_sigint_prints_the_summary_so_far(tmp_path: Path):
    data = (TRACES / "real/qemu-tcp-returnpath.pcap").read_bytes()
    offs = _pcap_record_offsets(data)
    half = offs[len(offs) // 2]
    dst = tmp_path / "growing.pcap"
    dst.write_bytes(data[:half])
    proc = subprocess.Popen([*CLI, "decode", "--json", "--follow", str(dst)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        first = proc.stdout.readline()
        assert json.loads(first)["kind"] == "header"
        time.sleep(0.5)
        assert proc.poll() is None  # waits for more: the migration has not ended
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err
    objs = [json.loads(x) for x in (first + rest).splitlines()]
    assert objs[-1]["kind"] == "summary"
    (intr,) = [o for o in objs if o.get("code") == "capture_interrupted"]
    assert intr["severity"] == "info" and intr["offset"] == half
    assert [o["kind"] for o in objs].count("flow") == 1
    assert proc.returncode in (0, 1)


def test_follow_idle_timeout_ends(tmp_path: Path):
    data = (TRACES / "real/qemu-tcp-returnpath.pcap").read_bytes()
    offs = _pcap_record_offsets(data)
    dst = tmp_path / "stalled.pcap"
    dst.write_bytes(data[:offs[10] + 20])  # ends inside record 10
    t0 = time.monotonic()
    p = run_cli("decode", "--json", "--follow", "--idle-timeout", "1", str(dst))
    took = time.monotonic() - t0
    objs = lines(p)
    assert p.returncode == 1  # the record cut at the end is an error finding, with its offset
    codes = {o.get("code"): o.get("offset") for o in objs if o["kind"] == "finding"}
    assert codes["capture_idle_timeout"] == offs[10] + 20
    assert codes["pcap_truncated_record"] == offs[10]
    assert objs[-1]["kind"] == "summary"
    assert took < 30


def test_follow_usage_errors(tmp_path: Path):
    p = run_cli("decode", "--follow", str(tmp_path / "missing.pcap"))
    assert p.returncode == 2 and "no such file" in p.stderr
    p = run_cli("decode", "--follow", str(tmp_path))
    assert p.returncode == 2 and "not a regular file" in p.stderr
    p = run_cli("decode", "--follow", "--idle-timeout", "0", str(tmp_path))
    assert p.returncode == 2


def test_watch_follow_growing_file_equals_watch_file(tmp_path: Path):
    src = TRACES / "real/qemu-tcp-returnpath.pcap"
    data = src.read_bytes()
    dst = tmp_path / "growing.pcap"
    dst.write_bytes(b"")
    proc = subprocess.Popen([*CLI, "watch", "--json", "--follow", "--idle-timeout", "20", str(dst)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    t = _writer(data, dst, 9001, 0.005)
    out, err = proc.communicate(timeout=120)
    t.join()
    assert proc.returncode == 0, err
    got = [json.loads(x) for x in out.splitlines()]
    ref = lines(run_cli("watch", "--json", str(src)))
    for kind in ("watch_pass", "watch_switchover"):
        assert [o for o in got if o["kind"] == kind] == [o for o in ref if o["kind"] == kind]
    (m,) = [o for o in got if o["kind"] == "migration_summary"]
    assert m["captures"] == [str(dst)] and m["precopy_iterations"] == 2 and m["bytes_main"] == 739968


def test_pipe_sigint_prints_the_summary_so_far():
    """``tcpdump -w - | migtrace decode -`` stopped with ^C while the pipe is still open."""
    data = (TRACES / "real/qemu-tcp-returnpath.pcap").read_bytes()
    offs = _pcap_record_offsets(data)
    proc = subprocess.Popen([*CLI, "decode", "--json", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        proc.stdin.write(data[:offs[20]])
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["kind"] == "header"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"Traceback" not in err
    objs = [json.loads(x) for x in rest.decode().splitlines()]
    assert objs[-1]["kind"] == "summary"
    (intr,) = [o for o in objs if o.get("code") == "capture_interrupted"]
    assert intr["offset"] == offs[20]


def test_flows_follow_ends_at_the_main_flow_fin(tmp_path: Path):
    src = TRACES / "real/qemu-tcp-multifd.pcap"
    dst = tmp_path / "growing.pcap"
    dst.write_bytes(b"")
    proc = subprocess.Popen([*CLI, "flows", "--json", "--follow", "--idle-timeout", "20", str(dst)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    t = _writer(src.read_bytes(), dst, 50000, 0.01)
    out, err = proc.communicate(timeout=120)
    t.join()
    f = run_cli("flows", "--json", str(src))
    assert (proc.returncode, out) == (f.returncode, f.stdout), err
    assert [o["role"] for o in lines(f) if o["kind"] == "flow"] == ["main", "multifd", "multifd"]
