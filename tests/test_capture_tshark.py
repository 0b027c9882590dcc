# SPDX-License-Identifier: GPL-2.0-only
"""Differential tests: reassembled bytes of every flow direction equal
tshark's ``-z follow,tcp,raw`` output (the independent oracle)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dissect.capture.synth import SynthFlow, write_tcp_capture
from tests.conftest import TRACES, require_tool
from tests.test_capture_loopback import collect

REAL = TRACES / "real"


def tshark_follow(path: Path) -> dict[tuple[str, str], dict[str, bytes]]:
    """``{(node0, node1): {"0": bytes node0 sent, "1": bytes node1 sent}}`` for every TCP stream."""
    tshark = require_tool("tshark")
    # tshark exits 2 on a capture cut mid-packet but still reads what is there.
    ids = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "tcp.stream"],
                         capture_output=True, text=True).stdout.split()
    streams = sorted({int(x) for x in ids if x.strip()})
    if not streams:
        return {}
    cmd = [tshark, "-r", str(path), "-q"]
    for s in streams:
        cmd += ["-z", f"follow,tcp,raw,{s}"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    result: dict[tuple[str, str], dict[str, bytes]] = {}
    nodes: list[str] = []
    data = {"0": bytearray(), "1": bytearray()}
    for line in out.splitlines():
        if line.startswith("====="):  # opens and closes every follow block
            if len(nodes) == 2:
                result[(nodes[0], nodes[1])] = {k: bytes(v) for k, v in data.items()}
            nodes, data = [], {"0": bytearray(), "1": bytearray()}
        elif line.startswith(("Node 0: ", "Node 1: ")):
            nodes.append(line[8:].strip())
        elif line.startswith(("Follow:", "Filter:")) or not line.strip():
            continue
        elif len(nodes) == 2:
            data["1" if line.startswith("\t") else "0"] += bytes.fromhex(line.strip())
    return result


def ours(path: Path) -> tuple[dict[tuple[str, str], dict[str, bytes]], object]:
    """Our streams keyed like :func:`tshark_follow`.

    Where data is missing, tshark 4.0 writes the text
    ``[N bytes missing in capture file]`` and a NUL instead of the bytes;
    the same marker is put at our gap offsets, so the comparison also checks
    that both tools place and size every gap identically.
    """
    got, res = collect(path)
    out: dict[tuple[str, str], dict[str, bytes]] = {}
    for fl in res.flows:  # type: ignore[attr-defined]
        streams = {}
        for d in ("c2s", "s2c"):
            c = got.get((fl.flow, d))
            buf = bytearray() if c is None else c.buf
            kept = bytearray()
            pos = 0
            for a, b in ([] if c is None else c.gaps):
                kept += buf[pos:a]
                kept += f"[{b - a} bytes missing in capture file]".encode() + b"\0"
                pos = b
            kept += buf[pos:]
            streams[d] = bytes(kept)
        out[(fl.client, fl.server)] = {"c2s": streams["c2s"], "s2c": streams["s2c"]}
    return out, res


def assert_same_as_tshark(path: Path) -> object:
    """Every direction of every flow equals tshark's follow output."""
    theirs = tshark_follow(path)
    mine, res = ours(path)
    assert theirs, "tshark found no TCP stream"
    for (n0, n1), t in theirs.items():
        if (n0, n1) in mine:
            m = mine[(n0, n1)]
            assert t["0"] == m["c2s"], f"{n0}->{n1}: tshark {len(t['0'])} vs ours {len(m['c2s'])} bytes"
            assert t["1"] == m["s2c"], f"{n1}->{n0}: tshark {len(t['1'])} vs ours {len(m['s2c'])} bytes"
        else:  # tshark's node 0 is the first packet's sender
            m = mine[(n1, n0)]
            assert t["0"] == m["s2c"] and t["1"] == m["c2s"], f"{n0}<->{n1}"
    assert len(theirs) == len(mine)
    return res


REAL_CAPTURES = sorted(p.name for p in REAL.glob("loopback-*.pcap*")) + sorted(
    p.name for p in REAL.glob("qemu-*.pcap*"))


@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_real_capture_equals_tshark(name: str) -> None:
    res = assert_same_as_tshark(REAL / name)
    assert all(not fl.gaps for fl in res.flows)  # type: ignore[attr-defined]


def test_qemu_captures_have_a_main_channel() -> None:
    names = [n for n in REAL_CAPTURES if n.startswith("qemu-tcp")]
    if not names:
        pytest.skip("no real QEMU captures in traces/real")
    for n in names:
        _, res = collect(REAL / n)
        roles = [fl.role for fl in res.flows]
        assert roles.count("main") == 1, (n, roles)
        if "multifd" in n:
            assert roles.count("multifd") >= 1, (n, roles)


def test_generated_wraparound_capture_equals_tshark(tmp_path: Path) -> None:
    import random

    rnd = random.Random(5)
    a, b = rnd.randbytes(300_000), rnd.randbytes(20_000)
    writes = [(1_000_000_000 + i * 1_000_000, "c2s", a[i * 30_000:(i + 1) * 30_000]) for i in range(10)]
    writes.insert(3, (1_002_500_000, "s2c", b))
    path = tmp_path / "wrap.pcapng"
    # ISNs just below 2^32: both directions wrap inside the stream.
    write_tcp_capture(path, [SynthFlow("10.1.0.1:50000", "10.1.0.2:7000", writes,
                                       isn_client=0xFFFF_0000, isn_server=0xFFFF_F000)])
    res = assert_same_as_tshark(path)
    (fl,) = res.flows  # type: ignore[attr-defined]
    assert fl.c2s_bytes == 300_000 and fl.s2c_bytes == 20_000


@pytest.mark.parametrize("v6", [False, True])
def test_synth_checksums_valid_for_tshark(tmp_path: Path, v6: bool) -> None:
    tshark = require_tool("tshark")
    path = tmp_path / "c.pcap"
    c, s = ("[fd00::1]:1000", "[fd00::2]:2000") if v6 else ("10.9.0.1:1000", "10.9.0.2:2000")
    write_tcp_capture(path, [SynthFlow(c, s, [(10**9, "c2s", bytes(range(256)) * 23),
                                              (10**9 + 10**6, "s2c", b"x" * 1001)])], fmt="pcap")
    fields = ["tcp.checksum.status"] + ([] if v6 else ["ip.checksum.status"])
    cmd = [tshark, "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    assert out and set(out) == {"1"}  # 1 = "Good" for every packet and field
