# SPDX-License-Identifier: GPL-2.0-only
"""run.json reading (run-manifest.md) and run-folder discovery."""
from __future__ import annotations

import json

import pytest

from analysis.manifest import ManifestError, find_runs, read_manifest

GOOD = {"schema": 1, "run_id": "fw-28.41.1000-rl-003", "kind": "simulated",
        "firmware": {"vendor": "example", "model": "virtio-net VF", "version": "28.41.1000"},
        "kernel": "6.14.2", "qemu": "9.2.0", "driver_precopy_policy": "ratelimited",
        "vm": {"ram_bytes": 17179869184, "vcpus": 8, "queue_pairs": 8}, "link": {"gbit_per_s": 25.0},
        "labels": {"host": "lab-a", "nightly": "2026-11-24"},
        "captures": [{"path": "source.pcapng", "role": "source-stream"},
                     {"path": "source.dat", "role": "source-trace"}],
        "truth": {"precopy_snapshots": 12, "downtime_ms": 183.4}, "operator": "kept"}


def write(folder, obj):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return folder / "run.json"


def test_read_good_manifest(tmp_path):
    m = read_manifest(write(tmp_path / "r", GOOD))
    assert (m.run_id, m.kind, m.firmware_version, m.qemu) == ("fw-28.41.1000-rl-003", "simulated", "28.41.1000", "9.2.0")
    assert [(c.path.name, c.role) for c in m.captures] == [("source.pcapng", "source-stream"),
                                                            ("source.dat", "source-trace")]
    assert m.captures[0].path == tmp_path / "r" / "source.pcapng"
    assert m.extra == {"operator": "kept"}
    assert m.link_bytes_per_s == 25e9 / 8
    assert m.truth["downtime_ms"] == 183.4
    assert read_manifest(tmp_path / "r").run_id == m.run_id  # the folder works too


@pytest.mark.parametrize("change,field", [
    ({"schema": 2}, "schema"), ({"run_id": None}, "run_id"), ({"kind": "fake"}, "kind"),
    ({"captures": "x"}, "captures"), ({"captures": [{"role": "admin"}]}, "captures[0].path"),
    ({"captures": [{"path": "a", "role": "sniffer"}]}, "captures[0].role"),
    ({"driver_precopy_policy": "fast"}, "driver_precopy_policy"), ({"labels": {"a": 1}}, "labels.a"),
    ({"truth": [1]}, "truth"), ({"firmware": "x"}, "firmware"),
])
def test_malformed_names_file_and_field(tmp_path, change, field):
    obj = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = write(tmp_path / "r", obj)
    with pytest.raises(ManifestError) as e:
        read_manifest(path)
    assert e.value.field == field
    assert str(path) in str(e.value) and repr(field) in str(e.value)


def test_bad_json_names_position(tmp_path):
    with pytest.raises(ManifestError) as e:
        read_manifest(write(tmp_path / "r", "{\"schema\": 1,\n oops}"))
    assert e.value.field == "(json)" and "line 2" in str(e.value)


def test_find_runs_in_corpus(tmp_path):
    write(tmp_path / "c" / "a", {**GOOD, "run_id": "a"})
    write(tmp_path / "c" / "sub" / "b", {**GOOD, "run_id": "b"})
    (tmp_path / "c" / ".hidden").mkdir()
    write(tmp_path / "c" / ".hidden" / "x", {**GOOD, "run_id": "hidden"})
    runs = find_runs([tmp_path / "c"])
    assert [r.run_id for r in runs] == ["a", "b"]
    # a run.json path and its folder are the same run, listed once
    assert [r.run_id for r in find_runs([tmp_path / "c" / "a" / "run.json", tmp_path / "c" / "a"])] == ["a"]


def test_folder_without_manifest_is_one_run(tmp_path):
    f = tmp_path / "loose"
    f.mkdir()
    (f / "src.pcap").write_bytes(b"x")
    (f / "notes.md").write_text("n")
    runs = find_runs([f])
    assert len(runs) == 1 and runs[0].kind is None and runs[0].run_id == "loose"
    assert [c.path.name for c in runs[0].captures] == ["src.pcap"]
