# SPDX-License-Identifier: GPL-2.0-only
"""``-`` as CAPTURE: a pcap/pcapng read from a pipe gives the units and findings of the file.

Every capture is piped through ``cat`` into a real ``migtrace`` process.
The live output is in arrival order (docs/cli.md "Pipes and growing files"):
the same objects as the file's, each flow direction's units in the same
order, the ``flow`` objects after the units.
"""
from __future__ import annotations

import json
import os
import select
import shlex
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT, TRACES, run_cli
from dissect.capture.reader import CaptureReader
from dissect.capture.source import StreamSource

CAPTURES = sorted([*TRACES.glob("real/**/*.pcap"), *TRACES.glob("real/**/*.pcapng"),
                   *TRACES.glob("generated/*.pcapng")])
MIGTRACE = f"{shlex.quote(sys.executable)} -m analysis.cli.main"


def piped(path: Path, *argv: str, via: str = "cat") -> subprocess.CompletedProcess:
    """``cat PATH | migtrace ARGV`` through a shell: a real pipe on standard input."""
    cmd = f"{via} {shlex.quote(str(path))} | {MIGTRACE} " + " ".join(shlex.quote(a) for a in argv)
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=ROOT, timeout=600)


def lines(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(x) for x in proc.stdout.splitlines()]


def _key(o: dict) -> str:
    return json.dumps(o, sort_keys=True)


def _direction(o: dict) -> str:
    if o["kind"] == "rp_message" or o.get("direction") == "s2c":
        return "s2c"
    return "c2s"


def assert_same_units(file_objs: list[dict], live_objs: list[dict]) -> None:
    """Same objects; per flow direction (and for capture-level findings) the same order."""
    fs, ls = file_objs[-1], live_objs[-1]
    assert fs["kind"] == ls["kind"] == "summary"
    assert (fs["format"], fs["counts"], fs["errors"], fs["warnings"]) == \
        (ls["format"], ls["counts"], ls["errors"], ls["warnings"])
    a, b = file_objs[:-1], live_objs[:-1]
    assert Counter(map(_key, a)) == Counter(map(_key, b))
    groups = {(o.get("flow"), _direction(o)) for o in a if o["kind"] != "flow"}
    for g in groups:
        sa = [o for o in a if o["kind"] != "flow" and (o.get("flow"), _direction(o)) == g]
        sb = [o for o in b if o["kind"] != "flow" and (o.get("flow"), _direction(o)) == g]
        assert sa == sb, g
    assert [o for o in a if o["kind"] == "flow"] == [o for o in b if o["kind"] == "flow"]


def test_captures_found():
    assert len(CAPTURES) >= 7, CAPTURES


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(TRACES)))
def test_decode_pipe_equals_file(path: Path):
    f = run_cli("decode", "--json", str(path))
    p = piped(path, "decode", "--json", "-")
    assert p.returncode == f.returncode, p.stderr
    assert p.stderr == ""
    assert_same_units(lines(f), lines(p))


def test_decode_pipe_units_before_flows():
    """Units come as they complete: the QEMU header before the flow object (final counts, at the end)."""
    objs = lines(piped(TRACES / "real/qemu-tcp-returnpath.pcap", "decode", "--json", "-"))
    kinds = [o["kind"] for o in objs]
    assert kinds[:3] == ["header", "configuration", "command"]
    assert kinds[-3:] == ["flow", "finding", "summary"] or kinds[-2:] == ["flow", "summary"]
    flow = objs[kinds.index("flow")]
    assert (flow["c2s_bytes"], flow["s2c_bytes"], flow["packets"]) == (739968, 16, 55)


@pytest.mark.parametrize("name", ["real/qemu-tcp-multifd.pcap", "generated/qemu-9x-vfio-rp.pcapng"])
def test_flows_and_extract_pipe_equal_file(name: str, tmp_path: Path):
    path = TRACES / name
    f = run_cli("flows", "--json", str(path))
    p = piped(path, "flows", "--json", "-")
    assert (p.returncode, p.stdout) == (f.returncode, f.stdout)
    assert len(lines(p)) >= 2
    a, b = tmp_path / "file.mig", tmp_path / "pipe.mig"
    f = run_cli("extract", str(path), "--main", "-o", str(a), "--json")
    p = piped(path, "extract", "-", "--main", "-o", str(b), "--json")
    assert (p.returncode, p.stdout) == (f.returncode, f.stdout)
    assert a.read_bytes()[:4] == b"QEVM" and a.read_bytes() == b.read_bytes()


def _pcap_record_offsets(data: bytes) -> list[int]:
    """Record offsets of a little-endian pcap, walked here independently of the reader."""
    offs, p = [], 24
    while p + 16 <= len(data):
        offs.append(p)
        p += 16 + struct.unpack_from("<I", data, p + 8)[0]
    return offs


def test_pipe_cut_mid_record_is_a_finding(tmp_path: Path):
    data = (TRACES / "real/qemu-tcp-returnpath.pcap").read_bytes()
    offs = _pcap_record_offsets(data)
    last = offs[-5]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:last + 16 + 10])  # 10 bytes into the record's data
    f = run_cli("decode", "--json", str(cut))
    p = piped(cut, "decode", "--json", "-")
    assert p.returncode == f.returncode == 1, p.stderr
    assert_same_units(lines(f), lines(p))
    (fnd,) = [o for o in lines(p) if o.get("code") == "pcap_truncated_record"]
    assert fnd["offset"] == last and fnd["severity"] == "error"


def test_pipe_resynchronises_as_the_file(tmp_path: Path):
    """A corrupt record header in the middle: the reader seeks back into bytes
    the pipe already delivered; findings and units equal the file's."""
    data = bytearray((TRACES / "real/qemu-tcp-multifd.pcap").read_bytes())
    offs = _pcap_record_offsets(bytes(data))
    bad = offs[len(offs) // 2]
    struct.pack_into("<I", data, bad + 8, 0x7FFFFFFF)
    path = tmp_path / "bad.pcap"
    path.write_bytes(bytes(data))
    f = run_cli("decode", "--json", str(path))
    p = piped(path, "decode", "--json", "-")
    assert p.returncode == f.returncode == 1
    assert_same_units(lines(f), lines(p))
    codes = [(o["code"], o["offset"]) for o in lines(p) if o["kind"] == "finding" and o["severity"] == "error"]
    assert ("pcap_bad_record_header", bad) in codes
    assert ("capture_bytes_skipped", bad) in codes


def test_pipe_pcapng_bad_block_as_the_file(tmp_path: Path):
    data = bytearray((TRACES / "generated/qemu-9x-vfio-rp.pcapng").read_bytes())
    # walk the blocks (type, total length) to a block in the middle; break its length
    p, blocks = 0, []
    while p + 8 <= len(data):
        blocks.append(p)
        p += struct.unpack_from("<I", data, p + 4)[0]
    bad = blocks[len(blocks) // 2]
    struct.pack_into("<I", data, bad + 4, 13)
    path = tmp_path / "bad.pcapng"
    path.write_bytes(bytes(data))
    f = run_cli("decode", "--json", str(path))
    pp = piped(path, "decode", "--json", "-")
    assert pp.returncode == f.returncode == 1
    assert_same_units(lines(f), lines(pp))
    assert ("pcapng_bad_block_length", bad) in [(o.get("code"), o.get("offset")) for o in lines(pp)]


def start_half_fed(data: bytes) -> tuple[subprocess.Popen, bytes]:
    """``migtrace decode --json -`` fed the first half of ``data``, its standard input left open,
    and what it wrote until its first complete line (60 s at most)."""
    proc = subprocess.Popen([sys.executable, "-m", "analysis.cli.main", "decode", "--json", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdin.write(data[:len(data) // 2])
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    got = b""
    while b"\n" not in got and time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 1)
        if r:
            got += os.read(proc.stdout.fileno(), 65536)
    return proc, got


def test_pipe_output_flushed_as_units_complete():
    """With half the capture written and the pipe still open, the first units are already out."""
    data = (TRACES / "real/qemu-tcp-returnpath.pcap").read_bytes()
    proc, got = start_half_fed(data)
    try:
        assert proc.poll() is None  # still reading
        assert json.loads(got.split(b"\n")[0])["kind"] == "header"
        proc.stdin.write(data[len(data) // 2:])
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(60) == 0
        assert json.loads((got + rest).splitlines()[-1])["kind"] == "summary"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_pipe_not_a_capture_is_a_usage_error(tmp_path: Path):
    text = tmp_path / "x.txt"
    text.write_text("hello\n")
    p = piped(text, "decode", "-")
    assert p.returncode == 2 and "does not start like a pcap or pcapng" in p.stderr
    p = piped(Path("/dev/null"), "decode", "-")
    assert p.returncode == 2 and "empty input" in p.stderr
    p = piped(TRACES / "real/qemu-tcp-returnpath.pcap", "decode", "--as", "trace-dat", "-")
    assert p.returncode == 2 and "only pcap/pcapng" in p.stderr


class _Pieces:
    """A raw source handing out a byte string in pipe-sized pieces."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.piece, self.pos = data, piece, 0
        self.stopped = False

    def read(self, n: int) -> bytes:
        b = self.data[self.pos:self.pos + min(n, self.piece)]
        self.pos += len(b)
        return b


def test_stream_source_memory_is_bounded():
    """The stream keeps only what the reader may seek back to (its buffer), not the capture."""
    data = (TRACES / "real/qemu-tcp-multifd.pcap").read_bytes()
    src = StreamSource(_Pieces(data, 65536))  # type: ignore[arg-type]
    reader = CaptureReader(src)
    kept_max = 0
    n = 0
    for rec in reader.records():
        n += 1
        kept_max = max(kept_max, sum(len(c) for c in src._chunks))
    file_reader = CaptureReader(TRACES / "real/qemu-tcp-multifd.pcap")
    assert n == sum(1 for _ in file_reader.records()) == reader.packet_count
    biggest = max(len(r[2]) for r in CaptureReader(TRACES / "real/qemu-tcp-multifd.pcap").records())
    assert kept_max <= 2 * 65536 + biggest + 16
    assert kept_max < len(data) // 2
    assert src.consumed == len(data)


def test_summary_pipe_equals_file():
    """``summary -`` copies standard input to a temporary file; the output names it ``-``."""
    path = TRACES / "real/qemu-tcp-returnpath.pcap"
    f = run_cli("summary", "--json", str(path))
    p = piped(path, "summary", "--json", "-")
    assert p.returncode == f.returncode == 0, p.stderr
    a, b = lines(f), lines(p)
    assert a[0]["captures"] == [str(path)] and b[0]["captures"] == ["-"]
    a[0]["captures"] = b[0]["captures"] = None
    assert a == b
    assert b[0]["bytes_main"] == 739968
    assert not list(Path("/tmp").glob("migtrace-stdin-*/stdin.pcap"))  # removed afterwards
    p = subprocess.run(f"{MIGTRACE} summary - -", shell=True, capture_output=True, text=True, cwd=ROOT,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 2 and "can be given once" in p.stderr


def test_admin_capture_pipe_equals_file():
    """An admin capture (USER link types) from a pipe is decoded as the file is (admin units)."""
    path = TRACES / "sim/variants/two-vfs/admin-source.pcapng"
    f = run_cli("decode", "--json", str(path))
    p = piped(path, "decode", "--json", "-")
    assert (p.returncode, p.stdout) == (f.returncode, f.stdout)
    kinds = {o["kind"] for o in lines(p)}
    assert {"admin_cmd", "admin_result"} <= kinds and "flow" not in kinds


def test_pipe_pcapng_cut_mid_block_is_a_finding(tmp_path: Path):
    data = (TRACES / "generated/qemu-9x-vfio-rp.pcapng").read_bytes()
    p, blocks = 0, []
    while p + 8 <= len(data):
        blocks.append(p)
        p += struct.unpack_from("<I", data, p + 4)[0]
    last = blocks[-3]
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[:last + 40])  # inside an enhanced packet block's data
    f = run_cli("decode", "--json", str(cut))
    pp = piped(cut, "decode", "--json", "-")
    assert pp.returncode == f.returncode == 1, pp.stderr
    assert_same_units(lines(f), lines(pp))
    (fnd,) = [o for o in lines(pp) if o.get("code") == "pcapng_truncated_block"]
    assert fnd["offset"] == last
