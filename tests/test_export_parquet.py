# SPDX-License-Identifier: GPL-2.0-only
"""`migtrace export parquet` (issue 11 §4, §6): every frame of one migration, one typed
Parquet file per frame, integer nanoseconds exact."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import analysis
from analysis.export.parquet import FRAMES
from tests.conftest import TRACES, run_cli
from tests.test_report_exact_ns import odd_pcapng  # noqa: F401  (fixture: odd-ns pcapng)

RUN = TRACES / "sim" / "compare" / "fw-28.40-s1"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("parquet") / "fw"
    proc = run_cli("export", "parquet", str(RUN), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(out / f"{n}.parquet") for n in FRAMES]
    return out, analysis.load(RUN)


def test_one_file_per_frame_with_the_frames_rows_and_columns(exported):
    out, m = exported
    for name in FRAMES:
        t = pq.read_table(out / f"{name}.parquet")
        df = getattr(m, name)
        assert t.num_rows == len(df) and t.column_names == list(df.columns), name
    assert pq.read_table(out / "records.parquet").num_rows == 5  # the run's five records


def test_types_are_kept(exported):
    out, m = exported
    rec = pq.read_table(out / "records.parquet").schema
    assert rec.field("ts_ns").type == pa.int64() and rec.field("record_size_bytes").type == pa.int64()
    assert rec.field("tag_name").type in (pa.string(), pa.large_string())
    assert rec.field("optional").type == pa.bool_()
    ph = pq.read_table(out / "phases.parquet").to_pandas()
    assert list(ph["start_ns"]) == [int(v) for v in m.phases["start_ns"]]


def test_per_row_objects_are_json_text(exported):
    out, m = exported
    ev = pq.read_table(out / "events.parquet").to_pandas()
    blocks = ev[ev["qemu_event"] == "vfio_save_block"]
    want = m.events[m.events["qemu_event"] == "vfio_save_block"]["args"].tolist()
    assert len(blocks) == len(want) > 0
    assert [json.loads(a) for a in blocks["args"]] == [json.loads(json.dumps(a)) for a in want]


def test_odd_nanoseconds_survive(odd_pcapng, tmp_path):  # noqa: F811
    out = tmp_path / "odd"
    assert run_cli("export", "parquet", str(odd_pcapng), "-o", str(out)).returncode in (0, 1)
    m = analysis.load(odd_pcapng)
    got = pq.read_table(out / "records.parquet").column("ts_ns").to_pylist()
    assert got == [int(v) for v in m.records["ts_ns"]] and any(v % 256 for v in got)
    sec = pq.read_table(out / "sections.parquet").column("ts_ns").to_pylist()
    assert sec == [int(v) for v in m.sections["ts_ns"]]
