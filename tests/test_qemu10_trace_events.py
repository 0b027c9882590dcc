# SPDX-License-Identifier: GPL-2.0-only
"""QEMU 10.0.2's own trace-events-all (its committed subset) against migtrace's catalogue.

dissect/qemu/trace-events-qemu-10.0.2-subset is copied verbatim from the file
Debian's qemu-system-common 1:10.0.2+ds-2+deb13u1~bpo12+1 ships; its
``# @section FILE SECTION complete|partial`` lines say which sections of
QEMU's trace-events files are taken whole.  Both ways: every event of the
subset is in the catalogue with QEMU's format for 10.0, and every catalogue
declaration claiming 10.0 is in the subset with that format.  The real
QEMU 10.0.2 logs in traces/real/qemu10/ then parse with those forms.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from dissect.qemu.trace_events import Catalogue, EventDecl, parse_declarations

ROOT = Path(__file__).resolve().parents[1]
SUBSET = ROOT / "dissect" / "qemu" / "trace-events-qemu-10.0.2-subset"
REAL = ROOT / "traces" / "real" / "qemu10"
CAT = Catalogue.default()
FULL_SHA256 = "5f48ed9b00ea0ad9ad69f14f0695c4e19c3d703d065a64062e72728542155c0a"


def _sections() -> dict[tuple[str, str], tuple[str, list[str]]]:
    out: dict[tuple[str, str], tuple[str, list[str]]] = {}
    key = None
    for line in SUBSET.read_text().splitlines():
        m = re.match(r"^# @section (\S+) (\S+) (complete|partial)$", line)
        if m:
            key = (m.group(1), m.group(2))
            out[key] = (m.group(3), [])
        elif line[:1].isalpha():
            assert key is not None, line
            out[key][1].append(line)
    return out


SECTIONS = _sections()


def _decls(kind: str | None = None) -> list[EventDecl]:
    lines = [line for k, lines in SECTIONS.values() if kind in (None, k) for line in lines]
    decls, findings = parse_declarations("\n".join(lines), str(SUBSET))
    assert findings == []
    return decls


def _covers(versions: str | None, release: tuple[int, int] = (10, 0)) -> bool:
    """Does a catalogue range ("A-B", "A-", "-B", "A", "-" or None) include release?"""
    if versions in (None, "-"):
        return True

    def key(v: str) -> tuple[int, int]:
        major, minor = v.split(".")
        return int(major), int(minor)

    if "-" not in versions:
        return key(versions) == release
    lo, hi = versions.split("-")
    return (not lo or key(lo) <= release) and (not hi or release <= key(hi))


def _same(a: EventDecl, b: EventDecl) -> bool:
    return (a.name, a.arg_types, a.arg_names, a.fmt) == (b.name, b.arg_types, b.arg_names, b.fmt)


def test_version_ranges_read_as_the_catalogue_writes_them():
    assert _covers("8.2-10.0") and _covers("10.0") and _covers("10.0-") and _covers(None)
    assert not _covers("-9.2") and not _covers("10.1-") and not _covers("-7.2") and not _covers("9.2")


def test_subset_names_its_source_and_holds_the_sections_of_qemu_10_0_2():
    head = SUBSET.read_text()[:1000]
    assert "qemu-system-common 1:10.0.2+ds-2+deb13u1~bpo12+1" in head
    assert f"sha256 {FULL_SHA256}" in head
    # counts read off QEMU 10.0.2's file (its "# migration.c" of hw/vfio ends at "#iommufd.c")
    counts = {k: (kind, len(lines)) for k, (kind, lines) in SECTIONS.items()}
    assert counts == {
        ("hw/vfio/trace-events", "migration.c"): ("complete", 32),
        ("hw/vfio/trace-events", "common.c"): ("partial", 4),
        ("migration/trace-events", "savevm.c"): ("complete", 52),
        ("migration/trace-events", "migration.c"): ("complete", 42),
        ("migration/trace-events", "multifd.c"): ("complete", 23),
        ("migration/trace-events", "migration-stats"): ("complete", 1),
        ("migration/trace-events", "ram.c"): ("partial", 7),
        ("system/trace-events", "cpus.c"): ("partial", 1),
        ("system/trace-events", "vl.c"): ("partial", 2),
    }
    names = [d.name for d in _decls()]
    assert len(names) == len(set(names)) == 164


def _full_file() -> Path | None:
    for p in (os.environ.get("MIGTRACE_QEMU10_TRACE_EVENTS"), "/opt/qemu10/usr/share/qemu/trace-events-all"):
        if p and Path(p).is_file():
            return Path(p)
    return None


def test_subset_lines_are_verbatim_from_the_package_file():
    full = _full_file()
    if full is None:
        pytest.skip("QEMU 10.0.2's trace-events-all is not unpacked here "
                    "(traces/real/record_qemu10.py unpack, or set MIGTRACE_QEMU10_TRACE_EVENTS)")
    raw = full.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == FULL_SHA256
    lines = raw.decode().splitlines()
    for _, sec in SECTIONS.values():
        for line in sec:
            assert line in lines, line
    # a complete section holds every declaration between its "# file.c" line and the next comment
    start = lines.index("# multifd.c", lines.index("# savevm.c"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("#"))
    whole = [line for line in lines[start + 1:end] if line[:1].isalpha()]
    assert whole == SECTIONS[("migration/trace-events", "multifd.c")][1]


@pytest.mark.parametrize("decl", _decls(), ids=lambda d: d.name)
def test_every_event_of_the_subset_is_in_the_catalogue_with_qemus_10_0_format(decl):
    assert decl.name in CAT
    for_10 = [d for d in CAT.declarations(decl.name) if _covers(d.versions)]
    assert len(for_10) == 1, [(d.variant, d.versions) for d in CAT.declarations(decl.name)]
    assert _same(for_10[0], decl), (for_10[0].declaration, for_10[0].fmt, decl.declaration, decl.fmt)


def test_every_catalogue_declaration_claiming_10_0_is_in_the_subset():
    real = {d.name: d for d in _decls()}
    claiming = [d for d in CAT.declarations() if _covers(d.versions)]
    assert len(claiming) == len(real) == 164
    for d in claiming:
        assert d.name in real, f"{d.name} ({d.versions}) is not in QEMU 10.0.2"
        assert _same(d, real[d.name]), (d.declaration, d.fmt, real[d.name].fmt)


def test_catalogue_forms_outside_10_0_that_the_real_file_refutes():
    # QEMU 10.0.2 still calls it vfio_get_dirty_bitmap; the other three are gone by 10.0.
    assert [d.versions for d in CAT.declarations("vfio_container_query_dirty_bitmap")] == ["10.1-"]
    assert "8.2-10.0" in [d.versions for d in CAT.declarations("vfio_get_dirty_bitmap")]
    for name in ("savevm_state_complete_precopy", "multifd_send", "multifd_recv"):
        assert not any(_covers(d.versions) for d in CAT.declarations(name)), name


def _log_events(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        m = re.match(r"^\d+@\d+\.\d+:([A-Za-z_0-9]+)(.*)$", line)
        if m:
            out.append((m.group(1), m.group(1) + m.group(2)))
    return out


def _real_logs() -> list[Path]:
    logs = sorted(REAL.glob("*.log"))
    if not logs:
        pytest.skip("traces/real/qemu10/ holds no logs")
    return logs


def test_real_qemu10_logs_parse_with_the_10_0_forms():
    parsed = 0
    for log in _real_logs():
        for name, text in _log_events(log):
            if name not in CAT:
                continue
            q = CAT.parse(text)
            assert q is not None and q.matched, (log.name, text)
            assert _covers(q.versions), (log.name, text, q.version_variant, q.versions)
            parsed += 1
    assert parsed > 1000


def test_multifd_trace_counts_equal_qemus_counters():
    """multifd.src.log: per-packet events typed by the catalogue add up to query-migrate's pages."""
    log = REAL / "multifd.src.log"
    if not log.exists():
        pytest.skip("traces/real/qemu10/multifd.src.log absent")
    final = json.loads((REAL / "multifd.src-query-migrate.json").read_text())["ram"]
    events = [CAT.parse(text) for name, text in _log_events(log)
              if name in ("multifd_send_fill", "multifd_send_ram_fill")]
    fills = [q.args for q in events if q.event == "multifd_send_fill"]
    rams = [q.args for q in events if q.event == "multifd_send_ram_fill"]
    assert len(fills) == 87 and len(rams) == 71
    assert sum(1 for a in fills if a["flags"] & 1) == 16        # SYNC packets: 4 syncs x 4 channels
    assert {a["id"] for a in fills} == {0, 1, 2, 3}
    assert sum(a["normal"] for a in rams) == final["normal"] == 628
    assert sum(a["zero"] for a in rams) == final["duplicate"] == 7950
    unfills = [CAT.parse(text) for name, text in _log_events(REAL / "multifd.dst.log")
               if name == "multifd_recv_unfill"]
    assert len(unfills) == 87
    assert sorted((q.args["id"], q.args["packet_num"]) for q in unfills) == \
        sorted((a["id"], a["packet_num"]) for a in fills)


def _debian_7_2_file() -> Path:
    path = Path("/usr/share/qemu/trace-events-all")
    try:
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "qemu-system-common"],
                                 capture_output=True, text=True, timeout=30).stdout
    except OSError:
        version = ""
    if not path.is_file() or not version.startswith("1:7.2"):
        pytest.skip("Debian's QEMU 7.2 (qemu-system-common 1:7.2*) is not installed")
    return path


def test_unannotated_and_7_2_declarations_are_qemu_7_2s_own():
    """The catalogue's claim: unannotated = identical in 7.2 and 10.0.2; ranges ending at 7.2 = 7.2's form."""
    t72 = Catalogue.from_file(_debian_7_2_file())
    checked = 0
    for d in CAT.declarations():
        if d.versions is None or d.versions.endswith("-7.2"):
            assert d.name in t72 and any(_same(d, x) for x in t72.declarations(d.name)), \
                (d.name, d.variant, d.versions)
            checked += 1
    assert checked > 100
