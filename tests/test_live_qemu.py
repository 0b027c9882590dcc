# SPDX-License-Identifier: GPL-2.0-only
"""Live decoding of a real QEMU 7.2 migration on loopback (marker ``qemu``).

While QEMU migrates the tiny dirtying guest (tests/qemu_lab.py), two captures
run side by side: ``tcpdump -w - -U | tee FILE | migtrace decode --json -``
and ``migtrace watch --interface lo --port P``.  The piped decode must equal
the decode of FILE (the very bytes it read), the watch must show the passes
that ``watch FILE`` shows, and both must agree with QEMU's own counters.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.qemu_lab import Lab, build_guest, free_port, qmp_command, skip_reason
from tests.test_live_pipe import assert_same_units, lines
from tests.test_live_watch import _TIMES, _kind

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "analysis.cli.main"]
pytestmark = [pytest.mark.qemu, pytest.mark.timeout(120)]
_WHY = skip_reason()
if _WHY:
    pytestmark.append(pytest.mark.skip(reason=_WHY))


def _wait_for(stream, needle: bytes, timeout: float = 30) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while needle not in got and time.monotonic() < deadline:
        if select.select([stream], [], [], 0.5)[0]:
            b = os.read(stream.fileno(), 4096)
            if not b:
                break
            got += b
    assert needle in got, got
    return got


def _stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_live_loopback_migration_decode_pipe_and_watch_interface(tmp_path: Path):
    guest = build_guest(tmp_path / "guest")
    lab = Lab(guest)
    procs: list[subprocess.Popen] = []
    try:
        src = lab.start("src")
        dst = lab.start("dst", incoming=True)
        lab.wait_guest_running(src)
        port = free_port()
        cap = tmp_path / "tee.pcap"
        tcpdump = subprocess.Popen(["tcpdump", "-i", "lo", "-w", "-", "-U", "-s", "0", "-B", "32768", "-n",
                                    f"tcp port {port}"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        tee = subprocess.Popen(["tee", str(cap)], stdin=tcpdump.stdout, stdout=subprocess.PIPE)
        tcpdump.stdout.close()
        decode = subprocess.Popen([*CLI, "decode", "--json", "-"], stdin=tee.stdout, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=ROOT)
        tee.stdout.close()
        watch = subprocess.Popen([*CLI, "watch", "--interface", "lo", "--port", str(port), "--json",
                                  "--idle-timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        procs += [tcpdump, tee, decode, watch]
        _wait_for(tcpdump.stderr, b"listening on")
        watch_err = _wait_for(watch.stderr, b"listening on")

        on = [{"capability": "return-path", "state": True}]
        qmp_command(dst.ctl, "migrate-set-capabilities", {"capabilities": on})
        qmp_command(src.ctl, "migrate-set-capabilities", {"capabilities": on})
        # a few MB/s and a tiny downtime limit: pre-copy iterates over the guest's dirtied pages,
        # then a generous limit lets it converge
        qmp_command(src.ctl, "migrate-set-parameters", {"max-bandwidth": 2 << 20, "downtime-limit": 1})
        qmp_command(dst.ctl, "migrate-incoming", {"uri": f"tcp:127.0.0.1:{port}"})
        qmp_command(src.ctl, "migrate", {"uri": f"tcp:127.0.0.1:{port}"})
        time.sleep(3.0)  # the guest re-dirties 64 pages (256 KiB) faster than 2 MiB/s x 1 ms
        qmp_command(src.ctl, "migrate-set-parameters", {"downtime-limit": 2000})
        deadline = time.monotonic() + 60
        while True:
            info = qmp_command(src.ctl, "query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert info["status"] == "completed", info
        ram = info["ram"]

        # watch ends by itself: the stream's EOF marker, then 1 s without packets
        try:
            w_out, w_err = watch.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            watch.send_signal(signal.SIGINT)  # what it saw, for the failure message
            w_out, w_err = watch.communicate(timeout=60)
            raise AssertionError(f"watch did not end: {w_err.decode()} {w_out.decode()[-2000:]}")
        assert watch.returncode == 0, watch_err + w_err
        time.sleep(0.5)
        tcpdump.send_signal(signal.SIGINT)
        d_out, d_err = decode.communicate(timeout=60)
        tee.wait(30)
        tcpdump.wait(30)
    finally:
        _stop(*procs)
        lab.close()

    assert b"Traceback" not in d_err and b"Traceback" not in w_err
    piped = [json.loads(x) for x in d_out.decode().splitlines()]
    ref = lines(subprocess.run([*CLI, "decode", "--json", str(cap)], capture_output=True, text=True, cwd=ROOT))
    assert decode.returncode == 0, d_err
    assert_same_units(ref, piped)
    # QEMU's own counters
    rams = [o for o in piped if o["kind"] == "ram"]
    assert (sum(o["zero_pages"] for o in rams), sum(o["normal_pages"] for o in rams)) == \
        (ram["duplicate"], ram["normal"])

    live = [json.loads(x) for x in w_out.decode().splitlines()]
    filed = lines(subprocess.run([*CLI, "watch", "--json", str(cap)], capture_output=True, text=True, cwd=ROOT))

    def strip(objs: list[dict], kind: str) -> list[dict]:
        return [{k: v for k, v in o.items() if k not in _TIMES} for o in _kind(objs, kind)]

    passes = _kind(live, "watch_pass")
    assert strip(live, "watch_pass") == strip(filed, "watch_pass")
    assert strip(live, "watch_switchover") == strip(filed, "watch_switchover")
    syncs = ram["dirty-sync-count"]
    assert 2 <= len(passes) <= syncs - 1  # a lower bound of QEMU's pre-copy passes
    assert all(p["pages"] > 0 and p["bytes"] > 0 for p in passes)
    (m,) = _kind(live, "migration_summary")
    assert m["captures"] == ["interface:lo"] and m["precopy_iterations"] == len(passes)
    assert (m["ram_zero_pages"], m["ram_normal_pages"]) == (ram["duplicate"], ram["normal"])
    (sw,) = _kind(live, "watch_switchover")
    assert sw["method"] == "return-path SHUT" and 0 < sw["downtime_wire_ms"] <= info["downtime"] + 1.0
