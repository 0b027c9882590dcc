# SPDX-License-Identifier: GPL-2.0-only
"""Truncation of one real capture per family (issue 14 §4): every prefix decodes to a prefix
of the full decode plus an explicit finding, never a silent loss.

Offsets: every offset in the first and last stretch of each file and a stride in
between (the whole-file decodes of the big captures are what costs: the stack-level
checks take fewer offsets than the reader-level ones).

What "a prefix of the full decode" means per family:
- capture files (pcap): the packets read are the full file's first packets, the last one
  possibly cut short (its bytes a prefix of the full packet); the decoded units (sections,
  RAM, records, ...) are the full decode's first units except the last one, which may be
  the unit the cut went through;
- trace.dat: per CPU, the events are the full file's first events of that CPU (the merged
  time line of several CPUs is not a prefix: CPU 1's data follows CPU 0's in the file);
- text (trace-cmd report, tracefs, QEMU log): the events are the full file's first events, the
  last one possibly cut.
Explicit finding: whenever the prefix decodes to less than the whole file, an error or
warning finding that the full decode does not have is there.  The one case nothing can
tell apart: a text file cut right after a newline is a shorter, well-formed trace
(docs/robustness.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from analysis.emit import emitter_for
from dissect.capture.reader import CaptureReader
from dissect.common.findings import Finding
from dissect.ftrace.event import Event
from dissect.ftrace.text import FtraceText, QemuLog, ReportText
from dissect.ftrace.tracedat import read_trace_dat
from tests.conftest import TRACES

REAL = TRACES / "real"
ARGS = argparse.Namespace(trace_events=None, as_kind=None, opcode=None, subtype=0, admin_linktype=None,
                          debug=False)


def offsets(size: int, edge: int, stride: int) -> list[int]:
    """Every offset in the first and last ``edge`` bytes, a stride in between (full size excluded)."""
    got = set(range(0, min(edge, size))) | set(range(max(0, size - edge), size)) | set(range(0, size, stride))
    return sorted(got)


def _cut(tmp_path: Path, data: bytes, n: int, name: str) -> Path:
    p = tmp_path / name
    p.write_bytes(data[:n])
    return p


def _new_problems(full: list[dict], part: list[dict]) -> list[dict]:
    seen = {(f["code"], f.get("offset")) for f in full}
    return [f for f in part if f["severity"] in ("error", "warning") and (f["code"], f.get("offset")) not in seen]


# -- capture files: reader level (every packet) and stack level (decoded units) ---------------

def _packets(path: Path) -> tuple[list[tuple[int, bytes]], list[Finding]]:
    r = CaptureReader(path)
    return [(p.ts_ns, bytes(p.data)) for p in r.packets()], list(r.findings)


def _check_reader_prefixes(tmp_path: Path, src: Path, edge: int, stride: int) -> int:
    data = src.read_bytes()
    full, ffind = _packets(src)
    assert ffind == []
    n = 0
    for cut in offsets(len(data), edge, stride):
        got, finds = _packets(_cut(tmp_path, data, cut, src.name))
        assert len(got) <= len(full), cut
        if got:
            assert got[:-1] == full[:len(got) - 1], cut
            ts, body = got[-1]
            assert ts == full[len(got) - 1][0] and full[len(got) - 1][1].startswith(body), cut
        whole = len(got) == len(full) and got == full
        assert whole or [f for f in finds if f.severity == "error"] or \
            _record_boundary_loss(got, full), cut
        n += 1
    return n


def _record_boundary_loss(got, full) -> bool:
    # a pcap cut exactly between records is a valid, shorter pcap: the reader has nothing to
    # say; the stack-level check below holds that the layers above report the loss
    return len(got) < len(full) and (not got or got[-1] == full[len(got) - 1])


def _units(path: Path, kind: str) -> list[dict]:
    return list(emitter_for(kind)(path, ARGS))


def _check_stack_prefix(full: list[dict], part: list[dict], cut: int, boundary: bool) -> None:
    def by_flow(units):
        # one sequence per flow and direction (the return path's messages are the other direction)
        out: dict = {}
        for u in units:
            if u["kind"] not in ("finding", "flow"):
                out.setdefault((u.get("flow"), u["kind"].startswith("rp_")), []).append(u)
        return out
    body, got = by_flow(full), by_flow(part)
    for flow, units in got.items():
        want = body.get(flow, [])
        assert len(units) <= len(want), (cut, flow)
        # all but the last decoded unit of each sequence are the full decode's; the last may be the
        # one cut (with a RAM section, the section and its page summary that follows it)
        k = 2 if len(units) > 1 and units[-1]["kind"] == "ram" else 1
        assert units[:-k] == want[:len(units) - k], (cut, flow)
        assert [u["kind"] for u in units[-k:]] == [u["kind"] for u in want[len(units) - k:len(units)]], (cut, flow)
    if got != body and (got or not boundary):
        # (a cut between records before any migration byte is a shorter capture of the handshakes)
        assert _new_problems([u for u in full if u["kind"] == "finding"],
                             [u for u in part if u["kind"] == "finding"]), (cut, sum(map(len, got.values())))


def _packet_ends(data: bytes) -> list[int]:
    """File offsets where pcap records end (record boundaries)."""
    import struct

    out, p = [], 24
    e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    while p + 16 <= len(data):
        incl = struct.unpack_from(e + "I", data, p + 8)[0]
        p += 16 + incl
        out.append(p)
    return out


@pytest.mark.parametrize("name,edge,stride", [("qemu-tcp-returnpath.pcap", 600, 10007),
                                               ("qemu10/multifd.pcap", 200, 100003)])
def test_capture_reader_every_prefix(tmp_path, name, edge, stride):
    src = REAL / name
    if not src.is_file():
        pytest.skip(f"{name} not in this tree")
    assert _check_reader_prefixes(tmp_path, src, edge=edge, stride=stride) >= 2 * edge


@pytest.mark.parametrize("name,count", [("qemu-tcp-returnpath.pcap", 14), ("qemu10/multifd.pcap", 14)])
def test_capture_stack_prefixes(tmp_path, name, count):
    """The migration decode (TCP reassembly, QEMU stream, multifd) of prefixes: cuts mid-record,
    at record boundaries, inside the first packets, the middle and the tail."""
    src = REAL / name
    if not src.is_file():
        pytest.skip(f"{name} not in this tree")
    data = src.read_bytes()
    full = _units(src, "migration-capture")
    ends = _packet_ends(data)
    picks = sorted({30, 100, ends[3], ends[3] + 7, ends[10] - 1,
                    *(ends[int(len(ends) * q)] + d for q in (0.25, 0.5, 0.75) for d in (0, 33)),
                    ends[-3], ends[-2] + 5, len(data) - 1})
    assert len(picks) >= count - 2
    for cut in picks:
        _check_stack_prefix(full, _units(_cut(tmp_path, data, cut, Path(name).name), "migration-capture"), cut,
                            cut in ends)


# -- trace.dat ---------------------------------------------------------------------------

def _dat(path: Path) -> tuple[dict[int, list[tuple]], list[Finding]]:
    td = read_trace_dat(path)
    try:
        per: dict[int, list[tuple]] = {}
        for e in td.events():
            per.setdefault((e.instance, e.cpu), []).append((e.ts_ns, e.pid, e.event, e.text, repr(e.fields)))
        return per, list(td.findings)
    finally:
        td.close()


@pytest.mark.parametrize("name", ["markers-v6.dat", "markers-v7-zstd.dat"])
def test_trace_dat_every_prefix(tmp_path, name):
    src = REAL / "ftrace" / name
    data = src.read_bytes()
    full, ffind = _dat(src)
    fkeys = {(f.code, f.offset) for f in ffind}
    n = 0
    for cut in offsets(len(data), 300, 211):
        got, finds = _dat(_cut(tmp_path, data, cut, name))
        for cpu, evs in got.items():
            assert evs == full.get(cpu, [])[:len(evs)], (cut, cpu)
        if got != full:
            assert [f for f in finds if f.severity in ("error", "warning") and (f.code, f.offset) not in fkeys], cut
        n += 1
    assert n > 500


# -- text --------------------------------------------------------------------------------

def _text(reader, path: Path) -> tuple[list[Event], list[Finding]]:
    items = list(reader(path))
    return [x for x in items if isinstance(x, Event)], [x for x in items if isinstance(x, Finding)]


@pytest.mark.parametrize("reader,name,edge,stride", [
    (ReportText, "ftrace-text/report.txt", 1 << 30, 1),      # every offset
    (FtraceText, "ftrace-text/trace.txt", 400, 7),
    (QemuLog, "qemu-file.src.log", 400, 7)])
def test_text_every_prefix(tmp_path, reader, name, edge, stride):
    src = REAL / name
    data = src.read_bytes()
    full, ffind = _text(reader, src)
    fkeys = {(f.code, f.offset) for f in ffind}
    key = lambda e: (e.ts_ns, e.cpu, e.pid, e.comm, e.event, e.text, repr(e.fields), e.offset)  # noqa: E731
    fk = [key(e) for e in full]
    silent = 0
    for cut in offsets(len(data), edge, stride)[1:]:  # (an empty file: nothing to tell)
        evs, finds = _text(reader, _cut(tmp_path, data, cut, src.name))
        got = [key(e) for e in evs]
        assert got[:-1] == fk[:max(0, len(got) - 1)], cut
        if got != fk:
            new = [f for f in finds if f.severity in ("error", "warning") and (f.code, f.offset) not in fkeys]
            if data[cut - 1:cut] == b"\n":
                silent += not new  # a cut right after a newline: a well-formed shorter trace
            else:
                assert new, cut
    assert silent <= data.count(b"\n")
