# SPDX-License-Identifier: GPL-2.0-only
"""Simulated run folders: run.json per the contract, byte-identical reruns, and
captures that the project's decoders read back without error findings,
giving back the records and parts that were put in."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.manifest import read_manifest
from analysis.simulate import simulate
from analysis.simulate.model import build_timeline
from analysis.simulate.profiles import PRESETS, resolve
from tests.conftest import require_tool, run_cli


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sim")
    return {name: simulate(PRESETS[name], 3, root / name) for name in ("default", "qemu10", "qemu81", "trailer")}


def _lines(proc) -> list[dict]:
    return [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]


def test_run_json_follows_the_contract(runs: dict[str, Path]) -> None:
    for folder in runs.values():
        m = read_manifest(folder / "run.json")
        assert m.kind == "simulated"
        raw = json.loads((folder / "run.json").read_text())
        assert raw["schema"] == 1 and raw["driver_precopy_policy"] in ("cap128", "ratelimited")
        roles = {c["role"] for c in raw["captures"]}
        assert {"source-trace", "destination-trace", "admin"} <= roles
        for c in raw["captures"]:
            assert (folder / c["path"]).is_file()
        t = raw["truth"]
        for key in ("precopy_iterations", "dirty_syncs", "qemu_iterate_sections", "ram_zero_pages", "ram_normal_pages", "downtime_qemu_ms",
                    "downtime_wire_ms", "downtime_breakdown_ms", "precopy_chunks", "precopy_snapshots",
                    "precopy_policy", "stopcopy_records", "stopcopy_bytes", "record_bytes_min",
                    "record_bytes_median", "record_bytes_p95", "record_bytes_max", "trailer_bug",
                    "parts_per_record_median", "bytes_by_part_type", "admin_latency_ms"):
            assert key in t, key
    assert json.loads((runs["trailer"] / "run.json").read_text())["kernel"] == "6.14.2"


def test_rerun_gives_identical_bytes(tmp_path: Path, runs: dict[str, Path]) -> None:
    again = simulate(PRESETS["default"], 3, tmp_path / "again")
    for f in sorted(p.name for p in runs["default"].iterdir()):
        assert (again / f).read_bytes() == (runs["default"] / f).read_bytes(), f


def test_traces_decode_without_errors(runs: dict[str, Path]) -> None:
    for name, folder in runs.items():
        for f in ("source.dat", "destination.dat"):
            proc = run_cli("decode", "--json", str(folder / f))
            assert proc.returncode == 0, (name, f, proc.stderr)
            lines = _lines(proc)
            assert lines[-1]["errors"] == 0 and lines[-1]["warnings"] == 0
            prints = [o for o in lines if o["kind"] == "event" and o["event"] == "print"]
            assert prints and all(o["qemu"] is not None for o in prints)


def test_trace_gives_back_the_chunks(runs: dict[str, Path]) -> None:
    folder = runs["default"]
    tl = build_timeline(PRESETS["default"], 3)
    proc = run_cli("decode", "--json", str(folder / "source.dat"))
    sizes = [o["qemu"]["args"]["data_size"] for o in _lines(proc)
             if o["kind"] == "event" and o.get("qemu") and o["qemu"]["event"] == "vfio_save_block"]
    assert sizes == [c.size for c in tl.chunks[0]]
    truth = json.loads((folder / "run.json").read_text())["truth"]
    assert sizes == truth["devices"][0]["chunks"]["precopy"] + truth["devices"][0]["chunks"]["stopcopy"]


def test_qemu81_trace_uses_hex_sizes(runs: dict[str, Path]) -> None:
    proc = run_cli("decode", "--json", str(runs["qemu81"] / "source.dat"))
    texts = [o["text"] for o in _lines(proc) if o["kind"] == "event" and o["event"] == "print"]
    it = [x for x in texts if "vfio_save_iterate " in x]
    assert it and all("precopy initial size 0x" in x for x in it)
    assert not any("vmstate_downtime_checkpoint" in x for x in texts)  # 8.2+ only
    proc = run_cli("decode", "--json", str(runs["default"] / "source.dat"))
    texts = [o["text"] for o in _lines(proc) if o["kind"] == "event" and o["event"] == "print"]
    assert any("vmstate_downtime_checkpoint src-downtime-start" in x for x in texts)


def test_trace_cmd_reads_the_traces(runs: dict[str, Path]) -> None:
    import subprocess

    tool = require_tool("trace-cmd")
    out = subprocess.run([tool, "report", str(runs["default"] / "source.dat")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    assert "vfio_save_setup  (0000:3b:00.1) data buffer size 441" in out.stdout
    assert "sys_enter_ioctl" in out.stdout and "cmd: 0x00003b79" in out.stdout


def test_admin_capture_gives_back_records_and_parts(runs: dict[str, Path]) -> None:
    folder = runs["trailer"]
    tl = build_timeline(PRESETS["trailer"], 3)
    for side, fname in (("source", "admin-source.pcapng"), ("destination", "admin-destination.pcapng")):
        proc = run_cli("decode", "--json", str(folder / fname))
        assert proc.returncode == 0, proc.stderr
        lines = _lines(proc)
        assert lines[-1]["errors"] == 0
        cmds = [o for o in lines if o["kind"] == "admin_cmd"]
        assert [o["opcode_name"] for o in cmds] == [c.opcode for c in sorted(
            (c for c in tl.admin if c.side == side), key=lambda c: c.ts_ns)]
        results = [o for o in lines if o["kind"] == "admin_result"]
        assert all(o["status_name"] == "OK" for o in results)
    # destination: DEV_PARTS_SET carries each record's payload incl. the 8 junk bytes
    proc = run_cli("decode", "--json", str(folder / "admin-destination.pcapng"))
    lines = _lines(proc)
    findings = [o["code"] for o in lines if o["kind"] == "finding"]
    sets = [c for c in tl.admin if c.opcode == "DEV_PARTS_SET"]
    assert len(sets) == len(tl.records[0])
    assert all(len(c.parts) == r.record_size for c, r in zip(sets, tl.records[0]))
    assert findings  # the trailer is reported, never silently dropped
    parts = [o for o in lines if o["kind"] == "dev_part"]
    assert len(parts) == sum(len(r.part_types) for r in tl.records[0])


def test_cli_simulate_writes_a_run(tmp_path: Path) -> None:
    proc = run_cli("simulate", "--profile", "default", "--firmware", "fw-28.41", "--policy", "cap128",
                   "--seed", "4", "-o", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "r" / "run.json").read_text())
    assert m["firmware"]["version"] == "28.41.1000" and m["driver_precopy_policy"] == "cap128"
    assert m["truth"]["precopy_device_queries"] == 128
    assert "downtime" in proc.stdout
    assert run_cli("simulate", "--help").returncode == 0
    assert "migtrace simulate --profile" in run_cli("simulate", "--help").stdout
    assert resolve("default", policy="cap128").busy_s > 8


class _DeviceBytes:
    """DeviceSink collecting each VFIO device's concatenated data (D's parser interface)."""

    def __init__(self) -> None:
        self.streams: dict[str, bytearray] = {}
        self.configs: dict[str, bytes] = {}

    def data_offset(self, device: str) -> int:
        return len(self.streams.get(device, b""))

    def data(self, device, phase, data, ts_ns, offset):
        self.streams.setdefault(device, bytearray()).extend(data)
        return []

    def lost(self, device, nbytes, offset):
        raise AssertionError(f"{device}: {nbytes} bytes lost at {offset}")

    def config(self, device, blob, ts_ns, offset):
        self.configs[device] = bytes(blob)
        return []


def _parse_main(path: Path):
    from dissect.capture.tcp import reassemble
    from dissect.qemu.stream import StreamParser

    units: list = []
    sink = _DeviceBytes()
    parsers = []

    def factory(flow, direction):
        if direction != "c2s" or flow.index != 0:
            return None
        p = StreamParser(units.append, flow=flow.index, devices=sink)
        parsers.append(p)
        return p

    res = reassemble(path, factory)
    return res, units, sink, parsers


@pytest.mark.parametrize("name", ["default", "qemu81", "trailer"])
def test_source_pcapng_gives_back_the_records(runs: dict[str, Path], name: str) -> None:
    from dissect.vfio.stream import split_records

    folder = runs[name]
    tl = build_timeline(PRESETS[name], 3)
    res, units, sink, parsers = _parse_main(folder / "source.pcapng")
    assert not res.findings and not parsers[0].findings
    assert [f.gaps for f in res.flows] == [[]]
    kinds = [u["kind"] for u in units if isinstance(u, dict)]
    assert "finding" not in kinds and kinds.count("vmdesc") == 1 and kinds.count("eof") == 1
    chunks = [(u["phase"], u["size"]) for u in units if isinstance(u, dict) and u["kind"] == "vfio_chunk"
              and u["phase"] != "config"]
    assert chunks == [(c.phase, c.size) for c in tl.chunks[0]]
    stream = bytes(sink.streams["0000:00:05.0/vfio"])
    assert stream == b"".join(r.data for r in tl.records[0])
    recs = [r for r in split_records(stream) if not hasattr(r, "severity")]
    assert [r.record_size for r in recs] == [r.record_size for r in tl.records[0]]
    assert [r.trailer_bytes for r in recs] == [len(r.trailer) for r in tl.records[0]]
    assert [len(r.parts) for r in recs] == [len(r.part_types) for r in tl.records[0]]
    assert sink.configs["0000:00:05.0/vfio"] == tl.config_blobs[0]
    truth = json.loads((folder / "run.json").read_text())["truth"]
    assert truth["bytes_main"] == res.flows[0].c2s_bytes
    rp = res.flows[0].s2c_bytes
    assert rp == 8 + 4 + 8  # PONG(1), SWITCHOVER_ACK, SHUT(0)


def test_qemu10_pcapng_has_multifd_flows(runs: dict[str, Path]) -> None:
    from dissect.capture.flows import classify

    res, units, sink, parsers = _parse_main(runs["qemu10"] / "source.pcapng")
    assert not res.findings and not parsers[0].findings
    assert len(res.flows) == 3
    truth = json.loads((runs["qemu10"] / "run.json").read_text())["truth"]
    assert truth["bytes_multifd"] == sum(f.c2s_bytes for f in res.flows[1:])
    # the main channel carries only the pre-copy part of the device stream
    tl = build_timeline(PRESETS["qemu10"], 3)
    pre = b"".join(r.data for r in tl.records[0] if r.phase == "precopy")
    assert bytes(sink.streams["0000:00:05.0/vfio"]) == pre
    commands = [u["cmd_name"] for u in units if isinstance(u, dict) and u["kind"] == "command"]
    assert commands == ["OPEN_RETURN_PATH", "PING", "SWITCHOVER_START"]
    with open(runs["qemu10"] / "source.pcapng", "rb") as f:
        assert f.read(4) == b"\x0a\x0d\x0d\x0a"
    assert classify(bytes.fromhex("1122334400000001")) == "multifd"


def test_tshark_reads_the_source_pcapng(runs: dict[str, Path]) -> None:
    import subprocess

    tool = require_tool("tshark")
    out = subprocess.run([tool, "-r", str(runs["qemu10"] / "source.pcapng"), "-q", "-z", "conv,tcp"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert out.stdout.count("192.168.100.2:49152") == 3
    # no expert infos of severity warning or error (bad checksums, malformed, lost segments)
    exp = subprocess.run([tool, "-r", str(runs["default"] / "source.pcapng"), "-q", "-z", "expert,warn"],
                         capture_output=True, text=True, timeout=120)
    assert exp.returncode == 0 and "Warns" not in exp.stdout and "Errors" not in exp.stdout


@pytest.mark.parametrize("name", ["default", "qemu10", "trailer"])
def test_migtrace_decode_reads_the_source_pcapng(runs: dict[str, Path], name: str) -> None:
    import importlib.util

    if importlib.util.find_spec("analysis.emit.migration") is None:
        pytest.skip("the migration emitter (engineer D) is not in this tree")
    proc = run_cli("decode", "--json", str(runs[name] / "source.pcapng"))
    lines = _lines(proc)
    errors = [o for o in lines if o["kind"] == "finding" and o["severity"] == "error"]
    assert proc.returncode == 0 and not errors, errors[:3]
    tl = build_timeline(PRESETS[name], 3)
    recs = [o for o in lines if o["kind"] == "vfio_record"]
    assert [o["record_size"] for o in recs] == [r.record_size for r in tl.records[0]]
    assert [o["phase"] for o in recs] == [r.phase for r in tl.records[0]]
    assert [o["trailer_bytes"] for o in recs] == [len(r.trailer) for r in tl.records[0]]
    parts = [o for o in lines if o["kind"] == "dev_part" and o.get("record") is not None]
    assert len(parts) == sum(len(r.part_types) for r in tl.records[0])


def test_admin_records_in_the_trace(tmp_path: Path) -> None:
    folder = simulate(PRESETS["admin-in-trace"], 2, tmp_path / "ait")
    tl = build_timeline(PRESETS["admin-in-trace"], 2)
    for side, fname in (("source", "source.dat"), ("destination", "destination.dat")):
        proc = run_cli("decode", "--json", str(folder / fname))
        lines = _lines(proc)
        assert proc.returncode == 0 and lines[-1]["errors"] == 0
        cmds = [o["opcode_name"] for o in lines if o["kind"] == "admin_cmd"]
        want = [c.opcode for c in sorted((c for c in tl.admin if c.side == side), key=lambda c: c.ts_ns)]
        assert cmds == want
        raw = [o for o in lines if o["kind"] == "event" and o["event"] == "raw_data"]
        assert raw and all(o["fields"]["id"] == 0x76697274 for o in raw)


def test_query_migrate_reply_matches_the_run(runs: dict[str, Path]) -> None:
    for name, folder in runs.items():
        manifest = json.loads((folder / "run.json").read_text())
        t = manifest["truth"]
        assert {"path": "source-query-migrate.json", "role": "other"} in manifest["captures"]
        r = json.loads((folder / "source-query-migrate.json").read_text())["return"]
        assert r["status"] == "completed"
        assert r["downtime"] == t["downtime_query_migrate_ms"] == int(t["downtime_qemu_ms"])
        assert r["ram"]["duplicate"] == t["ram_zero_pages"] and r["ram"]["normal"] == t["ram_normal_pages"]
        assert r["ram"]["transferred"] == t["bytes_main"] + t["bytes_multifd"]
        assert r["ram"]["dirty-sync-count"] == t["dirty_syncs"] == t["precopy_iterations"] + 1
        chunks = t["devices"][0]["chunks"]
        if name == "qemu10":  # stop-copy as device-state packets, 12-byte header each, config packet last
            assert r["vfio"]["transferred"] > sum(chunks["precopy"]) + sum(chunks["stopcopy"])
        else:
            assert r["vfio"]["transferred"] == sum(chunks["precopy"]) + sum(chunks["stopcopy"])


def test_cli_knobs_and_usage_errors(tmp_path: Path) -> None:
    proc = run_cli("simulate", "--no-switchover-ack", "--vfs", "2", "--busy-s", "1.5", "--seed", "5",
                   "-o", str(tmp_path / "k"))
    assert proc.returncode == 0, proc.stderr
    m = json.loads((tmp_path / "k" / "run.json").read_text())
    assert m["vm"]["vfs"] == 2 and len(m["truth"]["devices"]) == 2
    assert m["truth"]["switchover_ack"] is False and m["labels"]["switchover_ack"] == "off"
    assert run_cli("simulate", "--vfs", "0", "-o", str(tmp_path / "x")).returncode == 2
    assert run_cli("simulate", "--profile", "nosuch", "-o", str(tmp_path / "x")).returncode == 2
    assert run_cli("simulate").returncode == 2  # -o is required
    listing = run_cli("simulate", "--list")
    assert listing.returncode == 0 and "fw-28.41" in listing.stdout and "28.41.1000" in listing.stdout
