# SPDX-License-Identifier: GPL-2.0-only
"""Damaged trace.dat files: clear findings with offsets, partial results, no traceback, no hang."""
from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect.ftrace.tracedat import read_trace_dat
from dissect.ftrace.writer import write_trace_dat
from tests.test_ftrace_dat_real import REAL
from tests.test_ftrace_dat_writer import ev

ZSTD = (REAL / "markers-v7-zstd.dat").read_bytes()
V6 = (REAL / "markers-v6.dat").read_bytes()
V7N = (REAL / "markers-v7-none.dat").read_bytes()


def codes(td):
    return [f.code for f in td.findings]


def many_pages(tmp_path, version=7, compression="none"):
    evs = [ev(1000 + i * 100, 0, 5, "x", "print", {"buf": f"event number {i:05d} " + "x" * 60 + "\n"})
           for i in range(400)]
    return write_trace_dat(tmp_path / "m.dat", evs, cpus=1, version=version, compression=compression)


def read_bytes(tmp_path, data: bytes, name="c.dat"):
    p = tmp_path / name
    p.write_bytes(data)
    td = read_trace_dat(p)
    evs = list(td.events())
    td.dataframe()
    return td, evs


def test_truncated_v7_tail_loses_the_buffer_options(tmp_path):
    """v7 keeps the BUFFER options in the last OPTIONS section: a cut tail is reported, not guessed."""
    p = many_pages(tmp_path)
    td0 = read_trace_dat(p)
    cs = td0.instances[0].cpus[0]
    td, evs = read_bytes(tmp_path, p.read_bytes()[:cs.offset + 5000])
    assert "bad_section_size" in codes(td) and "no_buffers" in codes(td)
    f = next(f for f in td.findings if f.code == "bad_section_size")
    assert f.offset == td0.instances[0].section_offset
    assert evs == []


def test_truncated_inside_cpu_data(tmp_path):
    data = many_pages(tmp_path, version=6).read_bytes()
    td0 = read_trace_dat(tmp_path / "m.dat")
    cs = td0.instances[0].cpus[0]
    cut = cs.offset + 4096 * 3 + 100  # inside the fourth page
    td, evs = read_bytes(tmp_path, data[:cut])
    assert "cpu_data_truncated" in codes(td)
    f = next(f for f in td.findings if f.code == "cpu_data_truncated")
    assert f.context["cpu"] == 0
    full = list(td0.events())
    # every event of the three whole pages, plus those of the partial page that fit
    assert len(evs) >= 3 * (4080 // 104)
    assert [e.fields["buf"] for e in evs] == [e.fields["buf"] for e in full[:len(evs)]]


def test_truncated_everywhere_never_raises(tmp_path):
    for data in (ZSTD, V6, V7N):
        for cut in list(range(0, 200, 7)) + list(range(200, len(data), 997)):
            p = tmp_path / "t.dat"
            p.write_bytes(data[:cut])
            td = read_trace_dat(p)
            list(td.events())
            if cut < len(data):
                assert td.findings, cut


def test_truncated_metadata_reports_the_block(tmp_path):
    td, evs = read_bytes(tmp_path, V6[:3000])
    assert "truncated_metadata" in codes(td) or "bad_size" in codes(td)
    assert evs == []


def test_zeroed_page(tmp_path):
    p = many_pages(tmp_path)
    data = bytearray(p.read_bytes())
    td0 = read_trace_dat(p)
    full = list(td0.events())
    cs = td0.instances[0].cpus[0]
    second = cs.offset + 4096
    data[second:second + 4096] = bytes(4096)
    td, evs = read_bytes(tmp_path, bytes(data))
    assert codes(td) == ["zeroed_page"]
    assert td.findings[0].offset == second
    per_page = sum(1 for e in full if second <= e.offset < second + 4096)
    assert per_page == 4080 // 104  # 100-byte records + 4-byte headers
    assert len(evs) == len(full) - per_page
    assert evs[per_page].fields["buf"] == full[2 * per_page].fields["buf"]


def test_bad_commit_value(tmp_path):
    p = many_pages(tmp_path)
    data = bytearray(p.read_bytes())
    cs = read_trace_dat(p).instances[0].cpus[0]
    struct.pack_into("<Q", data, cs.offset + 8, 0x7FFFFFF)  # commit far larger than a page
    td, evs = read_bytes(tmp_path, bytes(data))
    f = next(f for f in td.findings if f.code == "bad_commit")
    assert f.offset == cs.offset + 8 and f.severity == "error"
    assert len(evs) == 400  # the real events of that page still decode


def test_unknown_compression(tmp_path):
    i = ZSTD.index(b"zstd\0")
    td, evs = read_bytes(tmp_path, ZSTD[:i] + b"lz9x" + ZSTD[i + 4:])
    assert "unknown_compression" in codes(td)
    f = next(f for f in td.findings if f.code == "unknown_compression")
    assert f.offset == i
    assert evs == []
    assert td.compression == "lz9x"


def test_unknown_compression_uncompressed_sections_still_read(tmp_path):
    i = V7N.index(b"none\0")
    td, evs = read_bytes(tmp_path, V7N[:i] + b"lz9x" + V7N[i + 4:])
    # no section is compressed: everything still decodes, the finding says what was odd
    assert "unknown_compression" in codes(td)
    assert len(evs) == 97


def test_lying_section_size(tmp_path):
    td0 = read_trace_dat(REAL / "markers-v7-none.dat")
    off = next(o.value for o in td0.options if o.name == "EVENT_FORMATS")
    data = bytearray(V7N)
    struct.pack_into("<Q", data, off + 8, 1 << 60)
    td, evs = read_bytes(tmp_path, bytes(data))
    f = next(f for f in td.findings if f.code == "bad_section_size")
    assert f.offset == off
    assert len(evs) == 97  # the body is read as far as the file goes


def test_lying_option_size_and_cpu_offset(tmp_path):
    td0 = read_trace_dat(REAL / "markers-v6.dat")
    uname = next(o for o in td0.options if o.name == "UNAME")
    data = bytearray(V6)
    struct.pack_into("<I", data, uname.offset + 2, 0xFFFFFFF0)
    td, evs = read_bytes(tmp_path, bytes(data))
    f = next(f for f in td.findings if f.code == "bad_option_size")
    assert f.offset == uname.offset
    assert "truncated_metadata" in codes(td)
    # a CPU offset beyond the end of the file
    p = many_pages(tmp_path, version=6)
    td1 = read_trace_dat(p)
    data = bytearray(p.read_bytes())
    table = data.index(b"flyrecord\0") + 10
    struct.pack_into("<Q", data, table, 1 << 40)
    td, evs = read_bytes(tmp_path, bytes(data))
    assert "cpu_data_truncated" in codes(td) or "cpu_data_missing" in codes(td)
    assert evs == [] and len(list(td1.events())) == 400


def test_options_chain_loop(tmp_path):
    td0 = read_trace_dat(REAL / "markers-v7-none.dat")
    data = bytearray(V7N)
    first = struct.unpack_from("<Q", data, data.index(b"none\0") + 6)[0]
    # make the last OPTIONS section's DONE point back at the first one
    sec_size = struct.unpack_from("<Q", data, first + 8)[0]
    done = first + 16 + sec_size - 8
    struct.pack_into("<Q", data, done, first)
    td, evs = read_bytes(tmp_path, bytes(data))
    assert "options_loop" in codes(td) or "bad_section_id" in codes(td)
    assert td0.findings == []


def test_not_a_trace_file(tmp_path):
    td, evs = read_bytes(tmp_path, b"hello world, not a trace")
    assert codes(td) == ["not_trace_dat"] and evs == []
    td, evs = read_bytes(tmp_path, b"")
    assert codes(td) == ["not_trace_dat"]


def test_corrupt_zstd_chunk(tmp_path):
    td0 = read_trace_dat(REAL / "markers-v7-zstd.dat")
    cs = td0.instances[0].cpus[0]
    data = bytearray(ZSTD)
    data[cs.offset + 12:cs.offset + 40] = b"\xAA" * 28  # inside the first chunk's zstd frame
    td, evs = read_bytes(tmp_path, bytes(data))
    f = next(f for f in td.findings if f.code == "decompress_failed")
    assert f.context["cpu"] == 0
    assert len(evs) == 97 - sum(1 for e in td0.events() if e.cpu == 0 and e.instance is None)


def test_unknown_event_id(tmp_path):
    p = many_pages(tmp_path, version=6)
    data = bytearray(p.read_bytes())
    cs = read_trace_dat(p).instances[0].cpus[0]
    struct.pack_into("<H", data, cs.offset + 16 + 4, 999)  # first record's common_type
    td, evs = read_bytes(tmp_path, bytes(data))
    assert evs[0].event == "unknown_999" and "raw" in evs[0].fields
    assert codes(td) == ["unknown_event_id"]
    assert len(evs) == 400


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["zstd", "v6", "v7n"]),
       st.lists(st.tuples(st.integers(0, 40_000), st.integers(0, 255)), min_size=1, max_size=12))
def test_random_byte_damage_never_raises(tmp_path, which, flips):
    data = bytearray({"zstd": ZSTD, "v6": V6, "v7n": V7N}[which])
    for pos, val in flips:
        data[pos % len(data)] = val
    p = tmp_path / "f.dat"
    p.write_bytes(bytes(data))
    td = read_trace_dat(p)
    list(td.events())
    td.dataframe()
    _ = td.lost_events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["v6", "v7n"]),
       st.lists(st.tuples(st.integers(400, 15_999), st.sampled_from([0, 0x30, 0x39, 0x5B, 0x5D, 0x3B, 0xFF])),
                min_size=1, max_size=6))
def test_damaged_metadata_and_formats_never_raise(tmp_path, which, flips):
    """Damage where the headers, event formats, kallsyms and printk strings live: fields of
    unexpected kinds still decode (or become findings), and both decoding paths agree on the rows."""
    data = bytearray({"v6": V6, "v7n": V7N}[which])
    for pos, val in flips:
        data[pos] = val
    p = tmp_path / "m.dat"
    p.write_bytes(bytes(data))
    td = read_trace_dat(p)
    evs = list(td.events())
    assert len(read_trace_dat(p).dataframe()) == len(evs)
    assert len(read_trace_dat(p).dataframe(fields="dict")) == len(evs)


def test_bad_long_size_and_missing_header_page(tmp_path):
    data = bytearray(V6)
    data[13] = 3  # user-space long size
    td, evs = read_bytes(tmp_path, bytes(data))
    assert "bad_long_size" in codes(td) and td.long_size == 8
    assert len(evs) == 97
