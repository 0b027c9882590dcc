# SPDX-License-Identifier: GPL-2.0-only
"""Compressed CPU data (trace-dat.md §3.4): zstd chunks decompressed straight into one
buffer, held equal to the per-chunk path and to the uncompressed file; damaged chunks
give findings with the chunk's offset and the other chunks' events.  Also the bulk
pieces of the DataFrame build that came with that work (Arrow slices, raw_data).

The files: 400 ``print`` events on one CPU, one page per chunk.  Each record is
4 (header, type_len 25) + 8 (common) + 8 (ip) + 81 (text + NUL) padded to 100
bytes = 104 bytes, so a 4096-byte page (4080 data bytes) holds 39 events:
10 full pages and one of 10 — 11 chunks.
"""
from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import dissect.ftrace.tracedat as tracedat
from dissect.ftrace.frame import _arrow_slices, _arrow_strings, _has_nul
from dissect.ftrace.tracedat import read_trace_dat
from dissect.ftrace.writer import write_trace_dat
from tests.test_ftrace_dat_writer import ev, none

N, PER_PAGE, CHUNKS = 400, 39, 11
KIP = 0xFFFFFFFF81498A90  # the ip the writer records for a marker write (inside tracing_mark_write)


def events():
    return [ev(1000 + i * 100, 0, 5, "x", "print", {"buf": f"event number {i:05d} " + "x" * 60 + "\n"})
            for i in range(N)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("zspeed")
    evs = events()
    return {c: write_trace_dat(d / f"{c}.dat", evs, cpus=1, version=7, compression=c, chunk_pages=1)
            for c in ("none", "zstd", "zlib")}


def chunk_table(path):
    """(header offset, blob offset, compressed size, declared size) per chunk, read here by hand."""
    td = read_trace_dat(path)
    cs = td.instances[0].cpus[0]
    data = path.read_bytes()
    pos = cs.offset
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    out = []
    for _ in range(count):
        csize, usize = struct.unpack_from("<II", data, pos)
        out.append((pos, pos + 8, csize, usize))
        pos += 8 + csize
    return out


def damaged(tmp_path, path, edits, name="d.dat"):
    data = bytearray(path.read_bytes())
    for at, raw in edits:
        data[at:at + len(raw)] = raw
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return p


def ts_of(indices):
    return [1000 + i * 100 for i in indices]


def test_layout_of_the_test_files(files):
    table = chunk_table(files["zstd"])
    assert len(table) == CHUNKS and [c[3] for c in table] == [4096] * CHUNKS
    td = read_trace_dat(files["none"])
    assert td.instances[0].cpus[0].size == CHUNKS * 4096


def test_fast_path_holds_every_chunk_and_equals_the_uncompressed_pages(files, monkeypatch):
    td = read_trace_dat(files["zstd"])
    cs = td.instances[0].cpus[0]
    chunks, tail = td._chunk_table(cs, {"cpu": 0})
    assert [c[:3] for c in chunks] == [c[:3] for c in chunk_table(files["zstd"])] and tail == []
    out, k = td._zstd_into(chunks)
    assert k == CHUNKS and len(out) == CHUNKS * 4096
    plain = read_trace_dat(files["none"])
    pcs = plain.instances[0].cpus[0]
    raw = files["none"].read_bytes()[pcs.offset:pcs.offset + pcs.size]
    fast, f1 = td._decompress_cpu(cs, {"cpu": 0})
    monkeypatch.setattr(tracedat, "_MAX_CHUNK_RATIO", 0)  # no preallocation: every chunk on its own
    slow, f2 = read_trace_dat(files["zstd"])._decompress_cpu(cs, {"cpu": 0})
    assert isinstance(slow, bytes) and not isinstance(fast, bytes)
    assert bytes(fast) == slow == raw and f1 == f2 == []


@pytest.mark.parametrize("ratio", [1024, 0])
def test_zstd_frame_equals_uncompressed_frame(files, monkeypatch, ratio):
    monkeypatch.setattr(tracedat, "_MAX_CHUNK_RATIO", ratio)
    z, n = read_trace_dat(files["zstd"]), read_trace_dat(files["none"])
    dz = z.dataframe()
    pd.testing.assert_frame_equal(dz, n.dataframe())
    assert len(dz) == N and dz["ts_ns"].tolist() == ts_of(range(N))
    assert [e.ts_ns for e in z.events()] == ts_of(range(N)) and z.findings == []


@pytest.mark.parametrize("comp", ["zstd", "zlib"])
@pytest.mark.parametrize("bad", [0, 2, CHUNKS - 1])
def test_corrupt_chunk_loses_only_its_page(files, tmp_path, comp, bad):
    """A chunk whose blob does not decompress (its first bytes, the zstd magic / zlib header,
    destroyed): one finding at the chunk's header offset, every other chunk still decoded."""
    at, blob, _, _ = chunk_table(files[comp])[bad]
    p = damaged(tmp_path, files[comp], [(blob, b"\x00\x00\x00\x00")])
    td = read_trace_dat(p)
    evs = list(td.events())
    df = td.dataframe()
    lost = range(bad * PER_PAGE, min(N, (bad + 1) * PER_PAGE))
    kept = [i for i in range(N) if i not in lost]
    assert len(evs) == len(df) == N - len(lost) == (N - 10 if bad == CHUNKS - 1 else N - PER_PAGE)
    assert [e.ts_ns for e in evs] == df["ts_ns"].tolist() == ts_of(kept)
    assert df["buf"].tolist() == [f"event number {i:05d} " + "x" * 60 + "\n" for i in kept]
    f = [x for x in td.findings if x.code == "decompress_failed"]
    assert len(f) == 1 and f[0].offset == at and f[0].context == {"cpu": 0}
    assert f[0].message.startswith(f"{comp}: ")
    assert [x.code for x in td.findings] == ["decompress_failed"]


def test_two_corrupt_chunks(files, tmp_path):
    t = chunk_table(files["zstd"])
    p = damaged(tmp_path, files["zstd"], [(t[1][1], b"\x00" * 4), (t[6][1], b"\x00" * 4)])
    td = read_trace_dat(p)
    kept = [i for i in range(N) if not (39 <= i < 78 or 234 <= i < 273)]
    assert td.dataframe()["ts_ns"].tolist() == ts_of(kept) and len(kept) == 322
    assert [(x.code, x.offset) for x in td.findings] == [("decompress_failed", t[1][0]),
                                                          ("decompress_failed", t[6][0])]


@pytest.mark.parametrize("usize", [8192, 2048, 0])
def test_declared_size_differs_from_the_frame(files, tmp_path, usize):
    """Chunk 1 declares the wrong size: the fast path stops there, the per-chunk path keeps the
    frame's real 4096 bytes and warns, as before; nothing is lost."""
    t = chunk_table(files["zstd"])
    p = damaged(tmp_path, files["zstd"], [(t[1][0] + 4, struct.pack("<I", usize))])
    td = read_trace_dat(p)
    cs = td.instances[0].cpus[0]
    chunks, _ = td._chunk_table(cs, {"cpu": 0})
    assert td._zstd_into(chunks)[1] == 1
    assert td.dataframe()["ts_ns"].tolist() == ts_of(range(N))
    assert [(x.code, x.offset, x.message) for x in td.findings] == [
        ("decompressed_size", t[1][0], f"blob decompressed to 4096 bytes, header says {usize}")]


def test_absurd_declared_size_is_not_allocated(files, tmp_path):
    """A declared size far beyond any compression ratio: no buffer of that size, the data
    is still read in full through output that grows with the real data."""
    t = chunk_table(files["zstd"])
    p = damaged(tmp_path, files["zstd"], [(t[0][0] + 4, struct.pack("<I", 0x7FFFFFFF))])
    td = read_trace_dat(p)
    chunks, _ = td._chunk_table(td.instances[0].cpus[0], {"cpu": 0})
    assert sum(c[3] for c in chunks) > tracedat._MAX_CHUNK_RATIO * sum(c[2] for c in chunks)
    assert td._zstd_into(chunks) == (None, 0)
    assert [e.ts_ns for e in td.events()] == ts_of(range(N))
    assert [(x.code, x.offset) for x in td.findings] == [("decompressed_size", t[0][0])]


def test_chunk_size_past_the_file(files, tmp_path):
    """Chunk 5 claims more compressed bytes than the file holds: chunks 0-4 are decoded,
    the rest of the table cannot be located."""
    t = chunk_table(files["zstd"])
    p = damaged(tmp_path, files["zstd"], [(t[5][0], struct.pack("<I", 0x7FFFFFFF))])
    td = read_trace_dat(p)
    assert td.dataframe()["ts_ns"].tolist() == ts_of(range(5 * PER_PAGE))
    assert [(x.code, x.offset, x.context) for x in td.findings] == [("chunk_truncated", t[5][0], {"cpu": 0})]


def test_trailing_bytes_after_a_frame(files, tmp_path):
    """A chunk whose blob is a complete frame followed by junk (its compressed size grown into
    the next chunk's header): the per-chunk path decodes the frame; the next chunks then sit at
    the wrong place and are reported, never a traceback."""
    t = chunk_table(files["zstd"])
    p = damaged(tmp_path, files["zstd"], [(t[9][0], struct.pack("<I", t[9][2] + 8))])
    td = read_trace_dat(p)
    df = td.dataframe()
    assert df["ts_ns"].tolist()[:10 * PER_PAGE] == ts_of(range(10 * PER_PAGE))
    assert len(df) == 10 * PER_PAGE
    assert [x.code for x in td.findings] == ["chunk_truncated"]


# ---------------------------------------------------------------- frame bulk paths
def test_arrow_slices_and_strings():
    region = np.frombuffer(b"..hello..world!!\xff\xfe.", dtype=np.uint8)
    got = _arrow_strings(region, np.array([2, 9, 14]), np.array([7, 14, 14]))
    assert got.type == pa.large_string() and got.to_pylist() == ["hello", "world", ""]
    assert _arrow_slices(region, np.array([0, 16]), np.array([2, 18])).to_pylist() == [b"..", b"\xff\xfe"]
    assert _arrow_strings(region, np.array([0, 16]), np.array([2, 18])) is None  # not UTF-8
    assert _arrow_strings(region, np.array([], np.int64), np.array([], np.int64)).to_pylist() == []


def test_has_nul_on_sliced_arrays():
    arr = pa.array(["ab", "c\0d", "ef", ""], type=pa.large_string())
    assert _has_nul(arr) and _has_nul(arr.slice(1, 1))
    assert not _has_nul(arr.slice(2)) and not _has_nul(arr.slice(0, 1)) and not _has_nul(arr.slice(3))


def test_raw_data_texts_and_bytes(tmp_path):
    """raw_data records of 0, 1, 4 and 5 payload bytes: the record is padded to 4 bytes and
    ``buf`` is everything after ``id`` (8 common + 4 id bytes), padding included."""
    pieces = [b"", b"\x01", b"\xde\xad\xbe\xef", b"\x00\x01\x02\x03\x04"]
    evs = [ev(1000 + i, 0, 7, "t", "raw_data", {"id": 0x76697274 + i, "buf": p}) for i, p in enumerate(pieces)]
    p = write_trace_dat(tmp_path / "raw.dat", evs, cpus=1)
    for td in (read_trace_dat(p),):
        df = td.dataframe()
        assert df["text"].tolist() == ["# 76697274", "# 76697275 01 00 00 00", "# 76697276 de ad be ef",
                                       "# 76697277 00 01 02 03 04 00 00 00"]
        assert df["buf"].tolist() == [b"", b"\x01\0\0\0", b"\xde\xad\xbe\xef", b"\x00\x01\x02\x03\x04\0\0\0"]
        assert df["id"].tolist() == [0x76697274, 0x76697275, 0x76697276, 0x76697277]
        assert df["id"].dtype == np.int64
        assert [e.text for e in td.events()] == df["text"].tolist()
        assert [e.fields for e in td.events()] == read_trace_dat(p).dataframe(fields="dict")["fields"].tolist()


def mixed_events():
    texts = ["", "a", "ab\n", "abc", "abcd\n", "xxxxxxx", "no newline", "two\n\n"]
    out = []
    for i in range(240):
        ts, cpu = 5000 + 10 * i, i % 2
        if i % 6 == 0:
            out.append(ev(ts, cpu, 300 + i % 4, None, "sched_switch", {
                "prev_comm": f"p{i % 4}", "prev_pid": 300 + i % 4, "prev_prio": 120, "prev_state": 1,
                "next_comm": f"n{i % 5}", "next_pid": 400 + i % 5, "next_prio": 120}, system="sched"))
        elif i % 6 == 1:
            out.append(ev(ts, cpu, 400 + i % 5, None, "raw_data", {"id": i % 3, "buf": bytes(range(i % 7))}))
        else:
            out.append(ev(ts, cpu, 400 + i % 5, None, "print", {"buf": texts[i % len(texts)]}))
    return out


@pytest.mark.parametrize("version,comp,big", [(6, "none", False), (6, "none", True), (7, "zstd", False),
                                              (7, "zstd", True), (7, "none", True)])
def test_bulk_frame_equals_events_both_byte_orders(tmp_path, version, comp, big):
    """Short texts (the NUL-in-the-last-word search), raw_data, sched comm registration: the
    DataFrame equals events() row for row, little- and big-endian."""
    p = write_trace_dat(tmp_path / "mix.dat", mixed_events(), cpus=2, version=version, compression=comp,
                        big_endian=big)
    ref = list(read_trace_dat(p).events())
    df = read_trace_dat(p).dataframe(fields="dict")
    assert len(df) == len(ref) == 240
    for row, e in zip(df.itertuples(index=False), ref):
        assert (row.ts_ns, row.cpu, row.pid, row.comm, row.event, row.fields, none(row.text)) == \
            (e.ts_ns, e.cpu, e.pid, e.comm, e.event, e.fields, e.text)
    cols = read_trace_dat(p).dataframe()
    sym = "tracing_mark_write: "
    assert [none(t) for t in cols["text"].tolist()[:10]] == [
        None, "# 1 00 00 00 00", sym + "ab", sym + "abc", sym + "abcd", sym + "xxxxxxx", None, "# 1", sym,
        sym + "a"]
    assert cols["comm"].tolist()[:6] == ["<...>"] * 5 + ["n0"]  # pid 400 registered by the first switch


@pytest.mark.parametrize("with_raw", [False, True])
def test_bulk_and_per_record_pieces_of_one_integer_column(tmp_path, with_raw):
    """CPU 0's prints take the bulk path (ip gathered as uint64), CPU 1's print holds an
    embedded NUL and goes through the per-record decoder (ip 0x1234 as int64): the ip
    column stays integer and exact (NumPy alone would promote the mix to float64; with
    rows lacking an ip it used to raise)."""
    evs = [ev(1000, 0, 5, "a", "print", {"buf": "fine\n"}),
           ev(1001, 1, 6, "b", "print", {"buf": b"cut\0here\n", "ip": 0x1234}),
           ev(1002, 0, 5, "a", "print", {"buf": "fine too\n"})]
    if with_raw:
        evs.append(ev(1003, 1, 6, "b", "raw_data", {"id": 7, "buf": b""}))
    df = read_trace_dat(write_trace_dat(tmp_path / "mixed.dat", evs, cpus=2)).dataframe()
    assert [none(v) for v in df["ip"].tolist()] == [KIP, 0x1234, KIP] + ([None] if with_raw else [])
    assert str(df["ip"].dtype) == ("UInt64" if with_raw else "uint64")
    assert df["text"].tolist()[:3] == ["tracing_mark_write: fine", "0x1234: cut", "tracing_mark_write: fine too"]


def test_no_mapping_for_the_declared_sizes(files, monkeypatch):
    """When the system refuses the up-front mapping (ENOMEM for a large declared total), the
    chunks are read one by one: same rows, no finding, no traceback."""
    td = read_trace_dat(files["zstd"])
    real = tracedat.mmap.mmap

    def refuse(fileno, length, *args, **kw):
        if fileno == -1:
            raise OSError(12, "Cannot allocate memory")
        return real(fileno, length, *args, **kw)

    monkeypatch.setattr(tracedat.mmap, "mmap", refuse)
    chunks, _ = td._chunk_table(td.instances[0].cpus[0], {"cpu": 0})
    assert td._zstd_into(chunks) == (None, 0)
    assert td.dataframe()["ts_ns"].tolist() == ts_of(range(N)) and td.findings == []
