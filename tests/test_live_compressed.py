# SPDX-License-Identifier: GPL-2.0-only
"""A compressed pcap/pcapng on standard input is decompressed as it arrives.

The reference is the same compressed capture decoded as a file (tests/test_compressed_captures.py
holds that equal to the uncompressed file): the pipe gives the same units, findings and summary
fields; a corrupt byte is located only to the read that holds it (a pipe cannot be replayed).
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from dissect.capture.source import PipeRaw
from dissect.capture.source_compressed import DecompressingRaw, PrefixedRaw, open_raw
from tests.conftest import TRACES, run_cli
from tests.test_compressed_captures import SUFFIX, TOOLS, squeeze
from tests.test_live_pipe import assert_same_units, lines, piped, start_half_fed

PCAP = TRACES / "real/qemu-tcp-returnpath.pcap"  # QEMU 7.2 over loopback, with the return path
PCAPNG = TRACES / "generated/qemu-9x-vfio-rp.pcapng"
ADMIN = TRACES / "sim/variants/two-vfs/admin-source.pcapng"


def _codes(objs: list[dict], code: str) -> list[dict]:
    return [o for o in objs if o["kind"] == "finding" and o["code"] == code]


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("src", [PCAP, PCAPNG], ids=["pcap", "pcapng"])
def test_compressed_pipe_decodes_like_the_compressed_file(tmp_path, tool, src):
    z = squeeze(tool, src, tmp_path)
    f = run_cli("decode", "--json", str(z))
    p = piped(z, "decode", "--json", "-")
    assert p.returncode == f.returncode == 0, p.stderr
    fo, po = lines(f), lines(p)
    assert_same_units(fo, po)
    s = po[-1]
    assert (s["compression"], s["compressed_bytes"], s["decompressed_bytes"]) == \
        (tool, z.stat().st_size, src.stat().st_size)
    assert {k: fo[-1][k] for k in ("compression", "compressed_bytes", "decompressed_bytes")} == \
        {k: s[k] for k in ("compression", "compressed_bytes", "decompressed_bytes")}


@pytest.mark.parametrize("cmd", ["flows", "extract"])
def test_flows_and_extract_of_a_compressed_pipe(tmp_path, cmd):
    z = squeeze("zstd", PCAP, tmp_path)
    out = {w: tmp_path / f"main-{w}.qemu" for w in ("file", "pipe")}
    extra = (lambda w: ["--main", "-o", str(out[w])] if cmd == "extract" else [])
    f = run_cli(cmd, "--json", *extra("file"), str(z))
    p = piped(z, cmd, "--json", *extra("pipe"), "-")
    assert p.returncode == f.returncode == 0, p.stderr
    fo, po = lines(f), lines(p)
    assert po[-1] == fo[-1] and po[-1]["compression"] == "zstd"
    assert po[:-1] == fo[:-1] and any(o["kind"] == "flow" for o in po)
    if cmd == "extract":  # the extracted main stream: the same bytes, a QEMU stream
        assert out["pipe"].read_bytes() == out["file"].read_bytes()
        assert out["pipe"].read_bytes()[:4] == b"QEVM"


def test_compressed_admin_capture_on_a_pipe(tmp_path):
    """Admin captures are spooled and decoded as a file: the compression fields still come out."""
    z = squeeze("gzip", ADMIN, tmp_path)
    f = run_cli("decode", "--json", str(z))
    p = piped(z, "decode", "--json", "-")
    assert p.returncode == f.returncode == 0, p.stderr
    assert lines(p) == lines(f)
    assert lines(p)[-1]["compressed_bytes"] == z.stat().st_size


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_truncated_compressed_pipe(tmp_path, tool):
    z = squeeze(tool, PCAP, tmp_path)
    cut = tmp_path / ("cut" + SUFFIX[tool])
    n = z.stat().st_size * 3 // 5
    cut.write_bytes(z.read_bytes()[:n])
    f = run_cli("decode", "--json", str(cut))
    p = piped(cut, "decode", "--json", "-")
    assert p.returncode == f.returncode == 1
    fo, po = lines(f), lines(p)
    (ff,), (pf,) = _codes(fo, "compressed_truncated"), _codes(po, "compressed_truncated")
    assert pf == ff and pf["offset"] == n
    assert 0 < pf["decompressed_offset"] < PCAP.stat().st_size
    assert_same_units(fo, po)


def test_corrupt_gzip_pipe_names_the_read_that_holds_the_byte(tmp_path):
    z = squeeze("gzip", PCAP, tmp_path)
    b = bytearray(z.read_bytes())
    at = 150_000  # inside the deflate data, in the third 64 KiB read
    b[at] ^= 0xFF
    z.write_bytes(bytes(b))
    f = run_cli("decode", "--json", str(z))
    p = piped(z, "decode", "--json", "-")
    assert p.returncode == f.returncode == 1
    (ff,), (pf,) = _codes(lines(f), "compressed_corrupt"), _codes(lines(p), "compressed_corrupt")
    assert "located" not in ff and ff["offset"] >= at  # deflate notices a flipped bit late, or not at once
    # reads are at most 64 KiB (a pipe read gives what the pipe holds): the one holding the byte
    # the file path located
    assert pf["located"] is False and 0 < pf["read_length"] <= 65536
    assert pf["offset"] <= ff["offset"] < pf["offset"] + pf["read_length"]
    assert pf["decompressed_offset"] <= ff["decompressed_offset"]
    # what the pipe decoded is a prefix of what the file decoded: the same sections, fewer of them
    key = [(o["flow"], o["offset"], o["type"]) for o in lines(p) if o["kind"] == "section"]
    ref = [(o["flow"], o["offset"], o["type"]) for o in lines(f) if o["kind"] == "section"]
    assert key and key == ref[:len(key)]


def test_not_a_capture_after_decompression_is_a_usage_error(tmp_path):
    z = squeeze("zstd", TRACES / "real/qemu-file.mig", tmp_path)
    p = piped(z, "decode", "-")
    assert p.returncode == 2
    assert "does not start like a pcap or pcapng after zstd decompression (first bytes 5145564d)" in p.stderr
    junk = tmp_path / "junk.gz"
    junk.write_bytes(b"\x1f\x8b\x08" + bytes(40))
    p = piped(junk, "decode", "-")
    assert p.returncode == 2 and "empty input after gzip decompression" in p.stderr
    assert "gzip data corrupt" in p.stderr


def test_compressed_pipe_output_comes_as_the_bytes_arrive(tmp_path):
    """Half the zstd stream written, the pipe open: the first units are already out."""
    z = squeeze("zstd", PCAP, tmp_path).read_bytes()
    proc, got = start_half_fed(z)
    try:
        assert proc.poll() is None
        assert json.loads(got.split(b"\n")[0])["kind"] == "header"
        proc.stdin.write(z[len(z) // 2:])
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(60) == 0
        assert json.loads((got + rest).splitlines()[-1])["decompressed_bytes"] == PCAP.stat().st_size
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_interrupted_compressed_pipe_is_not_called_truncated(tmp_path):
    """^C with half a zstd stream read: capture_interrupted, no compressed_truncated."""
    z = squeeze("zstd", PCAP, tmp_path).read_bytes()
    proc, got = start_half_fed(z)
    try:
        time.sleep(0.5)  # waiting for input now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    objs = [json.loads(x) for x in (got + out).splitlines()]
    assert not _codes(objs, "compressed_truncated"), err
    (i,) = _codes(objs, "capture_interrupted")
    s = objs[-1]
    assert s["kind"] == "summary" and s["compression"] == "zstd"
    assert 0 < s["compressed_bytes"] <= len(z) // 2 and s["decompressed_bytes"] == i["offset"]


# -- the raw wrappers, on a real pipe ---------------------------------------------------------

def _pipe_of(data: bytes) -> int:
    r, w = os.pipe()

    def writer() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(data)
    threading.Thread(target=writer, daemon=True).start()
    return r


def test_open_raw_hands_back_the_sniffed_bytes_of_an_uncompressed_pipe():
    data = PCAP.read_bytes()
    fd = _pipe_of(data)
    try:
        raw = open_raw(PipeRaw(fd))
        assert isinstance(raw, PrefixedRaw) and raw.compression is None and raw.findings == []
        assert raw.read(3) == data[:3]  # a read within the sniffed bytes gives just those
        got = [data[:3]]
        while b := raw.read(1 << 16):
            got.append(b)
        assert b"".join(got) == data
    finally:
        os.close(fd)


def test_open_raw_of_short_input():
    for data in (b"", b"\xd4\xc3", b"\x28\xb5\x2f"):  # shorter than a magic: not compressed
        fd = _pipe_of(data)
        try:
            raw = open_raw(PipeRaw(fd))
            assert isinstance(raw, PrefixedRaw) and raw.read(100) == data and raw.read(100) == b""
        finally:
            os.close(fd)


def test_decompressing_raw_stop_drops_truncation(tmp_path):
    z = squeeze("zstd", PCAP, tmp_path).read_bytes()
    for stop in (False, True):
        fd = _pipe_of(z[:len(z) // 2])
        try:
            raw = open_raw(PipeRaw(fd))
            assert isinstance(raw, DecompressingRaw)
            n = 0
            while b := raw.read(1 << 20):
                n += len(b)
            if stop:
                raw.stop()
            assert n == raw.decompressed_bytes and 0 < n < PCAP.stat().st_size
            assert raw.compressed_bytes == len(z) // 2
            codes = [f.code for f in raw.findings]
            assert codes == ([] if stop else ["compressed_truncated"])
        finally:
            os.close(fd)


def test_summary_of_a_compressed_pipe(tmp_path):
    """``summary -`` spools standard input to a file, which is then read by content like any file."""
    z = squeeze("xz", PCAP, tmp_path)
    f, p = run_cli("summary", "--json", str(PCAP)), piped(z, "summary", "--json", "-")
    assert p.returncode == f.returncode == 0, p.stderr
    (fs,), (ps,) = [o for o in lines(f) if o["kind"] == "migration_summary"], \
        [o for o in lines(p) if o["kind"] == "migration_summary"]
    assert ps["captures"] == ["-"] and ps["precopy_iterations"] == 2 and ps["ram_normal_pages"] == 144
    assert {k: v for k, v in ps.items() if k != "captures"} == {k: v for k, v in fs.items() if k != "captures"}
