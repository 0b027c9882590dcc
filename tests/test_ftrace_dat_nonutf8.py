# SPDX-License-Identifier: GPL-2.0-only
"""Strings that are not UTF-8, on every path: trace.dat events, its DataFrame, the text readers, detection.

Oracle: ``trace-cmd report`` (3.1.6), which prints the bytes the kernel stored as
they are.  Our strings must equal those bytes decoded with ``backslashreplace``
(byte 0xe9 → ``\\xe9``), and the findings must name exactly the events and fields
whose bytes are not UTF-8 in trace-cmd's output.  The committed recording
``traces/real/ftrace/nonutf8*.dat`` was made by ``capture_nonutf8.py`` beside it
(a process named ``mig\\xe9\\x80x`` writing markers; traces/README.md); a fresh one
is recorded when tracefs is usable.
"""
from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest

from analysis.cli.detect import detect
from dissect.ftrace.text import read_report_text, read_text, sniff_text_kind
from dissect.ftrace.tracedat import read_trace_dat
from tests.conftest import TRACES, require_tool, run_cli
from tests.test_ftrace_dat_real import parse_report, tracefs_instance

REAL = TRACES / "real" / "ftrace"
DATS = ["nonutf8.dat", "nonutf8-v6.dat"]
REPORT_T = REAL / "nonutf8.report-t.txt"  # trace-cmd report -t nonutf8.dat
REPORT = REAL / "nonutf8.report.txt"      # trace-cmd report nonutf8.dat
COMM = b"mig\xe9\x80x"
MARKERS = [b"bytes \x80\xff here\n", b"latin1 caf\xe9\n", b"utf8 caf\xc3\xa9\n", b"back\\x80slash\n"]

_SWITCH = re.compile(rb"^(.*):(\d+) \[(\d+)\] (\S+) ==> (.*):(\d+) \[(\d+)\]$")
_RENAME = re.compile(rb"^pid=(\d+) oldcomm=(.*) newcomm=(.*) oom_score_adj=(-?\d+)$")
_EXEC = re.compile(rb"^filename=(.*) pid=(\d+) old_pid=(\d+)$")


def bs(b: bytes) -> str:
    return b.decode("utf-8", "backslashreplace")


def oracle_rows(report: bytes) -> list[dict]:
    """trace-cmd's ``report -t`` lines as bytes: (instance, ts, cpu, pid, comm, event) and the
    string fields its payload prints, each as the bytes trace-cmd wrote."""
    rows = []
    # latin-1 maps every byte to one character and back: the parser sees the bytes unchanged
    for inst, ts, cpu, pid, comm, ev, payload in parse_report(report.decode("latin-1")):
        p = payload.encode("latin-1")
        if ev == "print":
            assert p.startswith(b"tracing_mark_write: ")
            strings = {"buf": p[len(b"tracing_mark_write: "):] + b"\n"}  # the kernel stores the \n
        elif ev == "sched_switch":
            m = _SWITCH.match(p)
            strings = {"prev_comm": m.group(1), "next_comm": m.group(5)}
        elif ev == "task_rename":
            m = _RENAME.match(p)
            strings = {"oldcomm": m.group(2), "newcomm": m.group(3)}
        else:
            assert ev == "sched_process_exec"
            strings = {"filename": _EXEC.match(p).group(1)}
        rows.append({"key": (inst, ts, cpu, pid, comm.encode("latin-1"), ev), "strings": strings, "payload": p})
    return rows


def expected_findings(rows: list[dict]) -> list[tuple]:
    """(ts_ns, event, fields, count, raw) of each event whose printed strings are not UTF-8."""
    out = []
    for r in rows:
        bad = {k: v for k, v in r["strings"].items() if not _is_utf8(v)}
        if bad:
            count = sum(bs(v).count("\\x") - v.count(b"\\x") for v in bad.values())
            out.append((r["key"][1], r["key"][5], list(bad), count, {k: v.hex() for k, v in bad.items()}))
    return out


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def our_strings(e) -> dict[str, str]:
    keys = {"print": ["buf"], "sched_switch": ["prev_comm", "next_comm"], "task_rename": ["oldcomm", "newcomm"],
            "sched_process_exec": ["filename"]}[e.event]
    return {k: e.fields[k] for k in keys}


def assert_equals_report(path: Path, report: bytes) -> list:
    """Every event of ``path`` against trace-cmd's bytes; returns the events."""
    rows = oracle_rows(report)
    td = read_trace_dat(path)
    evs = list(td.events())
    assert len(evs) == len(rows)
    for e, r in zip(evs, rows):
        inst, ts, cpu, pid, comm, ev = r["key"]
        assert (e.instance, e.ts_ns, e.cpu, e.pid, e.comm, e.event) == (inst, ts, cpu, pid, bs(comm), ev)
        assert our_strings(e) == {k: bs(v) for k, v in r["strings"].items()}
        if ev == "print":
            assert e.text == "tracing_mark_write: " + bs(r["strings"]["buf"][:-1])
        elif ev == "sched_switch":  # libtraceevent's plugin rendering, comm bytes included
            assert td.render(td.format("sched", "sched_switch"), e.fields, plugins=True) == bs(r["payload"])
    return evs


def utf8_findings(td) -> list[tuple]:
    return [(f.context["ts_ns"], f.context["event"], f.context["fields"], f.context["count"], f.context["raw"])
            for f in td.findings if f.code == "invalid_utf8"]


def assert_findings_both_paths(path: Path, report: bytes) -> list:
    """The invalid_utf8 findings are trace-cmd's non-UTF-8 strings, the same on the event path and
    on both DataFrame layouts (and their whole finding lists are equal)."""
    want = expected_findings(oracle_rows(report))
    ev = read_trace_dat(path)
    evs = list(ev.events())
    assert utf8_findings(ev) == want
    for mode in ("columns", "dict"):
        fr = read_trace_dat(path)
        df = fr.dataframe(fields=mode)
        assert [f.to_json() for f in fr.findings] == [f.to_json() for f in ev.findings]
        assert df["comm"].tolist() == [e.comm for e in evs]
    # a second pass over the same file adds nothing: each event is reported once
    n = len(ev.findings)
    ev.dataframe()
    list(ev.events())
    assert len(ev.findings) == n
    return ev.findings


# ------------------------------------------------------------------ committed recording

@pytest.mark.parametrize("name", DATS)
def test_committed_recording_equals_trace_cmd_report_bytes(name):
    evs = assert_equals_report(REAL / name, REPORT_T.read_bytes())
    assert len(evs) == 21
    prints = [e for e in evs if e.event == "print"]
    assert [e.fields["buf"] for e in prints] == ["bytes \\x80\\xff here\n", "latin1 caf\\xe9\n", "utf8 caf\u00e9\n",
                                                 "back\\x80slash\n"]
    assert {e.comm for e in prints} == {"mig\\xe9\\x80x"}
    # the comm from the saved cmdlines equals the one the sched_switch records hold
    sw = [e for e in evs if e.event == "sched_switch" and e.pid == 11767 and e.fields["prev_comm"] != "python"]
    assert sw and all(e.comm == e.fields["prev_comm"] == "mig\\xe9\\x80x" for e in sw)
    ex = next(e for e in evs if e.event == "sched_process_exec")
    assert re.fullmatch(r"/tmp/migtrace-u8-\w+/dir\\xff/mig\\xe9\\x80x", ex.fields["filename"])


@pytest.mark.parametrize("name", DATS)
def test_committed_recording_findings_on_both_paths(name):
    path = REAL / name
    findings = assert_findings_both_paths(path, REPORT_T.read_bytes())
    ev = [f for f in findings if f.code == "invalid_utf8"]
    assert len(ev) == 16  # 2 renames, 11 switches, 2 prints, 1 exec
    assert [f.context["count"] for f in ev if f.context["event"] == "print"] == [2, 1]
    rename = next(f for f in ev if f.context["event"] == "task_rename")
    assert (rename.context["fields"], rename.context["raw"]) == (["newcomm"], {"newcomm": COMM.hex()})
    assert all(f.context["cpu"] == 1 and f.context["instance"] == "migtrace_u8" for f in ev)
    data = path.read_bytes()
    td = read_trace_dat(path)
    if name == "nonutf8-v6.dat":  # uncompressed: the record's offset in the file
        evs = {e.ts_ns: e for e in td.events()}
        for f in ev:
            e = evs[f.context["ts_ns"]]
            assert f.offset == e.offset
            etype, pid = struct.unpack_from("<H2xi", data, f.offset)
            assert (etype, pid) == (td.format(f.context["system"], f.context["event"]).id, e.pid)
    else:  # zstd chunks: no file offset for a record, as Event.offset
        assert {f.offset for f in ev} == {None}
    meta = [f for f in findings if f.code == "invalid_utf8_metadata"]
    assert len(meta) == 1 and meta[0].context["section"] == "cmdlines"
    assert {"pid": 11767, "raw": COMM.hex()} in meta[0].context["entries"]
    assert meta[0].context["entry_count"] == len(meta[0].context["entries"])
    if name == "nonutf8-v6.dat":  # the cmdlines block: u64 size, then "<pid> <comm>\n" lines
        size = struct.unpack_from("<Q", data, meta[0].offset)[0]
        assert b"\n11767 " + COMM + b"\n" in data[meta[0].offset + 8:meta[0].offset + 8 + size]
    else:  # v7: the CMDLINES section (id 21, compressed)
        assert struct.unpack_from("<HH", data, meta[0].offset) == (21, 1)


def test_committed_report_text_path_equals_trace_dat():
    """The text reader of the same recording's report: same comms and strings, and one
    text_invalid_utf8 per report line that is not UTF-8."""
    raw = REPORT_T.read_bytes()
    r = read_report_text(REPORT_T)
    items = list(r)
    evs = [x for x in items if not hasattr(x, "code")]
    dat = list(read_trace_dat(REAL / "nonutf8.dat").events())
    assert len(evs) == len(dat) == 21
    for a, b in zip(evs, dat):
        assert (a.ts_ns, a.cpu, a.pid, a.comm, a.event, a.instance) == (b.ts_ns, b.cpu, b.pid, b.comm, b.event,
                                                                         b.instance)
        if a.event == "print":
            assert (a.text, a.fields["buf"]) == (b.text, b.fields["buf"])
        else:
            assert our_strings(a) == our_strings(b)
    lines = raw.split(b"\n")
    bad_lines = [i + 1 for i, ln in enumerate(lines) if not _is_utf8(ln)]
    got = [f for f in items if getattr(f, "code", None) == "text_invalid_utf8"]
    # 16 events with such strings, 3 more whose comm column alone holds them
    assert [f.context["line"] for f in got] == bad_lines and len(bad_lines) == 19
    assert [f.offset for f in got] == [sum(len(x) + 1 for x in lines[:n - 1]) for n in bad_lines]
    first = got[0]
    assert first.context["raw"] == lines[bad_lines[0] - 1].hex() and first.context["count"] == 2


@pytest.mark.parametrize("path,lines", [(REPORT, 22), (REPORT_T, 22)])
def test_report_text_with_non_utf8_bytes_is_detected(path, lines):
    head = path.read_bytes()[:8192]
    assert head.count(b"\n") == lines and head.count(COMM) == 29  # on 19 of the 22 lines
    assert detect(path) == "trace-cmd-report"
    assert sniff_text_kind(head) == "trace-cmd-report"
    assert type(read_text(path)).__name__ == "ReportText"


def test_text_or_binary_by_nul_and_control_bytes(tmp_path):
    from analysis.cli.detect import UnknownFormat
    from dissect.ftrace.utf8 import looks_binary
    report = REPORT.read_bytes()
    assert not looks_binary(report) and not looks_binary(report.replace(b"mig", b"\x1b[1m"))  # ESC is text
    assert looks_binary(report[:100] + b"\0" + report[100:])
    ctl = bytes(range(1, 32)) * 40  # control bytes only, no NUL: 24 of 31 are not text
    # ctl[:100] holds 79 such bytes: binary above one in eight
    assert looks_binary(ctl) and looks_binary(b"a" * 500 + ctl[:100]) and not looks_binary(b"a" * 600 + ctl[:100])
    p = tmp_path / "ctl.bin"
    p.write_bytes(ctl)
    with pytest.raises(UnknownFormat):
        detect(p)
    assert sniff_text_kind(ctl) is None


def test_cli_decodes_the_report_text_and_the_trace_dat():
    r = run_cli("decode", "--json", str(REPORT), check=True)
    objs = [json.loads(x) for x in r.stdout.splitlines()]
    evs = [o for o in objs if o["kind"] == "event"]
    assert len(evs) == 21 and sum(o["comm"] == "mig\\xe9\\x80x" for o in evs) == 14
    assert sum(o["kind"] == "finding" and o["code"] == "text_invalid_utf8" for o in objs) == 19
    r = run_cli("decode", "--json", str(REAL / "nonutf8-v6.dat"), check=True)
    objs = [json.loads(x) for x in r.stdout.splitlines()]
    codes = [o["code"] for o in objs if o["kind"] == "finding"]
    assert codes.count("invalid_utf8") == 16 and codes.count("invalid_utf8_metadata") == 1
    assert sum(o["kind"] == "event" and o["comm"] == "mig\\xe9\\x80x" for o in objs) == 14


# ------------------------------------------------------------------ bprint %s arguments

@pytest.mark.needs_tool
def test_bprint_string_argument_not_utf8(tmp_path):
    from dissect.ftrace.event import Event
    from dissect.ftrace.writer import tracing_mark_write_ip, write_trace_dat
    fmt = 0xFFFFFFFF81A00000
    ip = tracing_mark_write_ip()
    evs = [Event("trace-dat", 1000, 0, 7, "x", "ftrace", "bprint", {"ip": ip, "fmt": fmt, "buf": b"caf\xe9\0\0\0\0"}),
           Event("trace-dat", 2000, 0, 7, "x", "ftrace", "bprint", {"ip": ip, "fmt": fmt, "buf": b"\\x80\0\0\0"})]
    p = write_trace_dat(tmp_path / "bp.dat", evs, version=6, compression="none", cpus=1, printk={fmt: "arg %s end\n"})
    out = subprocess.run([require_tool("trace-cmd"), "report", str(p)], capture_output=True, check=True).stdout
    printed = [ln.split(b"tracing_mark_write: ", 1)[1] for ln in out.splitlines() if b"bprint:" in ln]
    assert printed == [b"arg caf\xe9 end", b"arg \\x80 end"]
    td = read_trace_dat(p)
    assert [e.text for e in td.events()] == ["tracing_mark_write: " + bs(x) for x in printed]
    f = [x for x in td.findings if x.code == "invalid_utf8"]
    assert [(x.context["ts_ns"], x.context["fields"], x.context["count"]) for x in f] == [(1000, ["buf"], 1)]
    fr = read_trace_dat(p)
    fr.dataframe()
    assert [x.to_json() for x in fr.findings] == [x.to_json() for x in td.findings]


# ------------------------------------------------------------------ live

@pytest.mark.needs_tool
def test_fresh_recording_with_non_utf8_comm_and_markers(tmp_path):
    """Record now: a child named mig\\xe9\\x80x writes markers; trace-cmd's report of the file is the oracle."""
    tool = require_tool("trace-cmd")
    out = tmp_path / "fresh.dat"
    with tracefs_instance("migtrace_u8") as inst:
        name = inst.name
        (inst / "events/sched/sched_switch/enable").write_text("1\n")
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: wait for tracing, rename, write the markers
            try:
                os.close(wr)
                os.read(rd, 1)
                fd = os.open("/proc/self/comm", os.O_WRONLY)
                os.write(fd, COMM)
                os.close(fd)
                for m in MARKERS:
                    fd = os.open(inst / "trace_marker", os.O_WRONLY)
                    os.write(fd, m)
                    os.close(fd)
                    time.sleep(0.005)
            finally:
                os._exit(0)
        os.close(rd)
        (inst / "set_event_pid").write_text(f"{pid}\n")
        (inst / "tracing_on").write_text("1\n")
        os.write(wr, b"g")
        os.close(wr)
        os.waitpid(pid, 0)
        (inst / "tracing_on").write_text("0\n")
        proc = subprocess.run([tool, "extract", "-B", name, "-o", str(out)], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0 or not out.exists():
            pytest.skip(f"trace-cmd extract failed here: {proc.stderr[-300:]}")
    report = subprocess.run([tool, "report", "-t", str(out)], capture_output=True, check=True, timeout=120).stdout
    evs = assert_equals_report(out, report)
    prints = [e for e in evs if e.event == "print"]
    assert [e.fields["buf"] for e in prints] == [bs(m) for m in MARKERS]
    assert {e.comm for e in prints} == {"mig\\xe9\\x80x"}
    findings = assert_findings_both_paths(out, report)
    assert [f.context["ts_ns"] for f in findings if f.code == "invalid_utf8" and f.context["event"] == "print"] \
        == [e.ts_ns for e in prints[:2]]
    meta = [f for f in findings if f.code == "invalid_utf8_metadata"]
    assert {"pid": pid, "raw": COMM.hex()} in meta[0].context["entries"]
