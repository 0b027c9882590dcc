# SPDX-License-Identifier: GPL-2.0-only
"""VFIO device data of a capture started after ``migrate`` (dissect/qemu/midstream.py,
dissect/vfio/stream.py ``resync``).

No QEMU on this machine produces VFIO data, so the capture is the project's generated one
(traces/generated/qemu-9x-vfio-rp.pcapng, built from the spec by traces/generated/make.py), cut
by Wireshark's editcap.  What the late capture decodes must be exactly the whole capture's
records from the first whole record the capture holds, offsets shifted by the device bytes sent
before the capture.
"""
from __future__ import annotations

import pytest

from dissect.common.findings import Finding
from dissect.vfio.stream import RecordSplitter, VfioRecord, build_record, split_records
from dissect.virtio.builders import virtio_net_vf_blob
from tests.conftest import TRACES
from tests.test_qemu_midstream import codes, decode, late

VFIO = TRACES / "generated" / "qemu-9x-vfio-rp.pcapng"
_whole: list[dict] = []


def whole() -> list[dict]:
    if not _whole:
        _whole.extend(decode(VFIO))
    return _whole


def device_bytes(objs: list[dict], section_id: int) -> int:
    return sum(o["size"] for o in objs if o["kind"] == "vfio_chunk" and o["section_id"] == section_id
               and o["phase"] != "config")


def records(objs: list[dict], device: str, shift: int = 0) -> list[tuple]:
    return [(o["offset"] + shift, o["record_size"], o["parts"], o["trailer_bytes"], o["phase"]) for o in objs
            if o["kind"] == "vfio_record" and o["device"] == device]


def parts(objs: list[dict], device: str, first_record: int) -> list[tuple]:
    """(record, index, part type, value) of the device's parts, records renumbered from 0."""
    return [(o["record"] - first_record, o["index"], o["part_type"], str(o["value"])) for o in objs
            if o["kind"] == "dev_part" and o["device"] == device and o["record"] >= first_record]


@pytest.mark.parametrize("drop", [3, 10, 30, 60, 75, 90])
def test_late_capture_splits_the_device_data_from_its_first_whole_record(tmp_path, drop):
    if not VFIO.exists():
        pytest.skip("traces/generated/qemu-9x-vfio-rp.pcapng absent")
    ref = whole()
    objs = decode(late(VFIO, drop, tmp_path))
    f = codes(objs)
    assert not [o for o in objs if o["kind"] == "finding" and o["severity"] == "error"]
    devices = {o["device"]: o["section_id"] for o in ref if o["kind"] == "vfio_chunk"}
    assert sorted(devices) == ["0000:00:05.0/vfio", "0000:00:06.0/vfio"]
    named = {o["device"]: o for o in f.get("vfio_device_named", [])}
    picked = {o["device"]: o for o in f.get("vfio_stream_picked_up", [])}
    for dev, sid in devices.items():
        missing = device_bytes(ref, sid) - device_bytes(objs, sid)  # device bytes sent before the capture
        want = [r for r in records(ref, dev) if r[0] >= missing]
        got = records(objs, dev, shift=missing)
        assert got == want and want, (dev, missing)
        first = len(records(ref, dev)) - len(want)
        assert parts(objs, dev, 0) == parts(ref, dev, first)
        if dev not in named:  # its START section is in the capture: an ordinary device stream
            assert (missing, dev in picked) == (0, False)
            continue
        assert named[dev]["section_id"] == sid
        # the bytes skipped are the end of the record the capture started in
        assert picked[dev]["offset"] == want[0][0] - missing == picked[dev]["skipped"]
    # packets 1-3: the handshake; the START of 0000:00:05.0/vfio is in packet 10, 0000:00:06.0's in 11
    assert len(named) == {3: 0, 10: 1}.get(drop, 2)
    # the unnamed sections' markers were walked, not skipped as opaque
    assert not [o for o in objs if o["kind"] == "section" and o["idstr"] is None and o["delimited_by"] != "payload"]


def test_summary_of_a_late_vfio_capture_keeps_the_stop_copy_and_nulls_the_precopy_counts(tmp_path):
    if not VFIO.exists():
        pytest.skip("traces/generated/qemu-9x-vfio-rp.pcapng absent")
    from tests.conftest import run_cli
    import json

    def summary(path):
        p = run_cli("summary", "--json", str(path))
        assert p.returncode == 0, p.stderr
        objs = [json.loads(x) for x in p.stdout.splitlines()]
        return ({o["device"]: o for o in objs if o["kind"] == "device_summary"},
                [o for o in objs if o["kind"] == "finding" and o["code"] == "metric_unavailable" and "device" in o])
    ref, _ = summary(VFIO)
    got, why = summary(late(VFIO, 60, tmp_path))
    assert sorted(got) == sorted(ref)
    for dev in ref:
        for k in ("stopcopy_records", "stopcopy_bytes", "trailer_bug", "bytes_by_part_type"):
            assert got[dev][k] == ref[dev][k], (dev, k)
        assert ref[dev]["precopy_chunks"] is not None
        assert (got[dev]["precopy_chunks"], got[dev]["precopy_snapshots"]) == (None, None)
        reasons = {o["metric"]: o["message"] for o in why if o["device"] == dev}
        assert "picked up mid-stream" in reasons["precopy_chunks"]
        assert "picked up mid-stream" in reasons["precopy_snapshots"]


def test_late_capture_that_never_names_the_device_says_so(tmp_path):
    if not VFIO.exists():
        pytest.skip("traces/generated/qemu-9x-vfio-rp.pcapng absent")
    cut = late(VFIO, 30, tmp_path)
    import subprocess

    from tests.conftest import require_tool
    short = tmp_path / "no-switchover.pcap"
    # keep the first 80 packets of the late capture: the FULL sections that name the devices come later
    subprocess.run([require_tool("editcap"), "-r", str(cut), str(short), "1-80"], check=True, capture_output=True)
    objs = decode(short)
    f = codes(objs)
    assert sorted(o["section_id"] for o in f["vfio_data_unnamed"]) == [3, 4]
    assert [o for o in objs if o["kind"] == "vfio_record"] == []
    assert "vfio_device_named" not in f


# --- the splitter's search, at every cut and every chunking ------------------------------------

STREAM = b"".join(build_record(virtio_net_vf_blob(q), trailer_bug=(q == 2)) for q in (1, 2, 4, 1, 2))


def _split(data: bytes, step: int) -> list:
    sp = RecordSplitter("d", resync=True)
    ev: list = []
    for i in range(0, len(data), step):
        ev += sp.feed_events(data[i:i + step])
    return ev + sp.close()


@pytest.mark.parametrize("step", [1, 13, 500, 1 << 20])
def test_resync_finds_the_first_whole_record_at_every_cut(step):
    ref = [r for r in split_records(STREAM) if isinstance(r, VfioRecord)]
    assert [r.offset for r in ref] == [0, 796, 1744, 2972, 3768]
    for cut in range(0, len(STREAM), 1 if step > 100 else 11):
        ev = _split(STREAM[cut:], step)
        got = [(r.offset + cut, r.record_size, len(r.parts), r.trailer_bytes) for r in ev if isinstance(r, VfioRecord)]
        want = [(r.offset, r.record_size, len(r.parts), r.trailer_bytes) for r in ref if r.offset >= cut]
        assert got == want, cut
        stream = [e.code for e in ev if isinstance(e, Finding)]
        assert stream == (["vfio_stream_picked_up"] if want else ["vfio_stream_not_picked_up"]), cut


def test_resync_passes_a_header_lookalike_whose_parts_do_not_fit():
    # a 16-byte header (size 64, tag 0) followed by a part header claiming 200 value bytes:
    # plausible at first, rejected once the record's end is known, then the real record is found
    fake = (64).to_bytes(8, "little") + bytes(8) + bytes.fromhex("0001 00 00 00000000 00000000 c8000000") + bytes(48)
    ev = _split(fake + STREAM, 1 << 20)
    recs = [r for r in ev if isinstance(r, VfioRecord)]
    assert [r.offset for r in recs] == [len(fake), len(fake) + 796, len(fake) + 1744, len(fake) + 2972,
                                        len(fake) + 3768]
    (f,) = [e for e in ev if isinstance(e, Finding)]
    assert (f.code, f.offset, f.context["skipped"]) == ("vfio_stream_picked_up", len(fake), len(fake))


def test_resync_gives_up_on_bytes_without_a_record():
    ev = _split(bytes(range(256)) * 8, 100)
    assert [(e.code, e.severity) for e in ev] == [("vfio_stream_not_picked_up", "warning")]


# --- the session's holding of unnamed sections' data ---------------------------------------------

def test_assembler_holds_unnamed_data_until_named_and_bounds_it(monkeypatch):
    from dissect.qemu import session as S

    rec = [build_record(virtio_net_vf_blob(q)) for q in (1, 2)]
    stream = rec[0] + rec[1]
    tail = stream[300:]  # the capture started 300 bytes into record 0
    a = S.DeviceAssembler()
    assert a.data(3, "precopy", tail[:500], 10, 0) == [] and a.data_offset(3) == 500
    assert a.data(3, "precopy", tail[500:], 20, 500) == []
    assert a.devices == {}  # nothing is split before the name is known
    out = a.section("0000:00:05.0/vfio", 3)
    assert [u.code for u in out if isinstance(u, Finding)] == ["vfio_device_named", "vfio_stream_picked_up"]
    named = out[0]
    assert (named.context, named.offset) == ({"device": "0000:00:05.0/vfio", "section_id": 3}, None)
    units = [u for u in out if not isinstance(u, Finding)]
    assert [(u.record.offset, u.record.record_size) for u in units] == [(len(rec[0]) - 300, len(rec[1]) - 16)]
    assert a.unnamed == {} and a.unnamed_bytes == 0 and a.close() == []
    # a section never named: one finding at the end, nothing split
    b = S.DeviceAssembler()
    b.data(4, "precopy", tail, 10, 0)
    b.lost(4, 100, len(tail))
    (f,) = b.close()
    assert (f.code, f.context) == ("vfio_data_unnamed", {"section_id": 4}) and f"{len(tail) + 100} bytes" in f.message
    # more than MAX_PENDING waiting: counted, not kept, said once
    monkeypatch.setattr(S, "MAX_PENDING", 1000)
    c = S.DeviceAssembler()
    assert c.data(5, "precopy", tail[:900], 1, 0) == []
    (w,) = c.data(5, "precopy", tail[900:1800], 2, 900)
    assert w.code == "vfio_unnamed_too_large" and c.data(5, "precopy", tail[1800:], 3, 1800) == []
    assert c.unnamed_bytes == 900 and c.data_offset(5) == len(tail)
