# SPDX-License-Identifier: GPL-2.0-only
"""The trace.dat reader against trace-cmd itself, on real files.

Oracle: ``trace-cmd report -t`` (and ``-R`` for raw fields), run live.  The
committed files in traces/real/ftrace/ were made by trace-cmd 3.1.6 on Linux
6.18 (see traces/README.md); a fresh file is also recorded during the test
when tracefs is usable and we are root.
"""
from __future__ import annotations

import contextlib
import os
import re
import struct
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from dissect.ftrace.tracedat import read_trace_dat
from tests.conftest import TRACES, require_tool

REAL = TRACES / "real" / "ftrace"
FILES = ["markers-v6.dat", "markers-v7-none.dat", "markers-v7-zstd.dat"]

_LINE = re.compile(r"^(?P<comm>.*)-(?P<pid>-?\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<sec>\d+)\.(?P<frac>\d+): (?P<rest>.*)$")


def none(v):
    """pandas' missing markers (NaN, NA) as None, for comparing with Event attributes."""
    return None if v is None or (not isinstance(v, (list, dict, bytes)) and pd.isna(v)) else v


def parse_report(text: str, strict: bool = True) -> list[tuple]:
    """``trace-cmd report -t`` lines → (instance, ts_ns, cpu, pid, comm, event, text).

    ``strict=False`` (for ``-R``, which prints raw bytes that may contain a
    newline) skips continuation lines instead of failing on them.
    """
    out = []
    for line in text.split("\n"):
        if not line or line.startswith("cpus=") or "[LOST" in line or "EVENTS DROPPED" in line:
            continue
        inst = None
        if not line.startswith(" ") and ": " in line:
            inst, line = line.split(": ", 1)
        m = _LINE.match(line)
        if not strict and (m is None or inst is not None and not re.fullmatch(r"\w+", inst)):
            continue
        assert m, line
        frac = m.group("frac")
        assert len(frac) == 9, f"not a -t (ns) timestamp: {line}"
        ts = int(m.group("sec")) * 1_000_000_000 + int(frac)
        rest = m.group("rest")
        ev, _, payload = rest.partition(":")
        payload = payload[max(1, 21 - len(ev)):]
        out.append((inst, ts, int(m.group("cpu")), int(m.group("pid")), m.group("comm").strip(), ev, payload))
    return out


def reader_rows(path: Path) -> list[tuple]:
    """Our events as report rows; events without ``text`` (not print-like) are rendered with the
    reader's plugin rendering (sched_switch), which must equal trace-cmd's too."""
    td = read_trace_dat(path)
    rows = []
    for e in td.events():
        text = e.text
        if text is None and e.system is not None:
            text = td.render(td.format(e.system, e.event), e.fields, plugins=True)
        rows.append((e.instance, e.ts_ns, e.cpu, e.pid, e.comm, e.event, text))
    return rows


def report(path: Path, *flags: str) -> str:
    tool = require_tool("trace-cmd")
    proc = subprocess.run([tool, "report", "-t", *flags, str(path)], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode("utf-8", "replace")


def assert_same_as_trace_cmd(path: Path) -> int:
    theirs = parse_report(report(path))
    ours = reader_rows(path)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if a[6] is None:  # events we do not render: compare everything else
            b = b[:6] + (None,)
        assert a == b
    return len(ours)


@pytest.mark.needs_tool
@pytest.mark.parametrize("name", FILES)
def test_committed_file_equals_trace_cmd_report(name):
    n = assert_same_as_trace_cmd(REAL / name)
    assert n == 97


@pytest.mark.needs_tool
@pytest.mark.parametrize("name", FILES)
def test_raw_fields_equal_trace_cmd_report_R(name):
    path = REAL / name
    raw = parse_report(report(path, "-R"), strict=False)
    td = read_trace_dat(path)
    evs = list(td.events())
    assert len(evs) == len(raw)
    checked = 0
    for e, r in zip(evs, raw):
        payload = r[6].strip()
        if e.event == "sched_switch":
            f = e.fields
            assert payload == (f"prev_comm={f['prev_comm']} prev_pid={f['prev_pid']} prev_prio={f['prev_prio']} "
                               f"prev_state={f['prev_state']} next_comm={f['next_comm']} "
                               f"next_pid={f['next_pid']} next_prio={f['next_prio']}")
            checked += 1
        elif e.event == "print":
            assert payload == f"ip={td.kallsyms.symbol(e.fields['ip'])} buf={e.fields['buf'].rstrip(chr(10))}"
            checked += 1
        elif e.event == "raw_data":
            assert payload.startswith(f"id={e.fields['id']:04x} buf=")
            checked += 1
    assert checked == len(evs)


def test_committed_file_contents():
    """Concrete facts about the committed capture (written by traces/real/ftrace/capture.py)."""
    td = read_trace_dat(REAL / "markers-v7-zstd.dat")
    assert (td.version, td.compression, td.big_endian, td.long_size, td.page_size) == (7, "zstd", False, 8, 4096)
    assert td.clock == "local"
    assert [i.name for i in td.instances] == ["", "migtrace_e"]
    assert td.format("ftrace", "print").id == 5 and td.format("ftrace", "raw_data").id == 19
    assert td.format("sched", "sched_switch") is not None
    assert td.findings == []
    assert td.lost_events == {0: 0, 1: 0}
    evs = list(td.events())
    prints = [e for e in evs if e.event == "print" and e.instance is None]
    assert prints[0].text == "tracing_mark_write: migrate_set_state new state setup"
    assert prints[0].fields["buf"] == "migrate_set_state new state setup\n"
    assert prints[0].comm == "qemu-system-x86" and prints[0].cpu == 0
    # qemu-trace-events.md §2.1, 9.2 form: two spaces, the name in parentheses, decimal sizes
    it = next(e for e in evs if e.text and "vfio_save_iterate " in e.text)
    assert it.fields["buf"] == "vfio_save_iterate  (0000:00:05.0) precopy initial size 0 precopy dirty size 0\n"
    assert it.comm == "live_migration" and it.cpu == 1
    trunc = next(e for e in evs if e.text and "migrate_fd_error" in e.text)
    assert len(trunc.fields["buf"]) == 512 and trunc.fields["buf"].endswith("/gue\n")  # 511 + kernel's \n
    assert trunc.fields["buf"].startswith("migrate_fd_error error=Unable to open /srv/migration-images/")
    raws = [e for e in evs if e.event == "raw_data"]
    assert [r.fields["id"] for r in raws] == [0x76697274] * 3 + [0x2A]
    # admin-capture piece: total_length 40, piece_offset 0, then the 16-byte pseudo-header
    total, piece_off = struct.unpack_from("<II", raws[0].fields["buf"])
    assert (total, piece_off) == (40, 0)
    assert raws[0].fields["buf"][8:24] == bytes.fromhex("01000000" "01000000" "28000000" "00000000")
    assert raws[3].fields["buf"] == bytes(range(1, 17))
    sw = next(e for e in evs if e.event == "sched_switch")
    assert sw.text is None  # contract: text only for print-like events
    assert td.render(td.format("sched", "sched_switch"), sw.fields, plugins=True) == \
        "qemu-system-x86:15936 [120] S ==> qemu-system-x86:15978 [120]"
    inst = [e.text for e in evs if e.instance == "migtrace_e"]
    assert inst == ["tracing_mark_write: instance marker one", "tracing_mark_write: instance marker two",
                    "tracing_mark_write: instance marker three on cpu1"]
    opts = {o.name: o.value for o in td.options}
    assert opts["TRACECLOCK"].startswith("[local]") and opts["CPUCOUNT"] == 2
    assert opts["VERSION"].startswith("3.1.6")


def test_qemu_lines_of_real_files_parse_with_their_declared_arguments():
    """Every print whose first word is a catalogue event is a matched QEMU event whose
    arguments are exactly the declared names of one variant (only the 511-byte line may
    lack its cut tail)."""
    from dissect.qemu.trace_events import Catalogue
    cat = Catalogue.default()
    for name in FILES:
        seen = []
        for e in read_trace_dat(REAL / name).events():
            if e.event != "print":
                continue
            buf = e.fields["buf"]
            first = buf.split(" ", 1)[0].rstrip("\n")
            if first not in cat:
                assert first == "instance", buf  # the plain markers of the second buffer
                continue
            q = cat.parse(buf)
            assert q is not None and q.matched, buf
            declared = {d.variant: d.arg_names for d in cat.declarations(first)}
            assert q.version_variant in declared, buf
            if q.truncated:
                assert len(buf) == 512 and set(q.args) <= set(declared[q.version_variant])
            else:
                assert tuple(q.args) == declared[q.version_variant], buf
            seen.append((q.event, q.version_variant, q.truncated))
        assert len(seen) == 20
        assert ("vfio_save_iterate", "9.2-dec", False) in seen
        assert ("vfio_migration_set_state", "9.2-3arg", False) in seen
        assert [s for s in seen if s[2]] == [("migrate_fd_error", None, True)]
        it = next(cat.parse(e.fields["buf"]) for e in read_trace_dat(REAL / name).events()
                  if e.event == "print" and e.fields["buf"].startswith("vfio_save_iterate "))
        assert it.args == {"name": "0000:00:05.0", "precopy_init_size": 0, "precopy_dirty_size": 0}


def test_dataframe_equals_events_on_real_files():
    for name in FILES:
        td = read_trace_dat(REAL / name)
        df = td.dataframe(fields="dict")
        evs = list(read_trace_dat(REAL / name).events())
        assert list(df.columns) == ["ts_ns", "cpu", "pid", "comm", "system", "event", "fields", "text", "instance"]
        assert len(df) == len(evs)
        for row, e in zip(df.itertuples(index=False), evs):
            assert (row.ts_ns, row.cpu, row.pid, row.comm, row.system, row.event, row.fields, row.text,
                    none(row.instance)) == (e.ts_ns, e.cpu, e.pid, e.comm, e.system, e.event, e.fields, e.text,
                                            e.instance)
        cols = read_trace_dat(REAL / name).dataframe()
        assert list(cols.columns[:8]) == ["ts_ns", "cpu", "pid", "comm", "system", "event", "text", "instance"]
        assert {"ip", "buf", "id", "prev_comm", "next_pid"} <= set(cols.columns)
        for row, e in zip(cols.to_dict("records"), evs):
            assert (row["ts_ns"], row["pid"], row["comm"], row["event"], row["text"]) == \
                (e.ts_ns, e.pid, e.comm, e.event, e.text)
            for k, v in e.fields.items():
                # raw_data's bytes buf has its own column next to print's text buf
                assert row[f"{e.event}_{k}" if f"{e.event}_{k}" in row else k] == v
            for k in ("buf", "prev_comm"):
                if k not in e.fields or e.event == "raw_data":
                    assert row[k] is None or pd.isna(row[k])


# ---------------------------------------------------------------- live

T = Path("/sys/kernel/tracing")


def _tracefs_usable() -> str | None:
    if os.geteuid() != 0:
        return "not root: cannot write to tracefs"
    if not (T / "trace_marker").exists():
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(T)], capture_output=True)
    if not (T / "trace_marker").exists():
        return "tracefs is not mounted and cannot be mounted here"
    if not (T / "instances").is_dir():
        return "tracefs has no instances directory"
    return None


@contextlib.contextmanager
def tracefs_instance(prefix: str) -> Iterator[Path]:
    """A private tracefs instance ``<prefix>_<pid>`` (the test skips when tracefs is not usable),
    removed afterwards with every event enabled in it switched off first (``trace-cmd extract
    -B`` may already have removed it)."""
    why = _tracefs_usable()
    if why:
        pytest.skip(why)
    inst = T / "instances" / f"{prefix}_{os.getpid()}"
    try:
        inst.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a tracefs instance: {exc}")
    try:
        yield inst
    finally:
        for _ in range(50):
            try:
                if inst.exists():
                    for enable in inst.glob("events/*/*/enable"):
                        if enable.read_text().strip() == "1":
                            enable.write_text("0\n")
                    inst.rmdir()
                break
            except OSError:
                time.sleep(0.1)


@pytest.mark.needs_tool
def test_fresh_recording_equals_trace_cmd(tmp_path):
    """Record markers now, in a private instance, extract with trace-cmd and compare."""
    tool = require_tool("trace-cmd")
    with tracefs_instance("migtrace_test") as inst:
        name = inst.name
        (inst / "tracing_on").write_text("1\n")
        lines = [f"vfio_save_block  (0000:00:05.0) data_size {4096 * i}\n" for i in range(20)]
        lines.append("vmstate_downtime_checkpoint src-downtime-end\n")
        lines.append("x" * 300 + "\n")  # a type_len 0 record
        for line in lines:
            fd = os.open(inst / "trace_marker", os.O_WRONLY)
            os.write(fd, line.encode())
            os.close(fd)
        fd = os.open(inst / "trace_marker_raw", os.O_WRONLY)
        os.write(fd, struct.pack("<III", 0x76697274, 8, 0) + b"ABCDEFGH")
        os.close(fd)
        out = tmp_path / "fresh.dat"
        proc = subprocess.run([tool, "extract", "-B", name, "-o", str(out)], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0 or not out.exists():
            pytest.skip(f"trace-cmd extract failed here: {proc.stderr[-300:]}")
    n = assert_same_as_trace_cmd(out)
    assert n == len(lines) + 1
    td = read_trace_dat(out)
    texts = [e.fields.get("buf") for e in td.events() if e.event == "print"]
    assert texts == lines
