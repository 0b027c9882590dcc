# SPDX-License-Identifier: GPL-2.0-only
"""``migtrace decode --as dev-parts|vfio-stream``: contract objects and exit codes."""
from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.test_parts_golden import WORKED_EXAMPLE, hx
from tests.test_vfio_stream import HDR_EXAMPLE, HDR_TRAILER, JUNK, MAND_UNKNOWN, OPT_UNKNOWN


def decode_json(path: Path, kind: str):
    proc = run_cli("decode", "--as", kind, "--json", str(path))
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    return proc, lines


def test_dev_parts_worked_example(tmp_path):
    f = tmp_path / "parts.bin"
    f.write_bytes(WORKED_EXAMPLE)
    proc, lines = decode_json(f, "dev-parts")
    assert proc.returncode == 0, proc.stderr
    parts = [x for x in lines if x["kind"] == "dev_part"]
    assert len(parts) == 7
    assert parts[0] == {
        "kind": "dev_part", "device": None, "record": None, "admin_tag": None, "index": 0, "offset": 0,
        "part_type": 0x100, "part_type_name": "DEV_FEATURES", "flags": 1, "optional": True,
        "selector": {}, "length": 16,
        "value": {"bits": [0, 1, 5, 15, 16, 17, 18, 22, 23, 32, 33, 35],
                  "names": ["VIRTIO_NET_F_CSUM", "VIRTIO_NET_F_GUEST_CSUM", "VIRTIO_NET_F_MAC",
                            "VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_STATUS", "VIRTIO_NET_F_CTRL_VQ",
                            "VIRTIO_NET_F_CTRL_RX", "VIRTIO_NET_F_MQ", "VIRTIO_NET_F_CTRL_MAC_ADDR",
                            "VIRTIO_F_VERSION_1", "VIRTIO_F_ACCESS_PLATFORM", "VIRTIO_F_IN_ORDER"]}}
    assert [p["part_type_name"] for p in parts] == ["DEV_FEATURES", "DRV_FEATURES", "PCI_COMMON_CFG",
                                                   "DEVICE_STATUS", "VQ_CFG", "VQ_NOTIFY_CFG", "NET_CVQ_CFG"]
    assert parts[2]["selector"] == {"offset": 18} and parts[2]["value"] == {"field": "num_queues", "value": 3}
    assert parts[4]["selector"] == {"vq_index": 0} and parts[4]["offset"] == 0x5B
    assert parts[6]["selector"] == {"class": 1, "command": 1, "class_name": "MAC", "command_name": "MAC_ADDR_SET"}
    assert parts[6]["value"] == {"mac": "52:54:00:12:34:56"}
    assert lines[-1] == {"kind": "summary", "format": "dev-parts", "counts": {"dev_part": 7},
                         "errors": 0, "warnings": 0}


def test_dev_parts_errors_exit_1(tmp_path):
    f = tmp_path / "bad.bin"
    f.write_bytes(WORKED_EXAMPLE + hx("07 01 00 00 00 00 00 00 00 00 00 00 02 00 00 00 | aa bb") + b"\x01\x02\x03")
    proc, lines = decode_json(f, "dev-parts")
    assert proc.returncode == 1
    unknown = [x for x in lines if x["kind"] == "dev_part"][-1]
    assert unknown["part_type"] == 0x107 and unknown["part_type_name"] is None
    assert unknown["selector"] == {"raw": "0000000000000000"} and unknown["value"] == {"raw": "aabb"}
    codes = [(x["code"], x["offset"]) for x in lines if x["kind"] == "finding"]
    assert codes == [("part_type_unknown", 0xB9), ("part_truncated_header", 0xB9 + 18)]
    assert lines[-1]["errors"] == 1 and lines[-1]["warnings"] == 1


def test_vfio_stream_objects(tmp_path):
    f = tmp_path / "stream.bin"
    f.write_bytes(HDR_EXAMPLE + WORKED_EXAMPLE + OPT_UNKNOWN + HDR_TRAILER + WORKED_EXAMPLE + JUNK)
    proc, lines = decode_json(f, "vfio-stream")
    assert proc.returncode == 0, proc.stderr
    recs = [x for x in lines if x["kind"] == "vfio_record"]
    assert recs[0] == {"kind": "vfio_record", "device": None, "index": 0, "offset": 0, "record_size": 0xB9,
                       "flags": 0, "tag": 0, "tag_name": "DEVICE_DATA", "optional": False, "phase": None,
                       "parts": 7, "trailer_bytes": 0, "parts_length": 0xB9, "ts": None}
    assert [(r["offset"], r["tag"], r["tag_name"], r["optional"], r["parts"], r["trailer_bytes"]) for r in recs] == \
        [(0, 0, "DEVICE_DATA", False, 7, 0), (0xC9, 5, None, True, 0, 0), (0xC9 + 20, 0, "DEVICE_DATA", False, 7, 8)]
    parts = [x for x in lines if x["kind"] == "dev_part"]
    assert len(parts) == 14
    assert {p["record"] for p in parts} == {0, 2}
    # part offsets are positions in the device data: record offset + 16 + position in the payload
    assert [p["offset"] for p in parts if p["record"] == 2][:2] == [0xC9 + 20 + 16, 0xC9 + 20 + 16 + 0x20]
    findings = [(x["severity"], x["code"], x.get("record")) for x in lines if x["kind"] == "finding"]
    assert ("warning", "vfio_unknown_optional_tag", 1) in findings
    assert ("warning", "parts_trailer_8", 2) in findings
    assert lines[-1]["counts"]["vfio_record"] == 3 and lines[-1]["errors"] == 0


def test_vfio_stream_mandatory_tag_and_truncation_exit_1(tmp_path):
    f = tmp_path / "stream.bin"
    f.write_bytes(MAND_UNKNOWN + HDR_EXAMPLE + WORKED_EXAMPLE[:40])
    proc, lines = decode_json(f, "vfio-stream")
    assert proc.returncode == 1
    findings = [(x["code"], x["offset"]) for x in lines if x["kind"] == "finding"]
    assert findings == [("vfio_unknown_mandatory_tag", 0), ("vfio_truncated_payload", 18)]
    assert [x["missing"] for x in lines if x.get("code") == "vfio_truncated_payload"] == [0xB9 - 40]


def test_human_output_and_usage_errors(tmp_path):
    f = tmp_path / "stream.bin"
    f.write_bytes(HDR_EXAMPLE + WORKED_EXAMPLE)
    proc = run_cli("decode", "--as", "vfio-stream", str(f))
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0].startswith("vfio_record")
    assert "MAC_ADDR_SET" in proc.stdout
    assert run_cli("decode", "--as", "dev-parts", str(tmp_path / "missing.bin")).returncode == 2
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    proc, lines = decode_json(empty, "dev-parts")
    assert proc.returncode == 0 and lines == [{"kind": "summary", "format": "dev-parts", "counts": {},
                                               "errors": 0, "warnings": 0}]
