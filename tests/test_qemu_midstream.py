# SPDX-License-Identifier: GPL-2.0-only
"""Captures started after ``migrate``: connections picked up in the middle (dissect/qemu/midstream.py).

The late captures are real QEMU 10.0.2 captures with their first packets removed by Wireshark's
editcap (independent of this project).  What is decoded after the resynchronisation point must be
exactly what the whole capture decodes there (shifted by the missing prefix, which the flow's byte
counts give), and the sections must be the last ones of QEMU's own ``savevm_section_start``
trace; nothing may be an error.
"""
from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path

import pytest

from dissect.qemu import wire as W
from dissect.qemu.records import payload_kind
from tests.conftest import TRACES, require_tool, run_cli
from tests.test_live_pipe import assert_same_units, piped

Q10 = TRACES / "real" / "qemu10"


def late(src: Path, drop: int, tmp_path: Path) -> Path:
    """``src`` without its first ``drop`` packets (SYNs and stream headers among them)."""
    editcap = require_tool("editcap")
    out = tmp_path / f"{src.stem}-from-{drop + 1}.pcap"
    subprocess.run([editcap, "-F", "pcap", str(src), str(out), f"1-{drop}"], check=True, capture_output=True)
    return out


def decode(path: Path) -> list[dict]:
    p = run_cli("decode", "--json", str(path))
    assert p.returncode == 0 and not p.stderr, p.stderr
    return [json.loads(x) for x in p.stdout.splitlines()]


def codes(objs: list[dict], flow: int | None = None) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in objs:
        if o["kind"] == "finding" and (flow is None or o.get("flow") == flow):
            out.setdefault(o["code"], []).append(o)
    return out


def flows(objs: list[dict]) -> dict[int, dict]:
    return {o["flow"]: o for o in objs if o["kind"] == "flow"}


_full: dict[str, list[dict]] = {}


def full(name: str) -> list[dict]:
    if name not in _full:
        _full[name] = decode(Q10 / name)
    return _full[name]


def _sections(objs: list[dict], flow: int, shift: int = 0, since: int = 0) -> list[tuple]:
    return [(o["offset"] + shift, o["length"], o["type"], o["section_id"], o["idstr"], o["instance_id"],
             o["version_id"], o["ts_ns"]) for o in objs
            if o["kind"] == "section" and o["flow"] == flow and o["offset"] + shift >= since]


@pytest.mark.parametrize("drop", [20, 60, 150])
def test_main_channel_picked_up_after_migrate(tmp_path, drop):
    if not (Q10 / "multipass.pcap").exists():
        pytest.skip("traces/real/qemu10/multipass.pcap absent")
    objs = decode(late(Q10 / "multipass.pcap", drop, tmp_path))
    ref = full("multipass.pcap")
    (fl,) = flows(objs).values()
    (fr,) = flows(ref).values()
    assert (fl["role"], fl["syn_seen"]) == ("main", False)
    k = fr["c2s_bytes"] - fl["c2s_bytes"]  # bytes sent before the capture started
    assert k > 0
    f = codes(objs)
    assert not [o for o in objs if o["kind"] == "finding" and o["severity"] == "error"]
    (pick,) = f["flow_picked_up_midstream"]
    (res,) = f["resync"]
    assert pick["offset"] == res["offset"] and pick["role"] == "main"
    assert [o["section_id"] for o in f["section_inferred"]] == [1]  # QEMU 10's ram section (its trace)
    # every section from the resynchronisation point on, exactly as the whole capture has it
    ours = _sections(objs, fl["flow"], k)
    assert ours and ours == _sections(ref, fr["flow"], 0, res["offset"] + k)
    # ... and the last sections of QEMU's own trace (START sections have no savevm_section_start)
    text = (Q10 / "multipass.src.log").read_text()
    traced = [(m[0], int(m[1])) for m in re.findall(r"savevm_section_start (\S+), section_id (\d+)", text)]
    mine = [(s[4], s[3]) for s in ours]
    assert mine == traced[-len(mine):]
    # RAM pages per section as in the whole capture.  CONTINUE pages name no block and QEMU names
    # one only when it changes (last_sent_block survives iterations): until a page names one, the
    # pages count in block "?", which stands for exactly the blocks the whole capture names there
    ram = [o for o in objs if o["kind"] == "ram"]
    ram_ref = [o for o in ref if o["kind"] == "ram"][-len(ram):]
    assert [(o["zero_pages"], o["normal_pages"], o["bytes"]) for o in ram] == \
        [(o["zero_pages"], o["normal_pages"], o["bytes"]) for o in ram_ref]
    for o, r in zip(ram, ram_ref):
        named = {b: v for b, v in o["blocks"].items() if b != "?"}
        assert named == {b: r["blocks"][b] for b in named}
        rest = [v for b, v in r["blocks"].items() if b not in named]
        if "?" in o["blocks"]:
            assert o["blocks"]["?"] == {"zero_pages": sum(v["zero_pages"] for v in rest),
                                        "normal_pages": sum(v["normal_pages"] for v in rest)}
        else:
            assert not rest
    assert [o["kind"] for o in objs if o["kind"] in ("eof", "vmdesc")] == ["eof", "vmdesc"]


def test_multifd_channels_picked_up_after_migrate(tmp_path):
    """Dropped: the SYNs, the main channel's header and setup, every multifd init packet."""
    if not (Q10 / "multifd.pcap").exists():
        pytest.skip("traces/real/qemu10/multifd.pcap absent")
    objs = decode(late(Q10 / "multifd.pcap", 57, tmp_path))
    ref = full("multifd.pcap")
    assert not [o for o in objs if o["kind"] == "finding" and o["severity"] == "error"]
    fs, rs = flows(objs), {(o["client"], o["server"]): o for o in flows(ref).values()}
    assert sorted(o["role"] for o in fs.values()) == ["main", "multifd", "multifd", "multifd", "multifd"]
    text = (Q10 / "multifd.src.log").read_text()
    traced = {(int(n), int(fl, 16), int(sz)) for n, fl, sz in re.findall(
        r"multifd_send_fill channel \d+ packet_num (\d+) flags (0x[0-9a-f]+) next packet size (\d+)", text)}
    packets = 0
    for fl in fs.values():
        fr = rs[(fl["client"], fl["server"])]
        assert fl["syn_seen"] is False and fl["role"] == fr["role"]
        k = fr["c2s_bytes"] - fl["c2s_bytes"]
        (res,) = codes(objs, fl["flow"])["resync"]
        if fl["role"] == "main":
            assert _sections(objs, fl["flow"], k) == _sections(ref, fr["flow"], 0, res["offset"] + k)
            continue
        key = ("offset", "type", "flags", "packet_num", "ramblock", "normal_pages", "zero_pages",
               "next_packet_size", "ts_ns")
        ours = [tuple(o[x] + k if x == "offset" else o[x] for x in key) for o in objs
                if o["kind"] == "multifd_packet" and o["flow"] == fl["flow"]]
        theirs = [tuple(o[x] for x in key) for o in ref if o["kind"] == "multifd_packet"
                  and o["flow"] == fr["flow"] and o["offset"] >= res["offset"] + k]
        assert ours and ours == theirs
        assert {(o[3], o[2], o[7]) for o in ours} <= traced
        packets += len(ours)
    assert packets >= 60


def test_late_capture_through_a_pipe(tmp_path):
    if not (Q10 / "multipass.pcap").exists():
        pytest.skip("traces/real/qemu10/multipass.pcap absent")
    cut = late(Q10 / "multipass.pcap", 60, tmp_path)
    p = piped(cut, "decode", "--json", "-")
    assert p.returncode == 0
    objs = [json.loads(x) for x in p.stdout.splitlines()]
    assert_same_units(decode(cut), objs)
    assert [o["role"] for o in objs if o["kind"] == "flow"] == ["main"]


# -- what a section's data starts with (qemu-migration-stream.md §6: RAM page headers) ------------

def _hdr(addr: int, flags: int) -> bytes:
    return struct.pack(">Q", addr | flags)


@pytest.mark.parametrize("data,kind", [
    (_hdr(0x7000, W.RAM_SAVE_FLAG_PAGE) + b"\x06pc.ram", "ram"),
    (_hdr(0x7000, W.RAM_SAVE_FLAG_ZERO | W.RAM_SAVE_FLAG_CONTINUE) + b"\x00", "ram"),
    (_hdr(0, W.RAM_SAVE_FLAG_EOS), "ram"),
    (_hdr(0, W.RAM_SAVE_FLAG_MULTIFD_FLUSH), "ram"),
    (_hdr(0x1000, W.RAM_SAVE_FLAG_EOS), ""),              # EOS carries no address
    (_hdr(0, W.RAM_SAVE_FLAG_MEM_SIZE), ""),              # the block list: setup (START) only
    (_hdr(0x7000, W.RAM_SAVE_FLAG_PAGE) + b"\x02\x01\x02", ""),  # a block name is printable
    (_hdr(0x7000, W.RAM_SAVE_FLAG_PAGE) + b"\x00", ""),   # ... and not empty
    (struct.pack(">Q", W.VFIO_MIG_FLAG_DEV_DATA_STATE), "vfio"),
    (struct.pack(">Q", W.VFIO_MIG_FLAG_END_OF_STATE), "vfio"),
    (b"\x00" * 7, None),
    (_hdr(0x7000, W.RAM_SAVE_FLAG_PAGE) + b"\x06pc", None),  # the name is not all here yet
])
def test_payload_kind(data, kind):
    assert payload_kind(data, 0, len(data), 4095) == kind


def test_summary_of_a_late_capture_nulls_whole_stream_totals_and_keeps_the_switchover(tmp_path):
    if not (Q10 / "multipass.pcap").exists():
        pytest.skip("traces/real/qemu10/multipass.pcap absent")

    def summary(path: Path) -> tuple[dict, list[dict]]:
        p = run_cli("summary", "--json", str(path))
        assert p.returncode == 0, p.stderr
        objs = [json.loads(x) for x in p.stdout.splitlines()]
        (s,) = [o for o in objs if o["kind"] == "migration_summary"]
        return s, [o for o in objs if o["kind"] == "finding"]

    s, f = summary(late(Q10 / "multipass.pcap", 60, tmp_path))
    ref, _ = summary(Q10 / "multipass.pcap")
    whole = ("ram_zero_pages", "ram_normal_pages", "bytes_main", "bytes_multifd", "total_ms", "setup_ms")
    assert all(ref[k] is not None for k in whole) and all(s[k] is None for k in whole)
    assert s["downtime_wire_ms"] == ref["downtime_wire_ms"] is not None  # the switchover was captured
    (w,) = [o for o in f if o["code"] == "capture_started_late"]
    assert w["severity"] == "warning" and w["flows"] == [0]
    assert set(whole) - {"total_ms", "setup_ms"} <= set(w["nulled"])
    why = {o["metric"]: o["message"] for o in f if o["code"] == "metric_unavailable"}
    assert all("the capture started after the migration" in why[k] for k in whole)


@pytest.mark.parametrize("drop", [30, 100])
def test_return_path_of_a_late_main_channel(tmp_path, drop):
    """multifd-rp.pcap (return path + switchover-ack): the RP messages sent after the capture started
    are the whole capture's last ones, at offsets shifted by the s2c bytes missed."""
    if not (Q10 / "multifd-rp.pcap").exists():
        pytest.skip("traces/real/qemu10/multifd-rp.pcap absent")
    objs = decode(late(Q10 / "multifd-rp.pcap", drop, tmp_path))
    ref = full("multifd-rp.pcap")
    assert not [o for o in objs if o["kind"] == "finding" and o["severity"] == "error"]
    (fl,) = [o for o in flows(objs).values() if o["role"] == "main"]
    (fr,) = [o for o in flows(ref).values() if o["role"] == "main"]
    k = fr["s2c_bytes"] - fl["s2c_bytes"]
    ours = [(o["offset"] + k, o["type_name"], o["value"], o["ts_ns"]) for o in objs if o["kind"] == "rp_message"]
    theirs = [(o["offset"], o["type_name"], o["value"], o["ts_ns"]) for o in ref if o["kind"] == "rp_message"]
    assert ours and ours == theirs[-len(ours):] and ours[-1][1] == "SHUT"
    # every message the destination traced after the capture started is there
    assert len(ours) == sum(1 for t in theirs if t[3] >= fl["first_ts_ns"])
    picked = [o for o in codes(objs, fl["flow"])["flow_picked_up_midstream"] if o["role"] == "return-path"]
    assert len(picked) == 1


def test_flows_gives_late_flows_the_roles_decode_gives_and_extract_takes_their_bytes(tmp_path):
    if not (Q10 / "multifd.pcap").exists():
        pytest.skip("traces/real/qemu10/multifd.pcap absent")
    cut = late(Q10 / "multifd.pcap", 57, tmp_path)
    p = run_cli("flows", "--json", str(cut))
    assert p.returncode == 0, p.stderr
    listed = {o["flow"]: o["role"] for o in map(json.loads, p.stdout.splitlines()) if o["kind"] == "flow"}
    decoded = {fl: o["role"] for fl, o in flows(decode(cut)).items()}
    assert listed == decoded and sorted(listed.values()).count("multifd") == 4
    # the late main channel's bytes: the tail of the whole capture's main channel
    (main,) = [fl for fl, r in listed.items() if r == "main"]
    a, b = tmp_path / "late.bin", tmp_path / "whole.bin"
    assert run_cli("extract", "--flow", str(main), "-o", str(a), str(cut)).returncode == 0
    assert run_cli("extract", "--main", "-o", str(b), str(Q10 / "multifd.pcap")).returncode == 0
    late_bytes, whole = a.read_bytes(), b.read_bytes()
    assert 0 < len(late_bytes) < len(whole) and whole.endswith(late_bytes)
    # --main picks a channel by its stream header, which the late one lacks: the error names the way
    p = run_cli("extract", "--main", "--json", "-o", str(tmp_path / "none.bin"), str(cut))
    assert p.returncode == 1
    (err,) = [o for o in map(json.loads, p.stdout.splitlines()) if o.get("code") == "extract_nothing"]
    assert main in err["late_flows"] and "--flow N" in err["message"]


def test_follow_of_a_late_capture_ends_with_the_migration(tmp_path):
    """--follow stops once the main channel picked up mid-stream reached its EOF (not on the idle timeout)."""
    import subprocess as sp
    import sys

    from tests.conftest import ROOT
    from tests.test_live_follow import _writer

    if not (Q10 / "multipass.pcap").exists():
        pytest.skip("traces/real/qemu10/multipass.pcap absent")
    cut = late(Q10 / "multipass.pcap", 60, tmp_path)
    dst = tmp_path / "growing.pcap"
    dst.write_bytes(b"")
    proc = sp.Popen([sys.executable, "-m", "analysis.cli.main", "decode", "--json", "--follow", "--idle-timeout",
                     "30", str(dst)], stdout=sp.PIPE, stderr=sp.PIPE, text=True, cwd=ROOT)
    t = _writer(cut.read_bytes(), dst, 65536, 0.005)
    out, err = proc.communicate(timeout=120)
    t.join()
    got = [json.loads(x) for x in out.splitlines()]
    assert proc.returncode == 0, err
    assert not [o for o in got if o.get("code") == "capture_idle_timeout"]
    assert_same_units(decode(cut), got)
