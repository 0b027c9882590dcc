# SPDX-License-Identifier: GPL-2.0-only
"""`migtrace record` pieces that need no QEMU: option parsing, URIs, folders, log tails, usage errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from analysis.record.capture import LogTail
from analysis.record.errors import RecordError
from analysis.record.qmp import parse_capability, parse_parameter, typed_parameters
from analysis.record.session import RecordOptions, capture_target, check_options, run_folders
from analysis.record.uri import interface_for, tcp_endpoint
from tests.conftest import run_cli


def test_capabilities_parse():
    assert parse_capability("multifd") == ("multifd", True)
    assert parse_capability("return-path=off") == ("return-path", False)
    assert parse_capability("switchover-ack=on") == ("switchover-ack", True)
    with pytest.raises(RecordError, match="on or off"):
        parse_capability("multifd=maybe")
    with pytest.raises(RecordError, match="NAME=VALUE"):
        parse_parameter("multifd-channels")


def test_parameters_take_qemus_types():
    # types as QEMU 7.2's query-migrate-parameters reports them
    current = {"multifd-channels": 2, "max-bandwidth": 134217728, "downtime-limit": 300,
               "block-incremental": False, "multifd-compression": "none", "tls-creds": ""}
    raw = [("multifd-channels", "4"), ("max-bandwidth", "1G"), ("downtime-limit", "20"),
           ("block-incremental", "on"), ("multifd-compression", "zstd"), ("tls-creds", "")]
    assert typed_parameters(raw, current) == {
        "multifd-channels": 4, "max-bandwidth": 1 << 30, "downtime-limit": 20, "block-incremental": True,
        "multifd-compression": "zstd", "tls-creds": ""}
    assert typed_parameters([("max-bandwidth", "512k")], current) == {"max-bandwidth": 512 * 1024}
    with pytest.raises(RecordError, match="no such migration parameter"):
        typed_parameters([("multifd-chanels", "4")], current)
    with pytest.raises(RecordError, match="expected an integer"):
        typed_parameters([("downtime-limit", "fast")], current)


def test_tcp_endpoints_and_interfaces():
    assert tcp_endpoint("tcp:127.0.0.1:4444") == ("127.0.0.1", 4444)
    assert tcp_endpoint("tcp:[::1]:4444") == ("::1", 4444)
    assert tcp_endpoint("tcp:dst.lab:5555,keep-alive=on") == ("dst.lab", 5555)
    assert tcp_endpoint("tcp:0.0.0.0:0") is None
    assert tcp_endpoint("unix:/run/mig.sock") is None and tcp_endpoint("exec:cat > f") is None
    assert interface_for("127.0.0.1") == interface_for("::1") == interface_for("localhost") == "lo"


def test_capture_target_ports(tmp_path):
    o = RecordOptions(source_qmp="s", output=tmp_path)
    assert capture_target(o, "tcp:127.0.0.1:4444") == ("lo", [4444])
    o = RecordOptions(source_qmp="s", output=tmp_path, ports=[5000, 5000, 5001], interface="eth9")
    assert capture_target(o, "tcp:10.1.2.3:4444") == ("eth9", [5000, 5001])
    assert capture_target(RecordOptions(source_qmp="s", output=tmp_path), None) == (None, [])


def test_run_folders_number_after_existing(tmp_path):
    assert run_folders(RecordOptions(source_qmp="s", output=tmp_path / "one")) == [tmp_path / "one"]
    o = RecordOptions(source_qmp="s", dest_qmp="d", migrate="tcp:h:1", output=tmp_path, runs=2)
    assert run_folders(o) == [tmp_path / "run-001", tmp_path / "run-002"]
    (tmp_path / "run-007").mkdir()
    assert run_folders(o) == [tmp_path / "run-008", tmp_path / "run-009"]


@pytest.mark.parametrize("kw,msg", [
    (dict(runs=3), "needs --dest-qmp and --migrate"),
    (dict(runs=0), "at least 1"),
    (dict(relaunch="qemu ..."), "only matters with --runs"),
    (dict(incoming="tcp:0:1"), "--incoming needs"),
    (dict(qemu_logs=[("b", Path("x.log"))]), "needs --dest-qmp"),
    (dict(ports=[70000]), "not a TCP port"),
])
def test_usage_errors(tmp_path, kw, msg):
    with pytest.raises(RecordError, match=msg) as e:
        check_options(RecordOptions(source_qmp="s", output=tmp_path / "o", **kw))
    assert e.value.exit_code == 2


def test_existing_run_is_not_overwritten(tmp_path):
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(RecordError, match="already holds a run.json"):
        check_options(RecordOptions(source_qmp="s", output=tmp_path))


def test_log_tail_copies_only_the_run(tmp_path):
    log = tmp_path / "qemu.log"
    log.write_bytes(b"before the run\n")
    t = LogTail(log)
    t.start()
    with open(log, "ab") as f:
        f.write(b"123@1.5:migrate_set_state new state active\n")
    assert t.copy_to(tmp_path / "a.log") == 43
    assert (tmp_path / "a.log").read_bytes() == b"123@1.5:migrate_set_state new state active\n"
    # a relaunched QEMU truncates its -D file: everything in it belongs to the run
    log.write_bytes(b"new\n")
    assert t.copy_to(tmp_path / "b.log") == 4
    missing = LogTail(tmp_path / "later.log")
    missing.start()  # a file QEMU has not created yet counts from 0
    (tmp_path / "later.log").write_bytes(b"x\n")
    assert missing.copy_to(tmp_path / "c.log") == 2


def test_cli_missing_socket_is_exit_2(tmp_path):
    r = run_cli("record", "--source-qmp", str(tmp_path / "none.qmp"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"migtrace record: source QMP {tmp_path / 'none.qmp'}: no such socket"


def test_cli_runs_without_destination_is_exit_2(tmp_path):
    r = run_cli("record", "--source-qmp", "x.qmp", "--runs", "3", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "needs --dest-qmp and --migrate" in r.stderr and "Traceback" not in r.stderr


def test_qmp_addresses(tmp_path):
    from analysis.record.qmp import Qmp

    assert Qmp("127.0.0.1:4445", "source")._target() == ("127.0.0.1", 4445)
    assert Qmp("[::1]:4445", "source")._target() == ("::1", 4445)
    assert Qmp("/run/qemu/a.qmp", "source")._target() == "/run/qemu/a.qmp"
    odd = tmp_path / "vm:1"  # an existing socket path with a colon stays a path
    odd.write_text("")
    assert Qmp(str(odd), "source")._target() == str(odd)
