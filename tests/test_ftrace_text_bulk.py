# SPDX-License-Identifier: GPL-2.0-only
"""The bulk DataFrame path of the text readers equals the per-line path (trace-dat.md §8, qemu-trace-events.md §1.2).

One fixture, ``path``, runs every test here through both
``reader.dataframe(bulk=False)`` (a frame of the per-line ``Event`` s) and
``reader.dataframe(bulk=True)`` (``dissect.ftrace.text_bulk``); small chunk
sizes make the bulk path cut files into bulk pieces and per-line pieces at
every position.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dissect.ftrace import text_base as T  # chunk sizes live with the chunked input
from dissect.ftrace import text_scan
from dissect.ftrace.text import read_ftrace_text, read_qemu_log, read_report_text, read_text

from tests.conftest import TRACES

COMMON_T = "  live_migration-4242    [001] ...1.  1142.{:06d}: tracing_mark_write: vfio_save_block  (0000:3b:00.1) data_size {}\n"
COMMON_R = "  live_migration-4242  [001]  1142.{:06d}: print:                tracing_mark_write: savevm_state_iterate {}\n"
COMMON_Q = "4242@1795632355.{:06d}:vfio_save_block  (0000:3b:00.1) data_size {}\n"

# every layout the per-line tests cover, wrapped in common lines
SAMPLES = {
    "trace-5-flags": ("ftrace-text", COMMON_T, (
        "# tracer: nop\n#\n# entries-in-buffer/entries-written: 4/6   #P:2\n"
        "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
        "           <...>-11773   [000] ...1.  1142.178457: tracing_mark_write: vfio_save_block  (0000:3b:00.1) data_size 1048576\n"
        "  live_migration-4242    [001] d..2.  1142.178999: sched_process_exec: filename=/bin/true pid=4242 old_pid=4242\n")),
    "pipe-4-flags-spaces": ("ftrace-text", COMMON_T, (
        "     return path-77    [003] d..1   55.000001: tracing_mark_write: source_return_path_thread_entry \n"
        "mig/src/send_1-78    [002] ....   55.000002: tracing_mark_write: multifd_send_thread_start 1\n")),
    "tgid-no-flags": ("ftrace-text", COMMON_T, (
        " qemu-system-x86-15194   (  15190) [000] ...1.   728.461065: tracing_mark_write: a\n"
        " qemu-system-x86-15195   (-------) [001] ...1.   728.461066: tracing_mark_write: b\n"
        " qemu-system-x86-15194   [000]    728.461067: tracing_mark_write: c\n")),
    "raw-lost-continuation": ("ftrace-text", COMMON_T, (
        "CPU:1 [LOST 300 EVENTS]\n"
        "  python3-9715    [001] ...1.   483.336138: # 2a buf: 10 11 12 13\n"
        "  python3-9715    [001] ...1.   483.336139: # 1 buf:\n"
        "  python3-9715    [001] ...1.   483.336140: tracing_mark_write: line one\n"
        "line two\n"
        "CPU:0 [LOST 5 EVENTS]\n")),
    "garbage-clock-symoff": ("ftrace-text", COMMON_T, (
        "garbage here\n\n"
        "  q-9    [001] ...1.            2: tracing_mark_write: clk\n"
        "  q-9    [001] ...1. : tracing_mark_write: bad stamp\n"
        "  q-9    [001] ...1.   3.000004: tracing_mark_write+0x3a/0x2a0: vmstate_downtime_save type=iterable\n"
        "  bash-1  [000] ....  2.000000: do_sys_open <-__x64_sys_openat\n"
        "  bash-1  [000] d..2.  2.000001: sched_switch: prev_comm=bash prev_pid=1 prev_prio=120 "
        "prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120\n"
        "  bash-1  [000] ....  2.000002: my_func: printk text here\n"
        "  bash-1  [000] ....  2.000003: tracing_mark_write: \u00e9t\u00e9\n")),
    "report-instances": ("trace-cmd-report", COMMON_R, (
        "cpus=2\n"
        "                  <...>-8354  [000]   439.574496: print:                tracing_mark_write: hello 2\n"
        "migtrace_f:          python3-9715  [001]   483.336100: print:                tracing_mark_write: vfio x\n"
        "migtrace_f:          python3-9715  [001]   483.336138: raw_data:             # 2a 10 11 12 13\n"
        "migtrace_f:             true-15238 [000]   728.504079: sched_process_exec:   filename=/bin/true pid=15238 old_pid=15238\n")),
    "report-t-dropped": ("trace-cmd-report", COMMON_R.replace("{:06d}", "{:09d}"), (
        "version = 6\ncpus=8\nCPU:7 [204600 EVENTS DROPPED]\n"
        "  qemu-1  [007]   217.975284123: print:   tracing_mark_write: x\n"
        "CPU:3 [EVENTS DROPPED]\n"
        "  qemu-1  [003]   217.975285000: sched_switch:         qemu:1 [120] R ==> swapper/3:0 [120]\n"
        "  qemu-1  [003]   217.975285001: print:   tracing_mark_write: two\nlines\n")),
    "report-raw-garbage": ("trace-cmd-report", COMMON_R, (
        "  a-5  [000] d..1   1.000001: print:                 ip=tracing_mark_write buf=vfio_save_cleanup  (d)\n"
        "  a-5  [000]   1.000002: print:                 no colon space\n"
        "what is this\n")),
    "qemu-prefixes": ("qemu-log", COMMON_Q, (
        "9962@1795632354.774550:runstate_set current_run_state 6 (prelaunch) new_state 9 (running)\n"
        "9994@1795632355.832619:savevm_state_header \n"
        "2025-07-21T18:43:28.089797Z vfio_save_block  (0000:3b:00.1) data_size 4096\n"
        "savevm_state_setup \n"
        "migrate_set_state new state active\n"
        "qemu-system-x86_64: terminating on signal 15\n")),
}
REAL = sorted(TRACES.glob("real/ftrace-text/*.txt")) + sorted(TRACES.glob("real/*.log"))


@pytest.fixture(params=["lines", "bulk"])
def path(request):
    """How a reader becomes a frame: ``frame(reader)`` (and the name, for messages)."""
    bulk = request.param == "bulk"

    def frame(reader, fields: str = "columns"):
        return reader.dataframe(fields, bulk=bulk)
    frame.name = request.param  # type: ignore[attr-defined]
    return frame


def sample_file(tmp_path: Path, name: str, n: int = 40) -> tuple[Path, str]:
    kind, common, body = SAMPLES[name]
    head = "".join(common.format(i, i * 4096) for i in range(n))
    tail = "".join(common.format(500 + i, i) for i in range(n))
    p = tmp_path / name
    # the odd lines go in the middle and at the start (the header position)
    p.write_bytes((body + head + body + tail).encode())
    return p, kind


def findings(r) -> list[dict]:
    return [f.to_json() for f in r.findings]


@pytest.mark.parametrize("chunk", [1 << 22, 997, 211])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_layout_same_frame_both_paths(tmp_path, monkeypatch, name, chunk):
    monkeypatch.setattr(T, "CHUNK", chunk)
    monkeypatch.setattr(T, "BULK_MIN", max(chunk // 8, 64))
    p, kind = sample_file(tmp_path, name)
    a, b = read_text(p, kind), read_text(p, kind)
    for fields in ("columns", "dict"):
        a, b = read_text(p, kind), read_text(p, kind)
        pd.testing.assert_frame_equal(a.dataframe(fields, bulk=False), b.dataframe(fields, bulk=True))
        assert findings(a) == findings(b)
        assert (a.lines, a.lost_events, a.header) == (b.lines, b.lost_events, b.header)


@pytest.mark.parametrize("chunk", [1 << 22, 1500, 300])
@pytest.mark.parametrize("real", REAL, ids=[p.name for p in REAL])
def test_every_real_capture_same_frame_both_paths(monkeypatch, real, chunk):
    monkeypatch.setattr(T, "CHUNK", chunk)
    monkeypatch.setattr(T, "BULK_MIN", max(chunk // 8, 64))
    a, b = read_text(real), read_text(real)
    pd.testing.assert_frame_equal(a.dataframe(bulk=False), b.dataframe(bulk=True))
    assert findings(a) == findings(b)
    assert (a.lines, a.lost_events, a.header, a.precision_ns) == (b.lines, b.lost_events, b.header, b.precision_ns)


def test_bulk_path_is_taken_and_falls_back_around_odd_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(T, "CHUNK", 4096)
    monkeypatch.setattr(T, "BULK_MIN", 512)
    p, _ = sample_file(tmp_path, "raw-lost-continuation", 200)
    r = read_ftrace_text(p)
    r._blocks_out = True
    out = list(r)
    in_bulk = sum(x.n for x in out if isinstance(x, text_scan.Block))
    assert 300 < in_bulk < 400 and r.lines == 2 * 6 + 400
    # the continuation after the block's neighbour still joins its marker
    df = read_ftrace_text(p).dataframe()
    assert (df["buf"] == "line one\nline two\n").sum() == 2
    assert df["raw_data_buf"].dropna().tolist() == [bytes([0x10, 0x11, 0x12, 0x13]), b""] * 2


def test_values_through_both_paths(tmp_path, path):
    p, _ = sample_file(tmp_path, "tgid-no-flags", 3)
    df = path(read_ftrace_text(p))
    assert df[["pid", "cpu", "ts_ns", "text"]].iloc[:3].values.tolist() == [
        [15194, 0, 728461065000, "tracing_mark_write: a"],
        [15195, 1, 728461066000, "tracing_mark_write: b"],
        [15194, 0, 728461067000, "tracing_mark_write: c"]]
    assert df["comm"].iloc[3] == "live_migration" and df["buf"].iloc[4] == "vfio_save_block  (0000:3b:00.1) data_size 4096\n"
    assert df["ts_ns"].iloc[5] == 1142_000_002_000 and len(df) == 2 * 3 + 6


def test_report_t_and_qemu_values_through_both_paths(tmp_path, path):
    p, _ = sample_file(tmp_path, "report-t-dropped", 2)
    r = read_report_text(p)
    df = path(r)
    assert df["ts_ns"].tolist()[:3] == [217975284123, 217975285000, 217975285001]
    assert df["buf"].iloc[2] == "two\nlines\n" and df["prev_state"].iloc[1] == 0
    assert df["ts_ns"].iloc[3] == 1142_000_000_000 and df["buf"].iloc[4] == "savevm_state_iterate 4096\n"
    assert r.lost_events == {7: 204600 * 2} and r.precision_ns == 1
    q = read_qemu_log(sample_file(tmp_path, "qemu-prefixes", 2)[0])
    df = path(q)
    assert df[["ts_ns", "pid", "event"]].iloc[5].tolist() == [1795632355000000000, 4242, "vfio_save_block"]
    assert df["text"].iloc[6] == "vfio_save_block  (0000:3b:00.1) data_size 4096"
    assert pd.isna(df["cpu"]).all() and df["pid"].iloc[3] is pd.NA
    assert [f.code for f in q.findings] == ["text_line_unparsed"] * 2


def test_numbers_beyond_int64_fall_back_to_the_per_line_code(tmp_path):
    # a 10-digit boot time with ns and a 20-digit pid: the bulk columns are int64, so these
    # pieces go line by line (no OverflowError, same events as the iterator)
    p = tmp_path / "r"
    p.write_text("".join(f"  a-5  [000]  9300000000.{i:09d}: print:   tracing_mark_write: x{i}\n"
                         for i in range(5)))
    q = tmp_path / "t"
    q.write_text("".join(f"  a-{10 ** 19 + i}  [000] ....  1.{i:06d}: tracing_mark_write: y\n" for i in range(5)))
    r = read_report_text(p)
    assert [e.ts_ns for e in r] == [9_300_000_000_000_000_000 + i for i in range(5)]
    t = read_ftrace_text(q)
    assert [e.pid for e in t] == [10 ** 19 + i for i in range(5)]


@pytest.mark.parametrize("values", [
    ["sshd", None, "bash", "sshd", "a"],  # a short set: its dtype comes from the cache
    [f"comm-{i:04d}" for i in range(300, 0, -1)] + [None],  # more categories than the cache keeps
    ["x" * 9000, "y"],  # longer than the cache keeps
    [None, None],
])
def test_category_column_is_pandas_own_categorical(values):
    from dissect.ftrace.text_bulk import category_of

    want = pd.Series(values, dtype="str").astype("category")
    for _ in range(2):  # the second call of a short set takes the cached dtype
        got = pd.Series(category_of(values))
        pd.testing.assert_series_equal(got, want)
        assert list(got.cat.categories) == sorted(v for v in set(values) if v is not None)
