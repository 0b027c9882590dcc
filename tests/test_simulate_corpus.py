# SPDX-License-Identifier: GPL-2.0-only
"""The bundled simulated corpus (traces/sim/): complete, small, and exactly
what traces/sim/make_corpus.py writes."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from analysis.manifest import read_manifest
from tests.conftest import TRACES

SIM = TRACES / "sim"


def _make_corpus():
    spec = importlib.util.spec_from_file_location("make_corpus", SIM / "make_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def _committed() -> list[Path]:
    return sorted(p.parent for p in SIM.rglob("run.json"))


def test_every_committed_run_is_a_valid_simulated_manifest() -> None:
    runs = _committed()
    assert runs, "traces/sim holds no runs"
    ids = set()
    for folder in runs:
        m = read_manifest(folder / "run.json")
        assert m.kind == "simulated"
        ids.add(m.run_id)
        for c in m.captures:
            assert c.path.is_file()
    assert len(ids) == len(runs)


def test_committed_runs_are_the_scripts_runs() -> None:
    table = _make_corpus().runs()
    committed = {str(p.relative_to(SIM)) for p in _committed()}
    assert committed <= set(table)


@pytest.mark.parametrize("name", ["compare/fw-28.40-s1", "variants/qemu10"])
def test_regenerating_a_run_gives_identical_bytes(name: str, tmp_path: Path) -> None:
    if not (SIM / name / "run.json").is_file():
        pytest.skip(f"{name} not in the committed corpus")
    assert _make_corpus().main(["--only", name, "--out", str(tmp_path)]) == 0
    mine = SIM / name
    new = tmp_path / name
    assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in new.iterdir())
    for f in mine.iterdir():
        a, b = f.read_bytes(), (new / f.name).read_bytes()
        if f.suffix == ".dat" and a != b and _zstd_tag() not in a[:64]:
            # written with another libzstd: the compressed bytes may differ, the events may not
            assert _events(f) == _events(new / f.name), f.name
            continue
        assert a == b, f.name


def _zstd_tag() -> bytes:
    import zstandard

    return b"zstd\0" + ".".join(str(x) for x in zstandard.ZSTD_VERSION).encode() + b"\0"


def _events(path: Path) -> list[tuple]:
    from dissect.ftrace.tracedat import read_trace_dat

    return [(e.ts_ns, e.cpu, e.pid, e.event, repr(sorted(e.fields.items()))) for e in read_trace_dat(path).events()]


def test_corpus_covers_firmware_by_policy_and_stays_small() -> None:
    runs = _committed()
    combos = set()
    per_fw: dict[str, int] = {}
    for folder in runs:
        m = json.loads((folder / "run.json").read_text())
        combos.add((m["firmware"]["version"], m["driver_precopy_policy"]))
        if m["labels"].get("set") == "compare":
            per_fw[m["firmware"]["version"]] = per_fw.get(m["firmware"]["version"], 0) + 1
    if len(runs) < 10:
        pytest.skip("partial corpus")
    versions = {"28.40.1000", "28.41.1000", "29.0.200"}
    assert {(v, p) for v in versions for p in ("cap128", "ratelimited")} <= combos
    assert set(per_fw) == versions and min(per_fw.values()) >= 4
    total = sum(f.stat().st_size for f in SIM.rglob("*") if f.is_file())
    assert total <= 3_300_000
