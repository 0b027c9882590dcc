# SPDX-License-Identifier: GPL-2.0-only
"""validate_parts: the DP rules of device-parts.md §7 on hand-written parts.

Each test feeds the parts through both paths (``parts_path``): the scapy
packets and the fast-path tuples must give the same findings.
"""
from __future__ import annotations

import pytest

from dissect.virtio.builders import virtio_net_vf_parts, build_parts
from dissect.virtio.parts import VirtioDevPartList
from dissect.virtio.parts_fast import decode_parts
from dissect.virtio.validate import validate_parts
from tests.test_parts_golden import WORKED_EXAMPLE, hx
from tests.test_parts_paths import parts_path  # noqa: F401

DEV = hx("00 01 01 00 00 00 00 00 00 00 00 00 08 00 00 00 | 00 00 00 00 01 00 00 00")
DRV = hx("01 01 00 00 00 00 00 00 00 00 00 00 08 00 00 00 | 00 00 00 00 01 00 00 00")
NUMQ1 = hx("02 01 00 00 12 00 00 00 00 00 00 00 02 00 00 00 | 01 00")
STATUS = hx("03 01 00 00 00 00 00 00 00 00 00 00 01 00 00 00 | 0f")
VQ0 = hx("04 01 00 00 00 00 00 00 00 00 00 00 20 00 00 00 | 00 01 01 00 01 00 00 00"
         "00 00 00 01 00 00 00 00 00 10 00 01 00 00 00 00 00 20 00 01 00 00 00 00")
NOTIFY0 = hx("05 01 00 00 00 00 00 00 00 00 00 00 08 00 00 00 | 00 00 00 00 00 00 00 00")
MAC = hx("00 02 00 00 01 01 00 00 00 00 00 00 06 00 00 00 | 52 54 00 12 34 56")
GOOD = DEV + DRV + NUMQ1 + STATUS + VQ0 + NOTIFY0 + MAC


def findings_of(path, buf: bytes, **kw):
    if path.name == "scapy":
        parts = VirtioDevPartList(buf).parts
    else:
        parts = decode_parts(buf)[0]
    return [(f.severity, f.code, f.context.get("rule"), f.context.get("index"), f.offset)
            for f in validate_parts(parts, **kw)]


def test_clean_snapshot_has_no_findings(parts_path):
    assert findings_of(parts_path, GOOD, snapshot=True) == []


def test_realistic_snapshot_clean(parts_path):
    assert findings_of(parts_path, build_parts(virtio_net_vf_parts(8)), snapshot=True) == []


def test_worked_example_only_missing_queues(parts_path):
    assert findings_of(parts_path, WORKED_EXAMPLE, snapshot=True) == \
        [("info", "vq_indices_incomplete", "DP-13", None, None)]


CASES = {
    # DP-03 header reserved byte
    "reserved": (hx("03 01 00 07 00 00 00 00 00 00 00 00 01 00 00 00 | 0f"),
                 [("warning", "part_reserved_nonzero", "DP-03", 0, 0)]),
    # DP-04 undefined flag bits (and DP-15 for OPTIONAL on a non-optional part)
    "flags": (hx("03 01 03 00 00 00 00 00 00 00 00 00 01 00 00 00 | 0f"),
              [("warning", "part_flags_unknown", "DP-04", 0, 0),
               ("warning", "part_optional_unexpected", "DP-15", 0, 0)]),
    # DP-05 unknown types
    "unknown": (hx("07 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
                   "01 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
                [("warning", "part_type_unknown", "DP-05", 0, 0),
                 ("warning", "part_type_unknown", "DP-05", 1, 16)]),
    # DP-06 selector on a selector-less part
    "selector": (hx("03 01 00 00 01 00 00 00 00 00 00 00 01 00 00 00 | 0f"),
                 [("warning", "part_selector_nonzero", "DP-06", 0, 0)]),
    # DP-07 PCI common cfg offset / length / reserved
    "pci": (hx("02 01 00 00 13 00 00 00 00 00 00 00 01 00 00 00 | 00"
               "02 01 00 00 12 00 00 00 00 00 00 00 04 00 00 00 | 00 00 00 00"
               "02 01 00 00 14 00 00 00 01 00 00 00 01 00 00 00 | 0f"),
            [("error", "pci_cfg_bad_offset", "DP-07", 0, 0),
             ("error", "pci_cfg_bad_length", "DP-07", 1, 17),
             ("warning", "part_selector_nonzero", "DP-07", 2, 37)]),
    # DP-08 fixed sizes and feature lengths
    "lengths": (hx("00 01 01 00 00 00 00 00 00 00 00 00 04 00 00 00 | 00 00 00 00"
                   "03 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
                   "05 01 00 00 00 00 00 00 00 00 00 00 0a 00 00 00 | 00 00 00 00 00 00 00 00 00 00"),
                [("error", "features_length_bad", "DP-08", 0, 0),
                 ("error", "part_length_short", "DP-08", 1, 20),
                 ("warning", "part_length_long", "DP-08", 2, 36)]),
    # DP-09 vq reserved bytes in selector and value
    "vq_reserved": (hx("04 01 00 00 00 00 01 00 00 00 00 00 20 00 00 00 | 00 01 01 00 01 00 09 00"
                       "00 00 00 01 00 00 00 00 00 10 00 01 00 00 00 00 00 20 00 01 00 00 00 00"
                       "05 01 00 00 00 00 00 00 00 00 00 00 08 00 00 00 | 00 00 00 00 01 00 00 00"),
                    [("warning", "part_selector_nonzero", "DP-09", 0, 0),
                     ("warning", "part_value_reserved_nonzero", "DP-09", 0, 0),
                     ("warning", "part_value_reserved_nonzero", "DP-09", 1, 48)]),
    # DP-10 duplicates
    "dup": (STATUS + STATUS + NOTIFY0 + NOTIFY0 + MAC + MAC,
            [("error", "part_duplicate", "DP-10", 1, 17),
             ("error", "part_duplicate", "DP-10", 3, 58),
             ("error", "part_duplicate", "DP-10", 5, 104)]),
    # DP-11 order, DP-12 device part before common
    "order": (STATUS + DRV + MAC + NOTIFY0,
              [("error", "part_order", "DP-11", 1, 17),
               ("warning", "part_device_before_common", "DP-12", 3, 63)]),
    # DP-15 DEV_FEATURES without OPTIONAL
    "not_optional": (hx("00 01 00 00 00 00 00 00 00 00 00 00 08 00 00 00 | 00 00 00 00 01 00 00 00"),
                     [("warning", "dev_features_not_optional", "DP-15", 0, 0)]),
    # DP-16 unoffered driver feature and missing VERSION_1
    "features": (hx("00 01 01 00 00 00 00 00 00 00 00 00 08 00 00 00 | 00 00 00 00 01 00 00 00"
                    "01 01 00 00 00 00 00 00 00 00 00 00 08 00 00 00 | 01 00 00 00 00 00 00 00"),
                 [("warning", "drv_features_unoffered", "DP-16", 1, 24),
                  ("warning", "drv_features_no_version_1", "DP-16", 1, 24)]),
    # DP-17 abnormal status
    "status": (hx("03 01 00 00 00 00 00 00 00 00 00 00 01 00 00 00 | 8b"),
               [("info", "device_status_abnormal", "DP-17", 0, 0)]),
    # DP-18 net selector, reserved bytes, lengths, MQ range, RSS size
    "net": (hx("00 02 00 00 05 00 00 00 00 00 00 00 00 00 00 00"
               "00 02 00 00 00 00 00 00 00 00 00 01 02 00 00 00 | 01 00"
               "00 02 00 00 04 00 00 00 00 00 00 00 02 00 00 00 | 00 00"
               "00 02 00 00 04 01 00 00 00 00 00 00 11 00 00 00 | 01 00 00 00 02 00 00 00"
               "00 00 00 00 00 00 01 00 00"),
            [("warning", "net_cvq_selector_unknown", "DP-18", 0, 0),
             ("warning", "net_cvq_length", "DP-18", 1, 16),
             ("warning", "part_selector_nonzero", "DP-18", 1, 16),
             ("warning", "net_mq_pairs_range", "DP-18", 2, 34),
             ("warning", "net_rss_table_size", "DP-18", 3, 52)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule(parts_path, name):
    buf, expected = CASES[name]
    assert findings_of(parts_path, buf) == expected


def test_snapshot_rules(parts_path):
    numq3 = hx("02 01 00 00 12 00 00 00 00 00 00 00 02 00 00 00 | 03 00")
    vq4 = VQ0[:4] + b"\x04" + VQ0[5:]
    notify7 = NOTIFY0[:4] + b"\x07" + NOTIFY0[5:]
    buf = DEV + numq3 + VQ0 + vq4 + NOTIFY0 + notify7
    got = findings_of(parts_path, buf, snapshot=True)
    assert got == [("warning", "snapshot_part_missing", "DP-13", None, None),
                   ("warning", "snapshot_part_missing", "DP-13", None, None),
                   ("warning", "vq_notify_without_cfg", "DP-13", 5, 162),
                   ("warning", "vq_index_out_of_range", "DP-13", None, None),
                   ("info", "vq_indices_incomplete", "DP-13", None, None)]
    # not a snapshot: none of these apply
    assert findings_of(parts_path, buf) == []


def test_metadata_size_rule(parts_path):
    assert findings_of(parts_path, GOOD, metadata_size=len(GOOD)) == []
    assert findings_of(parts_path, GOOD, metadata_size=len(GOOD) - 1) == \
        [("warning", "parts_exceed_metadata_size", "DP-19", None, None)]


def test_findings_are_json_ready():
    f = validate_parts(decode_parts(CASES["dup"][0])[0])[0]
    obj = f.to_json()
    assert obj["kind"] == "finding" and obj["code"] == "part_duplicate" and obj["offset"] == 17
    assert obj["rule"] == "DP-10" and obj["part_type"] == 0x103
