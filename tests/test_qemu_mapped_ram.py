# SPDX-License-Identifier: GPL-2.0-only
"""mapped-ram (file: + mapped-ram, QEMU >= 9.0): golden migration files written by hand here
from QEMU's layout (migration/ram.c: ``mapped_ram_setup_ramblock``, ``MappedRamHeader``,
``ram_save_file_bmap``, ``parse_ramblock_mapped_ram``), not by the project's builders; the
real QEMU 10.0.2 file; damaged headers, bitmaps and truncation."""
from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from analysis.emit.migration import emit_stream_file
from dissect.qemu.stream import StreamParser

MIB = 1 << 20
PS = 4096
#: shipped zstd-compressed (10.6 MB apparent, 0.86 MB of data)
REAL = Path(__file__).resolve().parent.parent / "traces" / "real" / "qemu10" / "mappedram.mig.zst"

CAPS = b"\x05\x1aconfiguration/capabilities" + struct.pack(">II", 1, 1) + b"\x0amapped-ram"


def _config(caps: bool) -> bytes:
    machine = b"pc-i440fx-10.0"
    return b"\x07" + struct.pack(">I", len(machine)) + machine + (CAPS if caps else b"")


def _bitmap(npages: int, present: set[int]) -> bytes:
    """BITS_TO_LONGS(npages) little-endian 64-bit longs, bit i = page i."""
    words = [0] * (-(-npages // 64))
    for i in present:
        words[i // 64] |= 1 << (i % 64)
    return b"".join(struct.pack("<Q", w) for w in words)


def golden(*, caps: bool = True, version: int = 1, misalign: int = 0, used0: int = 0x10000,
           tail_bit: bool = False) -> tuple[bytes, dict]:
    """QEVM v3, configuration, RAM START (MEM_SIZE list with two mapped-ram blocks), EOS, footer, EOF."""
    blocks = [("pc.ram", used0, {0, 1, 2, 5, 15}), ("pc.bios", 0x2000, {1})]
    f = bytearray(b"QEVM" + struct.pack(">I", 3) + _config(caps))
    f += b"\x01" + struct.pack(">I", 1) + b"\x03ram" + struct.pack(">II", 0, 4)
    f += struct.pack(">Q", sum(u for _, u, _ in blocks) | 0x4)          # RAM_SAVE_FLAG_MEM_SIZE
    want: dict = {"headers": [], "runs": []}
    for name, used, present in blocks:
        f += bytes([len(name)]) + name.encode() + struct.pack(">Q", used)
        hdr_at = len(f)
        bitmap_offset = hdr_at + 28
        npages = min(used, 0x10000) // PS
        bm = _bitmap(npages, present)
        if tail_bit:
            bm = bm[:-1] + bytes([bm[-1] | 0x80])
        pages_offset = -(-(bitmap_offset + len(bm)) // MIB) * MIB + misalign
        f += struct.pack(">IQQQ", version, PS, bitmap_offset, pages_offset)
        want["headers"].append((hdr_at, bitmap_offset, pages_offset))
        f += bm
        f += bytes(pages_offset - len(f))
        f += bytes(min(used, 0x10000))
        for i in present:
            f[pages_offset + i * PS:pages_offset + (i + 1) * PS] = bytes([i + 1]) * PS
            want["runs"].append((name, i * PS, pages_offset + i * PS))
    f += struct.pack(">Q", 0x10) + b"\x7e" + struct.pack(">I", 1) + b"\x00"   # EOS, footer, EOF
    return bytes(f), want


def run(tmp_path: Path, data: bytes) -> list[dict]:
    path = tmp_path / "m.mig"
    path.write_bytes(data)
    return list(emit_stream_file(path))


def codes(objs: list[dict], severity: str | None = None) -> list[str]:
    return [o["code"] for o in objs if o["kind"] == "finding" and (severity is None or o["severity"] == severity)]


def merged_runs(objs: list[dict]) -> list[tuple[str, int, int]]:
    """Per-page (ramblock, RAM offset, file offset) of the decoded runs."""
    return [(o["ramblock"], o["offset"] + k * PS, o["file_offset"] + k * PS)
            for o in objs if o["kind"] == "mapped_ram_pages" for k in range(o["pages"])]


def test_golden_file(tmp_path):
    data, want = golden()
    objs = run(tmp_path, data)
    assert codes(objs, "error") == [] and codes(objs, "warning") == []
    (start,) = [o for o in objs if o["kind"] == "ram"]
    assert (start["normal_pages"], start["zero_pages"]) == (6, 12)
    assert start["blocks"] == {"pc.ram": {"zero_pages": 11, "normal_pages": 5},
                               "pc.bios": {"zero_pages": 1, "normal_pages": 1}}
    assert [(b["idstr"], b["used_length"], b["mapped_ram"]["bitmap_offset"], b["mapped_ram"]["pages_offset"],
             b["mapped_ram"]["bitmap_size"], b["mapped_ram"]["pages"]) for b in start["ram_blocks"]] == [
        ("pc.ram", 0x10000, want["headers"][0][1], MIB, 8, 5), ("pc.bios", 0x2000, want["headers"][1][1], 2 * MIB, 8, 1)]
    runs = [(o["ramblock"], o["offset"], o["file_offset"], o["pages"]) for o in objs if o["kind"] == "mapped_ram_pages"]
    assert runs == [("pc.ram", 0, MIB, 3), ("pc.ram", 5 * PS, MIB + 5 * PS, 1), ("pc.ram", 15 * PS, MIB + 15 * PS, 1),
                    ("pc.bios", PS, 2 * MIB + PS, 1)]
    assert merged_runs(objs) == sorted(want["runs"], key=lambda r: r[2])
    (sec,) = [o for o in objs if o["kind"] == "section"]
    assert "incomplete" not in sec and sec["offset"] + sec["length"] == len(data) - 1  # up to the EOF byte
    assert [o["kind"] for o in objs if o["kind"] == "eof"] == ["eof"]


def test_detected_without_capability(tmp_path):
    data, _ = golden(caps=False)
    objs = run(tmp_path, data)
    assert codes(objs, "error") == [] and "mapped_ram_detected" in codes(objs, "info")
    (start,) = [o for o in objs if o["kind"] == "ram"]
    assert (start["normal_pages"], start["zero_pages"]) == (6, 12)


def test_any_split_and_skip_hints_give_the_same_units():
    data, _ = golden()
    ref = _feed(data, [len(data)], honour=False)
    rng = random.Random(5)
    for _ in range(20):
        sizes = [rng.choice([1, 7, 28, 100, 1448, 65536]) for _ in range(4000)]
        for honour in (False, True):
            assert _feed(data, sizes, honour=honour) == ref


def _feed(data: bytes, sizes: list[int], *, honour: bool) -> list:
    out: list = []
    p = StreamParser(out.append)
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        k += 1
        skip = p.data(i, data[i:i + n], 0)
        i += n
        if honour and skip:
            i += skip  # drop the bytes the parser said it does not need
    p.close()
    return [u if isinstance(u, dict) else (u.code, u.offset) for u in out]


def test_unsupported_version_is_an_error_with_offset(tmp_path):
    data, want = golden(version=2)
    objs = run(tmp_path, data)
    bad = [o for o in objs if o["kind"] == "finding" and o["code"] == "mapped_ram_header"]
    assert [o["offset"] for o in bad] == [want["headers"][0][0], want["headers"][1][0]]
    (start,) = [o for o in objs if o["kind"] == "ram"]
    assert start["normal_pages"] == 6  # the layout is still walked


def test_misaligned_pages_offset(tmp_path):
    data, want = golden(misalign=8)
    objs = run(tmp_path, data)
    bad = [o for o in objs if o["kind"] == "finding" and o["code"] == "mapped_ram_header"]
    assert bad and bad[0]["offset"] == want["headers"][0][0] and bad[0]["severity"] == "error"
    assert "not page aligned" in bad[0]["message"]
    assert [o["kind"] for o in objs if o["kind"] == "eof"] == ["eof"]  # resynchronised on the footer


def test_truncated_inside_the_page_region(tmp_path):
    data, want = golden()
    cut = MIB + 3 * PS + 100
    objs = run(tmp_path, data[:cut])
    trunc = [o for o in objs if o["kind"] == "finding" and o["code"] == "mapped_ram_truncated"]
    assert len(trunc) == 1 and trunc[0]["offset"] == cut and trunc[0]["ramblock"] == "pc.ram"
    (sec,) = [o for o in objs if o["kind"] == "section"]
    assert sec["incomplete"] == "truncated"


def test_truncated_inside_the_bitmap(tmp_path):
    data, want = golden()
    cut = want["headers"][0][1] + 3
    # a file: its size bounds the bitmap before it is read (finding at the header)
    objs = run(tmp_path, data[:cut])
    trunc = [o for o in objs if o["kind"] == "finding" and o["code"] == "mapped_ram_truncated"]
    assert len(trunc) == 1 and trunc[0]["offset"] == want["headers"][0][0] and "past the end" in trunc[0]["message"]
    # a stream of unknown size: the end is found inside the bitmap
    units = _feed(data[:cut], [1448], honour=False)
    assert [u for u in units if isinstance(u, tuple) and u[0] == "mapped_ram_truncated"] == [("mapped_ram_truncated", cut)]


def test_huge_used_length_is_bounded(tmp_path):
    # used_length 2^62: the bitmap it implies (2^47 bytes) is refused before any allocation
    data, want = golden(used0=1 << 62)
    objs = run(tmp_path, data)
    bad = [o for o in objs if o["kind"] == "finding" and o["code"] == "mapped_ram_header"]
    assert bad and bad[0]["offset"] == want["headers"][0][0]


def test_bits_past_the_block(tmp_path):
    data, _ = golden(tail_bit=True)
    objs = run(tmp_path, data)
    assert codes(objs, "warning") == ["mapped_ram_bitmap_tail", "mapped_ram_bitmap_tail"]
    (start,) = [o for o in objs if o["kind"] == "ram"]
    assert start["normal_pages"] == 6


def test_real_qemu10_headers_read_by_hand(tmp_path):
    """The real file's first block: the header read here by hand at the position the layout gives
    (the bytes decompressed by the zstandard library, not by the project's reader)."""
    if not REAL.exists():
        pytest.skip("traces/real/qemu10/mappedram.mig.zst not present")
    import zstandard

    mig = tmp_path / "mappedram.mig"
    with open(REAL, "rb") as f, open(mig, "wb") as o:
        zstandard.ZstdDecompressor().copy_stream(f, o)
    data = mig.read_bytes()
    objs = list(emit_stream_file(mig))
    (start,) = [o for o in objs if o["kind"] == "ram" and o["section_type"] == "START"]
    name = b"pc.ram"
    at = data.index(bytes([len(name)]) + name) + 1 + len(name) + 8
    version, ps, boff, poff = struct.unpack_from(">IQQQ", data, at)
    blk = start["ram_blocks"][0]
    assert blk["idstr"] == "pc.ram" and blk["used_length"] == struct.unpack_from(">Q", data, at - 8)[0]
    assert (version, ps, boff, poff) == (1, 4096, at + 28, -(-(at + 28 + blk["mapped_ram"]["bitmap_size"]) // MIB) * MIB)
    mr = blk["mapped_ram"]
    assert (mr["version"], mr["page_size"], mr["bitmap_offset"], mr["pages_offset"]) == (version, ps, boff, poff)
    npages = blk["used_length"] // 4096
    bits = int.from_bytes(data[boff:boff + blk["mapped_ram"]["bitmap_size"]], "little")
    assert bin(bits & ((1 << npages) - 1)).count("1") == blk["mapped_ram"]["pages"] == start["blocks"]["pc.ram"]["normal_pages"]


def test_large_sparse_file_is_read_around_its_page_regions(tmp_path, monkeypatch):
    """A 4 GiB block: the decoder reads the headers and bitmap and seeks past the page region."""
    import builtins

    from dissect.qemu import session

    used = 4 << 30
    head = bytearray(b"QEVM" + struct.pack(">I", 3) + _config(True))
    head += b"\x01" + struct.pack(">I", 1) + b"\x03ram" + struct.pack(">II", 0, 4)
    head += struct.pack(">Q", used | 0x4) + b"\x06pc.ram" + struct.pack(">Q", used)
    boff = len(head) + 28
    npages = used // PS
    bm_size = npages // 8
    poff = -(-(boff + bm_size) // MIB) * MIB
    head += struct.pack(">IQQQ", 1, PS, boff, poff)
    present = [0, 7, npages - 1]
    path = tmp_path / "big.mig"
    with open(path, "wb") as f:
        f.write(head)
        bits: dict[int, int] = {}
        for i in present:
            bits[i // 8] = bits.get(i // 8, 0) | 1 << (i % 8)
        for at, v in bits.items():
            f.seek(boff + at)
            f.write(bytes([v]))
        for i in present:
            f.seek(poff + i * PS)
            f.write(b"\x11" * PS)
        f.seek(poff + used)
        f.write(struct.pack(">Q", 0x10) + b"\x7e" + struct.pack(">I", 1) + b"\x00")
    read = [0]
    real_open = builtins.open

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            b = self.f.read(n)
            read[0] += len(b)
            return b

        def __getattr__(self, k):
            return getattr(self.f, k)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    monkeypatch.setattr(session, "open", lambda p, m="r", *a, **k: Counting(real_open(p, m, *a, **k)), raising=False)
    objs = list(emit_stream_file(path))
    assert codes(objs, "error") == [] and codes(objs, "warning") == []
    (start,) = [o for o in objs if o["kind"] == "ram"]
    assert (start["normal_pages"], start["zero_pages"]) == (3, npages - 3)
    assert [(o["offset"], o["file_offset"], o["pages"]) for o in objs if o["kind"] == "mapped_ram_pages"] == [
        (i * PS, poff + i * PS, 1) for i in present]
    assert read[0] < 8 * MIB  # headers, the 128 KiB bitmap and the tail: not the 4 GiB region
