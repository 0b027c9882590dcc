# SPDX-License-Identifier: GPL-2.0-only
"""A capture that decodes to nothing says why: TLS, a capture started mid-migration, no migration.

The TLS migration is real (QEMU 10.0.2 with ``tls-creds-psk``, traces/real/qemu10/tls.pcap, recorded
by record_qemu10.py); tshark says independently which connection opened with a ClientHello.
Captures started late and mixed captures are cut and merged by Wireshark's own editcap and mergecap.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dissect.capture.flows import is_tls
from tests.conftest import TRACES, require_tool, run_cli

Q10 = TRACES / "real" / "qemu10"
TLS = Q10 / "tls.pcap"


def decode(path: Path) -> tuple[int, list[dict]]:
    p = run_cli("decode", "--json", str(path))
    assert not p.stderr
    return p.returncode, [json.loads(x) for x in p.stdout.splitlines()]


def findings(objs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for o in objs:
        if o["kind"] == "finding":
            out.setdefault(o["code"], []).append(o)
    return out


def test_is_tls_on_record_headers():
    # RFC 8446 §5.1: ContentType handshake(22), legacy_record_version 0x0301, length, then
    # Handshake.msg_type client_hello(1)
    assert is_tls(bytes.fromhex("160301018a010001"))  # the first bytes of tls.pcap's client
    assert is_tls(bytes.fromhex("16030300a1010000"))
    assert not is_tls(bytes.fromhex("16030300a1020000"))  # a ServerHello does not open a connection
    assert not is_tls(bytes.fromhex("1703030020000000"))  # application data
    assert not is_tls(b"QEVM\x00\x00\x00\x03")
    assert not is_tls(b"GET / HT")
    assert not is_tls(bytes.fromhex("1603"))  # too short to tell


def test_real_tls_migration_is_named_not_silently_empty():
    if not TLS.exists():
        pytest.skip("traces/real/qemu10/tls.pcap absent")
    tshark = require_tool("tshark")
    hello = subprocess.run([tshark, "-r", str(TLS), "-Y", "tls.handshake.type == 1", "-T", "fields",
                            "-e", "tcp.srcport"], capture_output=True, text=True).stdout.split()
    rc, objs = decode(TLS)
    assert rc == 0
    (fl,) = [o for o in objs if o["kind"] == "flow"]
    assert fl["role"] == "other" and hello == [fl["client"].rsplit(":", 1)[1]]
    f = findings(objs)
    (t,) = f["tls_stream"]
    assert (t["severity"], t["flow"], t["c2s_bytes"], t["s2c_bytes"]) == \
        ("warning", 0, fl["c2s_bytes"], fl["s2c_bytes"])
    # QEMU's own count of the stream bytes it sent; TLS records add their overhead on top
    sent = json.loads((Q10 / "tls.src-query-migrate.json").read_text())["ram"]["transferred"]
    assert sent == 1191722 < fl["c2s_bytes"] < sent * 1.05
    (n,) = f["no_migration_stream"]
    assert (n["severity"], n["flows"], n["tls_flows"], n["late_flows"]) == ("warning", 1, 1, 0)
    assert {o["kind"] for o in objs} == {"flow", "finding", "summary"}


def test_run_summary_of_a_tls_migration_keeps_qemus_view_and_says_why_the_stream_is_missing():
    run = Q10 / "runs" / "tls"
    if not run.exists():
        pytest.skip("traces/real/qemu10/runs/tls absent")
    p = run_cli("summary", "--json", str(run))
    assert p.returncode == 0, p.stderr
    objs = [json.loads(x) for x in p.stdout.splitlines()]
    (s,) = [o for o in objs if o["kind"] == "migration_summary"]
    assert s["bytes_main"] is None and s["dirty_syncs"] == 2 and s["qemu_profile"] == "10.x"
    assert [o["capture"] for o in findings(objs)["tls_stream"]] == [0]


def test_capture_started_after_migrate(tmp_path):
    """The first 60 packets (SYN and the stream header among them) dropped by editcap: the flow is
    picked up mid-stream (tests/test_qemu_midstream.py) and not reported as undecodable."""
    editcap = require_tool("editcap")
    late = tmp_path / "late.pcap"
    subprocess.run([editcap, "-F", "pcap", str(Q10 / "multipass.pcap"), str(late), "1-60"], check=True,
                   capture_output=True)
    rc, objs = decode(late)
    assert rc == 0
    (fl,) = [o for o in objs if o["kind"] == "flow"]
    assert fl["role"] == "main" and fl["syn_seen"] is False
    f = findings(objs)
    assert [o["flow"] for o in f["flow_picked_up_midstream"]] == [0]
    assert not {"flow_started_before_capture", "no_migration_stream", "tls_stream"} & set(f)


def test_late_flow_that_is_no_migration(tmp_path):
    """A connection open before the capture that holds no migration record: said, not decoded."""
    editcap = require_tool("editcap")
    late = tmp_path / "late.pcap"
    subprocess.run([editcap, "-F", "pcap", str(TRACES / "real" / "loopback-ipv4.pcap"), str(late), "1-3"],
                   check=True, capture_output=True)
    rc, objs = decode(late)
    assert rc == 0
    (fl,) = [o for o in objs if o["kind"] == "flow"]
    f = findings(objs)
    (x,) = f["flow_started_before_capture"]
    assert (x["severity"], x["flow"], x["c2s_bytes"]) == ("info", 0, fl["c2s_bytes"])
    (n,) = f["no_migration_stream"]
    assert (n["flows"], n["tls_flows"], n["late_flows"]) == (1, 0, 1)


def test_tls_beside_a_decoded_migration_is_info_only(tmp_path):
    mergecap = require_tool("mergecap")
    both = tmp_path / "both.pcap"
    subprocess.run([mergecap, "-F", "pcap", "-w", str(both), str(Q10 / "returnpath.pcap"), str(TLS)], check=True,
                   capture_output=True)
    rc, objs = decode(both)
    assert rc == 0
    f = findings(objs)
    assert [o["severity"] for o in f["tls_stream"]] == ["info"]
    assert "no_migration_stream" not in f
    assert sorted(o["role"] for o in objs if o["kind"] == "flow") == ["main", "other"]
    assert any(o["kind"] == "section" for o in objs)


def test_tcp_capture_without_a_migration():
    rc, objs = decode(TRACES / "real" / "loopback-ipv4.pcap")
    (n,) = findings(objs)["no_migration_stream"]
    assert rc == 0 and (n["severity"], n["flows"], n["tls_flows"], n["late_flows"]) == ("warning", 1, 0, 0)


def test_decoded_migrations_get_none_of_these():
    for name in ("returnpath.pcap", "multifd-zstd.pcap"):
        f = findings(decode(Q10 / name)[1])
        assert not {"tls_stream", "flow_started_before_capture", "no_migration_stream"} & set(f)
