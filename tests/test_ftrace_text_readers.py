# SPDX-License-Identifier: GPL-2.0-only
"""Text trace readers on hand-written samples of every text form (trace-dat.md §8, qemu-trace-events.md §1.2)."""
from __future__ import annotations

import io

import pytest

from dissect.common.findings import Finding
from dissect.ftrace import text as T
from dissect.ftrace import text_base
from dissect.ftrace.event import Event
from dissect.ftrace.text import read_ftrace_text, read_qemu_log, read_report_text, read_text, sniff_text_kind

HEADER5 = """\
# tracer: nop
#
# entries-in-buffer/entries-written: 4/6   #P:2
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


def items(reader) -> tuple[list[Event], list[Finding]]:
    out = list(reader)
    return [x for x in out if isinstance(x, Event)], [x for x in out if isinstance(x, Finding)]


def write(tmp_path, name: str, text: str | bytes):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


# -- tracefs trace / trace_pipe ---------------------------------------------------

def test_trace_file_with_5_char_flags(tmp_path):
    line1 = ("           <...>-11773   [000] ...1.  1142.178457: tracing_mark_write: "
             "vfio_save_block  (0000:3b:00.1) data_size 1048576\n")
    p = write(tmp_path, "trace", HEADER5 + line1 +
              "  live_migration-4242    [001] d..2.  1142.178999: sched_process_exec: "
              "filename=/bin/true pid=4242 old_pid=4242\n")
    r = read_ftrace_text(p)
    evs, fs = items(r)
    assert fs == []
    assert evs[0] == Event("ftrace-text", 1142178457000, 0, 11773, "<...>", "ftrace", "print",
                           {"ip": None,
                            "buf": "vfio_save_block  (0000:3b:00.1) data_size 1048576\n"},
                           "tracing_mark_write: vfio_save_block  (0000:3b:00.1) data_size 1048576",
                           len(HEADER5))
    assert evs[1] == Event("ftrace-text", 1142178999000, 1, 4242, "live_migration", "sched", "sched_process_exec",
                           {"filename": "/bin/true", "pid": 4242, "old_pid": 4242}, None,
                           len(HEADER5) + len(line1))
    assert r.header == {"tracer": "nop", "entries_in_buffer": 4, "entries_written": 6, "cpus": 2,
                        "flags_width": 5}
    assert r.precision_ns == 1000 and r.lines == 14


def test_trace_pipe_with_4_char_flags_no_header_and_comm_with_spaces(tmp_path):
    p = write(tmp_path, "pipe",
              "     return path-77    [003] d..1   55.000001: tracing_mark_write: "
              "source_return_path_thread_entry \n"
              "mig/src/send_1-78    [002] ....   55.000002: tracing_mark_write: multifd_send_thread_start 1\n")
    evs, fs = items(read_ftrace_text(p))
    assert fs == []
    assert [(e.comm, e.pid, e.cpu, e.ts_ns, e.fields["buf"]) for e in evs] == [
        ("return path", 77, 3, 55000001000, "source_return_path_thread_entry \n"),
        ("mig/src/send_1", 78, 2, 55000002000, "multifd_send_thread_start 1\n")]


def test_tgid_column_and_no_flags_column(tmp_path):
    p = write(tmp_path, "t",
              " qemu-system-x86-15194   (  15190) [000] ...1.   728.461065: tracing_mark_write: a\n"
              " qemu-system-x86-15195   (-------) [001] ...1.   728.461066: tracing_mark_write: b\n"
              " qemu-system-x86-15194   [000]    728.461067: tracing_mark_write: c\n")
    evs, fs = items(read_ftrace_text(p))
    assert fs == []
    assert [(e.pid, e.cpu, e.ts_ns, e.text) for e in evs] == [
        (15194, 0, 728461065000, "tracing_mark_write: a"),
        (15195, 1, 728461066000, "tracing_mark_write: b"),
        (15194, 0, 728461067000, "tracing_mark_write: c")]


def test_raw_markers_lost_events_and_continuation_lines(tmp_path):
    p = write(tmp_path, "t",
              "CPU:1 [LOST 300 EVENTS]\n"
              "  python3-9715    [001] ...1.   483.336138: # 2a buf: 10 11 12 13\n"
              "  python3-9715    [001] ...1.   483.336139: # 1 buf:\n"
              "  python3-9715    [001] ...1.   483.336140: tracing_mark_write: line one\n"
              "line two\n"
              "CPU:0 [LOST 5 EVENTS]\n"
              "  python3-9715    [000] ...1.   483.336141: tracing_mark_write: after\n")
    r = read_ftrace_text(p)
    out = list(r)
    assert [type(x).__name__ for x in out] == ["Finding", "Event", "Event", "Event", "Finding", "Event"]
    lost = out[0]
    assert (lost.code, lost.severity, lost.offset, lost.context) == (
        "lost_events", "warning", 0, {"line": 1, "cpu": 1, "count": 300})
    assert out[1].fields == {"id": 0x2A, "buf": bytes([0x10, 0x11, 0x12, 0x13])}
    assert out[1].text == "# 2a 10 11 12 13" and out[1].event == "raw_data" and out[1].system == "ftrace"
    assert out[2].fields == {"id": 1, "buf": b""} and out[2].text == "# 1"
    assert out[3].fields["buf"] == "line one\nline two\n"
    assert out[3].text == "tracing_mark_write: line one\nline two"
    assert out[4].context == {"line": 6, "cpu": 0, "count": 5}
    assert r.lost_events == {1: 300, 0: 5}


def test_unparseable_lines_become_findings_with_line_and_byte_offset(tmp_path):
    good = "  a-1    [000] ....   1.000001: tracing_mark_write: ok\n"
    p = write(tmp_path, "t", "garbage here\n" + good + "\n" + "é?? not a line\n" + good)
    evs, fs = items(read_ftrace_text(p))
    assert len(evs) == 2
    assert [(f.code, f.offset, f.context["line"]) for f in fs] == [
        ("text_line_unparsed", 0, 1)]
    # the line after a print event continues its text (tracefs prints embedded newlines so)
    assert evs[0].fields["buf"] == "ok\né?? not a line\n"
    assert evs[1].offset == len(("garbage here\n" + good + "\n" + "é?? not a line\n").encode())


def test_counter_clock_timestamps_and_no_continuation_into_event_lines(tmp_path):
    # trace_clock counter (Linux 6.18): "...1.            2: tracing_mark_write: clk"
    p = write(tmp_path, "t", "  q-9    [001] ...1.  1366.811418: tracing_mark_write: a\n"
                             "  q-9    [001] ...1.            2: tracing_mark_write: clk\n"
                             "  q-9    [001] ...1. : tracing_mark_write: bad stamp\n")
    out = list(read_ftrace_text(p))
    assert [(type(x).__name__, getattr(x, "code", None) or x.fields["buf"]) for x in out] == [
        ("Event", "a\n"), ("Finding", "text_raw_clock"), ("Event", "clk\n"), ("Finding", "text_line_unparsed")]
    assert out[2].ts_ns == 2 and out[1].severity == "info"


def test_sym_offset_option_on_markers(tmp_path):
    p = write(tmp_path, "t", "  q-9    [001] ...1.   3.000004: tracing_mark_write+0x3a/0x2a0: "
                             "vmstate_downtime_save type=iterable idstr=x instance_id=0 downtime=5\n")
    evs, fs = items(read_ftrace_text(p))
    assert fs == [] and (evs[0].event, evs[0].fields) == (
        "print", {"ip": None,
                  "buf": "vmstate_downtime_save type=iterable idstr=x instance_id=0 downtime=5\n"})


def test_function_tracer_sched_switch_and_other_print_symbols(tmp_path):
    p = write(tmp_path, "t",
              "  bash-1  [000] ....  2.000000: do_sys_open <-__x64_sys_openat\n"
              "  bash-1  [000] d..2.  2.000001: sched_switch: prev_comm=bash prev_pid=1 prev_prio=120 "
              "prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120\n"
              "  bash-1  [000] ....  2.000002: my_func: printk text here\n")
    evs, fs = items(read_ftrace_text(p))
    assert fs == []
    # addresses are not in the text: the symbols stay in the rendered text
    assert (evs[0].event, evs[0].fields, evs[0].text) == (
        "function", {"ip": None, "parent_ip": None}, "do_sys_open <-__x64_sys_openat")
    assert evs[1].fields == {"prev_comm": "bash", "prev_pid": 1, "prev_prio": 120, "prev_state": 1,
                             "next_comm": "swapper/0", "next_pid": 0, "next_prio": 120}
    assert evs[1].text is None  # text is for print-like events (json-lines.md)
    # not key=value: an event of that name (or trace_printk from that function) with its text
    assert (evs[2].system, evs[2].event, evs[2].fields, evs[2].text) == (
        None, "my_func", {}, "printk text here")


def test_chunk_boundaries_do_not_split_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(text_base, "CHUNK", 37)
    lines = "".join(f"  a-1    [000] ....   1.{i:06d}: tracing_mark_write: marker {i}\n" for i in range(50))
    p = write(tmp_path, "t", lines)
    evs, fs = items(read_ftrace_text(p))
    assert fs == [] and [e.fields["buf"] for e in evs] == [f"marker {i}\n" for i in range(50)]
    starts = [0]
    for ln in lines.splitlines(True)[:-1]:
        starts.append(starts[-1] + len(ln))
    assert [e.offset for e in evs] == starts


def test_file_object_input():
    data = b"  a-1    [000] ....   1.000001: tracing_mark_write: x"  # no final newline
    evs, _ = items(read_ftrace_text(io.BytesIO(data)))
    assert [e.fields["buf"] for e in evs] == ["x\n"]


# -- trace-cmd report -----------------------------------------------------------

REPORT = """\
cpus=2
                  <...>-8354  [000]   439.574496: print:                tracing_mark_write: hello 2
migtrace_f:          python3-9715  [001]   483.336100: print:                tracing_mark_write: vfio_save_block  (0000:3b:00.1) data_size 1048576
migtrace_f:          python3-9715  [001]   483.336138: raw_data:             # 2a 10 11 12 13
migtrace_f:             true-15238 [000]   728.504079: sched_process_exec:   filename=/bin/true pid=15238 old_pid=15238
"""


def test_report_default_microseconds_with_instances(tmp_path):
    r = read_report_text(write(tmp_path, "r", REPORT))
    evs, fs = items(r)
    assert fs == []
    assert r.header == {"cpus": 2} and r.precision_ns == 1000
    assert evs[0] == Event("trace-cmd-report", 439574496000, 0, 8354, "<...>", "ftrace", "print",
                           {"ip": None, "buf": "hello 2\n"}, "tracing_mark_write: hello 2", 7, None)
    assert (evs[1].instance, evs[1].fields["buf"]) == (
        "migtrace_f", "vfio_save_block  (0000:3b:00.1) data_size 1048576\n")
    assert (evs[2].event, evs[2].fields, evs[2].text) == (
        "raw_data", {"id": 0x2A, "buf": bytes([0x10, 0x11, 0x12, 0x13])}, "# 2a 10 11 12 13")
    assert (evs[3].system, evs[3].event, evs[3].fields) == (
        "sched", "sched_process_exec", {"filename": "/bin/true", "pid": 15238, "old_pid": 15238})


def test_report_nanoseconds_version_line_and_dropped_events(tmp_path):
    r = read_report_text(write(tmp_path, "r", "version = 6\ncpus=8\n"
                               "CPU:7 [204600 EVENTS DROPPED]\n"
                               "  qemu-1  [007]   217.975284123: print:   tracing_mark_write: x\n"
                               "CPU:3 [EVENTS DROPPED]\n"
                               "  qemu-1  [003]   217.975285000: sched_switch:         "
                               "qemu:1 [120] R ==> swapper/3:0 [120]\n"))
    out = list(r)
    assert r.header == {"version": 6, "cpus": 8} and r.precision_ns == 1
    assert [(x.code, x.context["count"]) for x in out if isinstance(x, Finding)] == [
        ("lost_events", 204600), ("lost_events", None)]
    evs = [x for x in out if isinstance(x, Event)]
    assert evs[0].ts_ns == 217975284123
    assert evs[1].fields == {"prev_comm": "qemu", "prev_pid": 1, "prev_prio": 120, "prev_state": 0,
                             "next_comm": "swapper/3", "next_pid": 0, "next_prio": 120}
    assert evs[1].text is None
    assert r.lost_events == {7: 204600}


def test_report_raw_print_and_latency_flags(tmp_path):
    r = read_report_text(write(tmp_path, "r", "cpus=1\n"
                               "  a-5  [000] d..1   1.000001: print:                 "
                               "ip=tracing_mark_write buf=vfio_save_cleanup  (d)\n"))
    evs, fs = items(r)
    assert fs == [] and evs[0].fields == {"ip": None, "buf": "vfio_save_cleanup  (d)\n"}
    assert evs[0].text == "tracing_mark_write: vfio_save_cleanup  (d)"


def test_report_garbage_line(tmp_path):
    evs, fs = items(read_report_text(write(tmp_path, "r", "cpus=1\nwhat is this\n")))
    assert evs == [] and [(f.code, f.offset, f.context["line"]) for f in fs] == [("text_line_unparsed", 7, 2)]


# -- QEMU log backend ------------------------------------------------------------

def test_qemu_log_all_three_prefixes(tmp_path):
    p = write(tmp_path, "log",
              "9962@1795632354.774550:runstate_set current_run_state 6 (prelaunch) new_state 9 (running)\n"
              "9994@1795632355.832619:savevm_state_header \n"
              "2025-07-21T18:43:28.089797Z vfio_save_block  (0000:3b:00.1) data_size 4096\n"
              "savevm_state_setup \n"
              "migrate_set_state new state active\n"
              "qemu-system-x86_64: terminating on signal 15\n")
    r = read_qemu_log(p)
    evs, fs = items(r)
    assert [(e.ts_ns, e.pid, e.system, e.event, e.text) for e in evs] == [
        (1795632354774550000, 9962, "qemu", "runstate_set",
         "runstate_set current_run_state 6 (prelaunch) new_state 9 (running)"),
        (1795632355832619000, 9994, "qemu", "savevm_state_header", "savevm_state_header "),
        (1753123408089797000, None, "qemu", "vfio_save_block", "vfio_save_block  (0000:3b:00.1) data_size 4096"),
        (None, None, "qemu", "savevm_state_setup", "savevm_state_setup "),
        (None, None, "qemu", "migrate_set_state", "migrate_set_state new state active"),
    ]
    assert all(e.source == "qemu-log" and e.cpu is None and e.fields == {} for e in evs)
    assert [(f.code, f.severity, f.context["line"]) for f in fs] == [("text_line_unparsed", "info", 6)]
    assert r.precision_ns == 1000


# -- detection -------------------------------------------------------------------

@pytest.mark.parametrize("head,kind", [
    (HEADER5, "ftrace-text"),
    ("  a-1    [000] ....   1.000001: tracing_mark_write: x\n", "ftrace-text"),
    (REPORT, "trace-cmd-report"),
    ("version = 6\ncpus=8\n", "trace-cmd-report"),
    ("9962@1795632354.774550:savevm_state_setup \n", "qemu-log"),
    ("savevm_state_setup \nmigrate_set_state new state active\n", "qemu-log"),
    ("hello, world\n\x00\x01", None),
])
def test_sniff(head, kind):
    assert sniff_text_kind(head.encode()) == kind


def test_read_text_dispatches(tmp_path):
    assert isinstance(read_text(write(tmp_path, "r", REPORT)), T.ReportText)
    assert isinstance(read_text(write(tmp_path, "q", "1@2.000003:x_y \n"), "qemu-log"), T.QemuLog)
    with pytest.raises(ValueError):
        read_text(write(tmp_path, "z", "?!\n"))


@pytest.mark.parametrize("reader", [read_ftrace_text, read_report_text, read_qemu_log])
def test_binary_input_is_one_error_and_nothing_else(tmp_path, reader):
    p = write(tmp_path, "bin", b"QEVM\x00\x00\x00\x03\nsavevm_state_setup \n")
    out = list(reader(p))
    assert [(f.code, f.severity, f.offset, f.context["line"]) for f in out] == [
        ("text_binary_input", "error", 4, 1)]


def test_unreadable_lines_are_capped_then_counted(tmp_path):
    lines = "".join(f"garbage line {i}\n" for i in range(T.MAX_LINE_FINDINGS + 25))
    out = list(read_report_text(write(tmp_path, "r", "cpus=1\n" + lines)))
    assert all(isinstance(x, Finding) for x in out)
    assert len(out) == T.MAX_LINE_FINDINGS + 1
    last = out[-1]
    assert (last.code, last.context["count"]) == ("text_lines_unparsed", 25)
    assert last.offset == len("cpus=1\n") + len("".join(f"garbage line {i}\n" for i in range(T.MAX_LINE_FINDINGS)))
