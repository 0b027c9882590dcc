# SPDX-License-Identifier: GPL-2.0-only
"""`migtrace flows` and `migtrace extract` as a user runs them (cli.md, json-lines.md)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dissect.capture.reader import CaptureReader
from dissect.capture.writer import PcapWriter
from tests.conftest import TRACES, run_cli
from tests.test_capture_loopback import collect, exchange_plan

REAL = TRACES / "real"
LOOP = REAL / "loopback-ipv4.pcap"

FLOW_FIELDS = {"kind", "flow", "client", "server", "role", "c2s_bytes", "s2c_bytes", "retransmitted_bytes",
               "gaps", "first_ts", "last_ts"}


def jl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_flows_json_on_real_capture() -> None:
    proc = run_cli("flows", "--json", str(LOOP))
    assert proc.returncode == 0, proc.stderr
    objs = jl(proc.stdout)
    assert [o["kind"] for o in objs] == ["flow", "summary"]
    fl = objs[0]
    assert FLOW_FIELDS <= set(fl)
    sent_c, sent_s = (b"".join(x) for x in exchange_plan(1, 150_000))
    assert (fl["c2s_bytes"], fl["s2c_bytes"], fl["gaps"], fl["role"]) == (len(sent_c), len(sent_s), [], "other")
    assert fl["client"].startswith("127.0.0.1:") and fl["first_ts"] <= fl["last_ts"]
    assert objs[-1] == {"kind": "summary", "format": "pcap", "counts": {"flow": 1}, "errors": 0, "warnings": 0}


def test_flows_human_and_roles_on_qemu_capture() -> None:
    path = REAL / "qemu-tcp-multifd.pcap"
    if not path.exists():
        pytest.skip("no real multifd capture")
    proc = run_cli("flows", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:4] == ["flow", "client", "server", "role"]
    roles = [ln.split()[3] for ln in lines[1:] if ln.split()[0].isdigit()]
    assert roles[0] == "main" and "multifd" in roles


def _removed(tmp_path: Path) -> tuple[Path, int, int]:
    pk = [(p.ts_ns, bytes(p.data)) for p in CaptureReader(LOOP).packets()]
    from dissect.capture import link as L
    data = [i for i, (_, f) in enumerate(pk) if L.parse_tcp(1, f)[9] and L.parse_tcp(1, f)[3] != 0 and i > 10]
    victim = data[5]
    seg = L.parse_tcp(1, pk[victim][1])
    syn = L.parse_tcp(1, pk[0][1])
    start = (seg[5] - syn[5] - 1) & 0xFFFFFFFF
    path = tmp_path / "removed.pcap"
    with open(path, "wb") as f:
        w = PcapWriter(f, 1)
        for i, (ts, fr) in enumerate(pk):
            if i != victim:
                w.write(ts, fr)
    direction_is_c2s = seg[1] == syn[1] and seg[3] == syn[3]
    assert direction_is_c2s
    return path, start, start + seg[9]


def test_flows_reports_gap_with_exit_1(tmp_path: Path) -> None:
    path, start, end = _removed(tmp_path)
    proc = run_cli("flows", "--json", str(path))
    assert proc.returncode == 1
    objs = jl(proc.stdout)
    assert objs[0]["gaps"] == [{"direction": "c2s", "start": start, "end": end}]
    gap = [o for o in objs if o["kind"] == "finding" and o["code"] == "tcp_gap"]
    assert len(gap) == 1 and gap[0]["offset"] == start and gap[0]["severity"] == "error"
    assert objs[-1]["errors"] == 1


def test_extract_main_equals_reassembly(tmp_path: Path) -> None:
    path = REAL / "qemu-tcp-returnpath.pcap"
    if not path.exists():
        pytest.skip("no real QEMU capture")
    out = tmp_path / "main.mig"
    proc = run_cli("extract", str(path), "--main", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    got, res = collect(path)
    main = [f for f in res.flows if f.role == "main"][0]
    assert out.read_bytes() == bytes(got[(main.flow, "c2s")].buf)
    assert out.read_bytes()[:8] == b"QEVM\0\0\0\3"
    rp = tmp_path / "rp.bin"
    proc = run_cli("extract", str(path), "--main", "--direction", "s2c", "-o", str(rp))
    assert proc.returncode == 0
    assert rp.read_bytes() == bytes(got[(main.flow, "s2c")].buf) and rp.stat().st_size == main.s2c_bytes


def test_extract_gap_is_an_error_unless_filled(tmp_path: Path) -> None:
    path, start, end = _removed(tmp_path)
    sent_c = b"".join(exchange_plan(1, 150_000)[0])
    out = tmp_path / "o.bin"
    proc = run_cli("extract", str(path), "--flow", "0", "-o", str(out), "--json")
    assert proc.returncode == 1
    assert out.read_bytes() == sent_c[:start]
    codes = [o["code"] for o in jl(proc.stdout) if o["kind"] == "finding"]
    assert codes == ["tcp_gap", "extract_stopped_at_gap"]
    proc = run_cli("extract", str(path), "--flow", "0", "-o", str(out), "--fill-gaps", "zero", "--json")
    assert proc.returncode == 0, proc.stdout
    assert out.read_bytes() == sent_c[:start] + b"\0" * (end - start) + sent_c[end:]
    gap = [o for o in jl(proc.stdout) if o["kind"] == "finding"]
    assert [(o["code"], o["severity"]) for o in gap] == [("tcp_gap", "warning")]


def test_usage_errors(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert run_cli("extract", str(LOOP), "--flow", "7", "-o", str(out)).returncode == 2
    assert run_cli("extract", str(LOOP), "-o", str(out)).returncode == 2  # neither --main nor --flow
    txt = tmp_path / "x.txt"
    txt.write_bytes(b"\x00\x01 not a capture")
    assert run_cli("flows", str(txt)).returncode == 2
    assert run_cli("flows", str(tmp_path / "missing.pcap")).returncode == 2
    proc = run_cli("extract", str(LOOP), "--main", "-o", str(out))
    assert proc.returncode == 1 and "extract_nothing" in proc.stdout  # no main channel in this capture


@pytest.mark.parametrize("cmd", ["flows", "extract"])
def test_help_has_an_example(cmd: str) -> None:
    proc = run_cli(cmd, "--help")
    assert proc.returncode == 0 and "examples:" in proc.stdout and f"migtrace {cmd} " in proc.stdout
