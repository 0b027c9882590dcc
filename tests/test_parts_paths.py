# SPDX-License-Identifier: GPL-2.0-only
"""The two code paths for device parts, as one fixture.

Every parts test that takes ``parts_path`` runs twice: once through the
scapy layers (``dissect.virtio.parts``) and once through the fast path
(``dissect.virtio.parts_fast``), in the manner of dissect.cstruct's
``compiled`` fixture.  Both give the same normalised view of a part, so one
expected value checks both.  This module also holds the direct
fast == scapy cross-checks.
"""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect.virtio import builders as B
from dissect.virtio.parts import VirtioDevPartList
from dissect.virtio.parts_fast import decode_parts, decode_value, selector_object


class ScapyPath:
    name = "scapy"

    def decode(self, buf: bytes) -> tuple[list[dict[str, Any]], int]:
        lst = VirtioDevPartList(buf)
        out, off = [], 0
        for p in lst.parts:
            out.append({"offset": off, "part_type": p.part_type, "flags": int(p.flags),
                        "reserved": p.reserved, "selector": p.raw_selector(), "length": p.length,
                        "selector_object": p.selector_object(), "value": p.value_object()})
            off += 16 + p.length
        return out, off

    def rebuild(self, buf: bytes) -> bytes:
        return bytes(VirtioDevPartList(buf))


class FastPath:
    name = "fast"

    def decode(self, buf: bytes) -> tuple[list[dict[str, Any]], int]:
        parts, stop, _findings = decode_parts(buf)
        return [{"offset": p.offset, "part_type": p.part_type, "flags": p.flags,
                 "reserved": p.reserved, "selector": bytes(p.selector), "length": p.length,
                 "selector_object": selector_object(p), "value": decode_value(p)}
                for p in parts], stop

    def rebuild(self, buf: bytes) -> bytes:
        parts, stop, _f = decode_parts(buf)
        return B.build_parts(parts) + buf[stop:]


PATHS = {"scapy": ScapyPath(), "fast": FastPath()}


@pytest.fixture(params=sorted(PATHS))
def parts_path(request: pytest.FixtureRequest):
    """The decoder under test: the scapy layers or the fast path."""
    return PATHS[request.param]


def both(buf: bytes):
    return PATHS["scapy"].decode(buf), PATHS["fast"].decode(buf)


# ------------------------------------------------------------ cross-checks


def test_realistic_vf_record_equal_on_both_paths():
    buf = B.virtio_net_vf_blob(64)
    (sp, sstop), (fp, fstop) = both(buf)
    assert len(fp) == 2 + 2 + 1 + 129 + 129 + 7
    assert sp == fp
    assert sstop == fstop == len(buf)


def test_dataframe_matches_tuples():
    from dissect.virtio.parts_fast import parts_dataframe

    buf = B.virtio_net_vf_blob(2) + b"\x00" * 8
    df = parts_dataframe(buf)
    parts, stop, findings = decode_parts(buf)
    assert list(df["offset"]) == [p.offset for p in parts]
    assert list(df["part_type"]) == [p.part_type for p in parts]
    assert list(df["length"]) == [p.length for p in parts]
    assert list(df["value"]) == [bytes(p.value) for p in parts]
    assert df["part_type_name"].iloc[0] == "DEV_FEATURES"
    vq = df[df["part_type"] == 0x104]
    assert list(vq["vq_index"]) == [0, 1, 2, 3, 4]
    assert df["cfg_offset"].dropna().tolist() == [16, 18]
    net = df[df["part_type"] == 0x200]
    assert list(zip(net["cvq_class"], net["cvq_command"]))[:3] == [(0, 0), (0, 1), (1, 1)]
    assert df["vq_index"].isna().sum() == len(df) - 10
    assert bool(df["optional"].iloc[0]) is True
    assert df.attrs["stop"] == stop == len(buf) - 8
    assert [f.code for f in df.attrs["findings"]] == ["parts_trailer_8"]


_part_header = st.tuples(
    st.sampled_from([0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x200, 0x0106, 0x0007, 0x0600]),
    st.integers(0, 255), st.integers(0, 255))


@st.composite
def _fuzz_part(draw) -> bytes:
    pt, fl, rsv = draw(_part_header)
    if pt == 0x102:
        sel = draw(st.sampled_from([0, 4, 16, 18, 20, 21, 32, 62, 3, 64])).to_bytes(4, "little") + \
            draw(st.binary(min_size=4, max_size=4))
    elif pt == 0x200:
        sel = bytes([draw(st.integers(0, 9)), draw(st.integers(0, 4))]) + draw(st.binary(min_size=6, max_size=6))
    else:
        sel = draw(st.binary(min_size=8, max_size=8))
    value = draw(st.binary(max_size=80))
    return pt.to_bytes(2, "little") + bytes([fl, rsv]) + sel + len(value).to_bytes(4, "little") + value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_fuzz_part(), max_size=6), st.binary(max_size=20))
def test_fast_equals_scapy_on_arbitrary_parts(parts, tail):
    buf = b"".join(parts) + tail
    (sp, sstop), (fp, fstop) = both(buf)
    assert sp == fp
    assert sstop == fstop


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_fast_equals_scapy_on_random_bytes(buf):
    (sp, sstop), (fp, fstop) = both(buf)
    assert sp == fp
    assert sstop == fstop
