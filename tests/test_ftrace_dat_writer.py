# SPDX-License-Identifier: GPL-2.0-only
"""The trace.dat writer: files it writes are read back by the real ``trace-cmd
report`` with identical text, pids, CPUs and timestamps, and by our reader
with identical fields, in every byte order and long size."""
from __future__ import annotations

import struct

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect.ftrace.event import Event
from dissect.ftrace.tracedat import read_trace_dat
from dissect.ftrace.writer import tracing_mark_write_ip, write_trace_dat
from tests.test_ftrace_dat_real import REAL, parse_report, reader_rows, report

QEMU_LINES = [
    "vfio_migration_set_state  (0000:00:05.0) new state PRE_COPY, recover state ERROR",
    "vfio_save_iterate  (0000:00:05.0) precopy initial size 16384 precopy dirty size 0",
    "vfio_state_pending_exact  (0000:00:05.0) precopy 0 postcopy 0 stopcopy size 4743 "
    "precopy initial size 0 precopy dirty size 0",  # > 112 bytes: a type_len 0 record
    "vfio_save_block  (0000:00:05.0) data_size 4743",
    "vmstate_downtime_checkpoint src-downtime-end",
]


def none(v):
    """pandas' missing markers (NaN, NA) as None, for comparing with Event attributes."""
    return None if v is None or (not isinstance(v, (list, dict, bytes)) and pd.isna(v)) else v


def ev(ts, cpu, pid, comm, event, fields=None, text=None, system="ftrace", instance=None):
    return Event("trace-dat", ts, cpu, pid, comm, system, event, fields or {}, text, None, instance)


def sample_events() -> list[Event]:
    """Markers on two CPUs, raw admin pieces, sched_switch, a 2 s gap, enough to span pages, an instance."""
    out = []
    ts = 1_142_178_456_527
    for i in range(300):
        cpu = i % 2
        line = QEMU_LINES[i % len(QEMU_LINES)]
        out.append(ev(ts, cpu, 11773 + cpu, "live_migration" if cpu else "qemu-system-x86", "print",
                      {"buf": line + "\n"}))
        ts += 11_989 + 7 * i
        if i % 50 == 7:
            piece = struct.pack("<III", 0x76697274, 24, 0) + bytes(range(24))
            out.append(ev(ts, cpu, 11773 + cpu, None, "raw_data", {"id": 0x76697274, "buf": piece[4:]}))
            ts += 1000
        if i % 40 == 3:
            out.append(ev(ts, cpu, 11773, "qemu-system-x86", "sched_switch", {
                "prev_comm": "qemu-system-x86", "prev_pid": 11773, "prev_prio": 120, "prev_state": 1,
                "next_comm": "swapper/0", "next_pid": 0, "next_prio": 120}, system="sched"))
            ts += 500
        if i == 150:
            ts += 2_000_000_000  # needs a time-extend event (delta >= 2**27)
    out.append(ev(ts, 1, 11774, "live_migration", "print", {"buf": "instance marker\n"}, instance="migtrace"))
    return out


def expected_rows(evs):
    rows = []
    for e in sorted(evs, key=lambda e: (e.ts_ns, e.cpu)):
        if e.event == "print":
            text = "tracing_mark_write: " + e.fields["buf"].rstrip("\n")
        elif e.event == "raw_data":
            text = f"# {e.fields['id']:x}" + "".join(f" {b:02x}" for b in e.fields["buf"])
        else:
            f = e.fields
            text = (f"{f['prev_comm']}:{f['prev_pid']} [{f['prev_prio']}] S ==> "
                    f"{f['next_comm']}:{f['next_pid']} [{f['next_prio']}]")
        comm = {11773: "qemu-system-x86", 11774: "live_migration"}[e.pid]
        rows.append((e.instance, e.ts_ns, e.cpu, e.pid, comm, e.event, text))
    return rows


@pytest.mark.needs_tool
@pytest.mark.parametrize("version,compression", [(6, "none"), (7, "none"), (7, "zstd")])
@pytest.mark.parametrize("big", [False, True])
def test_writer_round_trip_through_trace_cmd(tmp_path, version, compression, big):
    evs = sample_events()
    path = write_trace_dat(tmp_path / "w.dat", evs, version=version, compression=compression, cpus=2,
                           big_endian=big)
    theirs = parse_report(report(path))
    want = expected_rows(evs)
    assert theirs == want
    assert reader_rows(path) == want
    td = read_trace_dat(path)
    list(td.events())
    assert td.findings == []
    assert td.version == version and td.compression == compression and td.big_endian == big


@pytest.mark.needs_tool
def test_real_file_rewritten_by_writer_reports_identically(tmp_path):
    """Events of the real capture → writer → trace-cmd report: the same text as the original."""
    src = REAL / "markers-v7-zstd.dat"
    td = read_trace_dat(src)
    want = parse_report(report(src))
    for version, comp in [(6, "none"), (7, "none"), (7, "zstd")]:
        path = write_trace_dat(tmp_path / f"r{version}{comp}.dat", list(td.events()), version=version,
                               compression=comp, cmdlines=td.cmdlines, kallsyms=_real_kallsyms(src))
        assert parse_report(report(path)) == want


def _real_kallsyms(path) -> str:
    td = read_trace_dat(path)
    return td._kallsyms_text.decode()


@pytest.mark.parametrize("big,long_size", [(True, 8), (False, 4), (True, 4)])
def test_byte_order_and_long_size_twins(tmp_path, big, long_size):
    """The same events written big-endian and/or with 4-byte longs read back equal to the LE/8 twin."""
    evs = [e for e in sample_events()]
    le = read_trace_dat(write_trace_dat(tmp_path / "le.dat", evs, cpus=2))
    other = read_trace_dat(write_trace_dat(tmp_path / "x.dat", evs, cpus=2, big_endian=big,
                                           long_size=long_size, version=6 if long_size == 4 and big else 7))
    assert other.big_endian == big and other.kernel_long == long_size
    assert other.format("ftrace", "print").field("buf").offset == 8 + long_size
    a, b = list(le.events()), list(other.events())
    assert len(a) == len(b) == len(evs)
    for x, y in zip(a, b):
        assert (x.ts_ns, x.cpu, x.pid, x.comm, x.event, x.instance) == (y.ts_ns, y.cpu, y.pid, y.comm, y.event,
                                                                       y.instance)
        fx, fy = dict(x.fields), dict(y.fields)
        if x.event == "print":
            assert fx.pop("ip") == tracing_mark_write_ip(8) and fy.pop("ip") == tracing_mark_write_ip(long_size)
        assert fx == fy
        assert x.text == y.text


@pytest.mark.needs_tool
def test_four_byte_long_file_through_trace_cmd(tmp_path):
    evs = sample_events()
    path = write_trace_dat(tmp_path / "l4.dat", evs, cpus=2, long_size=4)
    theirs, want = parse_report(report(path)), expected_rows(evs)
    assert len(theirs) == len(want)
    for a, b in zip(theirs, want):
        if a[5] == "raw_data":
            # trace-cmd 3.1.6 prints raw_data of a 4-byte-long file with each 4-byte group
            # repeated ("00 01 02 03 00 01 02 03 ..."): a quirk of its renderer, so compare
            # everything but the payload here (our reader's payload is checked by the twin test).
            a, b = a[:6], b[:6]
        assert a == b


GENERIC = """name: migtrace_test
ID: 900
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:u64 bytes;\toffset:8;\tsize:8;\tsigned:0;
\tfield:s32 ret;\toffset:16;\tsize:4;\tsigned:1;
\tfield:u8 flag;\toffset:20;\tsize:1;\tsigned:0;
\tfield:s16 small;\toffset:22;\tsize:2;\tsigned:1;
\tfield:char name[8];\toffset:24;\tsize:8;\tsigned:0;
\tfield:u32 regs[3];\toffset:32;\tsize:12;\tsigned:0;
\tfield:__data_loc char[] dev;\toffset:44;\tsize:4;\tsigned:0;
\tfield:__data_loc u16[] ids;\toffset:48;\tsize:4;\tsigned:0;
\tfield:__rel_loc char[] state;\toffset:52;\tsize:4;\tsigned:0;

print fmt: "dev=%s bytes=%llu", __get_str(dev), REC->bytes
"""


def test_generic_format_fields_round_trip(tmp_path):
    fields = {"bytes": 2**40 + 5, "ret": -22, "flag": 1, "small": -3, "name": "vf0", "regs": [1, 2, 0xFFFFFFFF],
              "dev": "0000:00:05.0", "ids": [7, 8, 9], "state": "STOP_COPY"}
    evs = [ev(1000, 0, 42, "qemu", "migtrace_test", fields, system="vfio"),
           ev(2000, 0, 42, "qemu", "print", {"buf": "hello\n"})]
    for big in (False, True):
        td = read_trace_dat(write_trace_dat(tmp_path / f"g{big}.dat", evs, cpus=1, big_endian=big,
                                            formats={("vfio", "migtrace_test"): GENERIC}))
        got = list(td.events())
        assert got[0].system == "vfio" and got[0].event == "migtrace_test"
        assert got[0].fields == fields
        assert got[0].text is None
        assert got[1].text == "tracing_mark_write: hello"
        assert td.format("vfio", "migtrace_test").field("state").kind == "rel"


@pytest.mark.needs_tool
def test_bprint_and_bputs_render_as_trace_cmd(tmp_path):
    fmt_addr, str_addr = 0xFFFFFFFF82000010, 0xFFFFFFFF82000100
    printk = {fmt_addr: "state=%d dev=%s bytes=%lu hex=%x pad=%5d|%s|\n", str_addr: "vfio puts marker\n"}
    # vbin_printf layout: 4-byte int, inline NUL-terminated string, long re-aligned to 4, int, int, string
    args = (struct.pack("<i", -5) + b"0000:00:05.0\0" + b"\0\0\0" + struct.pack("<Q", 1 << 33)
            + struct.pack("<I", 0xBEEF) + struct.pack("<i", 42) + b"ab\0")
    evs = [ev(5000, 0, 7, "kworker", "bprint", {"fmt": fmt_addr, "buf": args}),
           ev(6000, 0, 7, "kworker", "bputs", {"str": str_addr})]
    path = write_trace_dat(tmp_path / "b.dat", evs, cpus=1, printk=printk)
    theirs = parse_report(report(path))
    ours = reader_rows(path)
    assert ours == theirs
    assert ours[0][6] == "tracing_mark_write: state=-5 dev=0000:00:05.0 bytes=8589934592 hex=beef pad=   42|ab|"
    assert ours[1][6] == "tracing_mark_write: vfio puts marker"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3_000_000_000), st.integers(0, 3), st.integers(1, 2**31 - 1),
                          st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=600)),
                min_size=1, max_size=60),
       st.sampled_from([(6, "none", False), (7, "none", True), (7, "zstd", False), (7, "zlib", True)]))
def test_property_print_round_trip(tmp_path, items, variant):
    version, comp, big = variant
    ts = 10**9
    evs = []
    for gap, cpu, pid, text in items:
        ts += gap
        evs.append(ev(ts, cpu, pid, "t", "print", {"buf": text + "\n"}))
    path = write_trace_dat(tmp_path / "p.dat", evs, cpus=4, version=version, compression=comp, big_endian=big)
    got = list(read_trace_dat(path).events())
    want = sorted(evs, key=lambda e: (e.ts_ns, e.cpu))
    assert [(e.ts_ns, e.cpu, e.pid, e.fields["buf"]) for e in got] == \
        [(e.ts_ns, e.cpu, e.pid, e.fields["buf"]) for e in want]


def test_offset_option_applied(tmp_path):
    evs = [ev(5_000_000_123, 0, 9, "x", "print", {"buf": "a\n"})]
    td = read_trace_dat(write_trace_dat(tmp_path / "o.dat", evs, cpus=1, offset_ns=4_000_000_000))
    assert [o.value for o in td.options if o.name == "OFFSET"] == ["4000000000"]
    assert next(td.events()).ts_ns == 5_000_000_123


def test_dataframe_equals_events_on_a_mixed_file(tmp_path):
    """The columnar DataFrame path equals events() on every event kind, incl. comm registration."""
    evs = sample_events()
    evs.append(ev(evs[-1].ts_ns + 10, 0, 31337, None, "print", {"buf": "before the switch\n"}))
    evs.append(ev(evs[-1].ts_ns + 10, 0, 11773, "qemu-system-x86", "sched_switch", {
        "prev_comm": "qemu-system-x86", "prev_pid": 11773, "prev_prio": 120, "prev_state": 0,
        "next_comm": "kvm-vcpu", "next_pid": 31337, "next_prio": 120}, system="sched"))
    evs.append(ev(evs[-1].ts_ns + 10, 0, 31337, None, "print", {"buf": "after the switch\n",
                                                              "ip": 0xFFFFFFFF81000000}))
    evs.append(ev(evs[-1].ts_ns + 10, 1, 31337, None, "print", {"buf": "x" * 2000 + "\n"}))
    path = write_trace_dat(tmp_path / "m.dat", evs, cpus=2, cmdlines={11773: "qemu-system-x86",
                                                                     11774: "live_migration"})
    ref = list(read_trace_dat(path).events())
    assert [e.comm for e in ref[-4:]] == ["<...>", "qemu-system-x86", "kvm-vcpu", "kvm-vcpu"]
    assert ref[-2].text == "0xffffffff81000000: after the switch"
    df = read_trace_dat(path).dataframe(fields="dict")
    assert len(df) == len(ref) == len(evs)
    for row, e in zip(df.itertuples(index=False), ref):
        assert (row.ts_ns, row.cpu, row.pid, row.comm, row.system, row.event, row.fields, none(row.text),
                none(row.instance)) == (e.ts_ns, e.cpu, e.pid, e.comm, e.system, e.event, e.fields, e.text,
                                        e.instance)
    cols = read_trace_dat(path).dataframe()

    def plain(values):  # pandas' missing markers (NaN / NA) as None
        return [None if v is None or pd.isna(v) else v for v in values]

    assert cols["comm"].tolist() == [e.comm for e in ref]
    assert plain(cols["buf"].tolist()) == [e.fields["buf"] if e.event == "print" else None for e in ref]
    assert plain(cols["raw_data_buf"].tolist()) == [e.fields["buf"] if e.event == "raw_data" else None
                                                    for e in ref]
    assert plain(cols["next_pid"].tolist()) == [e.fields.get("next_pid") for e in ref]
    assert plain(cols["text"].tolist()) == [e.text for e in ref]
    assert str(cols["text"].dtype) == "str" and str(cols["ip"].dtype) == "UInt64"


def test_dataframe_print_fallbacks_equal_events(tmp_path):
    """Texts with an embedded NUL, invalid UTF-8 and several ips take the slow paths; still equal."""
    evs = [ev(100 + i, 0, 7, "t", "print", {"buf": f"line {i}\n"}) for i in range(20)]
    evs.append(ev(200, 0, 7, "t", "print", {"buf": b"cut\0here\n"}))
    evs.append(ev(201, 0, 7, "t", "print", {"buf": b"bad \xff utf8\n"}))
    evs.append(ev(202, 1, 7, "t", "print", {"buf": "other ip\n", "ip": 0xFFFFFFFF81000000}))
    evs.append(ev(203, 1, 7, "t", "print", {"buf": "no newline"}))
    path = write_trace_dat(tmp_path / "f.dat", evs, cpus=2)
    ref = list(read_trace_dat(path).events())
    assert ref[20].fields["buf"] == "cut" and ref[21].fields["buf"] == "bad \\xff utf8\n"
    df = read_trace_dat(path).dataframe()
    assert [none(x) for x in df["buf"].tolist()] == [e.fields["buf"] for e in ref]
    assert [none(x) for x in df["text"].tolist()] == [e.text for e in ref]


@pytest.mark.needs_tool
def test_tsc2nsec_date_and_offset_options_as_trace_cmd(tmp_path):
    """TSC2NSEC (mult 3, shift 1, offset 500), DATE (0x10 µs) and OFFSET: our ts_ns == trace-cmd's."""
    evs = [ev(1_000_000 + i * 1000, 0, 5, "x", "print", {"buf": f"e{i}\n"}) for i in range(3)]
    tsc = (14, struct.pack("<IIQ", 3, 1, 500))
    cases = {
        "tsc": dict(extra_options=[tsc], clock="x86-tsc"),
        "tsc_local_clock": dict(extra_options=[tsc]),
        "date": dict(extra_options=[(1, b"0x10\0")]),
        "all": dict(extra_options=[(1, b"0x10\0"), tsc], clock="x86-tsc", offset_ns=200_000),
    }
    want = {"tsc": [1_500_000, 1_501_500, 1_503_000], "tsc_local_clock": [1_500_000, 1_501_500, 1_503_000],
            "date": [1_016_000, 1_017_000, 1_018_000]}
    for name, kw in cases.items():
        path = write_trace_dat(tmp_path / f"{name}.dat", evs, cpus=1, **kw)
        ours = [e.ts_ns for e in read_trace_dat(path).events()]
        theirs = [r[1] for r in parse_report(report(path))]
        assert ours == theirs, name
        if name in want:
            assert ours == want[name]
        assert read_trace_dat(path).dataframe()["ts_ns"].tolist() == ours


@pytest.mark.needs_tool
def test_generic_format_fields_equal_trace_cmd_raw_fields(tmp_path):
    """The same generic event (scalars, char array, u32 array, __data_loc str/array, __rel_loc):
    trace-cmd report -R prints the fields our reader decodes."""
    fields = {"bytes": 2**40 + 5, "ret": -22, "flag": 1, "small": -3, "name": "vf0", "regs": [1, 2, 0xFFFFFFFF],
              "dev": "0000:00:05.0", "ids": [7, 8, 9], "state": "STOP_COPY"}
    path = write_trace_dat(tmp_path / "g.dat", [ev(1000, 0, 42, "qemu", "migtrace_test", fields, system="vfio")],
                           cpus=1, formats={("vfio", "migtrace_test"): GENERIC})
    got = next(read_trace_dat(path).events()).fields
    assert got == fields

    def arr(values, size):
        return "ARRAY[" + ", ".join(f"{b:02x}" for v in values for b in v.to_bytes(size, "little")) + "]"

    raw = parse_report(report(path, "-R"), strict=False)
    assert raw[0][6].strip() == (
        f"bytes={got['bytes']} ret={got['ret']} flag={got['flag']} small={got['small']} name={got['name']} "
        f"regs={arr(got['regs'], 4)} dev={got['dev']} ids={arr(got['ids'], 2)} state={got['state']}")
