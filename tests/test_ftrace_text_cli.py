# SPDX-License-Identifier: GPL-2.0-only
"""`migtrace decode --json` on trace.dat and every text trace form (json-lines.md `event`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TRACES, run_cli

HERE = TRACES / "real" / "ftrace-text"
EVENT_KEYS = {"kind", "source", "ts_ns", "cpu", "pid", "comm", "system", "event", "fields", "text", "qemu"}


def decode(*argv: str) -> tuple[int, list[dict]]:
    p = run_cli("decode", "--json", *argv)
    assert p.stderr == "" or "Traceback" not in p.stderr
    return p.returncode, [json.loads(line) for line in p.stdout.splitlines()]


@pytest.mark.parametrize("name,fmt,source", [
    ("markers.dat", "trace-dat", "trace-dat"),
    ("trace.txt", "ftrace-text", "ftrace-text"),
    ("trace-tgid.txt", "ftrace-text", "ftrace-text"),
    ("trace-noirq.txt", "ftrace-text", "ftrace-text"),
    ("report.txt", "trace-cmd-report", "trace-cmd-report"),
    ("report-t.txt", "trace-cmd-report", "trace-cmd-report"),
])
def test_decode_the_same_capture_in_every_form(name, fmt, source):
    rc, objs = decode(str(HERE / name))
    assert rc == 0
    summary = objs[-1]
    assert summary["kind"] == "summary" and summary["format"] == fmt
    assert summary["counts"] == {"event": 45, "admin_cmd": 1, "admin_result": 1, "finding": 1}
    evs = [o for o in objs if o["kind"] == "event"]
    assert all(set(o) >= EVENT_KEYS and o["source"] == source for o in evs)
    q = [o["qemu"] for o in evs if o["qemu"]]
    assert len(q) == 40
    setup = next(o for o in evs if o["qemu"] and o["qemu"]["event"] == "vfio_save_setup")
    assert setup["qemu"]["args"] == {"name": "0000:3b:00.1", "data_buffer_size": 1048576}
    assert setup["fields"]["buf"] == "vfio_save_setup  (0000:3b:00.1) data buffer size 1048576\n"
    assert (setup["comm"], setup["cpu"], setup["system"], setup["event"]) == ("live_migration", 1, "ftrace", "print")
    # raw_data buf as hex (contract), the admin record joined from its pieces
    raw = [o for o in evs if o["event"] == "raw_data"]
    assert raw[-1]["fields"] == {"id": 42, "buf": "0102030405060708090a0b0c0d0e0f1011000000"}
    cmd = next(o for o in objs if o["kind"] == "admin_cmd")
    res = next(o for o in objs if o["kind"] == "admin_result")
    assert (cmd["tag"], cmd["owner"], cmd["opcode_name"], cmd["group_type_name"]) == (
        7, "0000:3b:00.0", "LIST_QUERY", "SRIOV")
    assert (res["tag"], res["status_name"], res["result"]["opcodes"]) == (7, "OK", [0, 1, 2])
    trunc = [o for o in objs if o["kind"] == "finding"]
    assert [(f["code"], f["severity"], f["event"]) for f in trunc] == [
        ("qemu_event_truncated", "info", "vmstate_downtime_save")]
    if source != "trace-dat":
        assert {o["ts_precision_ns"] for o in evs} == {1 if name == "report-t.txt" else 1000}


def test_decode_trace_pipe_with_lost_events():
    rc, objs = decode(str(HERE / "trace-pipe-lost.txt"))
    assert rc == 0  # lost events are warnings
    lost = [o for o in objs if o["kind"] == "finding"]
    assert [(f["code"], f["cpu"], f["count"], f["line"]) for f in lost] == [
        ("lost_events", 0, 315, 1), ("lost_events", 1, 315, 87)]
    assert objs[-1]["warnings"] == 2 and objs[-1]["counts"]["event"] == 170
    assert objs[1]["qemu"] == {"event": "migration_bitmap_sync_end", "args": {"dirty_pages": 315},
                               "version_variant": None, "truncated": False, "matched": True}


def test_decode_real_qemu_log_with_the_default_catalogue_and_trace_events_all():
    log = TRACES / "real" / "qemu-file.src.log"
    rc, objs = decode(str(log))
    assert rc == 0 and objs[-1]["format"] == "qemu-log"
    evs = [o for o in objs if o["kind"] == "event"]
    first = evs[0]
    assert (first["source"], first["system"], first["cpu"], first["comm"]) == ("qemu-log", "qemu", None, None)
    assert first["qemu"]["event"] == "runstate_set" and first["qemu"]["args"]["new_state_str"] == "running"
    states = [o["qemu"]["args"]["new_state"] for o in evs if o["event"] == "migrate_set_state"]
    assert states[0] == "setup" and states[-1] == "completed"
    if not Path("/usr/share/qemu/trace-events-all").is_file():
        pytest.skip("QEMU's trace-events-all is not installed")
    rc, objs = decode("--trace-events", "/usr/share/qemu/trace-events-all", str(log))
    assert rc == 0
    typed = [o for o in objs if o["kind"] == "event"]
    assert all(o["qemu"] and o["qemu"]["matched"] for o in typed)


def test_decode_text_as_kind_and_bad_lines(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("  a-1    [000] ....   1.000001: tracing_mark_write: vfio_save_cleanup  (d)\n"
                 "CPU:0 [LOST 2 EVENTS]\n"
                 "\x7f garbage\n")
    rc, objs = decode("--as", "ftrace-text", str(p))
    assert rc == 0
    kinds = [o["kind"] for o in objs]
    assert kinds == ["event", "finding", "finding", "summary"]
    assert objs[0]["qemu"]["args"] == {"name": "d"}
    assert objs[0]["fields"]["buf"] == "vfio_save_cleanup  (d)\n"
    assert [(o["code"], o["line"], o["offset"]) for o in objs[1:3]] == [
        ("lost_events", 2, 75), ("text_line_unparsed", 3, 97)]
    p.write_text("cpus=1\n  a-1  [000]   1.000001: print:   tracing_mark_write: vfio_save_block  bad\nnonsense\n")
    rc, objs = decode(str(p))
    assert rc == 0 and objs[-1]["format"] == "trace-cmd-report"
    codes = [o["code"] for o in objs if o["kind"] == "finding"]
    assert codes == ["qemu_event_unmatched"]
    assert objs[0]["qemu"]["matched"] is False and objs[0]["qemu"]["args"] == {}


def test_decode_unreadable_trace_events_file_is_an_error_finding(tmp_path):
    rc, objs = decode("--trace-events", str(tmp_path / "missing"), str(HERE / "trace.txt"))
    assert rc == 1
    assert objs[0]["code"] == "trace_events_unreadable" and objs[0]["severity"] == "error"
    assert objs[-1]["counts"]["event"] == 45


def test_human_output():
    p = run_cli("decode", str(HERE / "report-t.txt"))
    assert p.returncode == 0
    first = p.stdout.splitlines()[0]
    assert first.startswith("event") and "migrate_set_state" in first and "ts_ns=728461064505" in first


def test_decode_truncated_trace_dat_reports_findings_in_order_and_keeps_events(tmp_path):
    src = (TRACES / "real" / "ftrace" / "markers-v6.dat").read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(src[:len(src) - 4196])       # the last CPU pages are cut off
    rc, objs = decode(str(cut))
    assert rc == 1
    codes = [o["code"] for o in objs if o["kind"] == "finding" and o["severity"] == "error"]
    assert codes and all(c.startswith("cpu_data_") for c in codes)
    assert all(o["offset"] is not None for o in objs if o["kind"] == "finding" and o["severity"] == "error")
    # the events of the pages still present are decoded and typed
    assert objs[-1]["counts"]["event"] > 10
    assert any(o["kind"] == "event" and o["qemu"] for o in objs)
    first_event = next(i for i, o in enumerate(objs) if o["kind"] == "event")
    assert all(o["kind"] == "finding" for o in objs[:first_event])   # reader findings come first


def test_decode_e_capture_flags_truncated_qemu_line():
    """E's real capture holds QEMU lines in QEMU's exact formats (none unmatched) and a
    migrate_fd_error line cut at 511 bytes."""
    rc, objs = decode(str(TRACES / "real" / "ftrace" / "markers-v7-zstd.dat"))
    assert rc == 0
    fs = {o["code"]: o for o in objs if o["kind"] == "finding"}
    assert "qemu_event_unmatched" not in fs
    assert fs["qemu_event_truncated"]["event"] == "migrate_fd_error"
    assert fs["qemu_event_truncated"]["args_parsed"] == ["error_desc"]
