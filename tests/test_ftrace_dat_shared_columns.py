# SPDX-License-Identifier: GPL-2.0-only
"""The ``print`` columns cut in row order from one shared buffer (frame_arrow._Spans,
frame_columns._spans_column) and the zstd pages of all CPUs decompressed into one mapping
(TraceDat._shared_slots): hand-built spans with their exact column values, the cases
that hand the column back to the per-piece path, and whole files held equal to the
per-CPU-buffer build (same rows, same findings, also with a damaged chunk).
"""
from __future__ import annotations

import mmap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import dissect.ftrace.frame_arrow as frame_arrow
import dissect.ftrace.frame_columns as frame_columns
import dissect.ftrace.tracedat as tracedat
from dissect.ftrace.frame import _column, _Spans, _spans_column, _utf8_without_nul
from dissect.ftrace.tracedat import TraceDat, read_trace_dat
from dissect.ftrace.writer import write_trace_dat
from tests.test_ftrace_dat_writer import ev, none
from tests.test_ftrace_tracedat_zstd_speedpath import mixed_events

#        0   3        9  11       17  19 22
BUF = b"HDRhello\nXXworld\nYYabc"


def a(*v):
    return np.array(v, dtype=np.int64)


def vals(col):
    return [none(v) for v in list(col)]


@pytest.mark.parametrize("take_rows", [1 << 16, 2])
def test_buf_column_in_row_order_with_missing_rows(monkeypatch, take_rows):
    """Spans (3,9) (11,17) to rows 2, 0 and (19,22) to row 3; rows 1 and 4 have none
    (also taken two rows at a time: three chunks)."""
    monkeypatch.setattr(frame_columns, "_TAKE_ROWS", take_rows)
    pieces = [(a(3), _Spans(BUF, a(19), a(22))), (a(2, 0), _Spans(BUF, a(3, 11), a(9, 17)))]
    col = _spans_column(pieces, 5)
    assert col is not None and col.dtype == frame_columns._STR
    assert vals(col) == ["world\n", None, "hello\n", "abc", None]
    assert vals(_column(pieces, 5)) == vals(col)


@pytest.mark.parametrize("take_rows", [1 << 16, 2])
def test_text_column_prefixes_and_other_pieces(monkeypatch, take_rows):
    """Text rows are prefix + span: codes pick the prefix per row (None: the one prefix);
    rows without a span take the other pieces' texts (a list, an Arrow array)."""
    monkeypatch.setattr(frame_columns, "_TAKE_ROWS", take_rows)
    pieces = [(a(2, 0), _Spans(BUF, a(3, 11), a(8, 16), pa.array(["p: ", "q: "], type=pa.large_string()), a(1, 0))),
              (a(3), _Spans(BUF, a(19), a(22), pa.array(["r: "], type=pa.large_string()))),
              (a(1), ["sched text"]),
              (a(4), pa.array(["# 1 00"], type=pa.string()))]
    want = ["p: world", "sched text", "q: hello", "r: abc", "# 1 00"]
    col = _spans_column(pieces, 5)
    assert col is not None and col.dtype == frame_columns._STR and vals(col) == want
    assert col._pa_array.num_chunks == (1 if take_rows > 5 else 3)
    assert vals(_column(pieces, 5, strings=True)) == want


@pytest.mark.parametrize("case", ["interleaved", "two buffers", "bytes buf"])
def test_cases_left_to_the_per_piece_path(case):
    """_spans_column declines (None) and _column still gives the values from the pieces' copies."""
    if case == "interleaved":  # (3,9) and (19,22) of one piece around (11,17) of another
        pieces = [(a(0, 2), _Spans(BUF, a(3, 19), a(9, 22))), (a(1), _Spans(BUF, a(11), a(17)))]
        want = ["hello\n", "world\n", "abc"]
    elif case == "two buffers":
        pieces = [(a(0), _Spans(BUF, a(3), a(9))), (a(1), _Spans(bytearray(BUF), a(11), a(17)))]
        want = ["hello\n", "world\n"]
    else:  # a buf column that also holds another kind: spans alone only
        pieces = [(a(0, 1), _Spans(BUF, a(3, 11), a(9, 17))), (a(2), ["x"])]
        want = ["hello\n", "world\n", "x"]
    assert _spans_column(pieces, len(want)) is None
    assert vals(_column(pieces, len(want))) == want


@pytest.mark.parametrize("take_rows", [1 << 16, 1])
def test_text_rows_without_text_stay_null(monkeypatch, take_rows):
    """Row 1 has no piece at all, row 3 a None text from another piece (sched rows of the
    bulk path have no text): both null, the others prefix + span or their own text."""
    monkeypatch.setattr(frame_columns, "_TAKE_ROWS", take_rows)
    one = pa.array(["p: "], type=pa.large_string())
    pieces = [(a(0, 2), _Spans(BUF, a(3, 11), a(8, 16), one)), (a(3, 4), [None, "own"])]
    want = ["p: hello", None, "p: world", None, "own"]
    col = _spans_column(pieces, 5)
    assert col is not None and vals(col) == want
    assert vals(_column(pieces, 5, strings=True)) == want


@pytest.mark.parametrize("raw,ok", [(b"abcdefghij", True), (b"abcdefgh\xffj", False), (b"abcdef\0hij", False)])
def test_utf8_check_in_small_batches(monkeypatch, raw, ok):
    """Five 2-byte spans checked two rows at a time: a bad byte in the last batch is found."""
    monkeypatch.setattr(frame_arrow, "_CHECK_ROWS", 2)
    region = np.frombuffer(raw, dtype=np.uint8)
    assert _utf8_without_nul(region, a(0, 2, 4, 6, 8), a(2, 4, 6, 8, 10)) is ok


def no_sharing(monkeypatch):
    monkeypatch.setattr(TraceDat, "_shared_slots", lambda self, inst: {})


def test_zstd_cpus_share_one_mapping(tmp_path, monkeypatch):
    p = write_trace_dat(tmp_path / "z.dat", mixed_events(), cpus=2, version=7, compression="zstd",
                        chunk_pages=1)
    td = read_trace_dat(p)
    (_, r0), (_, r1) = td._cpu_records()
    assert r0.buf is r1.buf and isinstance(r0.buf, mmap.mmap)
    slots = read_trace_dat(p)._shared_slots(td.instances[0])
    assert sorted(slots) == [0, 1] and slots[0][1] == 0 and slots[1][1] % mmap.PAGESIZE == 0
    assert slots[1][1] >= slots[0][2] and int(np.min(r1.offsets)) >= slots[1][1]
    df = td.dataframe()
    assert td.findings == []
    no_sharing(monkeypatch)
    ref_td = read_trace_dat(p)
    (_, q0), (_, q1) = ref_td._cpu_records()
    assert q0.buf is not q1.buf
    pd.testing.assert_frame_equal(df, ref_td.dataframe())
    assert [none(t) for t in df["text"].tolist()[2:6]] == ["tracing_mark_write: ab", "tracing_mark_write: abc",
                                                          "tracing_mark_write: abcd", "tracing_mark_write: xxxxxxx"]


def many_events():
    """300 prints of ~80 bytes on two CPUs: four 4 KiB pages per CPU."""
    return [ev(1000 + 10 * i, i % 2, 5, None, "print", {"buf": f"event {i:04d} " + "y" * 60 + "\n"})
            for i in range(300)]


def test_damaged_chunk_on_the_second_cpu(tmp_path, monkeypatch):
    """CPU 1's second chunk corrupted: that CPU leaves the shared mapping (its chunks are
    joined on their own), the same finding at the same offset, the same rows."""
    p = write_trace_dat(tmp_path / "z.dat", many_events(), cpus=2, version=7, compression="zstd",
                        chunk_pages=1)
    td = read_trace_dat(p)
    chunks, _ = td._chunk_table(td.instances[0].cpus[1], {"cpu": 1})
    assert len(chunks) >= 2
    at, start, csize, _ = chunks[1]
    data = bytearray(p.read_bytes())
    data[start + csize // 2:start + csize // 2 + 4] = b"\xff\xff\xff\xff"
    bad = tmp_path / "bad.dat"
    bad.write_bytes(bytes(data))
    td = read_trace_dat(bad)
    df = td.dataframe()
    (_, r0), (_, r1) = td._cpu_records()
    assert r0.buf is not r1.buf
    assert [(f.code, f.offset, f.context.get("cpu")) for f in td.findings] == [("decompress_failed", at, 1)]
    no_sharing(monkeypatch)
    ref = read_trace_dat(bad)
    pd.testing.assert_frame_equal(df, ref.dataframe())
    assert [f.to_json() for f in td.findings] == [f.to_json() for f in ref.findings]
    # a record is 4 + 8 + 8 + 73 (text, NUL) = 93 -> 96 bytes: 42 on a page (4080 data bytes),
    # so CPU 1's second page, its events 42..83 (numbers 85, 87, ..., 167), is lost, nothing else
    kept = [int(t.split()[2]) for t in df["text"]]
    assert kept == [i for i in range(300) if not (i % 2 and 85 <= i <= 167)]
    assert df["text"].iloc[0] == "tracing_mark_write: event 0000 " + "y" * 60


def test_shared_mapping_refused(tmp_path, monkeypatch):
    p = write_trace_dat(tmp_path / "z.dat", mixed_events(), cpus=2, version=7, compression="zstd")
    want = read_trace_dat(p).dataframe()
    real = tracedat.mmap.mmap
    calls = []

    def refuse_first(fileno, length, *args, **kw):
        if fileno == -1:
            calls.append(length)
        if fileno == -1 and len(calls) == 1:
            raise OSError(12, "Cannot allocate memory")
        return real(fileno, length, *args, **kw)

    monkeypatch.setattr(tracedat.mmap, "mmap", refuse_first)
    td = read_trace_dat(p)
    assert td._shared_slots(td.instances[0]) == {}
    pd.testing.assert_frame_equal(td.dataframe(), want)
    assert td.findings == []


def test_one_cpu_no_sharing(tmp_path):
    p = write_trace_dat(tmp_path / "z.dat", [ev(1000, 0, 5, "a", "print", {"buf": "solo\n"})], cpus=1,
                        version=7, compression="zstd")
    td = read_trace_dat(p)
    assert td._shared_slots(td.instances[0]) == {}
    assert td.dataframe()["text"].tolist() == ["tracing_mark_write: solo"]


def test_shared_mapping_bounded_by_the_file_size(tmp_path):
    """Each CPU's declared sizes pass their own bound; the sum must also stay within
    _MAX_CHUNK_RATIO x the file (CPUs of a crafted file may share chunks): 12,288 declared
    bytes need a file of at least 12 bytes at ratio 1024; one seen as 11 bytes gets none."""
    p = write_trace_dat(tmp_path / "z.dat", mixed_events(), cpus=2, version=7, compression="zstd")
    td = read_trace_dat(p)
    assert sorted(td._shared_slots(td.instances[0])) == [0, 1]
    total = sum(sz for _, _, sz in td._shared_slots(td.instances[0]).values())
    assert total == 3 * 4096  # CPU 0: two pages, CPU 1: one
    td.size = total // tracedat._MAX_CHUNK_RATIO - 1
    assert td._shared_slots(td.instances[0]) == {}
