# SPDX-License-Identifier: GPL-2.0-only
"""Names from one table (issue 13 §3): each enum is declared once in the code, and the
tables the layers, decoders, simulator and docs use are that declaration.

- The code's tables equal the spec's tables, parsed from shared/spec (an independent
  source: the markdown the code was written from; skipped when the folder is absent),
  and hand-written vectors of a few values that need no spec.
- Tables derived from another (QEMU stream names from the constants, the simulator's
  name -> value lookups) hold the same pairs as their source.
- docs/admin.md's opcode table names each opcode as :data:`OPCODES` does.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from dissect.qemu import wire as W
from dissect.virtio import admin as A
from dissect.virtio import names as N
from tests.conftest import ROOT


def spec_dir() -> Path | None:
    env = os.environ.get("MIGTRACE_SPEC")
    for d in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "spec"]:
        if d.is_dir():
            return d
    return None


def spec_text(name: str) -> str:
    d = spec_dir()
    if d is None or not (d / name).is_file():
        pytest.skip(f"shared/spec/{name} not found beside the repository (or MIGTRACE_SPEC)")
    return (d / name).read_text(encoding="utf-8")


_VAL = r"`?(0x[0-9a-fA-F]+|\d+)`?(?: \(0x[0-9a-fA-F]+\))?"


def spec_rows(text: str, prefix: str, exclude: str | None = None) -> dict[int, str]:
    """``{value: name without prefix}`` of the markdown rows ``| PREFIX_NAME | value |``
    or ``| value | PREFIX_NAME |`` (names and values possibly in backticks)."""
    name = rf"`?{re.escape(prefix)}([A-Z0-9_]+)`?"
    out: dict[int, str] = {}
    for line in text.splitlines():
        m = re.match(rf"^\|\s*{name}\s*\|\s*{_VAL}\s*\|", line)
        if m:
            n, v = m.group(1), m.group(2)
        else:
            m = re.match(rf"^\|\s*{_VAL}\s*\|\s*{name}\s*\|", line)
            if not m:
                continue
            v, n = m.group(1), m.group(2)
        if exclude and n.startswith(exclude):
            continue
        out[int(v, 0)] = n
    return out


# --- QEMU migration stream (qemu-migration-stream.md §4, §8, §10.3, §11.1, §13) ---------

def test_qemu_stream_tables_equal_the_spec() -> None:
    text = spec_text("qemu-migration-stream.md")
    rec = spec_rows(text, "QEMU_VM_")
    assert {v: n.removeprefix("SECTION_") if v in (1, 2, 3, 4) else n for v, n in rec.items()} == W.RECORD_TYPES
    assert spec_rows(text, "MIG_CMD_") == W.COMMANDS
    assert spec_rows(text, "MIG_RP_MSG_") == W.RP_MESSAGES
    assert spec_rows(text, "RAM_SAVE_FLAG_") == W.RAM_FLAGS
    assert spec_rows(text, "VFIO_MIG_FLAG_") == W.VFIO_MARKERS


def test_qemu_stream_tables_by_hand() -> None:
    assert W.RECORD_TYPES[0x7E] == "SECTION_FOOTER" and W.RECORD_TYPES[0x01] == "START"
    assert W.SECTION_TYPES == {1: "START", 2: "PART", 3: "END", 4: "FULL"}
    assert len(W.COMMANDS) == 12 and W.COMMANDS[11] == "SWITCHOVER_START" and W.COMMANDS[0] == "INVALID"
    assert W.RP_MESSAGES == {0: "INVALID", 1: "SHUT", 2: "PONG", 3: "REQ_PAGES_ID", 4: "REQ_PAGES",
                             5: "RECV_BITMAP", 6: "RESUME_ACK", 7: "SWITCHOVER_ACK"}
    assert W.RAM_FLAGS == {0x01: "FULL", 0x02: "ZERO", 0x04: "MEM_SIZE", 0x08: "PAGE", 0x10: "EOS",
                           0x20: "CONTINUE", 0x40: "XBZRLE", 0x80: "HOOK", 0x100: "COMPRESS_PAGE",
                           0x200: "MULTIFD_FLUSH"}
    assert W.VFIO_MARKERS[0xFFFFFFFFEF100005] == "DEV_INIT_DATA_SENT" and len(W.VFIO_MARKERS) == 6
    # the keys of the per-command lengths and VFIO phases are names of those tables
    assert set(W.COMMAND_LEN) == set(W.COMMANDS) - {W.MIG_CMD_INVALID}
    assert {W.SECTION_TYPES[t]: p for t, p in W.VFIO_PHASE.items()} == {
        "START": "setup", "PART": "precopy", "END": "stopcopy", "FULL": "config"}


# --- virtio admin (virtio-admin.md §4, §5, §6) --------------------------------------------

def test_admin_tables_equal_the_spec() -> None:
    text = spec_text("virtio-admin.md")
    ops = spec_rows(text, "VIRTIO_ADMIN_CMD_")
    # 0xb/0xc carry no constant name in the spec (table and text disagree, §11.1): the
    # default reading is the opcode table's
    ops.update({0xB: "RESOURCE_OBJ_QUERY", 0xC: "RESOURCE_OBJ_MODIFY"})
    assert A.resource_obj_reading() == "table"
    assert ops == A.OPCODES
    assert spec_rows(text, "VIRTIO_ADMIN_GROUP_TYPE_") == A.GROUP_TYPES
    assert spec_rows(text, "VIRTIO_ADMIN_STATUS_Q_") == A.STATUS_QUALIFIERS
    assert spec_rows(text, "VIRTIO_ADMIN_STATUS_", exclude="Q_") == A.STATUS


def test_admin_opcode_constants_are_the_table() -> None:
    by_name = {n: op for op, n in A.OPCODES.items()}
    consts = {n: getattr(A, n) for n in by_name if hasattr(A, n)}
    assert len(consts) >= 16
    assert consts == {n: by_name[n] for n in consts}
    assert (A.DEV_PARTS_GET, A.DEV_MODE_SET, A.LIST_QUERY) == (0x0F, 0x11, 0x00)  # virtio-admin.md §4, by hand
    assert A.GROUP_TYPES == {A.GROUP_TYPE_SELF: "SELF", A.GROUP_TYPE_SRIOV: "SRIOV"}
    assert A.STATUS[A.STATUS_OK] == "OK"


def test_docs_admin_opcode_table_names_the_opcodes_as_the_code() -> None:
    text = (ROOT / "docs" / "admin.md").read_text(encoding="utf-8")
    seen: dict[int, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\| (0x[0-9a-f]+(?: / 0x[0-9a-f]+)*) \| ([A-Z_]+(?: / [A-Z_]+)*)", line)
        if m:
            values, names = m.group(1).split(" / "), m.group(2).split(" / ")
            assert len(values) == len(names), line
            seen.update({int(v, 16): n for v, n in zip(values, names)})
    assert seen == A.OPCODES


# --- device parts (device-parts.md §4, §8) -------------------------------------------------

def test_part_types_equal_the_spec() -> None:
    text = spec_text("device-parts.md")
    want = spec_rows(text, "VIRTIO_DEV_PART_")
    want.update({v: "NET_CVQ_CFG" for v in spec_rows(text, "VIRTIO_NET_DEV_PART_")})  # CVQ_CFG_PART (§8)
    assert want == N.PART_TYPES
    assert (N.DEV_FEATURES, N.NET_CVQ_CFG) == (0x0100, 0x0200)


def test_cvq_classes_and_commands_equal_the_spec() -> None:
    """§8.2: the (class, command) pairs of the allowed-selector table, named as the code names
    them, are exactly NET_CVQ_ALLOWED."""
    text = spec_text("device-parts.md")
    sec = text[text.index("### 8.2"):text.index("### 8.3")]
    pairs = {}
    cls = None
    for line in sec.splitlines():
        m = re.match(r"^\| (?:VIRTIO_NET_CTRL_([A-Z_]+) \((\d+)\)|(\d+)) \| ([A-Z_]+) \((\d+)\) \|", line)
        if not m:
            continue
        if m.group(1):
            cls = int(m.group(2))
            assert N.NET_CTRL_CLASSES[cls] == m.group(1)
        else:
            assert int(m.group(3)) == cls, line
        pairs[(cls, int(m.group(5)))] = m.group(4)
    assert len(pairs) == 13
    assert set(pairs) == N.NET_CVQ_ALLOWED
    assert {p: N.net_command_name(*p) for p in pairs} == pairs


def test_status_and_feature_bits_equal_the_spec() -> None:
    text = spec_text("device-parts.md")

    def section(start: str, end: str) -> list[tuple[int, str]]:
        sec = text[text.index(start):text.index(end)]
        return [(int(v), n) for v, n in re.findall(r"\| (\d+) \| (VIRTIO_[A-Z0-9_]+|[A-Z_]+)\b", sec)]

    assert dict(section("## 10. Status bits", "A healthy running")) == N.STATUS_BITS
    assert dict(section("### 9.1", "### 9.2")) == N.COMMON_FEATURES
    assert dict(section("### 9.2", "Legacy-interface-only")) == N.NET_FEATURES
    assert N.VIRTIO_F_VERSION_1 == 32 and N.STATUS_BIT["DRIVER_OK"] == 4  # by hand (§9.1, §10)


# --- trace.dat options / sections (trace-dat.md §4) ---------------------------------------

def test_trace_dat_option_ids_equal_the_spec() -> None:
    from dissect.ftrace import headers as H

    text = spec_text("trace-dat.md")
    sec = text[text.index("| 0 | DONE |"):]
    sec = sec[:sec.index("\n\n")]
    want = {int(v): n for v, n in re.findall(r"^\| (\d+) \| ([A-Z0-9_]+) \|", sec, re.M)}
    m = re.search(r"^\| (\d+)–(\d+) \| ([A-Z_, ]+) \|", sec, re.M)  # the metadata sections 16–21
    first, last, names = int(m.group(1)), int(m.group(2)), m.group(3).split(", ")
    assert last - first + 1 == len(names)
    want.update({first + i: n for i, n in enumerate(names)})
    assert want == H.OPTION_NAMES
    assert {o.value: o.name for o in H.OptionId} == H.OPTION_NAMES
    assert (H.OptionId.TSC2NSEC, H.OptionId.STRINGS, H.OptionId.CMDLINES) == (14, 15, 21)  # by hand


# --- QEMU trace event names (the catalogue, dissect/qemu/trace-events-catalogue) ----------

def _strings(node, consts: dict) -> list[str]:
    """The string constants of ``node`` (a string, a tuple/list/set of them, or the name of
    a module-level one)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [x for e in node.elts for x in _strings(e, consts)]
    if isinstance(node, ast.Name) and node.id in consts:
        return _strings(consts[node.id], consts)
    return []


def _is_event_column(node) -> bool:
    return (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
            and node.slice.value == "qemu_event")


def event_names_used(path: Path) -> set[str]:
    """Event names ``path`` selects by: ``qemu_events(m, NAMES)``, ``ev["qemu_event"] == NAME``
    and ``ev["qemu_event"].isin(NAMES)``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    consts = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name)}
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            f = n.func
            if (isinstance(f, ast.Name) and f.id == "qemu_events") or \
                    (isinstance(f, ast.Attribute) and f.attr == "qemu_events"):
                if len(n.args) >= 2:
                    out.update(_strings(n.args[1], consts))
            elif isinstance(f, ast.Attribute) and f.attr == "isin" and _is_event_column(f.value) and n.args:
                out.update(_strings(n.args[0], consts))
        elif isinstance(n, ast.Compare) and _is_event_column(n.left):
            for c in n.comparators:
                out.update(_strings(c, consts))
    return out


def test_event_names_analysis_selects_by_are_catalogue_events(tmp_path) -> None:
    from dissect.qemu.trace_events import Catalogue

    names = set(Catalogue.default().names())
    used: dict[str, list[str]] = {}
    for p in sorted((ROOT / "analysis").rglob("*.py")):
        for name in event_names_used(p):
            used.setdefault(name, []).append(str(p.relative_to(ROOT)))
    assert {"vfio_save_iterate", "vfio_save_block", "vfio_save_complete_precopy_thread_start"} <= set(used)
    assert {n: w for n, w in used.items() if n not in names} == {}
    # the collector itself, on a hand-written module
    (tmp_path / "m.py").write_text('_P = ("a_x", "b_y")\nqemu_events(m, "c_z")\nM.qemu_events(m, _P)\n'
                                   'ev[ev["qemu_event"] == "d_w"]\nev["qemu_event"].isin(["e_v"])\n'
                                   'ev["other"] == "no"\n')
    assert event_names_used(tmp_path / "m.py") == {"a_x", "b_y", "c_z", "d_w", "e_v"}


# --- tables derived from another ----------------------------------------------------------

def test_simulator_lookups_derive_from_the_tables() -> None:
    from analysis.simulate.destination import MARK
    from analysis.simulate.render_admin import OPCODES

    assert {v: n for n, v in MARK.items()} == W.VFIO_MARKERS
    assert MARK["DEV_INIT_DATA_SENT"] == W.VFIO_MIG_FLAG_DEV_INIT_DATA_SENT
    assert {v: n for n, v in OPCODES.items()} == A.OPCODES
    assert OPCODES["DEV_PARTS_SET"] == 0x10
