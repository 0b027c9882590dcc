# SPDX-License-Identifier: GPL-2.0-only
"""The byte scanner of the text bulk path (dissect.ftrace.text_scan; trace-dat.md §8, qemu-trace-events.md §1.2).

Its primitives against values worked out by hand, each form scanner's
columns for hand-written lines, the lines it must leave to the per-line code,
and a property test: mutated lines of every form read into the same frame,
findings and reader state through the bulk path as through the per-line
path, at chunk sizes that cut the file everywhere.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.ftrace import text_base as T  # chunk sizes live with the chunked input
from dissect.ftrace import text_scan as S
from dissect.ftrace.event import Event
from dissect.ftrace.text import read_ftrace_text, read_qemu_log, read_report_text

P = S.PAD


def test_chunk_lines_and_first_delimiter():
    c = S.Chunk(b"ab] x: y\n] z\nq")
    assert c.n == 3 and (c.start - P).tolist() == [0, 9, 13] and (c.end - P).tolist() == [8, 12, 14]
    # the first "] " at or after each line start; past the chunk: the sentinel len(a)
    assert (c.first(b"] ", c.start) - P).tolist() == [2, 9, len(c.a) - P]
    assert (c.first(b":", c.start) - P).tolist() == [5, len(c.a) - P, len(c.a) - P]


def test_starts_with_compares_whole_words_and_a_masked_tail():
    c = S.Chunk(b"print: x\nprinT: x\nprint\ntracing_mark_write: a\ntracing_mark_write:b")
    at = c.start
    assert c.starts_with(at, b"print").tolist() == [True, False, True, False, False]
    assert c.starts_with(at, b"print:").tolist() == [True, False, False, False, False]  # "\n" is not ":"
    assert c.starts_with(at, b"tracing_mark_write: ").tolist() == [False, False, False, True, False]
    assert c.starts_with(at + 2, b"int").tolist() == [True, False, True, False, False]


def test_digits_parse_runs_and_refuse_non_digits():
    c = S.Chunk(b"x 0042 9876543210 7")
    lo = np.array([2, 7, 18]) + P
    hi = np.array([6, 17, 19]) + P
    assert c.digits(lo, hi, 10).tolist() == [42, 9876543210, 7]
    assert c.digits(lo, hi, 9) is None                      # a 10-digit run over the limit
    assert c.digits(lo - 1, hi, 11) is None                 # includes the space before
    assert c.digits(hi, hi, 4) is None                      # empty run


def test_factorize_codes_in_order_of_appearance_checked_byte_for_byte():
    c = S.Chunk(b"bb\naa\nbb\nb\x00\nb")
    codes, uniq = c.factorize(c.start, c.end)
    assert codes.tolist() == [0, 1, 0, 2, 3] and uniq == [b"bb", b"aa", b"b\x00", b"b"]
    assert c.factorize(c.start, c.end, maxw=7) is None      # widths are whole 8-byte words
    wide = S.Chunk(b"x" * (P + 1))
    assert wide.factorize(wide.start, wide.end) is None     # wider than the pad: refused


def test_strings_cut_spans_nulls_and_extras():
    c = S.Chunk(b"one two\nthree four\nfive")
    lo, hi = c.start + np.array([4, 6, 0]), c.end
    assert c.strings(lo, hi).to_pylist() == ["two", "four", "five"]
    rows = np.array([True, False, True])
    assert c.strings(lo, hi, rows).to_pylist() == ["two", None, "five"]
    got = c.strings(lo, hi, rows, np.array([1]), ["x\u00e9", None], np.array([0]))
    assert got.to_pylist() == ["two", "x\u00e9", "five"]
    got = c.strings(lo, hi, rows, np.array([1]), ["x", None], np.array([1]))
    assert got.to_pylist() == ["two", None, "five"]


def _scan(reader, text: str):
    """The form's scanner on ``text`` (a piece holds whole lines without the last newline)."""
    return reader._bulk_parser(reader, S.Chunk(text.removesuffix("\n").encode()))


def test_trace_block_columns():
    r = read_ftrace_text(__file__)
    lines = ["  live_migration-4242    [001] ...1.  1142.000002: tracing_mark_write: vfio_save_block  x",
             "           <...>-11773   [000] d..2. 1795632355.999999: sched_process_exec: filename=/bin/true "
             "pid=11773 old_pid=11773",
             " qemu-system-x86-15194   (  15190) [003]   728.461065: tracing_mark_write: "]
    b = _scan(r, "\n".join(lines))
    assert b.n == 3 and b.ts.tolist() == [1142_000_002_000, 1795632355_999_999_000, 728_461_065_000]
    assert b.pid.tolist() == [4242, 11773, 15194] and b.cpu.tolist() == [1, 0, 3]
    assert [b.comm[j] for j in range(3)] == ["live_migration", "<...>", "qemu-system-x86"]
    assert [b.event[j] for j in range(3)] == ["print", "sched_process_exec", "print"]
    assert [b.system[j] for j in range(3)] == ["ftrace", "sched", "ftrace"]
    assert b.text.to_pylist() == ["tracing_mark_write: vfio_save_block  x", None, "tracing_mark_write: "]
    assert b.buf.to_pylist() == ["vfio_save_block  x\n", None, "\n"]
    assert b.other == {1: {"filename": "/bin/true", "pid": 11773, "old_pid": 11773}}
    assert b.start.tolist() == [0, len(lines[0]) + 1, len(lines[0]) + len(lines[1]) + 2] and r.precision_ns == 1000


def test_report_block_columns():
    r = read_report_text(__file__)
    r._flen = 9  # as after the first -t line (the slow path adopts the width)
    b = _scan(r, "migtrace_f:  python3-9715  [001]   483.336100123: print:      tracing_mark_write: vfio x: y\n"
                 "  true-15238 [000]   728.504079000: sched_process_exec:   filename=/bin/true pid=1 old_pid=1\n"
                 "  a-5  [000]   1.000001000: print:                 ip=tracing_mark_write buf=z\n"
                 "  a-5  [000]   1.000002000: raw_data:             # 2a 10 11\n")
    assert b.ts.tolist() == [483_336_100_123, 728_504_079_000, 1_000_001_000, 1_000_002_000]
    assert [b.instance[j] for j in range(4)] == ["migtrace_f", None, None, None]
    assert b.text.to_pylist() == ["tracing_mark_write: vfio x: y", None, "tracing_mark_write: z", "# 2a 10 11"]
    assert b.buf.to_pylist() == ["vfio x: y\n", None, None, None]
    assert b.other == {1: {"filename": "/bin/true", "pid": 1, "old_pid": 1}, 2: {"ip": None, "buf": "z\n"},
                       3: {"id": 0x2A, "buf": b"\x10\x11"}}
    assert r.precision_ns == 1


def test_qemu_block_columns():
    r = read_qemu_log(__file__)
    b = _scan(r, "9962@1795632354.774550:runstate_set current_run_state 6\n4242@1795632355.000001:savevm_state_header")
    assert b.ts.tolist() == [1795632354_774_550_000, 1795632355_000_001_000] and b.pid.tolist() == [9962, 4242]
    assert [b.event[j] for j in range(2)] == ["runstate_set", "savevm_state_header"] and b.cpu is None
    assert b.text.to_pylist() == ["runstate_set current_run_state 6", "savevm_state_header"]


def test_lines_the_per_line_code_reads_otherwise_are_refused():
    t = read_ftrace_text(__file__)
    ok = "  a-1    [000] ....  1.000001: tracing_mark_write: x\n"
    for odd in ("  a-1    [000] ....  1.1000000: tracing_mark_write: 7 digits\n",   # slow path
                "a-1 [000] 1.000001 tracing_mark_write x\n",                        # no ": "
                "  a-x    [000] ....  1.000001: tracing_mark_write: bad pid\n",      # prefix regex fails
                "  a-1    [000] ....  12345678901.000001: tracing_mark_write: ns past int64\n",
                "line two of a marker\n", "\n", "# tracer: nop\n"):
        assert _scan(t, ok + odd + ok) is None, odd
    assert _scan(t, ok + ok).n == 2
    q = read_qemu_log(__file__)
    for odd in ("1@2.000003:9name x", "1@2.000003:na-me", "123456789012@2.000003:x", "1@2.0000031:x",
                "1@2:x", "2025-07-21T18:43:28.089797Z vfio_save_block"):
        assert _scan(q, f"1@2.000003:x\n{odd}\n") is None, odd
    # a width other than the fast path's (6 until the slow path adopted another): its slow path
    # reads such a line, more strictly, so the scanner leaves the chunk to it
    r = read_report_text(__file__)
    ns_line = "  a-5  [000]   1.000001000: print:   tracing_mark_write: x\n"
    assert _scan(r, ns_line) is None and r.precision_ns is None
    r._flen = 9
    assert _scan(r, ns_line).ts.tolist() == [1_000_001_000] and r.precision_ns == 1
    assert _scan(r, "  a-5  [000]   1.000001: print:   tracing_mark_write: x\n") is None


def test_numbers_past_int64_keep_an_exact_object_column_in_both_frames(tmp_path):
    q = tmp_path / "q"
    q.write_text("4242@11795632355.000001:vfio_save_block  x\n4242@1795632355.000002:vfio_save_block  y\n")
    t = tmp_path / "t"
    t.write_text("  a-1    [000] ....  1.000001: sched_process_exec: pid=99999999999999999999 old_pid=1\n"
                 "  a-1    [000] ....  1.000002: sched_process_exec: pid=7 old_pid=2\n")
    for bulk in (False, True):
        df = read_qemu_log(q).dataframe(bulk=bulk)
        assert df["ts_ns"].dtype == object
        assert df["ts_ns"].tolist() == [11795632355_000_001_000, 1795632355_000_002_000]
        df = read_ftrace_text(t).dataframe(bulk=bulk)
        assert df["field_pid"].dtype == object and df["field_pid"].tolist() == [99999999999999999999, 7]
        assert str(df["old_pid"].dtype) == "Int64" and df["old_pid"].tolist() == [1, 2]


# -- property: both paths give the same frame on mutated lines ---------------------------------

LINES = {
    "ftrace-text": ["  live_migration-4242    [001] ...1.  1142.{f6}: tracing_mark_write: vfio_save_block  {n}",
                    "           <...>-11773   [000] d..2.  1142.{f6}: sched_process_exec: filename=/bin/true pid={n}",
                    "  q-9    [001] ...1.   3.{f6}: tracing_mark_write+0x3a/0x2a0: vmstate_downtime_save",
                    "  python3-9715    [001] ...1.   483.{f6}: # 2a buf: 10 11 12 13",
                    "  bash-1  [000] d..2.  2.{f6}: sched_switch: prev_comm=bash prev_pid=1 prev_prio=120 "
                    "prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120",
                    " qemu-system-x86-15194   (  15190) [000] ...1.   728.{f6}: tracing_mark_write: a: b",
                    "CPU:1 [LOST 3 EVENTS]"],
    "trace-cmd-report": ["  live_migration-4242  [001]  1142.{f6}: print:                tracing_mark_write: x {n}",
                         "migtrace_f:  python3-9715  [001]   483.{f9}: print:   tracing_mark_write: vfio {n}",
                         "  true-15238 [000]   728.{f6}: sched_process_exec:   filename=/bin/true pid={n}",
                         "  a-5  [000] d..1   1.{f6}: print:                 ip=tracing_mark_write buf=v",
                         "  a-5  [000]   1.{f6}: raw_data:             # 2a 10 11 12 13",
                         "  qemu-1  [003]   217.{f9}: sched_switch:  qemu:1 [120] R ==> swapper/3:0 [120]",
                         "CPU:7 [204600 EVENTS DROPPED]", "cpus=2"],
    "qemu-log": ["4242@1795632355.{f6}:vfio_save_block  (0000:3b:00.1) data_size {n}",
                 "9994@1795632355.{f6}:savevm_state_header ",
                 "2025-07-21T18:43:28.089797Z vfio_save_block  (0000:3b:00.1) data_size 4096",
                 "migrate_set_state new state active"],
}
READERS = {"ftrace-text": read_ftrace_text, "trace-cmd-report": read_report_text, "qemu-log": read_qemu_log}
JUNK = " :].@-(\n0123456789x\t#"


@contextlib.contextmanager
def small_chunks(chunk: int):
    old = T.CHUNK, T.BULK_MIN
    T.CHUNK, T.BULK_MIN = chunk, 64
    try:
        yield
    finally:
        T.CHUNK, T.BULK_MIN = old


@st.composite
def trace_files(draw):
    kind = draw(st.sampled_from(sorted(LINES)))
    out = []
    for _ in range(draw(st.integers(1, 40))):
        line = draw(st.sampled_from(LINES[kind])).format(
            f6=f"{draw(st.integers(0, 999_999)):06d}", f9=f"{draw(st.integers(0, 10**9 - 1)):09d}",
            n=draw(st.integers(0, 10**12)))
        if line and draw(st.integers(0, 3)) == 0:  # one line in four mutated
            at = draw(st.integers(0, len(line) - 1))
            op = draw(st.sampled_from(["sub", "del", "ins"]))
            ch = draw(st.sampled_from(JUNK))
            line = (line[:at] + ch + line[at + 1:] if op == "sub" else line[:at] + line[at + 1:] if op == "del"
                    else line[:at] + ch + line[at:])
        out.append(line)
    data = ("\n".join(out) + "\n").encode()
    for _ in range(draw(st.integers(0, 3))):  # bytes that are not UTF-8 (issue 14)
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.sampled_from([b"\x80", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\\x80"])) + data[at:]
    return kind, data


@settings(max_examples=80, deadline=None)
@given(f=trace_files(), chunk=st.sampled_from([1 << 22, 700, 150]))
def test_mutated_lines_same_frame_both_paths(tmp_path_factory, f, chunk):
    kind, data = f
    p = tmp_path_factory.mktemp("scan") / "t"
    p.write_bytes(data)
    with small_chunks(chunk):
        a, b = READERS[kind](p), READERS[kind](p)
        fa, fb = a.dataframe(bulk=False), b.dataframe(bulk=True)
        pd.testing.assert_frame_equal(fa, fb)
        assert [x.to_json() for x in a.findings] == [x.to_json() for x in b.findings]
        assert (a.lines, a.lost_events, a.header, a.precision_ns) == (b.lines, b.lost_events, b.header,
                                                                      b.precision_ns)
        a, b = READERS[kind](p), READERS[kind](p)
        fa, fb = a.dataframe("dict", bulk=False), b.dataframe("dict", bulk=True)
        pd.testing.assert_frame_equal(fa, fb)
        # iterating: scanned chunks expanded into the same events (offsets included), findings between
        assert_same_items(per_line(READERS[kind](p)), list(READERS[kind](p)))


def per_line(reader) -> list:
    reader._per_line = True
    return list(reader)


def assert_same_items(want: list, got: list) -> None:
    assert [x.to_json() | {"offset": x.offset} if isinstance(x, Event) else ("finding", x.to_json())
            for x in got] == [x.to_json() | {"offset": x.offset} if isinstance(x, Event) else
                              ("finding", x.to_json()) for x in want]
    assert got == want  # Event equality: every field, instance and fields' Python types included


def test_iterating_scans_chunks_and_gives_the_per_line_events(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "CHUNK", 4096)
    monkeypatch.setattr(T, "BULK_MIN", 512)
    for kind, every in LINES.items():
        # event lines only (no lost-event or header lines), one timestamp width (a file has one)
        lines = [x for x in every if "{" in x and "{f9}" not in x]
        body = "".join(x.format(f6=f"{i:06d}", f9=f"{i:09d}", n=i) + "\n" for i in range(150) for x in lines)
        p = tmp_path / kind
        p.write_text(body)
        r = READERS[kind](p)
        r._blocks_out = True
        scanned = sum(x.n for x in r if isinstance(x, S.Block))
        assert scanned > len(lines) * 150 // 3, kind  # most lines went through the scanner
        assert_same_items(per_line(READERS[kind](p)), list(READERS[kind](p)))
