# SPDX-License-Identifier: GPL-2.0-only
"""Every line of every public text trace is an event or a recognised preamble/comment line.

The 14 text traces of the corpus (tracefs ``trace`` files, ``trace-cmd report`` output
of several trace-cmd versions; README.md §3) have no tool oracle, so each line is
classified here by a regex independent of the readers (an event line has the
``<comm>-<pid> [(<tgid>)] [<cpu>] [<flags>] <sec>.<frac>:`` head; the preamble lines
are ``version = N``, ``CPU N is empty``, ``cpus=N``; comments start with ``#``), and
the reader must give one event per event line with that line's CPU, pid and time,
no ``text_line_unparsed`` finding, and the preamble values in ``header``.  The
DataFrame (the bulk scanner) must give the same rows.
"""
from __future__ import annotations

import re

import pytest

from dissect.ftrace.text import read_text
from tests.conformance.corpus import files, json_file, require_corpus

TEXTS = files("ftrace-text", "*.txt")
_HEAD = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?:\S{4,5}\s+)?"
                   r"(?P<sec>\d+)\.(?P<frac>\d+):")
_VERSION = re.compile(r"^version = (\d+)$")
_EMPTY = re.compile(r"^CPU (\d+) is empty$")
_CPUS = re.compile(r"^cpus=(\d+)$")

# (event lines, preamble lines, comment lines) per file, from the classification below;
# line counts from the corpus's text_stats.json
FIGURES = {
    "lisa_trace_txt_trace.txt": (2941, 2, 0), "tc_ftrace_syscalls.txt": (1052, 0, 0),
    "tc_trace-android-sched-irq-syscall.txt": (143, 0, 11), "tc_trace-android-sched.txt": (139, 0, 11),
    "tc_trace-critical-path.txt": (146, 0, 9), "tc_trace-func-graph.txt": (199, 1, 0),
    "trappy_doc_trace.txt": (804, 7, 0), "trappy_doc_trace_dynamic.txt": (1600, 0, 0),
    "trappy_tests_trace_empty.txt": (51, 2, 0), "trappy_tests_trace_equals.txt": (7, 0, 0),
    "trappy_tests_trace_failed_to_parse.txt": (11, 0, 0), "trappy_tests_trace_filesystem.txt": (69, 0, 0),
    "trappy_tests_trace_idle_unsorted.txt": (15, 2, 0), "trappy_tests_trace_no_trailing_line.txt": (10, 0, 0),
}


def _classify(text: str) -> tuple[list[tuple[int, int, int]], dict, int, int, int]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    events, header, pre, comments, other = [], {}, 0, 0, 0
    for ln in lines:
        m = _HEAD.match(ln)
        if m:
            frac = m["frac"]
            events.append((int(m["cpu"]), int(m["pid"]), int(m["sec"]) * 10**9 + int(frac) * 10 ** (9 - len(frac))))
            continue
        s = ln.strip()
        if (v := _VERSION.match(s)) or (c := _CPUS.match(s)) or (x := _EMPTY.match(s)):
            pre += 1
            if v:
                header["version"] = int(v.group(1))
            elif c:
                header["cpus"] = int(c.group(1))
            else:
                header.setdefault("empty_cpus", []).append(int(x.group(1)))
        elif s.startswith("#"):
            comments += 1
        else:
            other += 1
    return events, header, pre, comments, other


@pytest.mark.parametrize("name", TEXTS)
def test_every_text_line_is_an_event_or_preamble(name):
    path = require_corpus() / "ftrace-text" / name
    stats = json_file(path.parent / "text_stats.json")[name]
    raw = path.read_bytes()
    assert raw.count(b"\n") + (0 if stats["ends_with_newline"] else 1) == stats["lines"]
    want, header, pre, comments, other = _classify(raw.decode("utf-8", "replace"))
    assert (len(want), pre, comments, other) == FIGURES[name] + (0,)
    tr = read_text(path)
    got = [(e.cpu, e.pid, e.ts_ns) for e in tr.events()]
    assert [f.code for f in tr.findings if f.code.startswith("text_line")] == []
    assert got == want
    for k, v in header.items():
        assert tr.header[k] == v, k
    df = read_text(path).dataframe()
    assert list(zip(df["cpu"].tolist(), df["pid"].tolist(), df["ts_ns"].tolist())) == want


def test_cpu_is_empty_lines_are_preamble():
    """trace-cmd 2.x printed ``CPU N is empty`` for each CPU without data before ``cpus=``."""
    tr = read_text(require_corpus() / "ftrace-text" / "trappy_doc_trace.txt")
    assert len(list(tr.events())) == 804
    assert tr.header == {"version": 6, "empty_cpus": [0, 1, 2, 3, 5], "cpus": 6}
    assert tr.findings == []


def test_report_preamble_without_corpus(tmp_path):
    """The same preamble on a small report, so the check runs on a clone without the corpus."""
    p = tmp_path / "r.txt"
    p.write_text("version = 6\nCPU 0 is empty\nCPU 2 is empty\ncpus=3\n"
                 "          <idle>-0     [001]   12.000001: cpu_idle:             state=1 cpu_id=1\n")
    tr = read_text(p)
    assert [(e.cpu, e.pid, e.ts_ns, e.event) for e in tr.events()] == [(1, 0, 12_000_001_000, "cpu_idle")]
    assert tr.header == {"version": 6, "empty_cpus": [0, 2], "cpus": 3} and tr.findings == []
    assert read_text(p).dataframe()["ts_ns"].tolist() == [12_000_001_000]
