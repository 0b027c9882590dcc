# SPDX-License-Identifier: GPL-2.0-only
"""Real QEMU 7.2 migrations (traces/real/): the decoder agrees with QEMU's own
view — ``info migrate`` page counters and the ``savevm_section_*`` trace."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis.emit.migration import emit_capture, emit_stream_file

REAL = Path(__file__).resolve().parent.parent / "traces" / "real"
CASES = [("qemu-file.mig", emit_stream_file), ("qemu-tcp-returnpath.pcap", emit_capture),
         ("qemu-tcp-multifd.pcap", emit_capture)]


def info_migrate(name: str) -> dict[str, int]:
    text = (REAL / f"{name.rsplit('.', 1)[0]}.src-info-migrate.txt").read_text()
    return {k: int(v) for k, v in re.findall(r"^(duplicate|normal): (\d+) pages$", text, re.M)}


def traced_sections(name: str) -> list[tuple[str, int]]:
    """(idstr, section_id) of every ``savevm_section_start`` in the source's trace."""
    text = (REAL / f"{name.rsplit('.', 1)[0]}.src.log").read_text()
    return [(m[0], int(m[1])) for m in re.findall(r":savevm_section_start (\S+), section_id (\d+)$", text, re.M)]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def decoded(request):
    name, emit = request.param
    if not (REAL / name).exists():
        pytest.skip(f"{name} not in traces/real")
    return name, list(emit(REAL / name))


def test_page_counts_equal_qemu_counters(decoded):
    name, objs = decoded
    qemu = info_migrate(name)
    zero = sum(o["zero_pages"] or 0 for o in objs if o["kind"] in ("ram", "multifd_packet"))
    normal = sum(o["normal_pages"] or 0 for o in objs if o["kind"] in ("ram", "multifd_packet"))
    assert (zero, normal) == (qemu["duplicate"], qemu["normal"])


def test_section_list_equals_qemu_trace(decoded):
    # QEMU 7.2 traces savevm_section_start for PART, END and FULL sections; the setup
    # (START) sections are written by qemu_savevm_state_setup without that event.
    name, objs = decoded
    ours = [(o["idstr"], o["section_id"]) for o in objs if o["kind"] == "section" and o["type"] != "START"]
    assert ours == traced_sections(name)
    starts = [(o["idstr"], o["section_id"]) for o in objs if o["kind"] == "section" and o["type"] == "START"]
    assert starts == [("ram", 2)]


def test_no_errors_and_vmdesc_confirms_footer_resync(decoded):
    name, objs = decoded
    assert not [o for o in objs if o["kind"] == "finding" and o["severity"] != "info"]
    (vd,) = [o for o in objs if o["kind"] == "vmdesc"]
    assert vd["page_size"] == 4096 and vd["devices"] == 30
    # every section has a length that ends at the next record
    secs = [o for o in objs if o["kind"] == "section"]
    assert all(a["offset"] + a["length"] <= b["offset"] for a, b in zip(secs, secs[1:]))


def test_return_path_messages_and_commands():
    objs = list(emit_capture(REAL / "qemu-tcp-returnpath.pcap"))
    cmds = [(o["cmd_name"], o["value"]) for o in objs if o["kind"] == "command"]
    assert cmds == [("OPEN_RETURN_PATH", None), ("PING", 1)]
    rps = [(o["type_name"], o["value"]) for o in objs if o["kind"] == "rp_message"]
    assert rps == [("PONG", 1), ("SHUT", 0)]
    (flow,) = [o for o in objs if o["kind"] == "flow"]
    assert flow["role"] == "main" and flow["s2c_bytes"] == 16


def test_multifd_packets_match_qemu_trace():
    """Every multifd_send trace line of the source is one decoded packet with the same numbers."""
    text = (REAL / "qemu-tcp-multifd.src.log").read_text()
    traced = sorted((int(c), int(n), int(p), int(f, 16)) for c, n, p, f in re.findall(
        r"multifd_send channel (\d+) packet_num (\d+) normal pages (\d+) flags (0x[0-9a-f]+)", text))
    objs = list(emit_capture(REAL / "qemu-tcp-multifd.pcap"))
    chan = {o["flow"]: o["channel"] for o in objs if o["kind"] == "multifd_packet" and o["type"] == "init"}
    ours = sorted((chan[o["flow"]], o["packet_num"], o["normal_pages"], o["flags"]) for o in objs
                  if o["kind"] == "multifd_packet" and o["type"] != "init")
    assert ours == traced


def test_decode_real_file_with_and_without_vmdesc_agree():
    from dissect.qemu.session import decode_stream_file

    a = [o for o in decode_stream_file(REAL / "qemu-file.mig") if isinstance(o, dict) and o["kind"] == "section"]
    b = [o for o in decode_stream_file(REAL / "qemu-file.mig", use_vmdesc=False)
         if isinstance(o, dict) and o["kind"] == "section"]
    assert [(x["offset"], x["length"]) for x in a] == [(x["offset"], x["length"]) for x in b]
    assert {x["delimited_by"] for x in a if x["type"] == "FULL"} == {"vmdesc"}
    assert {x["delimited_by"] for x in b if x["type"] == "FULL"} == {"footer"}


@pytest.mark.parametrize("name", ["qemu-tcp-returnpath.pcap", "qemu-tcp-multifd.pcap"])
def test_records_equal_destination_loadvm_trace(name):
    """The destination's loader traces every record it reads: type byte, START/FULL
    header (id, idstr, instance, version), PART/END id, and each RP message it sends."""
    text = (REAL / f"{name.rsplit('.', 1)[0]}.dst.log").read_text()
    traced_types = [int(t) for t in re.findall(r":qemu_loadvm_state_section (\d+)$", text, re.M)]
    traced_full = [(int(a), b, int(c), int(d)) for a, b, c, d in re.findall(
        r":qemu_loadvm_state_section_startfull (\d+)\((.*)\) (\d+) (\d+)$", text, re.M)]
    traced_part = [int(a) for a in re.findall(r":qemu_loadvm_state_section_partend (\d+)$", text, re.M)]
    traced_rp = [(int(a), int(b)) for a, b in re.findall(r":migrate_send_rp_message (\d+): len (\d+)$", text, re.M)]
    objs = list(emit_capture(REAL / name))
    code = {"START": 1, "PART": 2, "END": 3, "FULL": 4}
    ours_types = [code[o["type"]] if o["kind"] == "section" else 8 if o["kind"] == "command" else 0
                  for o in objs if o["kind"] in ("section", "command", "eof")]
    assert ours_types == traced_types
    assert [(o["section_id"], o["idstr"], o["instance_id"], o["version_id"]) for o in objs
            if o["kind"] == "section" and o["type"] in ("START", "FULL")] == traced_full
    assert [o["section_id"] for o in objs if o["kind"] == "section" and o["type"] in ("PART", "END")] == traced_part
    assert [(o["type"], o["len"]) for o in objs if o["kind"] == "rp_message"] == traced_rp
