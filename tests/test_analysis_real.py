# SPDX-License-Identifier: GPL-2.0-only
"""Real QEMU 7.2 captures (traces/real/): the RAM-side analysis against QEMU's own `info migrate`."""
from __future__ import annotations

import pytest

import analysis
from analysis import metrics as M
from tests.conftest import ROOT

REAL = ROOT / "traces" / "real"
RUNS = ["qemu-tcp-returnpath", "qemu-tcp-multifd"]


def _load(name: str, with_pcap: bool = True):
    files = [REAL / f"{name}.src.log", REAL / f"{name}.src-info-migrate.txt", REAL / f"{name}.dst.log"]
    if with_pcap:
        files.append(REAL / f"{name}.pcap")
    return analysis.load(*files)


@pytest.mark.parametrize("name", RUNS)
def test_trace_side_matches_info_migrate(name):
    m = _load(name, with_pcap=False)
    st = m.qemu_stats["source"]
    mig = analysis.summary_objects(m)[0]
    # dirty sync count = migration_bitmap_sync_end events (qemu-trace-events.md §6)
    assert mig["dirty_syncs"] == st["dirty_sync_count"] == 4
    assert (mig["precopy_iterations"], mig["precopy_iterations_method"]) == (3, "trace")
    assert mig["qemu_profile"] == "7.2"
    assert mig["downtime_qemu_ms"] == st["downtime_ms"]
    # QEMU's trace fallback (finish-migrate → completed) agrees with info migrate to its 1 ms resolution
    m.qemu_stats.pop("source")
    fallback, method = M.downtime_qemu(m)
    assert "fallback" in method and abs(fallback - st["downtime_ms"]) < 1.0
    # the destination log is recognised as the destination side
    assert {c.side for c in m.captures if c.kind == "qemu-log"} == {"source", "destination"}


@pytest.mark.parametrize("name", RUNS)
def test_stream_side_matches_info_migrate(name):
    m = _load(name)
    if not len(m.sections):
        pytest.skip("the migration-capture emitter (analysis.emit.migration) is not in this tree yet")
    st = m.qemu_stats["source"]
    mig = analysis.summary_objects(m)[0]
    assert (mig["ram_zero_pages"], mig["ram_normal_pages"]) == (st["duplicate_pages"], st["normal_pages"])
    assert not [f for f in m.findings if f["code"] == "qemu_counter_mismatch"]
    # HMP prints kbytes (rounded down): RAM section bytes + multifd packet bytes agree to 1 KiB
    assert 0 <= mig["ram_transferred_bytes"] - st["transferred_bytes"] < 1024
    if name.endswith("multifd"):
        assert 0 <= mig["bytes_multifd"] - 64 * 2 - st["multifd_bytes"] < 1024
    # wire downtime: within QEMU's 1 ms resolution plus the capture's µs timestamps
    assert mig["downtime_wire_ms"] == pytest.approx(st["downtime_ms"], abs=1.0)


def test_file_stream_counters_match_info_migrate():
    """The `exec:cat` stream has no timestamps: counts and bytes still match QEMU's counters."""
    m = analysis.load(REAL / "qemu-file.mig", REAL / "qemu-file.src-info-migrate.txt")
    st = m.qemu_stats["source"]
    mig = analysis.summary_objects(m)[0]
    assert (mig["ram_zero_pages"], mig["ram_normal_pages"]) == (st["duplicate_pages"], st["normal_pages"])
    assert 0 <= mig["ram_transferred_bytes"] - st["transferred_bytes"] < 1024
    assert mig["downtime_wire_ms"] is None  # no times in a file stream
    # one RAM PART per iterate round; the log of the same run counts the same rounds
    log = analysis.load(REAL / "qemu-file.src.log")
    assert mig["qemu_iterate_sections"] == analysis.summary_objects(log)[0]["qemu_iterate_sections"] == 7
    # pre-copy passes as QEMU counts them: info migrate's dirty sync count 4, less the stop-copy sync
    assert (mig["precopy_iterations"], mig["precopy_iterations_method"], mig["dirty_syncs"]) == (3, "qmp", 4)


@pytest.mark.parametrize("name,kind", [("qemu-tcp-returnpath.src.log", "qemu-log"),
                                       ("ftrace/markers-v7-zstd.dat", "trace-dat")])
def test_reader_fallback_equals_the_trace_emitter(name, kind):
    """analysis/load_trace.py (used when analysis.emit.trace is absent) types the same QEMU events."""
    from analysis.load import iter_units
    from analysis.load_trace import iter_trace_units

    def typed(units):
        return [(u["ts_ns"], (u.get("qemu") or {}).get("event"), (u.get("qemu") or {}).get("args"))
                for u in units if u["kind"] == "event"]
    fallback = typed(iter_trace_units(REAL / name, kind))
    emitted = typed(iter_units(REAL / name, kind))
    assert fallback == emitted and len(fallback) > 10
