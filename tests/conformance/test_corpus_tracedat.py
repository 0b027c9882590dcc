# SPDX-License-Identifier: GPL-2.0-only
"""Every trace.dat of the public corpus equals trace-cmd's own report, event for event.

Oracles (kept in the corpus, made before migtrace read the files; its README.md):
Debian trace-cmd 3.1.6 ``report -N`` (no plugins) and ``report`` (plugins) for the
18 files it reads; for the 3 zlib v7 files, which Debian's build cannot open, the
report of LISA's static trace-cmd 3.1.5 (no plugins).  Per event we compare CPU,
pid, event name, the timestamp as trace-cmd prints it (µs, rounded to nearest, or the
raw integer for an x86-tsc file) and the comm; for ftrace print/bprint/bputs events
also the text; the DataFrame (bulk path) gives the same rows.  The comm differs between the two report modes only by the sched
plugins' comm registration: our ``Event.comm`` is held to the plugin report, the
saved-cmdlines comm to the plugin-free one.
"""
from __future__ import annotations

import numpy as np
import pytest

from dissect.ftrace.tracedat import read_trace_dat
from tests.conformance.corpus import (as_printed, exists, files, json_file, parse_report, read_text,
                                      report_ts_ns, require_corpus)

DATS = files("trace-dat", "*.dat")
LISA = ".report.lisa-static-3.1.5.txt"
PRINTLIKE = ("print", "bprint", "bputs")
PRINTLIKE_COUNTS = {"lisa_example_rtapp_trace.dat": 6256, "lisa_sched_load_trace.dat": 6,
                    "trappy_tests_raw_trace.dat": 2, "trappy_tests_trace.dat": 501, "trappy_tests_trace_old.dat": 274}


def _oracles(name: str):
    d = require_corpus() / "trace-dat"
    if exists(d / (name + LISA)):
        return parse_report(read_text(d / (name + LISA))), None
    return parse_report(read_text(d / (name + ".report-N.txt"))), parse_report(read_text(d / (name + ".report.txt")))


@pytest.mark.parametrize("name", DATS)
def test_trace_dat_equals_trace_cmd_report(name):
    corpus = require_corpus()
    plain, plugins = _oracles(name)
    stats = json_file(corpus / "trace-dat" / "oracle_stats.json")[name]
    assert len(plain) == stats["events"]  # the oracle parser finds every event the collector counted
    td = read_trace_dat(corpus / "trace-dat" / name)
    evs = list(td.events())
    assert len(evs) == len(plain)
    texts = 0
    for i, (e, r) in enumerate(zip(evs, plain)):
        ns, unit = report_ts_ns(r["ts"])
        saved_comm = td._comm(e.pid, td.cmdlines)
        assert (e.cpu, e.pid, e.event, as_printed(e.ts_ns, unit), saved_comm) == \
            (r["cpu"], r["pid"], r["event"], ns, r["comm"]), f"event {i}"
        if e.system == "ftrace" and e.event in PRINTLIKE:
            assert e.text == r["body"], f"event {i}"
            texts += 1
    if plugins is not None:
        assert [e.comm for e in evs] == [r["comm"] for r in plugins]
    df = td.dataframe()  # the bulk twin: same rows
    assert df["ts_ns"].tolist() == [e.ts_ns for e in evs] and df["cpu"].tolist() == [e.cpu for e in evs]
    assert df["pid"].tolist() == [e.pid for e in evs] and df["event"].tolist() == [e.event for e in evs]
    assert df["comm"].tolist() == [e.comm for e in evs]
    # print-like events per file (docs/ftrace.md: 7 039 in all); the bprint ones of the trappy and
    # rtapp files have a size-0 `u32 buf;` / `char buf;` tail (old kernels)
    assert texts == PRINTLIKE_COUNTS.get(name, 0)


def test_corpus_figures():
    """The counts the docs quote (docs/ftrace.md, conformance): 21 files, 18 with events,
    the guest trace on the host clock."""
    corpus = require_corpus()
    assert len(DATS) == 21
    stats = json_file(corpus / "trace-dat" / "oracle_stats.json")
    assert sum(1 for s in stats.values() if s["events"]) == 18
    assert sum(s["events"] for s in stats.values()) == 203_618


GUEST = "hip24_guest_trace-Salamander4_v7zlib.dat"
HOST = "hip24_host_trace_v7zlib.dat"


def test_guest_trace_time_shift_options():
    """The TimeShift option as trace-cmd dump prints it (dump-summary.txt): peer id, flags 0,
    one CPU, two samples of offset 63430235715905 scaling 1 fraction 0; the host's GUEST option."""
    corpus = require_corpus() / "trace-dat"
    g = read_trace_dat(corpus / GUEST)
    h = read_trace_dat(corpus / HOST)
    ts = g.time_shift
    assert ts is not None and ts.peer_trace_id == 0x2C75FF89FDAF813C and ts.flags == 0
    assert [(s.time, s.offset, s.scaling, s.fraction) for s in ts.cpus[0]] == [
        (1210327320966, 63430235715905, 1, 0), (1217658258571, 63430235715905, 1, 0)]
    assert g.tsc2nsec == (735842807, 31, 0)
    assert [(x.name, x.trace_id, x.vcpu_pids) for x in h.guests] == [("", 0x5D2B93F358166218, {0: 483882})]
    # the host's GUEST names the guest file's trace id, the guest's TimeShift the host's
    trace_id = {o.name: o.value for o in g.options}["TRACEID"]
    assert h.guests[0].trace_id == trace_id
    assert ts.peer_trace_id == {o.name: o.value for o in h.options}["TRACEID"]


def test_guest_trace_on_host_clock_and_fast_path_equal():
    """trace-cmd prints the guest's first event at 22149.948193 s (host clock) where the
    guest's own clock says 415.355 s; the DataFrame (bulk NumPy TimeShift) equals events()."""
    corpus = require_corpus() / "trace-dat"
    g = read_trace_dat(corpus / GUEST)
    evs = list(g.events())
    assert as_printed(evs[0].ts_ns, 1000) == 22149_948193000
    assert as_printed(evs[-1].ts_ns, 1000) == 22151_820885000
    df = g.dataframe()
    assert df["ts_ns"].tolist() == [e.ts_ns for e in evs]
    assert df["cpu"].tolist() == [e.cpu for e in evs] and df["pid"].tolist() == [e.pid for e in evs]
    g.apply_time_shift = False
    own = [e.ts_ns for e in g.events()]
    assert as_printed(own[0], 1000) == 415_355363000  # the guest's own clock, as migtrace gave it before
    assert g.dataframe()["ts_ns"].tolist() == own
    # one constant shift (flags 0, equal offsets): 63430235715905 TSC ticks through TSC2NSEC
    shift = np.array([a - b for a, b in zip((e.ts_ns for e in evs), own)])
    assert (63430235715905 * 735842807) >> 31 == 21734_592829767
    assert shift.min() >= 21734_592829767 - 1 and shift.max() <= 21734_592829767 + 1  # ±1 ns of rounding
