# SPDX-License-Identifier: GPL-2.0-only
"""``migtrace watch``: pre-copy passes and the switchover as the capture arrives.

Oracles: the passes must agree with ``migtrace summary``'s ``precopy_iterations``
(method ``stream``, computed by the analysis pipeline in another process) and with
QEMU's own ``dirty sync count`` (a lower bound within one of it); the pass bytes with
the PART sections ``decode`` lists; the wire downtime with ``summary``'s.
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, TRACES, run_cli
from tests.test_live_pipe import lines, piped

WATCHED = [p for p in ["real/qemu-tcp-returnpath.pcap", "real/qemu-tcp-multifd.pcap",
                       "generated/qemu-9x-vfio-rp.pcapng", "generated/qemu-10x-multifd.pcapng",
                       "real/qemu10/multipass-rp.pcap", "real/qemu10/multipass.pcap"]
           if (TRACES / p).exists()]
_TIMES = ("ts", "ts_ns", "end_ts_ns", "duration_ms", "rate_bytes_per_s", "downtime_wire_ms")


def _kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


@pytest.mark.parametrize("name", WATCHED)
def test_watch_pipe_equals_file_and_summary(name: str):
    path = TRACES / name
    f = run_cli("watch", "--json", str(path))
    p = piped(path, "watch", "--json", "-")
    assert f.returncode == p.returncode == 0, (f.stderr, p.stderr)
    a, b = lines(f), lines(p)
    for kind in ("watch_pass", "watch_switchover"):
        assert _kind(a, kind) == _kind(b, kind), kind
    ma, mb = _kind(a, "migration_summary")[0], _kind(b, "migration_summary")[0]
    assert ma["captures"] == [str(path)] and mb["captures"] == ["-"]
    ma["captures"] = mb["captures"] = None
    assert ma == mb
    # the same pass definition as summary's stream estimate (another process, the analysis pipeline)
    (summ,) = _kind(lines(run_cli("summary", "--json", str(path))), "migration_summary")
    assert summ["precopy_iterations_method"] == "stream"
    passes = _kind(a, "watch_pass")
    assert len(passes) == summ["precopy_iterations"] >= 1
    assert [x["pass"] for x in passes] == list(range(1, len(passes) + 1))
    (sw,) = _kind(a, "watch_switchover")
    assert sw["precopy_passes"] == len(passes)
    assert sw["downtime_wire_ms"] == summ["downtime_wire_ms"]
    assert sum(x["pages"] for x in passes) + sw["stopcopy_pages"] == \
        summ["precopy_iterations_evidence"]["stream"]["sends"]


def test_watch_returnpath_values():
    """qemu-tcp-returnpath.pcap: QEMU 7.2, 4096 pc.ram pages sent in pass 1 (with the
    small blocks), 16 pc.ram pages sent again (pass 2), then the stop-copy."""
    path = TRACES / "real/qemu-tcp-returnpath.pcap"
    objs = lines(run_cli("watch", "--json", str(path)))
    p1, p2 = _kind(objs, "watch_pass")
    assert (p1["pages"], p1["bytes"]) == (4226, 562386)
    assert (p2["pages"], p2["bytes"]) == (16, 65689)
    assert p1["end_ts_ns"] == p2["ts_ns"]
    (sw,) = _kind(objs, "watch_switchover")
    assert (sw["method"], sw["downtime_wire_ms"], sw["stopcopy_bytes"]) == ("return-path SHUT", 2.641, 12906)
    assert sw["ts_ns"] == p2["end_ts_ns"]
    # pass bytes = the main channel's RAM PART sections (from decode's section list)
    dec = lines(run_cli("decode", "--json", str(path)))
    parts = [o for o in dec if o["kind"] == "section" and o["type"] == "PART"]
    assert p1["bytes"] + p2["bytes"] == sum(o["length"] for o in parts)
    # QEMU 7.2's own counters: 144 normal + 4098 zero pages = 4242 sends
    info = (TRACES / "real/qemu-tcp-returnpath.src-info-migrate.txt").read_text()
    assert p1["pages"] + p2["pages"] + sw["stopcopy_pages"] == 4242
    assert "dirty sync count: 4" in info  # 3 pre-copy passes: the estimate is a lower bound


def test_watch_multipass_within_one_of_qemu():
    path = TRACES / "real/qemu10/multipass-rp.pcap"
    info = TRACES / "real/qemu10/multipass-rp.src-info-migrate.txt"
    if not path.exists() or not info.exists():
        pytest.skip("traces/real/qemu10/multipass-rp not present")
    syncs = int(re.search(r"dirty sync count:\s*(\d+)", info.read_text()).group(1))
    passes = _kind(lines(run_cli("watch", "--json", str(path))), "watch_pass")
    assert syncs - 1 - 1 <= len(passes) <= syncs - 1
    assert passes[0]["pages"] > 8000 and all(p["pages"] < 200 for p in passes[1:])


def test_watch_vfio_per_device():
    path = TRACES / "generated/qemu-9x-vfio-rp.pcapng"
    objs = lines(run_cli("watch", "--json", str(path)))
    dec = lines(run_cli("decode", "--json", str(path)))
    (p1,) = _kind(objs, "watch_pass")
    (sw,) = _kind(objs, "watch_switchover")
    for dev in ("0000:00:05.0/vfio", "0000:00:06.0/vfio"):
        pre = [o for o in dec if o["kind"] == "vfio_chunk" and o["device"] == dev and o["phase"] == "precopy"]
        recs = [o for o in dec if o["kind"] == "vfio_record" and o["device"] == dev and o["phase"] == "precopy"]
        assert p1["vfio"][dev] == {"chunks": len(pre), "bytes": sum(o["size"] for o in pre), "records": len(recs)}
        assert p1["vfio"][dev]["records"] == 2
        stop = [o for o in dec if o["kind"] == "vfio_chunk" and o["device"] == dev and o["phase"] != "precopy"]
        assert sw["vfio"][dev]["bytes"] == sum(o["size"] for o in stop) > 0


def test_watch_rich_display_renders_passes():
    from rich.console import Console

    from analysis.cli.watch import RichDisplay

    console = Console(record=True, force_terminal=True, width=250)
    d = RichDisplay("x.pcap", console=console)
    d.event({"kind": "watch_pass", "pass": 1, "ts_ns": 10**9, "duration_ms": 500.0, "pages": 4226,
             "bytes": 562386, "rate_bytes_per_s": 1123367.8, "vfio": {"dev0": {"chunks": 2, "bytes": 2048,
                                                                            "records": 2}},
             "device_precopy_bytes": {"dev0": {"initial": 4096, "dirty": 1_500_000, "ts_ns": 1}}})
    d.event({"kind": "watch_switchover", "ts_ns": 2 * 10**9, "downtime_wire_ms": 2.641, "stopcopy_pages": 0,
             "stopcopy_bytes": 12906, "method": "return-path SHUT"})
    d.summary([{"kind": "finding", "severity": "error", "code": "tcp_gap", "message": "m"},
               {"kind": "finding", "severity": "info", "code": "metric_unavailable", "message": "i"}], "TABLE")
    text = console.export_text()
    assert "4226" in text and "0.56" in text and "dev0: 2 / 0.00" in text
    assert "[dev0 QEMU: init 0.00 dirty 1.50]" in text
    assert "2.641" in text and "wire downtime (return-path SHUT)" in text and "1.000" in text
    assert "TABLE" in text and "ERROR tcp_gap: m" in text and "metric_unavailable" not in text


def test_watch_usage_errors():
    assert run_cli("watch").returncode == 2
    p = run_cli("watch", "x.pcap", "--interface", "lo")
    assert p.returncode == 2 and "one of them" in p.stderr
    p = run_cli("watch", str(TRACES / "real/qemu-tcp-returnpath.pcap"), "--port", "4444")
    assert p.returncode == 2 and "--port goes with --interface" in p.stderr
    p = run_cli("watch", "/nonexistent.pcap")
    assert p.returncode == 2 and "no such file" in p.stderr


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _replay(c2s: bytes, s2c: bytes, port: int) -> None:
    """A QEMU-like sender over loopback: the main channel's bytes, then the return path's."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        while conn.recv(1 << 16):
            pass
        conn.sendall(s2c)
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    cl = socket.create_connection(("127.0.0.1", port))
    for i in range(0, len(c2s), 32768):
        cl.sendall(c2s[i:i + 32768])
        time.sleep(0.002)
    cl.shutdown(socket.SHUT_WR)
    while cl.recv(1 << 16):
        pass
    cl.close()
    t.join(30)
    srv.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="tcpdump on lo needs root")
def test_watch_interface_loopback(tmp_path: Path):
    """--interface lo: tcpdump captures a replay of a real main channel (and its return
    path) over loopback; watch decodes the same passes (pages, bytes) as the file."""
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed (scripts/test.sh installs it on Debian as root)")
    src = TRACES / "real/qemu-tcp-returnpath.pcap"
    c2s, s2c = tmp_path / "c2s.mig", tmp_path / "s2c.mig"
    assert run_cli("extract", str(src), "--main", "-o", str(c2s)).returncode == 0
    assert run_cli("extract", str(src), "--main", "--direction", "s2c", "-o", str(s2c)).returncode == 0
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "analysis.cli.main", "watch", "--interface", "lo",
                             "--port", str(port), "--json", "--idle-timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        err = b""
        deadline = time.monotonic() + 30
        while b"listening on" not in err and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stderr], [], [], 1)[0]:
                err += os.read(proc.stderr.fileno(), 4096)
        assert b"listening on" in err, err
        _replay(c2s.read_bytes(), s2c.read_bytes(), port)
        out, more = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err + more
    live = [json.loads(x) for x in out.decode().splitlines()]
    ref = lines(run_cli("watch", "--json", str(src)))

    def strip(objs: list[dict], kind: str) -> list[dict]:
        return [{k: v for k, v in o.items() if k not in _TIMES} for o in _kind(objs, kind)]

    assert strip(live, "watch_pass") == strip(ref, "watch_pass")
    assert len(strip(live, "watch_pass")) == 2
    assert strip(live, "watch_switchover") == strip(ref, "watch_switchover")
    (m,) = _kind(live, "migration_summary")
    assert m["captures"] == ["interface:lo"] and m["bytes_main"] == 739968
    assert (m["ram_zero_pages"], m["ram_normal_pages"]) == (4098, 144)


def _log_line(ts_ns: int, text: str) -> str:
    return f"4242@{ts_ns // 10**9}.{(ts_ns % 10**9) // 1000:06d}:{text}\n"


def test_watch_qemu_log_device_precopy_sizes(tmp_path: Path):
    """--qemu-log: each pass carries the last pre-copy sizes QEMU reported for each device
    before the pass ended.  The log is generated here (rendered with the trace-events
    catalogue at times inside the passes of a real capture), not recorded."""
    from dissect.qemu.trace_events import format_event

    path = TRACES / "real/qemu-tcp-returnpath.pcap"
    p1, p2 = _kind(lines(run_cli("watch", "--json", str(path))), "watch_pass")
    t1, t2 = p1["end_ts_ns"], p2["end_ts_ns"]
    ms = 1_000_000

    def it(init: int, dirty: int) -> str:
        return format_event("vfio_save_iterate", "9.2-dec", name="0000:00:05.0", precopy_init_size=init,
                            precopy_dirty_size=dirty)

    log = tmp_path / "src.log"
    log.write_text(
        _log_line(p1["ts_ns"] + ms, format_event("vfio_state_pending_exact", "9.2-dec", name="0000:00:05.0",
                                                 precopy=8192, postcopy=0, stopcopy_size=9000,
                                                 precopy_init_size=8192, precopy_dirty_size=0))
        + _log_line(p1["ts_ns"] + 2 * ms, "migrate_set_state new state active")
        + _log_line(t1 - ms, it(4096, 100))
        + _log_line(t1 + 100_000, it(0, 300))
        + _log_line(t1 + 200_000, "vfio_save_iterate  (0000:00:05.0) data_size 77")  # 7.2: no sizes
        + _log_line(t2 + 5 * ms, it(0, 999))
        + "4242@17956323")  # a line still being written: not read
    objs = lines(run_cli("watch", "--json", "--qemu-log", str(log), str(path)))
    q1, q2 = _kind(objs, "watch_pass")
    assert q1["device_precopy_bytes"] == {"0000:00:05.0": {"initial": 4096, "dirty": 100, "ts_ns": t1 - ms}}
    assert q2["device_precopy_bytes"] == {"0000:00:05.0": {"initial": 0, "dirty": 300, "ts_ns": t1 + 100_000}}
    # QEMU's VFIO device name is mapped to the capture's vmstate idstr when the capture has the device
    vpath = TRACES / "generated/qemu-9x-vfio-rp.pcapng"
    (v1,) = _kind(lines(run_cli("watch", "--json", str(vpath))), "watch_pass")
    vlog = tmp_path / "v.log"
    vlog.write_text(_log_line(v1["ts_ns"] + 1000, it(1212, 0)))
    (w1,) = _kind(lines(run_cli("watch", "--json", "--qemu-log", str(vlog), str(vpath))), "watch_pass")
    assert w1["device_precopy_bytes"] == {"0000:00:05.0/vfio": {"initial": 1212, "dirty": 0,
                                                                "ts_ns": v1["ts_ns"] + 1000}}
    assert run_cli("watch", "--qemu-log", str(tmp_path / "none.log"), str(path)).returncode == 2
