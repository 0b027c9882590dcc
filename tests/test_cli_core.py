# SPDX-License-Identifier: GPL-2.0-only
"""Detection, the writers' bytes and the decode command's framing."""
from __future__ import annotations

import io
import json

import pytest

from analysis.cli.detect import UnknownFormat, detect, pcap_linktypes
from dissect.capture.writer import PcapngWriter, PcapWriter
from dissect.common import DecodeError, Finding, worst
from tests.conftest import run_cli


@pytest.mark.parametrize("head,kind", [
    (b"\xd4\xc3\xb2\xa1" + b"\0" * 20, "pcap"),
    (b"\xa1\xb2\xc3\xd4" + b"\0" * 20, "pcap"),
    (b"\x4d\x3c\xb2\xa1" + b"\0" * 20, "pcap"),
    (b"\xa1\xb2\x3c\x4d" + b"\0" * 20, "pcap"),
    (b"\x0a\x0d\x0d\x0a" + b"\0" * 20, "pcapng"),
    (b"QEVM\x00\x00\x00\x03", "qemu-stream"),
    (b"\x17\x08\x44tracing6\0", "trace-dat"),
    (b"cpus=2\n          <...>-1234  [001] 12.345678: print:                0: hello\n", "trace-cmd-report"),
    (b"# tracer: nop\n#\n", "ftrace-text"),
    (b"1234@1700000000.123456:vfio_save_setup  0000:00:05.0 data buffer size 0x100000\n", "qemu-log"),
])
def test_detect_by_content(tmp, head, kind):
    p = tmp / "capture.bin"
    p.write_bytes(head)
    assert detect(p) == kind


def test_detect_unknown_lists_what_was_tried(tmp):
    p = tmp / "x.bin"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnknownFormat, match="tried pcap, pcapng"):
        detect(p)


def test_pcap_writer_bytes_from_the_savefile_spec():
    buf = io.BytesIO()
    w = PcapWriter(buf, 147, snaplen=65535)
    w.write(1_700_000_000_123_456_789, b"\x01\x02\x03")
    assert buf.getvalue() == bytes.fromhex(
        "4d3cb2a1" "0200" "0400" "00000000" "00000000" "ffff0000" "93000000"
        "00f15365" "15cd5b07" "03000000" "03000000" "010203")


def test_pcapng_writer_blocks_and_linktypes(tmp):
    p = tmp / "a.pcapng"
    with open(p, "wb") as f:
        w = PcapngWriter(f)
        assert w.add_interface(1) == 0
        assert w.add_interface(147, tsresol=6) == 1
        w.write(2_000_000_123, b"\xaa" * 5, interface=1)
    data = p.read_bytes()
    # SHB: type, total 28, byte-order magic, 1.0, section length -1, total again
    assert data[:28] == bytes.fromhex("0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000")
    epb = data[-(12 + 20 + 8):]
    assert epb[:8] == bytes.fromhex("0600000028000000")
    # ts in µs units (tsresol 6): 2_000_000 → high 0, low 0x1e8480
    assert epb[8:28] == bytes.fromhex("01000000" "00000000" "80841e00" "05000000" "05000000")
    assert epb[28:36] == b"\xaa" * 5 + b"\0\0\0"
    assert pcap_linktypes(p) == [1, 147]


def test_findings_are_data():
    f = Finding("error", "truncated_record", "need 8 more bytes", 40, {"device": "d"})
    assert f.to_json() == {"kind": "finding", "severity": "error", "code": "truncated_record",
                           "message": "need 8 more bytes", "offset": 40, "device": "d"}
    assert f.shifted(100).offset == 140
    assert worst([Finding("info", "a", ""), f]) == "error"
    assert worst([]) is None
    assert DecodeError(f).finding is f


def test_decode_missing_file_is_usage_error():
    proc = run_cli("decode", "/nonexistent/capture.pcap")
    assert proc.returncode == 2
    assert "no such file" in proc.stderr


def test_decode_unknown_format_is_usage_error(tmp):
    p = tmp / "junk.bin"
    p.write_bytes(bytes(range(256)) * 4)
    proc = run_cli("decode", str(p))
    assert proc.returncode == 2
    assert "tried pcap" in proc.stderr and "Traceback" not in proc.stderr


def test_main_reuses_one_parser_without_carrying_state(tmp, capsys):
    # main() keeps one parser per process: a second call must not see the first call's options,
    # and an append option's default list must stay empty
    from analysis.cli import main as cli_main

    assert cli_main._parser() is cli_main._parser()
    a = cli_main._parser().parse_args(["compare", "c1", "--baseline", "1", "--threshold", "downtime_ms=5%"])
    b = cli_main._parser().parse_args(["compare", "c2", "--baseline", "1"])
    assert a.threshold == ["downtime_ms=5%"] and b.threshold == [] and b.corpus == ["c2"]
    p = tmp / "capture.log"
    p.write_bytes(b"1234@1700000000.123456:vfio_save_setup  0000:00:05.0 data buffer size 0x100000\n")
    assert cli_main.main(["decode", "--json", str(p)]) == 0
    first = capsys.readouterr().out.splitlines()
    assert json.loads(first[0])["kind"] == "event"
    assert cli_main.main(["decode", str(p)]) == 0
    second = capsys.readouterr().out
    assert second and not second.lstrip().startswith("{")  # text lines: --json did not stick
