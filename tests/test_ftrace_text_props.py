# SPDX-License-Identifier: GPL-2.0-only
"""Property tests: text rendered as the kernel / trace-cmd / QEMU render it reads back; junk never raises."""
from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.common.findings import Finding
from dissect.ftrace.event import Event
from dissect.ftrace.text import read_ftrace_text, read_qemu_log, read_report_text
from dissect.qemu.trace_events import Catalogue

COMM = st.from_regex(r"[a-z][a-z0-9_/ .:-]{0,14}", fullmatch=True).filter(lambda s: s == s.strip())
TEXT = st.from_regex(r"[ -~]{0,120}", fullmatch=True).filter(lambda s: s == s.rstrip(" ") or True)


def us_round(ns: int) -> int:
    """tracefs and trace-cmd print microseconds rounded to nearest (ns + 500) / 1000."""
    return (ns + 500) // 1000


events = st.lists(st.tuples(COMM, st.integers(1, 4_194_304), st.integers(0, 255),
                            st.integers(0, 10**13), TEXT), min_size=1, max_size=20)


@settings(max_examples=80, deadline=None)
@given(evs=events, flags=st.sampled_from(["...1.", "d..1", None]), tgid=st.booleans())
def test_tracefs_text_round_trip(evs, flags, tgid):
    out = []
    for comm, pid, cpu, ns, text in evs:
        us = us_round(ns)
        col = f" {flags}" if flags else ""
        tg = "   (-------)" if tgid else ""
        out.append(f"{comm:>16}-{pid:<7}{tg} [{cpu:03d}]{col} {us // 10**6:5d}.{us % 10**6:06d}: "
                   f"tracing_mark_write: {text}\n")
    got = [x for x in read_ftrace_text(io.BytesIO("".join(out).encode())) if isinstance(x, (Event, Finding))]
    assert all(isinstance(x, Event) for x in got)
    assert [(e.comm, e.pid, e.cpu, e.ts_ns, e.fields["buf"]) for e in got] == [
        (c, p, cp, us_round(ns) * 1000, t + "\n") for c, p, cp, ns, t in evs]


@settings(max_examples=80, deadline=None)
@given(evs=events, ns_ts=st.booleans(), inst=st.sampled_from([None, "migtrace_f"]))
def test_report_text_round_trip(evs, ns_ts, inst):
    out = ["cpus=256\n"]
    for comm, pid, cpu, ns, text in evs:
        ts = f"{ns // 10**9:5d}.{ns % 10**9:09d}" if ns_ts else \
            f"{us_round(ns) // 10**6:5d}.{us_round(ns) % 10**6:06d}"
        pre = f"{inst}: " if inst else ""
        out.append(f"{pre}{comm:>16}-{pid:<5} [{cpu:03d}] {ts}: print:                tracing_mark_write: {text}\n")
    got = list(read_report_text(io.BytesIO("".join(out).encode())))
    assert all(isinstance(x, Event) for x in got)
    assert [(e.comm, e.pid, e.cpu, e.ts_ns, e.fields["buf"], e.instance) for e in got] == [
        (c, p, cp, ns if ns_ts else us_round(ns) * 1000, t + "\n", inst) for c, p, cp, ns, t in evs]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 10))
def test_qemu_log_round_trip_through_the_catalogue(data, n):
    cat = Catalogue.default()
    lines, want = [], []
    for _ in range(n):
        tid = data.draw(st.integers(1, 4_194_304))
        sec = data.draw(st.integers(10**9, 2 * 10**9))
        usec = data.draw(st.integers(0, 999_999))
        size = data.draw(st.integers(0, 2**31 - 1))
        text = cat.format("vfio_save_block", name="0000:3b:00.1", data_size=size)
        lines.append(f"{tid}@{sec}.{usec:06d}:{text}\n")
        want.append((tid, sec * 10**9 + usec * 1000, size))
    got = list(read_qemu_log(io.BytesIO("".join(lines).encode())))
    assert [(e.pid, e.ts_ns, cat.parse(e.text).args["data_size"]) for e in got] == want


JUNK = st.lists(st.one_of(
    st.from_regex(r"[ -~\t]{0,80}", fullmatch=True),
    st.sampled_from(["CPU:0 [LOST 3 EVENTS]", "CPU:x [LOST EVENTS]", "cpus=2", "version = 7", "# tracer: nop",
                     "  a-1 [000] ....  1.5: tracing_mark_write: x", "  a-1 [000]  1.000001: print: x",
                     "-1 [0] : :", "] : :", "1@2.3:x", "2025-13-40T99:99:99Z foo", "x-y [z] 1.2: e: f",
                     "  a-1    [000] ....   1.000001: # zz buf: 0g", "  a-1  [000]  1.000001: raw_data: # 2a 0"]),
    st.text(max_size=40)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(lines=JUNK, reader=st.sampled_from([read_ftrace_text, read_report_text, read_qemu_log]))
def test_junk_never_raises_and_findings_point_into_the_file(lines, reader):
    blob = "\n".join(lines).encode("utf-8", "surrogatepass")
    out = list(reader(io.BytesIO(blob)))
    assert all(isinstance(x, (Event, Finding)) for x in out)
    for f in out:
        if isinstance(f, Finding):
            assert 0 <= f.offset <= len(blob) and 1 <= f.context["line"] <= blob.count(b"\n") + 1
            assert blob.count(b"\n", 0, f.offset) + 1 == f.context["line"]


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=600))
def test_catalogue_parse_never_raises(text):
    cat = Catalogue.default()
    q = cat.parse(text)
    assert q is None or q.event == text.partition(" ")[0].rstrip("\n")
    for name in ("vfio_save_block", "vmstate_downtime_save", "ram_load_loop"):
        cat.parse(name + " " + text)


BAD = st.sampled_from([b"\x80", b"\xff", b"\xfe\xfe", b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f"])


@settings(max_examples=80, deadline=None)
@given(evs=events, bad=st.lists(st.tuples(st.integers(0, 19), BAD, st.booleans()), max_size=5))
def test_report_text_with_bytes_that_are_not_utf8(evs, bad):
    """Bytes that are not UTF-8 in a comm or a marker: every line still read, the bytes shown
    ``\\xNN`` (Python's backslashreplace of the line), one text_invalid_utf8 finding per such line."""
    lines = []
    for comm, pid, cpu, ns, text in evs:
        lines.append((comm.encode(), f"-{pid:<5} [{cpu:03d}] {us_round(ns) // 10**6:5d}.{us_round(ns) % 10**6:06d}: "
                      "print:                tracing_mark_write: ".encode(), text.encode()))
    bad_lines = set()
    for k, b, in_comm in bad:
        if k < len(lines):
            comm, mid, text = lines[k]
            # a comm is at most 15 bytes (TASK_COMM_LEN 16 with its NUL), so trace-cmd's 16-column
            # right-justified comm always begins with a space: a 16-byte "a000000000000:\xfe\xfe"
            # would read as instance "a000000000000" (hypothesis found it)
            lines[k] = (comm[:15 - len(b)] + b, mid, text) if in_comm else (comm, mid, b + text)
            bad_lines.add(k)
    blob = b"cpus=256\n" + b"".join(c.rjust(16) + m + t + b"\n" for c, m, t in lines)
    got = list(read_report_text(io.BytesIO(blob)))
    evs_got = [x for x in got if isinstance(x, Event)]
    fs = [x for x in got if isinstance(x, Finding)]
    assert [f.code for f in fs] == ["text_invalid_utf8"] * len(bad_lines)
    assert [f.context["line"] for f in fs] == [k + 2 for k in sorted(bad_lines)]
    want = [(c.decode("utf-8", "backslashreplace"), t.decode("utf-8", "backslashreplace") + "\n")
            for c, _, t in lines]
    assert [(e.comm, e.fields["buf"]) for e in evs_got] == want
    for f in fs:
        raw = bytes.fromhex(f.context["raw"])
        assert blob[f.offset:f.offset + len(raw)] == raw and raw.decode("utf-8", "backslashreplace")
