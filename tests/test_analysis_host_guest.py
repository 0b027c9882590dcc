# SPDX-License-Identifier: GPL-2.0-only
"""``analysis.load`` of a host trace and a guest trace of one migration: one clock.

A guest trace.dat whose TimeShift option names a host trace.dat of the same load
(its TRACEID) is already on that trace's clock once read (dissect/ftrace/tsync.py,
as trace-cmd does); it shares the host trace's alignment (method ``time-shift``)
and its capture side is ``guest``.  A ``guest-trace`` without TimeShift falls back
to the usual alignment (analysis/align.py).
"""
from __future__ import annotations

import json

import analysis
from dissect.ftrace.event import Event
from dissect.ftrace.tsync import Guest, Sample, TimeShift
from dissect.ftrace.writer import write_trace_dat
from tests.conformance.corpus import as_printed, require_corpus

HOST_ID, GUEST_ID = 0x2C75FF89FDAF813C, 0x5D2B93F358166218


def _print(ts, cpu, text):
    return Event("x", ts, cpu, 7, "k", "ftrace", "print", {"buf": text + "\n"}, None)


def _pair(tmp_path, shift=True):
    host = write_trace_dat(tmp_path / "host.dat", [_print(5_000_000, 0, "host a"), _print(9_000_000, 1, "host b")],
                           cpus=2, trace_id=HOST_ID, guests=[Guest("vm", GUEST_ID, {0: 4242})])
    ts = TimeShift(HOST_ID, 0, [[Sample(0, 4_000_000), Sample(10**9, 4_000_000)]]) if shift else None
    guest = write_trace_dat(tmp_path / "guest.dat", [_print(1_500_000, 0, "guest a"), _print(3_000_000, 0, "guest b")],
                            cpus=1, trace_id=GUEST_ID, time_shift=ts)
    return host, guest


def test_guest_trace_joins_the_host_clock(tmp_path):
    host, guest = _pair(tmp_path)
    for order in ((host, guest), (guest, host)):  # whichever comes first, the host trace is the reference
        m = analysis.load(*order)
        gi = next(c.index for c in m.captures if c.path == guest)
        hi = next(c.index for c in m.captures if c.path == host)
        assert m.captures[gi].side == "guest"
        a = {x.capture: x for x in m.alignment}
        assert (a[gi].method, a[gi].reference, a[gi].offset_ns, a[gi].basis) == ("time-shift", hi, 0, "TimeShift")
        assert a[hi].method == "reference"
        ev = m.events.sort_values("ts_ns")
        # guest raw 1.5 ms / 3.0 ms + 4 ms TimeShift offset, between and after the host's 5 ms and 9 ms
        assert sorted(zip(ev["ts_ns"].tolist(), ev["capture"].tolist())) == [
            (5_000_000, hi), (5_500_000, gi), (7_000_000, gi), (9_000_000, hi)]
        assert set(ev.loc[ev["capture"] == gi, "side"]) == {"guest"}


def test_guest_role_without_time_shift_keeps_the_usual_alignment(tmp_path):
    host, guest = _pair(tmp_path, shift=False)
    (tmp_path / "run.json").write_text(json.dumps({
        "schema": 1, "run_id": "hg", "kind": "real",
        "captures": [{"path": "host.dat", "role": "source-trace"}, {"path": "guest.dat", "role": "guest-trace"}]}))
    m = analysis.load(tmp_path)
    sides = {c.path.name: c.side for c in m.captures}
    assert sides == {"host.dat": "source", "guest.dat": "guest"}
    a = {m.captures[x.capture].path.name: x for x in m.alignment}
    assert a["host.dat"].method == "reference" and a["guest.dat"].method == "none"  # nothing to match on
    g = m.events[m.events["capture"] == a["guest.dat"].capture]
    assert sorted(g["ts_ns"].tolist()) == [1_500_000, 3_000_000]  # left on the guest's own clock
    assert "clock_alignment_failed" in [f["code"] for f in m.findings]


def test_corpus_host_guest_pair_on_one_clock():
    """The public host/guest pair (trace-cmd record -A): the guest's events at trace-cmd's
    host-clock times (first 22149.948193 s, last 22151.820885 s), the host's as recorded."""
    d = require_corpus() / "trace-dat"
    m = analysis.load(d / "hip24_guest_trace-Salamander4_v7zlib.dat", d / "hip24_host_trace_v7zlib.dat")
    g = next(c for c in m.captures if c.side == "guest")
    assert [x.method for x in m.alignment if x.capture == g.index] == ["time-shift"]
    ev = m.events
    gts = ev.loc[ev["capture"] == g.index, "ts_ns"]
    hts = ev.loc[ev["capture"] != g.index, "ts_ns"]
    assert (len(gts), len(hts)) == (90029, 11721)
    assert (as_printed(int(gts.min()), 1000), as_printed(int(gts.max()), 1000)) == (22149_948193000, 22151_820885000)
    assert (as_printed(int(hts.min()), 1000), as_printed(int(hts.max()), 1000)) == (22149_949586000, 22152_202640000)
