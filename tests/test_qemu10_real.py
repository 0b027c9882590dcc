# SPDX-License-Identifier: GPL-2.0-only
"""Real QEMU 10.0.2 migrations (traces/real/qemu10/, recorded by traces/real/record_qemu10.py):
every capture decodes without an error finding and every count equals QEMU's own view,
parsed here from the committed files — query-migrate JSON (``normal``, ``duplicate``,
``multifd-bytes``, ``transferred``), the source's ``savevm_section_*`` / ``multifd_send_*``
trace and the destination's loader / return-path trace."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from analysis.emit.migration import emit_capture, emit_stream_file

QEMU10 = Path(__file__).resolve().parent.parent / "traces" / "real" / "qemu10"
# mappedram.mig is shipped zstd-compressed: 10.6 MB apparent, 0.86 MB of data
CAPTURES = ["returnpath.pcap", "multifd.pcap", "multifd-zstd.pcap", "multifd-zlib.pcap", "multifd-rp.pcap",
            "multipass.pcap", "multipass-rp.pcap", "file.mig", "mappedram.mig.zst"]
# multifd captures: (channels, multifd-compression as the packets name it)
MULTIFD = {"multifd.pcap": (4, "NOCOMP"), "multifd-zstd.pcap": (2, "ZSTD"), "multifd-zlib.pcap": (2, "ZLIB"),
           "multifd-rp.pcap": (2, "NOCOMP")}
SECTION_CODE = {"START": 1, "PART": 2, "END": 3, "FULL": 4}


def _stem(name: str) -> str:
    return name.removesuffix(".zst").rsplit(".", 1)[0]


_raw: dict[str, Path] = {}
_tmp: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _unpack_dir(tmp_path_factory):
    """Where :func:`raw` puts decompressed captures."""
    _tmp.append(tmp_path_factory.mktemp("qemu10"))
    yield
    _tmp.clear()
    _raw.clear()


def raw(name: str) -> Path:
    """The capture's own bytes: the file itself, or a .zst decompressed by the zstandard library
    (not by the project's reader, dissect/capture/compressed.py, which the last test checks)."""
    path = QEMU10 / name
    if not path.exists():
        pytest.skip(f"{name} not in traces/real/qemu10")
    if not name.endswith(".zst"):
        return path
    if name not in _raw:
        import zstandard

        out = _tmp[0] / name.removesuffix(".zst")
        with open(path, "rb") as f, open(out, "wb") as o:
            zstandard.ZstdDecompressor().copy_stream(f, o)
        _raw[name] = out
    return _raw[name]


def query_migrate(name: str) -> dict:
    return json.loads((QEMU10 / f"{_stem(name)}.src-query-migrate.json").read_text())["ram"]


def trace_lines(name: str, side: str, event: str) -> list[str]:
    """Arguments of every ``event`` line of the source/destination log (``pid@ts:event args``)."""
    text = (QEMU10 / f"{_stem(name)}.{side}.log").read_text()
    return re.findall(rf"^\d+@[\d.]+:{event}(?: (.*))?$", text, re.M)


_cache: dict[str, list[dict]] = {}


def decode(name: str) -> list[dict]:
    if name not in _cache:
        path = raw(name)
        emit = emit_stream_file if path.suffix == ".mig" else emit_capture
        _cache[name] = list(emit(path))
    return _cache[name]


@pytest.mark.parametrize("name", CAPTURES)
def test_no_error_or_warning_findings(name):
    objs = decode(name)
    assert [(o["code"], o["message"]) for o in objs if o["kind"] == "finding" and o["severity"] != "info"] == []


@pytest.mark.parametrize("name", CAPTURES)
def test_page_counts_equal_query_migrate(name):
    """zero pages = QEMU's ``duplicate`` (9.0+ counts multifd zero pages there), normal = ``normal``;
    for mapped-ram: pages present in the file / absent (the guest was stopped: one pass)."""
    objs = decode(name)
    ram = query_migrate(name)
    zero = sum(o["zero_pages"] or 0 for o in objs if o["kind"] in ("ram", "multifd_packet"))
    normal = sum(o["normal_pages"] or 0 for o in objs if o["kind"] in ("ram", "multifd_packet"))
    assert (zero, normal) == (ram["duplicate"], ram["normal"])


@pytest.mark.parametrize("name", CAPTURES)
def test_sections_equal_savevm_trace(name):
    """Every non-START section is one ``savevm_section_start`` of the source, in order (the setup
    sections are written by qemu_savevm_state_setup without that event)."""
    objs = decode(name)
    traced = [(m[1], int(m[2])) for m in (re.fullmatch(r"(\S+), section_id (\d+)", a)
                                          for a in trace_lines(name, "src", "savevm_section_start"))]
    ours = [(o["idstr"], o["section_id"]) for o in objs if o["kind"] == "section" and o["type"] != "START"]
    assert ours == traced
    assert len(traced) == len(trace_lines(name, "src", "savevm_section_end"))


@pytest.mark.parametrize("name", CAPTURES)
def test_records_equal_destination_loader_trace(name):
    """The destination traces each record it reads (type, START/FULL header, PART/END id) and
    every return-path message it sends."""
    objs = decode(name)
    traced_types = [int(a) for a in trace_lines(name, "dst", "qemu_loadvm_state_section")]
    traced_full = [(int(a), b, int(c), int(d)) for a, b, c, d in (re.fullmatch(r"(\d+)\((.*)\) (\d+) (\d+)", x).groups()
                   for x in trace_lines(name, "dst", "qemu_loadvm_state_section_startfull"))]
    traced_part = [int(a) for a in trace_lines(name, "dst", "qemu_loadvm_state_section_partend")]
    traced_rp = [tuple(int(v) for v in re.fullmatch(r"(\d+): len (\d+)", a).groups())
                 for a in trace_lines(name, "dst", "migrate_send_rp_message")]
    ours_types = [SECTION_CODE[o["type"]] if o["kind"] == "section" else 8 if o["kind"] == "command" else 0
                  for o in objs if o["kind"] in ("section", "command", "eof")]
    assert ours_types == traced_types
    assert [(o["section_id"], o["idstr"], o["instance_id"], o["version_id"]) for o in objs
            if o["kind"] == "section" and o["type"] in ("START", "FULL")] == traced_full
    assert [o["section_id"] for o in objs if o["kind"] == "section" and o["type"] in ("PART", "END")] == traced_part
    assert [(o["type"], o["len"]) for o in objs if o["kind"] == "rp_message"] == traced_rp


@pytest.mark.parametrize("name", ["returnpath.pcap", "multifd-rp.pcap"])
def test_return_path_switchover_ack(name):
    objs = decode(name)
    assert [o["type_name"] for o in objs if o["kind"] == "rp_message"] == ["SWITCHOVER_ACK", "PONG", "SHUT"]
    assert "SWITCHOVER_START" in [o["cmd_name"] for o in objs if o["kind"] == "command"]


def _traced_multifd_packets(name: str) -> list[tuple[int, int, int, int, int, int]]:
    """(channel, packet_num, flags, next_packet_size, normal, zero) of each ``multifd_send_fill``;
    the pages come from the ``multifd_send_ram_fill`` the same channel traced just before it
    (QEMU 10.0 fills the RAM part first; SYNC packets skip it)."""
    text = (QEMU10 / f"{_stem(name)}.src.log").read_text()
    pending: dict[int, tuple[int, int]] = {}
    out = []
    for ev, args in re.findall(r"^\d+@[\d.]+:(multifd_send_ram_fill|multifd_send_fill) (.*)$", text, re.M):
        if ev == "multifd_send_ram_fill":
            c, n, z = re.fullmatch(r"channel (\d+) normal pages (\d+) zero pages (\d+)", args).groups()
            pending[int(c)] = (int(n), int(z))
        else:
            c, num, fl, size = re.fullmatch(r"channel (\d+) packet_num (\d+) flags (0x[0-9a-f]+) next packet size "
                                            r"(\d+)", args).groups()
            flags = int(fl, 16)
            n, z = (0, 0) if flags & 1 else pending.pop(int(c))
            out.append((int(c), int(num), flags, int(size), n, z))
    return sorted(out)


@pytest.mark.parametrize("name", sorted(MULTIFD))
def test_multifd_packets_equal_qemu_trace(name):
    channels, compression = MULTIFD[name]
    traced = _traced_multifd_packets(name)
    assert len(traced) == len(trace_lines(name, "src", "multifd_send_fill"))
    objs = decode(name)
    chan = {o["flow"]: o["channel"] for o in objs if o["kind"] == "multifd_packet" and o["type"] == "init"}
    assert sorted(chan.values()) == list(range(channels))
    ours = sorted((chan[o["flow"]], o["packet_num"], o["flags"], o["next_packet_size"], o["normal_pages"],
                   o["zero_pages"]) for o in objs if o["kind"] == "multifd_packet" and o["type"] != "init")
    assert ours == traced
    # the compression bits are set on RAM packets; QEMU 10.0 sends SYNC packets with flags 0x1 alone
    assert {o["compression"] for o in objs if o["kind"] == "multifd_packet" and o["type"] == "ram"} == {compression}
    assert {o["flags"] for o in objs if o["kind"] == "multifd_packet" and o["type"] == "sync"} == {1}
    # 10.0 SYNC packets: pages_alloc 0, yet the full 128-slot array (the layout finding says so)
    assert {o["pages_alloc"] for o in objs if o["kind"] == "multifd_packet" and o["type"] == "sync"} == {0}
    layout = [o for o in objs if o["kind"] == "finding" and o["code"] == "multifd_layout"]
    assert len(layout) == channels and {o["slots"] for o in layout} == {128}


@pytest.mark.parametrize("name", ["multifd-zstd.pcap", "multifd-zlib.pcap"])
def test_compressed_multifd_page_data_is_where_the_packets_say(name):
    """multifd-compression: a RAM packet's page data is ``next_packet_size`` bytes of one compressed
    stream per channel (QEMU keeps one z_stream / ZSTD_CStream per channel and flushes at each
    packet's last page).  Cut from tshark's reassembly at our packet offsets, each blob
    decompresses (zlib / zstandard library, one decompressor per channel) to exactly
    normal_pages x 4096 bytes, and header + offsets + blob tile the whole connection."""
    import zlib

    import zstandard

    from tests.test_capture_tshark import tshark_follow

    objs = decode(name)
    streams = tshark_follow(raw(name))
    blobs = 0
    for fl in (o for o in objs if o["kind"] == "flow" and o["role"] == "multifd"):
        data = streams[(fl["client"], fl["server"])]["0"]
        d = zstandard.ZstdDecompressor().decompressobj() if "zstd" in name else zlib.decompressobj()
        pos = 64  # after MultiFDInit_t
        for o in (o for o in objs if o["kind"] == "multifd_packet" and o["flow"] == fl["flow"]
                  and o["type"] != "init"):
            assert o["offset"] == pos
            start = pos + 320 + 8 * 128
            n = o["next_packet_size"] if o["normal_pages"] else 0
            if n:
                assert len(d.decompress(data[start:start + n])) == o["normal_pages"] * 4096
                blobs += 1
            pos = start + n
        assert pos == len(data) == fl["c2s_bytes"]
    with_pages = [o for o in objs if o["kind"] == "multifd_packet" and o["normal_pages"]]
    assert blobs == len(with_pages) >= 10


@pytest.mark.parametrize("name", ["returnpath.pcap", *sorted(MULTIFD), "multipass.pcap", "multipass-rp.pcap"])
def test_bytes_equal_query_migrate(name):
    """``multifd-bytes`` = the multifd connections' bytes (10.0 counts each 64-byte MultiFDInit_t);
    ``transferred`` = main channel + multifd."""
    objs = decode(name)
    ram = query_migrate(name)
    flows = [o for o in objs if o["kind"] == "flow"]
    main = sum(o["c2s_bytes"] for o in flows if o["role"] == "main")
    multifd = sum(o["c2s_bytes"] for o in flows if o["role"] == "multifd")
    assert multifd == ram["multifd-bytes"]
    assert main + multifd == ram["transferred"]


def test_mapped_ram_pages_located_in_the_file():
    """Each run of present pages points at non-zero page data in the file; every page QEMU left
    out (bit clear) is zero there; the headers follow QEMU's layout."""
    objs = decode("mappedram.mig.zst")
    data = raw("mappedram.mig.zst").read_bytes()
    (start,) = [o for o in objs if o["kind"] == "ram" and o["section_type"] == "START"]
    runs = [o for o in objs if o["kind"] == "mapped_ram_pages"]
    assert sum(r["pages"] for r in runs) == start["normal_pages"] == query_migrate("mappedram.mig.zst")["normal"]
    present = defaultdict(set)
    for r in runs:
        for k in range(r["pages"]):
            fo = r["file_offset"] + k * 4096
            assert any(data[fo:fo + 4096]), (r["ramblock"], r["offset"] + k * 4096)
            present[r["ramblock"]].add(r["offset"] + k * 4096)
    for blk in start["ram_blocks"]:
        mr = blk["mapped_ram"]
        assert mr["version"] == 1 and mr["page_size"] == 4096
        assert mr["pages_offset"] % (1 << 20) == 0 and mr["pages_offset"] >= mr["bitmap_offset"] + mr["bitmap_size"]
        assert mr["bitmap_size"] == -(-(blk["used_length"] // 4096) // 64) * 8
        for a in range(0, blk["used_length"], 4096):
            if a not in present[blk["idstr"]]:
                fo = mr["pages_offset"] + a
                assert not any(data[fo:fo + 4096])
        assert start["blocks"][blk["idstr"]] == {"normal_pages": mr["pages"],
                                                 "zero_pages": blk["used_length"] // 4096 - mr["pages"]}
    assert sum(b["used_length"] for b in start["ram_blocks"]) == start["mem_size"] == \
        query_migrate("mappedram.mig.zst")["total"]


def test_mapped_ram_summary():
    import contextlib
    import io

    from analysis.cli.main import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["summary", str(QEMU10 / "mappedram.mig.zst"), "--json"])
    (s,) = [json.loads(x) for x in buf.getvalue().splitlines() if '"migration_summary"' in x]
    ram = query_migrate("mappedram.mig.zst")
    assert (s["ram_normal_pages"], s["ram_zero_pages"]) == (ram["normal"], ram["duplicate"])


def test_file_transferred_equals_the_file():
    assert (QEMU10 / "file.mig").stat().st_size == query_migrate("file.mig")["transferred"]


def test_mapped_ram_transferred_equals_stream_pages_and_bitmaps():
    """QEMU counts the sequentially written stream, each page written in place and each bitmap:
    file size − the mapped regions (bitmap + padding + page area) + present pages + bitmaps."""
    objs = decode("mappedram.mig.zst")
    (start,) = [o for o in objs if o["kind"] == "ram" and o["section_type"] == "START"]
    regions = sum(b["mapped_ram"]["pages_offset"] + b["used_length"] - b["mapped_ram"]["bitmap_offset"]
                  for b in start["ram_blocks"])
    bitmaps = sum(b["mapped_ram"]["bitmap_size"] for b in start["ram_blocks"])
    # the size of the file QEMU wrote: the decompressed size (10602741, traces/README.md)
    size = raw("mappedram.mig.zst").stat().st_size
    assert size == 10602741
    stream = size - regions
    assert stream + start["normal_pages"] * 4096 + bitmaps == query_migrate("mappedram.mig.zst")["transferred"]


def test_compressed_capture_decodes_as_its_bytes():
    """`migtrace decode` of the shipped .zst (the project's decompression) gives exactly the units of
    the bytes zstandard decompresses, and says how it read them in the summary."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "analysis.cli.main", "decode", "--json",
                          str(QEMU10 / "mappedram.mig.zst")], capture_output=True, text=True, check=True)
    objs = [json.loads(x) for x in out.stdout.splitlines()]
    assert objs[:-1] == json.loads(json.dumps(decode("mappedram.mig.zst")))
    zst = (QEMU10 / "mappedram.mig.zst").stat().st_size
    assert {k: objs[-1][k] for k in ("format", "compression", "compressed_bytes", "decompressed_bytes")} == \
        {"format": "qemu-stream", "compression": "zstd", "compressed_bytes": zst, "decompressed_bytes": 10602741}


@pytest.mark.parametrize("name", sorted(MULTIFD))
def test_multifd_run_summary_equals_query_migrate(name):
    """``migtrace summary`` of the run folder (record_qemu10.py manifests): pages and multifd bytes
    are QEMU's own counters, with and without multifd-compression."""
    from tests.conftest import run_cli

    run = QEMU10 / "runs" / _stem(name)
    if not run.exists():
        pytest.skip(f"{run} absent")
    p = run_cli("summary", "--json", str(run))
    assert p.returncode == 0, p.stderr
    (s,) = [o for o in map(json.loads, p.stdout.splitlines()) if o["kind"] == "migration_summary"]
    ram = query_migrate(name)
    assert (s["ram_zero_pages"], s["ram_normal_pages"], s["bytes_multifd"], s["qemu_profile"]) == \
        (ram["duplicate"], ram["normal"], ram["multifd-bytes"], "10.x")
    assert s["bytes_main"] + s["bytes_multifd"] == ram["transferred"]
