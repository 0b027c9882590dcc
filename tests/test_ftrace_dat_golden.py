# SPDX-License-Identifier: GPL-2.0-only
"""Hand-written golden bytes for the ring-buffer page and event header (trace-dat.md §5),
and the fast page walk held equal to its construct twin (headers.py)."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.ftrace import headers as H
from dissect.ftrace.ring import VECTOR_MIN_PAGES, PageLayout, walk_cpu, walk_cpu_py, walk_cpu_vector
from dissect.ftrace.tracedat import read_trace_dat
from dissect.ftrace.writer import build_pages, encode_record
from dissect.ftrace.formats import parse_format
from dissect.ftrace.writer import ftrace_format_texts
from tests.test_ftrace_dat_real import FILES, REAL

LAYOUT8 = PageLayout()                       # ts @0, commit @8 (8 bytes), data @16
LAYOUT4 = PageLayout(0, 8, 8, 4, 12)          # 32-bit kernel: commit is 4 bytes, data @12


def page(header: bytes, body: bytes, size: int = 64) -> bytes:
    p = header + body
    return p + bytes(size - len(p))


class Walked:
    """The NumPy walk's result as lists, after checking it equals the per-event reference walk."""

    def __init__(self, fast, ref):
        self.ts, self.offsets, self.lengths = fast.lists()
        assert (self.ts, self.offsets, self.lengths) == ref.lists()
        assert (fast.lost, fast.lost_unknown) == (ref.lost, ref.lost_unknown)
        key = lambda f: (f.offset, f.code, f.message)  # noqa: E731
        assert sorted(fast.findings, key=key) == sorted(ref.findings, key=key)
        self.findings, self.lost, self.lost_unknown = fast.findings, fast.lost, fast.lost_unknown


def walk(buf: bytes, layout=LAYOUT8, big=False, size=64):
    return Walked(walk_cpu_vector(buf, 0, len(buf), size, layout, big, 0),
                  walk_cpu_py(buf, 0, len(buf), size, layout, big, 0))


def test_page_le_data_events_time_extend_and_padding():
    buf = page(
        bytes.fromhex("0010000000000000")          # page timestamp 4096
        + bytes.fromhex("2800000000000000"),       # commit: 40 data bytes
        bytes.fromhex("03000000") + b"ABCDEFGHIJKL"   # type_len 3, delta 0 -> 12-byte record @ ts 4096
        + bytes.fromhex("be000000") + bytes.fromhex("01000000")  # type 30, delta 5, array 1 -> +2**27+5
        + bytes.fromhex("41000000") + b"MNOP"      # type_len 1, delta 2 -> 4-byte record
        + bytes.fromhex("1d000000")                # type 29 (padding), delta 0 -> rest unused
        + b"\xff" * 8)                             # garbage after padding must be ignored
    r = walk(buf)
    assert r.ts == [4096, 4096 + (1 << 27) + 5 + 2]
    assert r.offsets == [16 + 4, 16 + 4 + 12 + 8 + 4]  # the time extend takes 8 bytes
    assert r.lengths == [12, 4]
    assert r.findings == [] and r.lost == 0


def test_page_le_long_record_absolute_timestamp_and_discarded_event():
    buf = page(
        bytes.fromhex("6400000000000000") + bytes.fromhex("3000000000000000"),  # ts 100, commit 48
        bytes.fromhex("e0000000") + bytes.fromhex("0c000000") + b"12345678"      # type_len 0, delta 7, length 12
        + bytes.fromhex("3d000000") + bytes.fromhex("08000000") + b"dead"        # type 29 delta 1: discarded, 8 bytes
        + bytes.fromhex("3f000000") + bytes.fromhex("02000000")                  # type 31: ts = (2<<27)|1
        + bytes.fromhex("22000000") + b"wxyz1234",                               # type_len 2, delta 1
        size=80)
    r = walk(buf, size=80)
    assert r.lengths == [8, 8]
    assert r.ts == [107, (2 << 27 | 1) + 1]
    assert r.offsets == [24, 16 + 16 + 12 + 8 + 4]


def test_page_big_endian_headers():
    buf = page(
        bytes.fromhex("0000000000001000") + bytes.fromhex("0000000000000014"),  # ts 4096, commit 20
        bytes.fromhex("18000000") + b"ABCDEFGHIJKL"   # BE: type_len 3 in the top 5 bits, delta 0
        + bytes.fromhex("08000009"))                  # type_len 1, delta 9, payload missing -> truncated
    r = walk(buf, big=True)
    assert r.ts == [4096] and r.lengths == [12]
    assert [f.code for f in r.findings] == ["truncated_event"]
    assert r.findings[0].offset == 32


def test_page_four_byte_commit_and_lost_events():
    # commit 0xc0000008: MISSING_EVENTS | MISSING_STORED, 8 data bytes; lost count (u32) after the data
    buf = page(bytes.fromhex("0100000000000000") + bytes.fromhex("080000c0"),
               bytes.fromhex("01000000") + b"abcd" + bytes.fromhex("05000000"))
    r = walk(buf, layout=LAYOUT4)
    assert r.ts == [1] and r.offsets == [16] and r.lengths == [4]
    assert r.lost == 5
    assert [f.code for f in r.findings] == ["lost_events"] and r.findings[0].context["count"] == 5


def test_missing_events_without_stored_count():
    buf = page(bytes.fromhex("0100000000000000") + bytes.fromhex("0800008000000000"),  # bit 31 only
               bytes.fromhex("01000000") + b"abcd")
    r = walk(buf)
    assert r.lost == 0 and r.lost_unknown == 1
    assert r.findings[0].code == "lost_events" and r.findings[0].context["count"] is None


def test_bad_commit_is_clamped_and_reported():
    buf = page(bytes.fromhex("0100000000000000") + bytes.fromhex("ffffff0700000000"),
               bytes.fromhex("01000000") + b"abcd")
    r = walk(buf)
    assert r.findings[0].code == "bad_commit" and r.findings[0].offset == 8
    assert r.lengths[0] == 4 and r.ts[0] == 1


def test_time_backwards_after_a_page_without_events():
    """A page that yields no event still sets the time the next page is compared with."""
    buf = (page(bytes.fromhex("8813000000000000") + bytes(8), b"")          # ts 5000, no data
           + page(bytes.fromhex("a00f000000000000") + bytes(8), b""))     # ts 4000, no data
    r = walk(buf)
    assert r.ts == []
    assert [(f.code, f.offset, f.message) for f in r.findings] == [
        ("time_backwards", 64, "page timestamp 4000 is before the previous event 5000")]
    # the same when the only event there is cannot be read (a long record without its length)
    buf = (page(bytes.fromhex("8813000000000000") + bytes.fromhex("0400000000000000"),
                bytes.fromhex("00000000"))                                 # type_len 0, data ends
           + page(bytes.fromhex("a00f000000000000") + bytes(8), b""))
    r = walk(buf)
    assert r.ts == []
    assert [(f.code, f.offset) for f in r.findings] == [("truncated_event", 16), ("time_backwards", 64)]


def test_absolute_stamp_keeps_the_running_time_high_bits():
    """Time extends carry the running time past 2**59: an absolute stamp takes its top
    5 bits from that running time, not from the page timestamp."""
    buf = page(bytes.fromhex("e803000000000000") + bytes.fromhex("2000000000000000"),  # ts 1000, 32 bytes
               bytes.fromhex("1e000000") + bytes.fromhex("00000080")   # time extend: + 2**31 << 27 = 2**58
               + bytes.fromhex("1e000000") + bytes.fromhex("00000080")  # again: running time 2**59 + 1000
               + bytes.fromhex("bf000000") + bytes.fromhex("00000000")  # type 31, delta 5: absolute 5
               + bytes.fromhex("41000000") + b"ABCD")                   # type_len 1, delta 2
    r = walk(buf)
    assert r.ts == [(1 << 59) + 5 + 2]
    assert r.offsets == [16 + 28] and r.findings == []


def test_time_wraps_at_64_bits():
    buf = page(bytes.fromhex("f6ffffffffffffff") + bytes.fromhex("0800000000000000"),  # ts 2**64 - 10
               bytes.fromhex("81020000") + b"ABCD")                     # type_len 1, delta 20
    assert walk(buf).ts == [10]


def test_event_header_construct_twin_golden():
    le, be = H.event_header(False), H.event_header(True)
    p = le.parse(bytes.fromhex("be000000"))
    assert (p.type_len, p.time_delta) == (30, 5)
    p = le.parse(bytes.fromhex("e0000000"))
    assert (p.type_len, p.time_delta) == (0, 7)
    p = be.parse(bytes.fromhex("08000009"))
    assert (p.type_len, p.time_delta) == (1, 9)
    p = H.page_header(False, 8).parse(bytes.fromhex("0010000000000000" "2800000000000000"))
    assert (p.timestamp, p.commit) == (4096, 40)
    p = H.page_header(True, 4).parse(bytes.fromhex("0000000000001000" "c0000008"))
    assert (p.timestamp, p.commit) == (4096, 0xC0000008)


def test_writer_golden_print_record_and_page():
    fmt = parse_format(ftrace_format_texts(8)["print"], "ftrace", 8)
    rec = encode_record(fmt, 11773, {"ip": 0xFFFFFFFF814AA001, "buf": "hi\n"}, False)
    assert rec == (bytes.fromhex("0500" "00" "00" "fd2d0000")       # type 5, flags, preempt, pid 11773
                   + bytes.fromhex("01a04a81ffffffff")               # ip
                   + b"hi\n\0")                                      # text + NUL, already 4-aligned
    pg = build_pages([(1000, rec), (1000 + 11989, rec)], 4096, 8, False)
    assert len(pg) == 4096
    assert pg[:16] == bytes.fromhex("e803000000000000" "3000000000000000")  # ts 1000, commit 2 * (4 + 20)
    assert pg[16:20] == bytes.fromhex("05000000")                            # type_len 5, delta 0
    assert pg[40:44] == struct.pack("<I", (11989 << 5) | 5)
    assert pg[64:] == bytes(4096 - 64)


def test_writer_uses_time_extend_and_long_records():
    rec = bytes(200)
    pg = build_pages([(0, rec), (1 << 30, rec)], 4096, 8, False)
    # first: type_len 0, length word 204
    assert pg[16:24] == bytes.fromhex("00000000" "cc000000")
    ext = 16 + 8 + 200
    assert pg[ext:ext + 8] == struct.pack("<II", 30, (1 << 30) >> 27)  # delta low bits 0 -> header 30
    r = walk(pg, size=4096)
    assert r.ts == [0, 1 << 30] and r.lengths == [200, 200]


def _declarative_walk(buf, start, size, page_size, layout, big):
    """The construct twin: page header and event headers parsed declaratively."""
    ph, eh = H.page_header(big, layout.commit_size), H.event_header(big)
    e = ">" if big else "<"
    out = []
    for page in range(start, start + size, page_size):
        hdr = ph.parse(bytes(buf[page:page + 8 + layout.commit_size]))
        ts = hdr.timestamp
        i, end = page + layout.data_offset, page + layout.data_offset + (hdr.commit & H.COMMIT_MASK)
        while i + 4 <= end:
            h = eh.parse(bytes(buf[i:i + 4]))
            if h.type_len == 0:
                n = ((struct.unpack_from(e + "I", buf, i + 4)[0] - 4) + 3) & ~3
                ts += h.time_delta
                out.append((ts, i + 8, n))
                i += 8 + n
            elif h.type_len <= 28:
                ts += h.time_delta
                out.append((ts, i + 4, h.type_len * 4))
                i += 4 + h.type_len * 4
            elif h.type_len == 29:
                if h.time_delta == 0:
                    break
                i += 4 + struct.unpack_from(e + "I", buf, i + 4)[0]
            elif h.type_len == 30:
                ts += (struct.unpack_from(e + "I", buf, i + 4)[0] << 27) + h.time_delta
                i += 8
            else:
                ts = (struct.unpack_from(e + "I", buf, i + 4)[0] << 27) | h.time_delta
                i += 8
    return out


@pytest.mark.parametrize("name", ["markers-v6.dat", "markers-v7-none.dat"])
def test_fast_walk_equals_declarative_twin_on_real_files(name):
    td = read_trace_dat(REAL / name)
    n = 0
    for inst in td.instances:
        for cs in inst.cpus:
            fast = walk_cpu_vector(td._buf, cs.offset, cs.size, inst.page_size, td.layout, td.big_endian, cs.cpu)
            slow = _declarative_walk(td._buf, cs.offset, cs.size, inst.page_size, td.layout, td.big_endian)
            assert list(zip(*fast.lists())) == slow
            n += len(slow)
    assert n == 97


def test_fast_walk_equals_declarative_twin_on_written_files(tmp_path):
    from dissect.ftrace.writer import write_trace_dat
    from tests.test_ftrace_dat_writer import sample_events
    for big in (False, True):
        td = read_trace_dat(write_trace_dat(tmp_path / f"t{big}.dat", sample_events(), cpus=2, version=6,
                                            big_endian=big))
        for inst in td.instances:
            for cs in inst.cpus:
                fast = walk_cpu_vector(td._buf, cs.offset, cs.size, inst.page_size, td.layout, big, cs.cpu)
                slow = _declarative_walk(td._buf, cs.offset, cs.size, inst.page_size, td.layout, big)
                assert list(zip(*fast.lists())) == slow and slow
    assert FILES


@settings(max_examples=80, deadline=None)
@given(st.binary(min_size=64, max_size=400), st.booleans(), st.sampled_from([8, 4]))
def test_numpy_walk_equals_reference_walk_on_arbitrary_pages(body, big, long_size):
    """Arbitrary bytes after a plausible page header: both walks agree on records and findings."""
    layout = LAYOUT8 if long_size == 8 else LAYOUT4
    e = ">" if big else "<"
    commit = struct.pack(e + ("Q" if long_size == 8 else "I"), len(body) & ~3)
    buf = struct.pack(e + "Q", 1000) + commit + body
    buf += bytes((-len(buf)) % 128)
    walk(buf, layout, big, 128)
    # and with a random commit word taken from the body itself
    buf2 = struct.pack(e + "Q", 5) + body[:long_size] + body
    buf2 += bytes((-len(buf2)) % 128)
    walk(buf2, layout, big, 128)


def test_walk_cpu_takes_the_per_event_walk_below_vector_min_pages_and_the_vector_walk_above(tmp_path):
    """The reader's walk_cpu gives what both walks give, as NumPy arrays, on both sides of the threshold."""
    import numpy as np

    from dissect.ftrace.writer import write_trace_dat
    from tests.test_ftrace_dat_writer import sample_events

    from dataclasses import replace

    small = read_trace_dat(write_trace_dat(tmp_path / "small.dat", sample_events(), cpus=2, version=6))
    span = 10 ** 10  # the sample spans ~2 s: copies 10 s apart keep time increasing
    events = [replace(e, ts_ns=e.ts_ns + k * span) for k in range(80) for e in sample_events()]
    big = read_trace_dat(write_trace_dat(tmp_path / "big.dat", events, cpus=2, version=6))
    seen = set()
    for td in (small, big):
        for inst in td.instances:
            for cs in inst.cpus:
                args = (td._buf, cs.offset, cs.size, inst.page_size, td.layout, td.big_endian, cs.cpu)
                got, ref, vec = walk_cpu(*args), walk_cpu_py(*args), walk_cpu_vector(*args)
                pages = ref.pages
                seen.add(pages >= VECTOR_MIN_PAGES)
                assert got.lists() == ref.lists() == vec.lists() and len(got) > 0
                assert got.findings == ref.findings and (got.lost, got.pages) == (ref.lost, ref.pages)
                assert isinstance(got.ts, np.ndarray) and got.ts.dtype == np.uint64
                assert got.offsets.dtype == got.lengths.dtype == np.int64
        td.close()
    assert seen == {False, True}


def test_format_parse_is_shared_but_each_format_is_its_own():
    # a format text as the kernel prints it (trace.dat spec: the events' "format" files)
    text = ("name: sched_wakeup\nID: 316\nformat:\n"
            "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
            "\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;\n"
            "\nprint fmt: \"pid=%d\", REC->pid\n")
    a = parse_format(text, "sched", 8)
    b = parse_format(text, "sched", 8)
    assert a is not b and a.fields is not b.fields
    assert [(f.name, f.offset, f.size, f.signed) for f in a.fields] == [("common_type", 0, 2, False),
                                                                         ("pid", 8, 4, True)]
    assert a.fields == b.fields and (a.name, a.id, a.system) == (b.name, b.id, b.system) == ("sched_wakeup", 316,
                                                                                               "sched")
    a.offset, a.bad = 100, "x"  # what a reader sets on its own format
    assert (b.offset, b.bad) == (None, None)
    with pytest.raises(AttributeError):
        a.fields[0].offset = 4  # shared between formats: frozen
