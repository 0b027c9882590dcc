# SPDX-License-Identifier: GPL-2.0-only
"""Real captures: one ftrace buffer read as trace.dat, as tracefs text and as trace-cmd report text.

traces/real/ftrace-text/ was recorded by its capture.py (traces/README.md):
the instance's ``trace`` file three ways, ``trace-cmd extract`` of the same
buffer and ``trace-cmd report`` / ``report -t`` of that file.  Text carries
microseconds (rounded to nearest by the kernel and by trace-cmd) or
nanoseconds; everything else must be equal to what the binary reader
(engineer E's) gives.  Fresh captures are recorded here too when tracefs
and the tools are usable.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from dissect.common.findings import Finding
from dissect.ftrace.event import Event
from dissect.ftrace.text import read_ftrace_text, read_qemu_log, read_report_text, read_text
from dissect.ftrace.tracedat import read_trace_dat
from dissect.qemu.trace_events import Catalogue

from tests.conftest import TRACES, require_tool

HERE = TRACES / "real" / "ftrace-text"
TRACEFS = Path("/sys/kernel/tracing")


def binary_events(path: Path) -> list[Event]:
    return list(read_trace_dat(path).events())


def assert_same_events(binary: list[Event], text: list[Event], precision_ns: int) -> None:
    """Same events in the same order; timestamps within the text's rounding."""
    assert len(text) == len(binary)
    half = precision_ns // 2
    for b, t in zip(binary, text):
        assert abs(b.ts_ns - t.ts_ns) <= half, (b, t)
        # text names the system of ftrace's own and sched_* events only (docs/trace-events.md)
        system = b.system if b.system in ("ftrace", "sched") else None
        assert (t.cpu, t.pid, t.comm, t.system, t.event, t.text) == (b.cpu, b.pid, b.comm, system, b.event, b.text)
        # ip: the binary has the address, text only the symbol (kept in `text`, compared above)
        assert {k: v for k, v in t.fields.items() if k != "ip"} == {k: v for k, v in b.fields.items() if k != "ip"}
        if b.event == "print":
            assert t.fields["ip"] is None


@pytest.mark.parametrize("name,reader,precision", [
    ("trace.txt", read_ftrace_text, 1000),
    ("trace-tgid.txt", read_ftrace_text, 1000),
    ("trace-noirq.txt", read_ftrace_text, 1000),
    ("report.txt", read_report_text, 1000),
    ("report-t.txt", read_report_text, 1),
])
def test_committed_text_forms_equal_the_trace_dat(name, reader, precision):
    r = reader(HERE / name)
    out = list(r)
    assert [x for x in out if isinstance(x, Finding)] == []
    evs = [x for x in out if isinstance(x, Event)]
    assert r.precision_ns == precision
    assert_same_events(binary_events(HERE / "markers.dat"), evs, precision)
    if reader is read_report_text:
        assert {e.instance for e in evs} == {"migtrace_f"}


def test_committed_capture_content_is_typed():
    """What capture.py wrote, hand-checked against its MIGRATION_LINES."""
    cat = Catalogue.default()
    evs = list(read_ftrace_text(HERE / "trace.txt").events())
    prints = [e for e in evs if e.event == "print"]
    qs = [cat.parse(e.fields["buf"][:-1]) for e in prints]
    assert all(q is not None and q.matched for q in qs)
    by = {}
    for e, q in zip(prints, qs):
        by.setdefault(q.event, []).append((e, q))
    e, q = by["vfio_save_setup"][0]
    assert (e.comm, e.cpu, q.version_variant, q.args) == (
        "live_migration", 1, "9.2-dec", {"name": "0000:3b:00.1", "data_buffer_size": 1048576})
    assert [q.version_variant for _, q in by["vfio_save_iterate"]] == ["9.2-dec", "8.1-hex"]
    assert [q.args["precopy_init_size"] for _, q in by["vfio_save_iterate"]] == [16384, 16384]
    assert [q.version_variant for _, q in by["vfio_migration_set_state"]] == ["9.2-3arg", "8.0-2arg"]
    assert [q.args["checkpoint"] for _, q in by["vmstate_downtime_checkpoint"]] == [
        "src-downtime-start", "src-vm-stopped", "src-iterable-saved", "src-non-iterable-saved", "src-downtime-end"]
    e, q = by["vmstate_downtime_save"][-1]
    assert len(e.fields["buf"]) == 512 and q.truncated      # 511 bytes + the kernel's "\n"
    assert q.args["type"] == "non-iterable" and "instance_id" not in q.args
    assert by["savevm_state_setup"][0][0].comm == "qemu-system-x86"
    raws = [e for e in evs if e.event == "raw_data"]
    assert [e.fields["id"] for e in raws] == [0x76697274, 0x76697274, 0x76697274, 0x2A]


def test_committed_trace_pipe_with_real_lost_events():
    r = read_ftrace_text(HERE / "trace-pipe-lost.txt")
    out = list(r)
    lost = [x for x in out if isinstance(x, Finding)]
    assert [(f.code, f.context["cpu"], f.context["count"], f.context["line"]) for f in lost] == [
        ("lost_events", 0, 315, 1), ("lost_events", 1, 315, 87)]
    assert r.lost_events == {0: 315, 1: 315}
    evs = [x for x in out if isinstance(x, Event)]
    cat = Catalogue.default()
    pages = [cat.parse(e.fields["buf"][:-1]).args["dirty_pages"] for e in evs]
    # each CPU kept its last 85 markers of 400 (4 KiB buffer): 315..399 twice
    assert pages == list(range(315, 400)) * 2


# -- trace-cmd report of engineer E's real trace.dat files, made now by the real tool --

E_FILES = sorted((TRACES / "real" / "ftrace").glob("*.dat")) + [HERE / "markers.dat"]


@pytest.mark.parametrize("dat", E_FILES, ids=[p.name for p in E_FILES])
@pytest.mark.parametrize("ns", [False, True], ids=["us", "ns"])
def test_trace_cmd_report_of_real_files_equals_the_binary_reader(dat, ns, tmp_path):
    tc = require_tool("trace-cmd")
    out = tmp_path / "report.txt"
    with open(out, "w") as f:
        subprocess.run([tc, "report", *(["-t"] if ns else []), str(dat)], stdout=f, stderr=subprocess.DEVNULL,
                       check=True, timeout=120)
    r = read_report_text(out)
    items = list(r)
    evs = [x for x in items if isinstance(x, Event)]
    assert [x for x in items if isinstance(x, Finding)
            and x.code not in ("lost_events", "text_invalid_utf8")] == []
    # trace-cmd prints the stored bytes: each line that is not UTF-8 (nonutf8*.dat: a comm and
    # markers holding such bytes) has its text_invalid_utf8 finding, no other line has one
    lines = out.read_bytes().split(b"\n")
    bad = [i + 1 for i, ln in enumerate(lines) if ln.decode("utf-8", "replace").encode() != ln]
    assert [x.context["line"] for x in items if isinstance(x, Finding) and x.code == "text_invalid_utf8"] == bad
    assert bool(bad) == dat.name.startswith("nonutf8")
    assert_same_events(binary_events(dat), evs, 1 if ns else 1000)


# -- fresh captures during the test run ----------------------------------------------

def _tracefs_usable() -> str | None:
    if os.geteuid() != 0:
        return "not root: tracefs instances need root"
    if not (TRACEFS / "instances").is_dir():
        r = subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], capture_output=True)
        if r.returncode != 0 or not (TRACEFS / "instances").is_dir():
            return "tracefs is not mountable here"
    return None


@pytest.fixture
def instance():
    why = _tracefs_usable()
    if why:
        pytest.skip(why)
    inst = TRACEFS / "instances" / f"migtrace_test_{os.getpid()}"
    try:
        inst.mkdir()
    except OSError as e:
        pytest.skip(f"cannot create a tracefs instance: {e}")
    yield inst
    if inst.exists():
        inst.rmdir()


LINES = [
    "migrate_set_state new state active\n",
    "vfio_save_block  (0000:3b:00.1) data_size 1048576\n",
    "vfio_save_iterate  (0000:3b:00.1) precopy initial size 0x4000 precopy dirty size 0x0\n",
    "vmstate_downtime_checkpoint src-downtime-start\n",
]


def test_fresh_capture_trace_text_equals_trace_dat_and_report(instance, tmp_path):
    fd = os.open(instance / "trace_marker", os.O_WRONLY)
    for line in LINES:
        os.write(fd, line.encode())
    os.close(fd)
    fd = os.open(instance / "trace_marker_raw", os.O_WRONLY)
    os.write(fd, struct.pack("<I", 0x2A) + b"\x01\x02\x03\x04\x05")
    os.close(fd)
    text = tmp_path / "trace.txt"
    text.write_text((instance / "trace").read_text())
    evs = list(read_ftrace_text(text).events())
    assert [e.fields["buf"] for e in evs[:4]] == LINES
    assert evs[4].fields == {"id": 0x2A, "buf": b"\x01\x02\x03\x04\x05\x00\x00\x00"}
    assert {e.pid for e in evs} == {os.getpid()} and len(evs) == 5
    tc = shutil.which("trace-cmd")
    if tc is None:
        pytest.skip("trace-cmd is not installed: trace.dat side not recorded")
    dat = tmp_path / "fresh.dat"
    # trace-cmd extract removes the instance it read; the fixture copes
    r = subprocess.run([tc, "extract", "-B", instance.name, "-o", str(dat)], capture_output=True, timeout=120)
    if r.returncode != 0:
        pytest.skip(f"trace-cmd extract failed here: {r.stderr.decode(errors='replace')[-200:]}")
    binary = [e for e in binary_events(dat) if e.instance == instance.name]
    assert_same_events(binary, evs, 1000)
    rep = tmp_path / "report.txt"
    with open(rep, "w") as f:
        subprocess.run([tc, "report", "-t", str(dat)], stdout=f, stderr=subprocess.DEVNULL, check=True, timeout=120)
    rev = [e for e in read_report_text(rep).events() if e.instance == instance.name]
    assert_same_events(binary, rev, 1)


def test_fresh_qemu_log_backend_capture(tmp_path):
    """Run QEMU briefly with the log backend and migrate to a file; every line is typed."""
    qemu = require_tool("qemu-system-x86_64")
    log = tmp_path / "qemu.log"
    mig = tmp_path / "mig.bin"
    cmds = f'migrate "exec:cat > {mig}"\n'.encode()
    p = subprocess.Popen([qemu, "-machine", "none", "-nodefaults", "-display", "none", "-monitor", "stdio",
                          "-trace", "migrate_set_state", "-trace", "savevm_*", "-trace", "migration_*",
                          "-D", str(log), "-msg", "timestamp=on"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.stdin.write(cmds)
        p.stdin.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if log.exists() and "new state completed" in log.read_text(errors="replace"):
                break
            time.sleep(0.1)
        p.stdin.write(b"quit\n")
        p.stdin.flush()
        p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    r = read_qemu_log(log)
    out = list(r)
    assert [x for x in out if isinstance(x, Finding)] == []
    evs = [x for x in out if isinstance(x, Event)]
    cat = Catalogue.default()
    states = [cat.parse(e.text).args["new_state"] for e in evs if e.event == "migrate_set_state"]
    assert states == ["setup", "active", "completed"]
    assert r.precision_ns == 1000
    assert all(e.pid and e.ts_ns > 1_600_000_000 * 10**9 for e in evs)   # thread id, wall clock
    assert read_text(log).__class__.__name__ == "QemuLog"


def test_text_trace_to_trace_dat_that_trace_cmd_reads_back(tmp_path):
    """tracefs text → engineer E's writer → real trace-cmd report: the same events."""
    tc = require_tool("trace-cmd")
    from dissect.ftrace.text import events_for_writer
    from dissect.ftrace.writer import write_trace_dat

    evs = list(read_ftrace_text(HERE / "trace.txt").events())
    exec_fmt = read_trace_dat(HERE / "markers.dat").formats[("sched", "sched_process_exec")].text
    out = write_trace_dat(tmp_path / "from-text.dat", events_for_writer(evs), cpus=2,
                          formats={("sched", "sched_process_exec"): exec_fmt})
    rep = tmp_path / "report.txt"
    with open(rep, "w") as f:
        subprocess.run([tc, "report", "-t", str(out)], stdout=f, stderr=subprocess.DEVNULL, check=True, timeout=120)
    back = list(read_report_text(rep).events())
    assert_same_events(evs, back, 1)                       # ns-exact: the µs values written
    assert [e.ts_ns for e in back] == [e.ts_ns for e in evs]


@pytest.mark.parametrize("opts", [["-l"], ["-t", "-l"], ["--ts-diff"], ["-R"]], ids=lambda o: " ".join(o))
def test_other_trace_cmd_report_layouts(opts, tmp_path):
    """Latency format (8-character comm, cpu+flags column), --ts-diff, -R raw fields."""
    tc = require_tool("trace-cmd")
    dat = HERE / "markers.dat"
    rep = tmp_path / "report.txt"
    with open(rep, "w") as f:
        subprocess.run([tc, "report", *opts, str(dat)], stdout=f, stderr=subprocess.DEVNULL, check=True,
                       timeout=120)
    r = read_report_text(rep)
    items = list(r)
    assert [x for x in items if isinstance(x, Finding)] == []
    evs = [x for x in items if isinstance(x, Event)]
    binary = binary_events(dat)
    assert len(evs) == len(binary)
    half = 0 if "-t" in opts else 500
    for b, t in zip(binary, evs):
        assert abs(b.ts_ns - t.ts_ns) <= half
        assert (t.cpu, t.pid, t.event) == (b.cpu, b.pid, b.event)
        assert t.comm == (b.comm[:8] if "-l" in opts else b.comm)
        if b.event == "print":
            assert t.fields["buf"] == b.fields["buf"]
        elif b.event == "raw_data":
            assert t.fields["id"] == b.fields["id"]
            if "-R" not in opts:
                assert t.fields["buf"] == b.fields["buf"]
        else:
            assert t.fields == b.fields


def test_text_dataframe_matches_the_trace_dat_frame():
    t = read_ftrace_text(HERE / "trace.txt").dataframe()
    b = read_trace_dat(HERE / "markers.dat").dataframe()
    assert len(t) == len(b) == 45
    assert set(b.columns) == set(t.columns)
    assert (abs(t["ts_ns"].astype("int64") - b["ts_ns"]) <= 500).all()
    for c in ("cpu", "pid", "comm", "system", "event", "text"):
        assert t[c].astype(object).tolist() == b[c].astype(object).tolist(), c
    assert t["buf"].dropna().tolist() == b["buf"].dropna().tolist()
    assert t["raw_data_buf"].dropna().tolist() == b["raw_data_buf"].dropna().tolist()
    assert t["old_pid"].dropna().tolist() == b["old_pid"].dropna().tolist() == [t["pid"].iloc[-1]]
    assert t["ip"].isna().all()          # no addresses in text
    d = read_ftrace_text(HERE / "trace.txt").dataframe(fields="dict")
    assert d["fields"].iloc[0] == {"ip": None, "buf": "migrate_set_state new state setup\n"}
