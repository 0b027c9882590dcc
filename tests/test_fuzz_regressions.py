# SPDX-License-Identifier: GPL-2.0-only
"""Regression tests for what the issue-14 mutation campaigns found (reproducers inline or in
tests/data/fuzz/), and for the two reproducer kinds of the issue: text bytes that are not UTF-8
and a trace.dat event format with a huge field offset."""
from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from analysis.cli.output import UnitWriter
from dissect.ftrace.event import Event
from dissect.ftrace.text import FtraceText, QemuLog, ReportText
from dissect.ftrace.tracedat import read_trace_dat
from dissect.ftrace.writer import write_trace_dat
from tests.conftest import TRACES

ROOT = Path(__file__).resolve().parent.parent
TEXT = TRACES / "real" / "ftrace-text"
DATA = Path(__file__).parent / "data" / "fuzz"


def _items(reader):
    items = list(reader)
    return [x for x in items if isinstance(x, Event)], [x for x in items if not isinstance(x, Event)]


def _frames_equal(a, b) -> None:
    import pandas as pd

    pd.testing.assert_frame_equal(a, b)


# -- text bytes that are not UTF-8 ---------------------------------------------------

def _report_with_bad_bytes(tmp_path: Path) -> Path:
    lines = (TEXT / "report.txt").read_bytes().split(b"\n")
    # line 3: 0x80 in the comm, 0xff and a literal backslash sequence in the marker text
    lines[2] = lines[2].replace(b"qemu-system-x86", b"qemu-\x80ystem-x86").replace(
        b"savevm_state_header", b"savevm\xff_state \\x80 header")
    p = tmp_path / "report-bad.txt"
    p.write_bytes(b"\n".join(lines))
    return p


def test_report_line_with_non_utf8_bytes_renders_backslash_escapes_and_a_finding(tmp_path):
    p = _report_with_bad_bytes(tmp_path)
    evs, fs = _items(ReportText(p))
    assert [f.code for f in fs] == ["text_invalid_utf8"]
    f = fs[0]
    raw = p.read_bytes().split(b"\n")[2]
    assert f.context["line"] == 3 and f.offset == len(b"\n".join(p.read_bytes().split(b"\n")[:2])) + 1
    assert f.context["column"] == raw.index(b"\x80") and f.context["count"] == 2
    assert bytes.fromhex(f.context["raw"]) == raw  # the exact bytes stay available
    bad = [e for e in evs if e.offset == f.offset]
    assert len(bad) == 1
    assert bad[0].comm == "qemu-\\x80ystem-x86"
    assert bad[0].text == "tracing_mark_write: savevm\\xff_state \\x80 header "
    assert bad[0].fields["buf"] == "savevm\\xff_state \\x80 header \n"
    # every event is still there
    assert len(evs) == len(_items(ReportText(TEXT / "report.txt"))[0])


@pytest.mark.parametrize("reader", [FtraceText, ReportText, QemuLog])
def test_non_utf8_text_same_on_every_path(tmp_path, reader):
    src = {FtraceText: TEXT / "trace.txt", ReportText: TEXT / "report.txt",
           QemuLog: TRACES / "real" / "qemu-file.src.log"}[reader]
    lines = src.read_bytes().split(b"\n")
    for k in range(len(lines) // 2, len(lines) // 2 + 5):
        lines[k] = lines[k][:-3] + b"\xff\x80" + lines[k][-3:] if len(lines[k]) > 3 else lines[k]
    p = tmp_path / "bad.txt"
    p.write_bytes(b"\n".join(lines))
    evs, fs = _items(reader(p))
    assert sum(f.code == "text_invalid_utf8" for f in fs) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bulk = reader(p).dataframe()
        ref = reader(p).dataframe(bulk=False)
    _frames_equal(bulk, ref)
    texts = [e.text for e in evs if e.text and "\\xff\\x80" in e.text]
    assert len(texts) == 5
    assert sum("\\xff\\x80" in (t or "") for t in bulk["text"].tolist() if isinstance(t, str)) == 5
    # JSON Lines: valid strict UTF-8 JSON, the same rendering
    out = io.StringIO()
    w = UnitWriter(out, as_json=True)
    for e in evs:
        w.write(e.to_json())
    for f in fs:
        w.write(f.to_json())
    data = out.getvalue().encode("utf-8")  # strict
    objs = [json.loads(x) for x in data.decode("utf-8").splitlines()]
    assert sorted(o["text"] for o in objs if o["kind"] == "event" and "\\xff" in (o["text"] or "")) == sorted(texts)
    # Parquet keeps the same strings
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    buf = io.BytesIO()
    pq.write_table(pa.table({"text": pa.array([t if isinstance(t, str) else None for t in bulk["text"].tolist()], pa.large_string())}), buf)
    back = pq.read_table(io.BytesIO(buf.getvalue()))["text"].to_pylist()
    assert sum("\\xff\\x80" in (t or "") for t in back) == 5


def test_non_utf8_findings_are_capped_then_counted(tmp_path):
    lines = [b"100@1.000001:ev_%d arg\xfe" % i for i in range(250)]
    p = tmp_path / "q.log"
    p.write_bytes(b"\n".join(lines) + b"\n")
    evs, fs = _items(QemuLog(p))
    assert len(evs) == 250
    assert sum(f.code == "text_invalid_utf8" for f in fs) == 100
    agg = [f for f in fs if f.code == "text_invalid_utf8_lines"]
    assert len(agg) == 1 and agg[0].context["count"] == 150
    assert agg[0].offset == sum(len(x) + 1 for x in lines[:100])


def test_valid_utf8_and_backslashes_are_unchanged(tmp_path):
    p = tmp_path / "q.log"
    p.write_bytes("100@1.000001:ev_a caf\u00e9 \\x80 literal\n".encode())
    evs, fs = _items(QemuLog(p))
    assert fs == [] and evs[0].text == "ev_a caf\u00e9 \\x80 literal"


def test_json_writer_never_emits_a_lone_surrogate():
    out = io.StringIO()
    w = UnitWriter(out, as_json=True)
    w.write({"kind": "event", "text": "a\udc80b", "k\udcff": ["\ud800", "ok \U0001F600"]})
    w.write({"kind": "event", "text": "\\ud800 is text here"})
    text = out.getvalue()
    text.encode("utf-8")  # strict: no lone surrogate anywhere
    a, b = [json.loads(x) for x in text.splitlines()]
    assert a == {"kind": "event", "text": "a\\x80b", "k\\xff": ["\\ud800", "ok \U0001F600"]}
    assert b["text"] == "\\ud800 is text here"
    human = io.StringIO()
    UnitWriter(human).write({"kind": "event", "text": "a\udc80b"})
    human.getvalue().encode("utf-8")


def test_cli_decode_of_non_utf8_report_is_valid_json(tmp_path):
    p = _report_with_bad_bytes(tmp_path)
    r = subprocess.run([sys.executable, "-m", "analysis.cli.main", "decode", "--json", str(p)],
                       capture_output=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    objs = [json.loads(x) for x in r.stdout.decode("utf-8").splitlines()]
    codes = [o["code"] for o in objs if o["kind"] == "finding"]
    assert codes.count("text_invalid_utf8") == 1 and "internal_error" not in codes
    assert any(o.get("comm") == "qemu-\\x80ystem-x86" for o in objs)


# -- trace.dat: an event format with a field offset no record can hold -----------------

_FMT = """name: fuzz_ev
ID: 700
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int value;\toffset:0000000008;\tsize:4;\tsigned:1;

print fmt: "value=%d", REC->value
"""


def _huge_offset_file(tmp_path: Path, version: int = 7) -> tuple[Path, int]:
    evs = [Event("trace-dat", 1000 + i, 0, 7, "x", "fuzz", "fuzz_ev", {"value": i}, None, None, None)
           for i in range(20)]
    evs += [Event("trace-dat", 5000, 0, 7, "x", "ftrace", "print", {"buf": "still here\n"}, None, None, None)]
    p = write_trace_dat(tmp_path / f"huge-{version}.dat", evs, version=version, compression="none", cpus=1,
                        formats={("fuzz", "fuzz_ev"): _FMT})
    data = p.read_bytes()
    at = data.index(b"offset:0000000008;")
    p.write_bytes(data.replace(b"offset:0000000008;", b"offset:1500000000;"))
    return p, at


@pytest.mark.parametrize("version", [6, 7])
def test_huge_field_offset_is_a_finding_and_events_stay_raw(tmp_path, version):
    p, at = _huge_offset_file(tmp_path, version)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    td = read_trace_dat(p)
    evs = list(td.events())
    df = td.dataframe()
    took = time.perf_counter() - t0
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert took < 1.0 and grew_mb < 100
    bad = [f for f in td.findings if f.code == "bad_format_field"]
    assert len(bad) == 1
    assert bad[0].context["event_id"] == 700 and "offset 1500000000" in bad[0].message
    # the finding points at the format's size word, just before its text
    data = p.read_bytes()
    assert bad[0].offset is not None and bad[0].offset < at and data[bad[0].offset + 8:].startswith(b"name: fuzz_ev")
    raw = [e for e in evs if e.event == "fuzz_ev"]
    assert len(raw) == 20 and all(e.system == "fuzz" and set(e.fields) == {"raw"} for e in raw)
    # the record's bytes: common header (type 700, pid 7) then the value
    assert [int.from_bytes(e.fields["raw"][8:12], "little", signed=True) for e in raw] == list(range(20))
    assert all(int.from_bytes(e.fields["raw"][:2], "little") == 700 for e in raw)
    assert [e.text for e in evs if e.event == "print"] == ["tracing_mark_write: still here"]
    assert df["event"].tolist().count("fuzz_ev") == 20
    assert df.loc[df["event"] == "fuzz_ev", "raw"].tolist() == [e.fields["raw"] for e in raw]


def test_huge_field_offset_through_the_cli(tmp_path):
    p, _ = _huge_offset_file(tmp_path)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "analysis.cli.main", "decode", "--json", str(p)],
                       capture_output=True, cwd=ROOT, timeout=120)
    objs = [json.loads(x) for x in r.stdout.decode("utf-8").splitlines()]
    codes = [o["code"] for o in objs if o["kind"] == "finding"]
    assert "bad_format_field" in codes and "internal_error" not in codes
    assert sum(o.get("event") == "fuzz_ev" for o in objs) == 20
    assert time.perf_counter() - t0 < 30  # a fresh interpreter; the decode itself is the test above


def test_compile_decoder_rejects_before_allocating():
    from dissect.ftrace.formats import check_format, compile_decoder, parse_format

    fmt = parse_format(_FMT.replace("0000000008", "9" * 40), "fuzz")
    assert fmt is not None
    assert "lies outside any record" in check_format(fmt)
    dec = compile_decoder(fmt, False)
    assert fmt.bad is not None and dec(b"\x01\x02\x03", 1, 2) == {"raw": b"\x02\x03"}
    ok = parse_format(_FMT, "fuzz")
    assert compile_decoder(ok, False)(b"\0" * 8 + (5).to_bytes(4, "little"), 0, 12) == {"value": 5}
    loc = parse_format(_FMT.replace("int value;\toffset:0000000008;\tsize:4;",
                                    "__data_loc char[] name;\toffset:8;\tsize:1;"), "fuzz")
    assert "__data_loc" in check_format(loc)


# -- imports: every dissect module importable first, in a fresh interpreter --------------

def _modules() -> list[str]:
    out = []
    for p in sorted((ROOT / "dissect").rglob("*.py")):
        mod = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        out.append(mod[:-len(".__init__")] if mod.endswith(".__init__") else mod)
    return out


def test_every_dissect_module_imports_first():
    code = ("import importlib, subprocess, sys\n"
            "bad = []\n"
            "for m in sys.argv[1:]:\n"
            "    r = subprocess.run([sys.executable, '-c', 'import ' + m], capture_output=True, text=True)\n"
            "    if r.returncode: bad.append((m, r.stderr.strip().splitlines()[-1]))\n"
            "print(bad)\n"
            "sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code, *_modules()], capture_output=True, text=True, cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_admin_decode_request_as_first_import():
    r = subprocess.run([sys.executable, "-c", "from dissect.virtio.admin_decode import decode_request; "
                        "print(decode_request(bytes(24))[0]['opcode'])"], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "0", r.stderr


# -- pandas "invalid value encountered in cast": a 20-digit pid in text --------------------

def test_pid_past_int64_stays_exact_without_a_cast_warning(tmp_path):
    import re

    lines = (TEXT / "trace.txt").read_bytes().split(b"\n")
    k = [i for i, ln in enumerate(lines) if b"qemu-system-x86-" in ln][3]
    lines[k] = re.sub(rb"-(\d+) ", b"-9223372036854775808 ", lines[k], count=1)
    p = tmp_path / "pid.txt"
    p.write_bytes(b"\n".join(lines))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the RuntimeWarning of the text campaign fails here
        bulk = FtraceText(p).dataframe()
        ref = FtraceText(p).dataframe(bulk=False)
    _frames_equal(bulk, ref)
    pids = bulk["pid"].tolist()
    assert pids.count(9223372036854775808) == 1 and all(isinstance(v, int) for v in pids)
    assert pids == [e.pid for e in FtraceText(p).events()]
    from dissect.ftrace.text_bulk import int_array

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(int_array([1, 2**63, None])) == [1, 2**63, None]
        assert list(int_array([1, None, -2**63])) == [1, pd_na(), -2**63]


def pd_na():
    import pandas as pd

    return pd.NA


# -- internal_error: a decoder exception is told apart from bad input ------------------

def test_internal_error_names_the_exception_and_goes_to_stderr(tmp_path, monkeypatch, capsys):
    import argparse

    from analysis.cli import decode, decode_file

    def boom(path, args):
        yield {"kind": "finding", "severity": "warning", "code": "x", "message": "before", "offset": 0}
        raise OverflowError("synthetic")
    monkeypatch.setattr(decode_file, "emitter_for", lambda kind: boom)
    p = tmp_path / "x.bin"
    p.write_bytes(b"\0" * 32)
    ap = argparse.ArgumentParser()
    decode.add_arguments(ap)
    args = ap.parse_args([str(p), "--as", "dev-parts", "--json"])
    assert decode.run(args) == 1
    out, err = capsys.readouterr()
    objs = [json.loads(x) for x in out.splitlines()]
    assert objs[0]["message"] == "before"
    ie = objs[1]
    assert ie["code"] == "internal_error" and ie["exception"] == "OverflowError"
    assert ie["where"].startswith("tests/test_fuzz_regressions.py:")
    assert "internal error (a decoder bug, not bad input): OverflowError" in err


def test_internal_error_on_the_live_path_names_it_the_same_way(tmp_path, monkeypatch, capsys):
    """A pipe or ``--follow`` decode reports a decoder exception as the file path does."""
    import argparse
    import shutil

    from analysis.cli import decode
    from analysis.live import decode as live_decode

    def boom(live, emit):
        emit({"kind": "finding", "severity": "warning", "code": "x", "message": "before", "offset": 0})
        raise ZeroDivisionError("synthetic")
    monkeypatch.setattr(live_decode, "decode_live", boom)
    p = tmp_path / "x.pcap"
    shutil.copy(ROOT / "traces" / "real" / "loopback-ipv4.pcap", p)
    ap = argparse.ArgumentParser()
    decode.add_arguments(ap)
    args = ap.parse_args([str(p), "--follow", "--idle-timeout", "0.2", "--json"])
    assert decode.run(args) == 1
    out, err = capsys.readouterr()
    objs = [json.loads(x) for x in out.splitlines()]
    assert objs[0]["message"] == "before"
    ie = objs[1]
    assert (ie["code"], ie["exception"]) == ("internal_error", "ZeroDivisionError")
    assert ie["where"].startswith("tests/test_fuzz_regressions.py:")
    assert "migtrace decode: internal error (a decoder bug, not bad input): ZeroDivisionError" in err
    assert objs[-1]["kind"] == "summary"


# -- QEMU stream: zero fill after QEMU_VM_EOF (campaign "probe", qemu-stream #105: a mutated
# mapped-ram file whose first zero page came right after an EOF byte took 23 s, one eof unit per byte)

def test_zero_fill_after_eof_is_one_finding_not_a_unit_per_byte(tmp_path):
    from analysis.emit.migration import emit_stream_file

    p = tmp_path / "z.mig"
    p.write_bytes(b"QEVM\x00\x00\x00\x03" + b"\x00" + bytes(1 << 20))
    t0 = time.perf_counter()
    objs = list(emit_stream_file(p))
    assert time.perf_counter() - t0 < 5
    assert [o["kind"] for o in objs if o["kind"] != "finding"] == ["header", "eof"]
    tr = [o for o in objs if o.get("code") == "trailing_data"]
    assert len(tr) == 1 and tr[0]["offset"] == 9 and tr[0]["severity"] == "warning"


def test_zero_fill_after_eof_split_across_feeds():
    from dissect.common.findings import Finding
    from dissect.qemu.stream import StreamParser

    data = b"QEVM\x00\x00\x00\x03" + b"\x00" + bytes(5000)
    units: list = []
    sp = StreamParser(units.append)
    for i in range(0, len(data), 777):
        sp.data(i, data[i:i + 777], i)
    sp.close()
    tr = [u for u in units if isinstance(u, Finding) and u.code == "trailing_data"]
    assert [f.offset for f in tr] == [9]
    assert sum(1 for u in units if not isinstance(u, Finding)) == 2  # header, eof


def test_non_utf8_marker_same_text_in_trace_dat_and_report_text(tmp_path):
    """The same marker bytes read from a trace.dat and from trace-cmd report text give the same text."""
    evs = [Event("trace-dat", 1000, 0, 7, "x", "ftrace", "print", {"buf": b"a\x80b \xff\n"}, None, None, None)]
    p = write_trace_dat(tmp_path / "m.dat", evs, cpus=1)
    td = read_trace_dat(p)
    dat = [e.text for e in td.events()]
    df = read_trace_dat(p).dataframe()
    rep = tmp_path / "m.txt"
    rep.write_bytes(b"cpus=1\n               x-7     [000]     0.000001: print:                "
                    b"tracing_mark_write: a\x80b \xff\n")
    txt = [e.text for e in _items(ReportText(rep))[0]]
    assert dat == txt == ["tracing_mark_write: a\\x80b \\xff"]
    assert df["text"].tolist() == dat


# -- trace.dat: page size 0 in the file header (campaign c202612071332, trace-dat #10198 and four
# more: the page walk never advanced)

@pytest.mark.parametrize("page_size", [0, 8, 16])
def test_page_size_too_small_for_the_page_header_is_a_finding(tmp_path, page_size):
    data = bytearray((TRACES / "real" / "ftrace" / "markers-v6.dat").read_bytes())
    assert data[10:12] == b"6\0" and int.from_bytes(data[14:18], "little") == 4096
    data[14:18] = page_size.to_bytes(4, "little")
    p = tmp_path / "ps.dat"
    p.write_bytes(bytes(data))
    t0 = time.perf_counter()
    td = read_trace_dat(p)
    evs = list(td.events())
    td.dataframe()
    assert time.perf_counter() - t0 < 2
    bad = [f for f in td.findings if f.code == "bad_page_size"]
    assert evs == [] and len(bad) == sum(len(i.cpus) for i in td.instances) == 4
    assert all(f.severity == "error" and f.offset == cs.offset for f, cs in
               zip(bad, [c for i in td.instances for c in i.cpus]))


def test_non_utf8_text_through_load_and_the_parquet_export(tmp_path):
    """The project's own Parquet export (analysis.export) of a text trace holding bytes that are
    not UTF-8: the events frame keeps the \\xNN rendering, the file is valid."""
    pq = pytest.importorskip("pyarrow.parquet")
    from analysis.export import write_parquet
    from analysis.load import load

    p = _report_with_bad_bytes(tmp_path)
    m = load(p, progress=False)
    written = write_parquet(m, tmp_path / "pq")
    ev = pq.read_table(next(w for w in written if w.name == "events.parquet")).to_pydict()
    assert "qemu-\\x80ystem-x86" in ev["comm"]
    assert any(t and "savevm\\xff_state \\x80 header" in t for t in ev["text"])
    assert "text_invalid_utf8" in [f.get("code") for f in m.findings]


# -- trace.dat strings that are not UTF-8 (issue 14): the saved cmdlines decoded with "replace"
# (comm "mig\ufffdx") while the same process's sched_switch prev_comm read "mig\xe9\x80x"; a BUFFER
# option naming its instance with such bytes did not parse, and that instance's events were lost

def _patched(tmp_path: Path, name: str, evs: list, repl: list[tuple[bytes, bytes]], **kw) -> Path:
    p = write_trace_dat(tmp_path / name, evs, cpus=1, **kw)
    data = p.read_bytes()
    for a, b in repl:
        assert len(a) == len(b) and a in data
        data = data.replace(a, b)
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("version", [6, 7])
def test_cmdlines_comm_not_utf8_is_kept_like_the_event_fields(tmp_path, version):
    sw = {"prev_comm": b"mig\xe9\x80x\0", "prev_pid": 7, "prev_prio": 120, "prev_state": 1,
          "next_comm": "swapper", "next_pid": 0, "next_prio": 120}
    evs = [Event("trace-dat", 1000, 0, 7, "migQQx", "ftrace", "print", {"buf": "hello\n"}),
           Event("trace-dat", 2000, 0, 7, "migQQx", "sched", "sched_switch", sw)]
    p = _patched(tmp_path, f"c{version}.dat", evs, [(b"7 migQQx\n", b"7 mig\xe9\x80x\n")], version=version,
                 compression="none", cmdlines={7: "migQQx"})
    td = read_trace_dat(p)
    got = list(td.events())
    assert td.cmdlines[7] == "mig\\xe9\\x80x"
    assert [e.comm for e in got] == ["mig\\xe9\\x80x"] * 2 and got[1].fields["prev_comm"] == "mig\\xe9\\x80x"
    meta = [f for f in td.findings if f.code == "invalid_utf8_metadata"]
    assert len(meta) == 1 and meta[0].severity == "warning"
    assert (meta[0].context["section"], meta[0].context["column"], meta[0].context["count"]) == ("cmdlines", 5, 2)
    assert meta[0].context["entries"] == [{"pid": 7, "raw": "6d6967e98078"}]
    data = p.read_bytes()
    size = int.from_bytes(data[meta[0].offset:meta[0].offset + 8], "little")  # the block's u64 size, then it
    assert data[meta[0].offset + 8:meta[0].offset + 8 + size] == b"7 mig\xe9\x80x\n"
    fr = read_trace_dat(p)
    assert fr.dataframe()["comm"].tolist() == ["mig\\xe9\\x80x"] * 2
    assert [f.to_json() for f in fr.findings] == [f.to_json() for f in td.findings]


@pytest.mark.parametrize("version", [6, 7])
def test_instance_name_not_utf8_keeps_its_events(tmp_path, version):
    evs = [Event("trace-dat", 1000 + i, 0, 7, "x", "ftrace", "print", {"buf": f"m{i}\n"}, instance=inst)
           for i, inst in enumerate([None, "inQQst", "inQQst"])]
    p = _patched(tmp_path, f"i{version}.dat", evs, [(b"inQQst", b"in\xe9\x80st")], version=version,
                 compression="none")
    td = read_trace_dat(p)
    assert [e.instance for e in td.events()] == [None, "in\\xe9\\x80st", "in\\xe9\\x80st"]
    meta = [f for f in td.findings if f.code == "invalid_utf8_metadata"]
    assert [f.context["section"] for f in meta] == ["option BUFFER name"]
    assert "bad_option" not in [f.code for f in td.findings]


def test_event_findings_for_bytes_not_utf8_are_capped_then_counted(tmp_path):
    """250 markers with bytes that are not UTF-8: 100 invalid_utf8 findings, then one
    invalid_utf8_events with the count, the same on the event and the DataFrame path."""
    evs = [Event("trace-dat", 1000 + i, 0, 7, "x", "ftrace", "print", {"buf": b"m %03d \xff\n" % i})
           for i in range(250)]
    evs.insert(3, Event("trace-dat", 1003, 0, 7, "x", "ftrace", "print", {"buf": "plain \\xff\n"}))
    p = write_trace_dat(tmp_path / "cap.dat", evs, version=7, compression="none", cpus=1)
    td = read_trace_dat(p)
    got = list(td.events())
    assert got[3].text == "tracing_mark_write: plain \\xff"  # a literal backslash: no finding
    ev = [f for f in td.findings if f.code == "invalid_utf8"]
    assert len(ev) == 100 and [f.context["ts_ns"] for f in ev] == [1000 + i for i in range(100)]
    bad = [e for e in got if e.fields["buf"].startswith("m ")]
    assert [f.offset for f in ev] == [e.offset for e in bad[:100]] and None not in [f.offset for f in ev]
    more = [f for f in td.findings if f.code == "invalid_utf8_events"]
    assert len(more) == 1 and more[0].context["count"] == 150 and more[0].offset == bad[100].offset
    for mode in ("columns", "dict"):
        fr = read_trace_dat(p)
        df = fr.dataframe(fields=mode)
        assert [f.to_json() for f in fr.findings] == [f.to_json() for f in td.findings]
        assert df["text"].tolist() == [e.text for e in got]


# -- trace.dat: a cmdlines pid past int64 (campaign m202612071540, trace-dat #11236: the DataFrame
# path raised OverflowError building its pid array from the saved cmdlines)

@pytest.mark.parametrize("version", [6, 7])
def test_cmdlines_pid_outside_pid_t_is_skipped_with_a_finding(tmp_path, version):
    sw = {"prev_comm": "keep", "prev_pid": 8, "prev_prio": 120, "prev_state": 1,
          "next_comm": "swapper", "next_pid": 0, "next_prio": 120}
    evs = [Event("trace-dat", 1000, 0, 8, "keep", "ftrace", "print", {"buf": "hello\n"}),
           Event("trace-dat", 2000, 0, 8, "keep", "sched", "sched_switch", sw)]
    line = b"7 " + b"a" * 25 + b"\n"
    huge = b"99999999999999999999 " + b"a" * 6 + b"\n"  # 10**20 - 1: past int64, let alone pid_t
    p = _patched(tmp_path, f"p{version}.dat", evs, [(line, huge)], version=version, compression="none",
                 cmdlines={7: "a" * 25, 8: "keep"})
    td = read_trace_dat(p)
    assert td.cmdlines == {8: "keep"}
    bad = [f for f in td.findings if f.code == "bad_cmdline"]
    assert len(bad) == 1 and bad[0].severity == "warning"
    assert "1 line(s)" in bad[0].message and "first: line 1" in bad[0].message
    data = p.read_bytes()
    size = int.from_bytes(data[bad[0].offset:bad[0].offset + 8], "little")  # the section's u64 size
    assert huge in data[bad[0].offset + 8:bad[0].offset + 8 + size]
    assert [e.comm for e in td.events()] == ["keep", "keep"]
    fr = read_trace_dat(p)
    assert fr.dataframe()["comm"].tolist() == ["keep", "keep"]
    assert [f.to_json() for f in fr.findings] == [f.to_json() for f in td.findings]


def test_parse_cmdlines_keeps_pid_t_range_and_lists_what_it_skips():
    from dissect.ftrace.formats import parse_cmdlines

    skipped: list[int] = []
    got = parse_cmdlines("1 init\n-1 neg\n2147483647 max\n2147483648 over\nnopid\n\nx y\n3 a b\n", skipped)
    assert got == {1: "init", -1: "neg", 2147483647: "max", 3: "a b"}
    assert skipped == [4, 5, 7]
