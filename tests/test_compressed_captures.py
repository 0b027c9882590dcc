# SPDX-License-Identifier: GPL-2.0-only
"""Compressed captures (docs/cli.md "Compressed captures", dissect/capture/compressed.py).

The compressed inputs are made here by the independent command-line tools (zstd, gzip, xz,
bzip2: Debian packages that scripts/test.sh installs), never by the project's code; the
expected decode is the decode of the uncompressed file, and the expected bytes are the
file's own.  Damaged inputs are cut or bit-flipped copies of those tools' output, with the
offsets the formats fix (RFC 1952 trailer, zstd frame checksum, xz stream header/footer).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.cli.main import main
from dissect.capture import compressed as C
from tests.conftest import ROOT, require_tool, run_cli

TOOLS = {"zstd": ["zstd", "-q", "-c"], "gzip": ["gzip", "-c", "-9"], "xz": ["xz", "-c"],
         "bzip2": ["bzip2", "-c", "-1"]}  # -1: 100 kB blocks, so a cut file still has whole blocks
SUFFIX = {"zstd": ".zst", "gzip": ".gz", "xz": ".xz", "bzip2": ".bz2"}

# one capture of every kind migtrace reads: (path, --as or None, the detected format)
KINDS = {
    "pcap": ("traces/real/qemu-tcp-returnpath.pcap", None, "pcap"),
    "pcapng": ("traces/generated/qemu-9x-vfio-rp.pcapng", None, "pcapng"),
    "admin-pcapng": ("traces/sim/variants/two-vfs/admin-source.pcapng", None, "pcapng"),
    "qemu-stream": ("traces/generated/qemu-9x-vfio.mig", None, "qemu-stream"),
    "trace-dat": ("traces/real/ftrace/markers-v7-zstd.dat", None, "trace-dat"),
    "ftrace-text": ("traces/real/ftrace-text/trace-tgid.txt", None, "ftrace-text"),
    "trace-cmd-report": ("traces/real/ftrace-text/report.txt", None, "trace-cmd-report"),
    "qemu-log": ("traces/real/qemu-tcp-returnpath.src.log", None, "qemu-log"),
    "dev-parts": ("traces/generated/vf0-parts.bin", "dev-parts", "dev-parts"),
    "vfio-stream": ("traces/generated/vf0-saved-device-data.bin", "vfio-stream", "vfio-stream"),
}
EXTRA = ("compression", "compressed_bytes", "decompressed_bytes")


def squeeze(tool: str, src: Path, dst_dir: Path, name: str | None = None) -> Path:
    """``src`` compressed by the command-line ``tool``."""
    require_tool(tool)
    dst = dst_dir / ((name or src.name) + SUFFIX[tool])
    with open(src, "rb") as i, open(dst, "wb") as o:
        subprocess.run(TOOLS[tool], stdin=i, stdout=o, check=True)
    return dst


def run(*argv: str) -> tuple[int, list[dict]]:
    """``migtrace ARGV`` in this process (the JSON Lines it prints, its exit code)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(list(argv))
    return rc, [json.loads(x) for x in buf.getvalue().splitlines() if x.startswith("{")]


def decode(path: Path | str, as_kind: str | None = None) -> tuple[int, list[dict]]:
    return run("decode", "--json", *(["--as", as_kind] if as_kind else []), str(path))


_plain: dict[str, tuple[int, list[dict]]] = {}


def plain(kind: str) -> tuple[int, list[dict]]:
    if kind not in _plain:
        rel, as_kind, _ = KINDS[kind]
        _plain[kind] = decode(ROOT / rel, as_kind)
    return _plain[kind]


@pytest.fixture(autouse=True)
def private_tmpdir(tmp_path, monkeypatch):
    """Decompressed copies go to a folder of this test, which must be empty afterwards."""
    t = tmp_path / "TMPDIR"
    t.mkdir()
    monkeypatch.setenv("TMPDIR", str(t))
    monkeypatch.setattr("tempfile.tempdir", None)
    yield t
    assert list(t.iterdir()) == [], "a temporary decompressed copy was left behind"


# -- every kind, every tool: the same units as the uncompressed file ------------------------

@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_compressed_capture_decodes_like_the_uncompressed_one(tmp_path, kind, tool):
    rel, as_kind, fmt = KINDS[kind]
    src = ROOT / rel
    z = squeeze(tool, src, tmp_path, "capture")  # the name says nothing: detection by content
    rc, objs = decode(z, as_kind)
    rc0, ref = plain(kind)
    assert rc == rc0 and objs[:-1] == ref[:-1]
    s = objs[-1]
    assert s["format"] == fmt
    assert {k: v for k, v in s.items() if k not in EXTRA} == ref[-1]
    assert (s["compression"], s["compressed_bytes"], s["decompressed_bytes"]) == \
        (tool, z.stat().st_size, src.stat().st_size)


def test_uncompressed_summary_has_no_compression_fields():
    assert not set(EXTRA) & set(plain("qemu-stream")[1][-1])


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_flows_and_extract_of_a_compressed_pcap(tmp_path, tool):
    src = ROOT / "traces/real/qemu-tcp-returnpath.pcap"
    z = squeeze(tool, src, tmp_path)
    rc, objs = run("flows", "--json", str(z))
    rc0, ref = run("flows", "--json", str(src))
    assert (rc, objs[:-1]) == (rc0, ref[:-1]) and objs[-1]["compression"] == tool
    run("extract", str(src), "--main", "-o", str(tmp_path / "a.mig"))
    rc, objs = run("extract", str(z), "--main", "-o", str(tmp_path / "b.mig"), "--json")
    assert rc == 0 and (tmp_path / "b.mig").read_bytes() == (tmp_path / "a.mig").read_bytes()
    assert objs[0]["kind"] == "flow" and objs[-1]["compression"] == tool


def test_concatenated_members_are_read_one_after_the_other(tmp_path):
    """`cat a.gz b.gz` is one gzip file (RFC 1952 §2.2), and zstd/xz/bzip2 likewise."""
    log = ROOT / "traces/real/qemu-tcp-returnpath.src.log"
    half = log.read_bytes().splitlines(keepends=True)
    (tmp_path / "a").write_bytes(b"".join(half[:40]))
    (tmp_path / "b").write_bytes(b"".join(half[40:]))
    for tool in ("zstd", "gzip", "xz", "bzip2"):
        both = tmp_path / f"both{SUFFIX[tool]}"
        both.write_bytes(squeeze(tool, tmp_path / "a", tmp_path).read_bytes()
                         + squeeze(tool, tmp_path / "b", tmp_path).read_bytes())
        rc, objs = decode(both)
        assert objs[:-1] == plain("qemu-log")[1][:-1], tool


# -- detection: the kind inside ---------------------------------------------------------------

@pytest.mark.parametrize("head,comp", [
    (b"\x28\xb5\x2f\xfd\x24\x00", "zstd"), (b"\x50\x2a\x4d\x18\x04\x00\x00\x00", "zstd"),
    (b"\x1f\x8b\x08\x00", "gzip"), (b"\xfd\x37\x7a\x58\x5a\x00\x00\x04", "xz"),
    (b"BZh91AY&SY\x00", "bzip2"), (b"BZh9\x17\x72\x45\x38\x50\x90", "bzip2"),
    (b"BZh1 is text", None), (b"\x1f\x8b\x07\x00", None), (b"\xd4\xc3\xb2\xa1", None), (b"QEVM", None), (b"", None),
])
def test_magic_numbers(head, comp):
    assert C.compression_of(head) == comp


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_detect_and_detect_kind_name_the_kind_inside(tmp_path, tool):
    from analysis.cli.detect import detect
    from analysis.load import detect_kind

    for rel, kind in [("traces/real/qemu-tcp-returnpath.pcap", "pcap"),
                      ("traces/real/qemu-tcp-returnpath.src-info-migrate.txt", "qemu-stats"),
                      ("traces/real/qemu10/multipass.src-qmp.jsonl", "qmp-series"),
                      ("traces/real/ftrace/markers-v6.dat", "trace-dat")]:
        z = squeeze(tool, ROOT / rel, tmp_path)
        assert C.sniff(z) == tool
        assert detect_kind(z) == kind
        if kind not in ("qemu-stats", "qmp-series"):
            assert detect(z) == kind
        assert C.head(z, 100) == (ROOT / rel).read_bytes()[:100]


def test_unknown_or_empty_content_is_a_usage_error_saying_so(tmp_path):
    (tmp_path / "noise").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty").write_bytes(b"")
    z = squeeze("gzip", tmp_path / "noise", tmp_path)
    p = run_cli("decode", "--json", str(z))
    assert p.returncode == 2 and p.stdout == "" and "unknown format inside gzip data" in p.stderr
    e = squeeze("zstd", tmp_path / "empty", tmp_path)
    p = run_cli("decode", str(e))
    assert p.returncode == 2 and "zstd data that decompresses to nothing readable" in p.stderr
    rc, objs = decode(e, "dev-parts")  # zero parts: valid, as for an empty file
    assert rc == 0 and objs[-1]["decompressed_bytes"] == 0


def test_follow_of_a_compressed_file_is_a_usage_error(tmp_path):
    z = squeeze("zstd", ROOT / "traces/real/qemu-tcp-returnpath.pcap", tmp_path)
    for cmd in ("decode", "flows"):
        p = run_cli(cmd, "--follow", str(z))
        assert p.returncode == 2 and "is zstd data; --follow" in p.stderr


# -- bad compressed data: a finding with the compressed offset, the rest decoded ---------------

def _findings(objs: list[dict], code: str) -> list[dict]:
    return [o for o in objs if o["kind"] == "finding" and o["code"] == code]


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_truncated_file_gives_a_finding_and_its_prefix(tmp_path, tool):
    src = ROOT / "traces/real/qemu-tcp-returnpath.pcap"
    z = squeeze(tool, src, tmp_path)
    cut = tmp_path / f"cut{SUFFIX[tool]}"
    n = z.stat().st_size * 3 // 5
    cut.write_bytes(z.read_bytes()[:n])
    with C.decompressed(cut) as d:
        data = d.path.read_bytes()
        (f,) = d.findings
    assert 0 < len(data) < src.stat().st_size and data == src.read_bytes()[:len(data)]
    assert (f.severity, f.code, f.offset, f.context["decompressed_offset"]) == \
        ("error", "compressed_truncated", n, len(data))
    rc, objs = decode(cut)
    assert rc == 1 and objs[-2] == f.to_json() and objs[-1]["decompressed_bytes"] == len(data)
    sections = [(o["flow"], o["offset"], o["type"], o["section_id"]) for o in objs if o["kind"] == "section"]
    full = [(o["flow"], o["offset"], o["type"], o["section_id"]) for o in plain("pcap")[1] if o["kind"] == "section"]
    assert sections and sections == full[:len(sections)]


# (tool, byte flipped, mask, offset of the finding): checks that fail only once they are whole
CORRUPT = [
    ("gzip", -8, 0x01, -5),   # CRC32 of the trailer (RFC 1952 §2.3): refused at its last byte
    ("gzip", -1, 0x01, -1),   # ISIZE
    ("gzip", 3, 0xE0, 3),     # reserved FLG bits
    ("zstd", -1, 0x01, -1),   # content checksum, the frame's last 4 bytes (RFC 8878 §3.1.1)
    ("zstd", 4, 0x08, None),  # reserved bit of the frame header descriptor: refused in the header
    ("xz", -12, 0x01, -1),    # stream footer CRC32 (xz format §2.1.2): checked when the footer is whole
    ("xz", 7, 0x01, 11),      # stream flags: refused at the last byte of the header's CRC32
]


@pytest.mark.parametrize("tool,at,mask,where", CORRUPT)
def test_corrupt_file_gives_the_offset_and_decodes_what_came_before(tmp_path, tool, at, mask, where):
    src = ROOT / "traces/generated/qemu-9x-vfio.mig"
    z = squeeze(tool, src, tmp_path)
    b = bytearray(z.read_bytes())
    b[at] ^= mask
    z.write_bytes(bytes(b))
    rc, objs = decode(z, "qemu-stream")  # a broken header leaves nothing to detect: named
    (f,) = _findings(objs, "compressed_corrupt")
    assert rc == 1 and f["severity"] == "error" and f["compression"] == tool
    if where is not None and where >= 0:  # without --as: a usage error that says why
        p = run_cli("decode", str(z))
        assert p.returncode == 2 and f"corrupt at compressed offset {where}" in p.stderr
    if where is None:
        assert 4 < f["offset"] < 18 and f["decompressed_offset"] == 0  # zstd frame header: 6-18 bytes
        return
    assert f["offset"] == where % len(b)
    if where < 0:  # a checksum after the data: every unit of the data is still decoded
        assert f["decompressed_offset"] == src.stat().st_size
        assert [o for o in objs[:-1] if o is not f] == plain("qemu-stream")[1][:-1]


def test_trailing_bytes_are_a_warning(tmp_path):
    z = squeeze("zstd", ROOT / "traces/generated/qemu-9x-vfio.mig", tmp_path)
    n = z.stat().st_size
    z.write_bytes(z.read_bytes() + b"not zstd")
    rc, objs = decode(z)
    (f,) = _findings(objs, "compressed_trailing_data")
    assert rc == 0 and (f["severity"], f["offset"], f["length"]) == ("warning", n, 8)
    assert objs[:-2] == plain("qemu-stream")[1][:-1]
    x = squeeze("xz", ROOT / "traces/generated/qemu-9x-vfio.mig", tmp_path)
    x.write_bytes(x.read_bytes() + bytes(8))  # stream padding: allowed by the xz format
    assert not _findings(decode(x)[1], "compressed_trailing_data")


# -- decompression bombs ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """200 MB of zeros, bzip2'd by the tool to a few hundred bytes."""
    require_tool("bzip2")
    p = tmp_path_factory.mktemp("bomb") / "zeros.bz2"
    with open(p, "wb") as o:
        subprocess.run("head -c 200000000 /dev/zero | bzip2 -9 -c", shell=True, stdout=o, check=True)
    assert p.stat().st_size < 1000
    return p


def test_bomb_stops_at_the_limit_with_a_finding(bomb, monkeypatch):
    monkeypatch.setenv("MIGTRACE_DECOMPRESS_LIMIT", "16M")
    rc, objs = decode(bomb, "qemu-stream")  # zeros: no QEVM magic, one finding; the bound is the point
    (f,) = _findings(objs, "compressed_output_limit")
    assert rc == 1 and (f["limit"], f["decompressed_offset"]) == (16 << 20, 16 << 20)
    assert objs[-1]["decompressed_bytes"] == 16 << 20
    with C.decompressed(bomb, limit=5_000_000) as d:
        st = d.path.stat()
        assert (st.st_size, d.size) == (5_000_000, 5_000_000)
        assert st.st_blocks * 512 < 1 << 20  # zeros are holes: no disk used


def test_pieces_are_bounded_whatever_the_ratio(bomb):
    with open(bomb, "rb") as f:
        st = C.Stream(f, "bzip2")
        sizes = []
        for piece in st.pieces():
            sizes.append(len(piece))
            if sum(sizes) > 64 << 20:
                break
    assert max(sizes) <= C.OUT_CHUNK


def test_default_bounds(monkeypatch, tmp_path):
    monkeypatch.delenv("MIGTRACE_DECOMPRESS_LIMIT", raising=False)
    monkeypatch.delenv("MIGTRACE_DECOMPRESS_MARGIN", raising=False)
    assert C.output_limit(178) == 1 << 30 and C.output_limit(1 << 20) == 4 << 30
    st = os.statvfs(tmp_path)
    assert C.disk_margin(tmp_path) == min(1 << 30, st.f_blocks * st.f_frsize // 20)
    monkeypatch.setenv("MIGTRACE_DECOMPRESS_LIMIT", "2G")
    monkeypatch.setenv("MIGTRACE_DECOMPRESS_MARGIN", "12345")
    assert (C.output_limit(178), C.disk_margin(tmp_path)) == (2 << 30, 12345)


def test_disk_margin_stops_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("MIGTRACE_DECOMPRESS_MARGIN", str(1 << 60))
    z = squeeze("gzip", ROOT / "traces/real/qemu-tcp-returnpath.pcap", tmp_path)
    with C.decompressed(z) as d:
        (f,) = d.findings
        assert (f.code, d.size, d.path.stat().st_size) == ("compressed_disk_space", 0, 0)
        assert f.context["margin"] == 1 << 60
    p = run_cli("decode", "--json", str(z))
    assert p.returncode == 1 and '"code":"compressed_disk_space"' in p.stdout and "Traceback" not in p.stderr


def test_temporary_copy_is_removed_after_errors_and_interrupts(tmp_path, monkeypatch, private_tmpdir):
    z = squeeze("xz", ROOT / "traces/generated/qemu-9x-vfio.mig", tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with C.decompressed(z) as d:
            assert d.path.parent.parent == private_tmpdir and d.path.name == "qemu-9x-vfio.mig"
            raise KeyboardInterrupt
    assert list(private_tmpdir.iterdir()) == []

    def interrupted(st, out, limit, folder):
        out.write(b"x" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(C, "spool", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with C.decompressed(z):
            pass
    # the autouse fixture checks that TMPDIR is empty again


# -- load(), run.json and the commands on top of it ----------------------------------------------

def test_load_reads_compressed_captures_like_the_originals(tmp_path):
    import analysis

    real = ROOT / "traces/real"
    names = ["qemu-tcp-returnpath.pcap", "qemu-tcp-returnpath.src.log", "qemu-tcp-returnpath.dst.log",
             "qemu-tcp-returnpath.src-info-migrate.txt"]
    tools = ["zstd", "gzip", "xz", "bzip2"]
    a = analysis.load(*[real / n for n in names])
    b = analysis.load(*[squeeze(t, real / n, tmp_path) for t, n in zip(tools, names)])
    for frame in ("events", "sections", "chunks", "records", "flows", "rp_messages", "commands", "phases",
                  "iterations"):
        assert getattr(a, frame).equals(getattr(b, frame)), frame
    assert a.qemu_stats == b.qemu_stats and len(a.findings) == len(b.findings)
    assert [c.compression for c in b.captures] == tools and [c.kind for c in b.captures] == \
        [c.kind for c in a.captures]
    assert all(c.data_path == c.path for c in b.captures)  # the copies are gone


def test_load_keeps_the_finding_of_a_truncated_capture(tmp_path):
    import analysis

    z = squeeze("gzip", ROOT / "traces/real/qemu-tcp-returnpath.pcap", tmp_path)
    z.write_bytes(z.read_bytes()[:100_000])
    m = analysis.load(z)
    (f,) = [f for f in m.findings if f["code"] == "compressed_truncated"]
    assert (f["offset"], f["capture"], f["path"]) == (100_000, 0, str(z))
    assert len(m.sections) > 0


def test_run_folder_with_compressed_captures(tmp_path):
    """run.json captures may be compressed: summary and export read them by content."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    src = ROOT / "traces/sim/variants/two-vfs"
    manifest = json.loads((src / "run.json").read_text())
    for c in manifest["captures"]:
        tool = "zstd" if c["path"].endswith(".pcapng") else "xz"
        c["path"] = squeeze(tool, src / c["path"], run_dir).name
    (run_dir / "run.json").write_text(json.dumps(manifest))
    rc, objs = run("summary", "--json", str(run_dir))
    rc0, ref = run("summary", "--json", str(src))
    names = {f"{Path(c['path']).name}": Path(c["path"]).stem for c in manifest["captures"]}

    def strip(objs: list[dict]) -> list[dict]:  # the paths and file names differ, nothing else
        text = json.dumps([{k: v for k, v in o.items() if k != "captures"} for o in objs])
        for z, name in names.items():
            text = text.replace(z, name)
        return json.loads(text)

    assert rc == rc0 and strip(objs) == strip(ref)
    out = tmp_path / "two-vfs.json"
    assert run("export", "perfetto", str(run_dir), "-o", str(out))[0] == 0
    assert json.loads(out.read_text())["traceEvents"]


def test_folder_without_run_json_skips_compressed_notes(tmp_path):
    from analysis.manifest import implicit_manifest

    shutil.copy(ROOT / "traces/real/qemu-tcp-returnpath.pcap", tmp_path)
    squeeze("gzip", tmp_path / "qemu-tcp-returnpath.pcap", tmp_path)
    (tmp_path / "notes.md").write_text("# notes\n")
    squeeze("xz", tmp_path / "notes.md", tmp_path)
    (tmp_path / "notes.md").unlink()
    names = [c.path.name for c in implicit_manifest(tmp_path).captures]
    assert names == ["qemu-tcp-returnpath.pcap", "qemu-tcp-returnpath.pcap.gz"]
