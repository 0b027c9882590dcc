# SPDX-License-Identifier: GPL-2.0-only
"""Round trips and bad input for device parts (hypothesis).

parse(build(fields)) == fields for every value layout, with the scapy
layers and the builders producing the same bytes; build(parse(x)) == x on
both paths; truncated and random input never raises.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissect.virtio import builders as B
from dissect.virtio import names as N
from dissect.virtio.netparts import (NetAnnounceAckValue, NetHashConfigValue, NetMacAddrValue,
                                     NetMacTableValue, NetMqVqPairsValue, NetRssConfigValue,
                                     NetRxValue, NetVlanTableValue)
from dissect.virtio.parts import (DevFeaturesValue, DeviceStatusValue, VirtioDevPart,
                                  VirtioDevPartList, VqCfgValue, VqNotifyCfgValue,
                                  pci_common_cfg_value_class)
from dissect.common.findings import DecodeError
from dissect.virtio.parts_fast import decode_parts, decode_parts_strict
from tests.test_parts_paths import PATHS, _fuzz_part, parts_path  # noqa: F401

u16 = st.integers(0, 0xFFFF)
u64 = st.integers(0, 2**64 - 1)
macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


@st.composite
def part_fields(draw):
    """(scapy packet, builder PartSpec, expected selector object, expected value object)."""
    kind = draw(st.sampled_from(["features", "pci", "status", "vq_cfg", "vq_notify", "rx", "mac_table",
                                 "mac", "vlan", "announce", "mq", "rss", "hash"]))
    if kind == "features":
        bits = sorted(draw(st.sets(st.integers(0, 127), max_size=12)))
        driver = draw(st.booleans())
        spec = B.features_part(bits, driver=driver, words=2)
        words = [sum(1 << (b - 64 * w) for b in bits if b // 64 == w) for w in range(2)]
        pkt = VirtioDevPart(part_type=0x101 if driver else 0x100, flags=0 if driver else 1) / \
            DevFeaturesValue(feature_bits=words)
        return pkt, spec, {}, {"bits": bits, "names": [N.feature_name(b) for b in bits]}
    if kind == "pci":
        off = draw(st.sampled_from(sorted(N.PCI_COMMON_CFG_FIELDS)))
        name, size = N.PCI_COMMON_CFG_FIELDS[off]
        v = draw(st.integers(0, 2 ** (8 * size) - 1))
        pkt = VirtioDevPart(part_type=0x102, cfg_offset=off) / pci_common_cfg_value_class(off)(value=v)
        return pkt, B.common_cfg_part(name, v), {"offset": off}, {"field": name, "value": v}
    if kind == "status":
        s = draw(st.integers(0, 255))
        pkt = VirtioDevPart(part_type=0x103) / DeviceStatusValue(status=s)
        return pkt, B.status_part(s), {}, {"value": s, "names": N.status_names(s)}
    if kind == "vq_cfg":
        i, qs, vec, en = draw(u16), draw(u16), draw(u16), draw(u16)
        d, dr, dv = draw(u64), draw(u64), draw(u64)
        pkt = VirtioDevPart(part_type=0x104, vq_index=i) / VqCfgValue(
            queue_size=qs, vector=vec, enabled=en, queue_desc=d, queue_driver=dr, queue_device=dv)
        return pkt, B.vq_cfg_part(i, qs, vec, en, d, dr, dv), {"vq_index": i}, {
            "queue_size": qs, "vector": vec, "enabled": en, "queue_desc": d,
            "queue_driver": dr, "queue_device": dv}
    if kind == "vq_notify":
        i, o, d = draw(u16), draw(u16), draw(u16)
        pkt = VirtioDevPart(part_type=0x105, vq_index=i) / VqNotifyCfgValue(
            queue_notify_off=o, queue_notif_config_data=d)
        return pkt, B.vq_notify_part(i, o, d), {"vq_index": i}, {
            "queue_notify_off": o, "queue_notif_config_data": d}

    def sel(c, m):
        return {"class": c, "command": m, "class_name": N.net_class_name(c),
                "command_name": N.net_command_name(c, m)}

    def net(c, m, layer):
        return VirtioDevPart(part_type=0x200, cvq_class=c, cvq_command=m) / layer

    if kind == "rx":
        m, on = draw(st.integers(0, 5)), draw(st.booleans())
        return net(0, m, NetRxValue(on=int(on))), B.net_rx_part(m, on), sel(0, m), {"on": on}
    if kind == "mac_table":
        uc, mc = draw(st.lists(macs, max_size=4)), draw(st.lists(macs, max_size=4))
        return (net(1, 0, NetMacTableValue(unicast=uc, multicast=mc)), B.net_mac_table_part(uc, mc),
                sel(1, 0), {"unicast": uc, "multicast": mc})
    if kind == "mac":
        m = draw(macs)
        return net(1, 1, NetMacAddrValue(mac=m)), B.net_mac_addr_part(m), sel(1, 1), {"mac": m}
    if kind == "vlan":
        v = draw(st.lists(st.integers(0, 4095), max_size=8))
        return net(2, 0, NetVlanTableValue(vlans=v)), B.net_vlan_part(v), sel(2, 0), {"vlans": v}
    if kind == "announce":
        return net(3, 0, NetAnnounceAckValue()), B.net_announce_part(), sel(3, 0), {}
    if kind == "mq":
        n = draw(st.integers(1, 0x8000))
        return (net(4, 0, NetMqVqPairsValue(virtqueue_pairs=n)), B.net_mq_pairs_part(n), sel(4, 0),
                {"virtqueue_pairs": n})
    if kind == "rss":
        size = 1 << draw(st.integers(0, 8))
        table = draw(st.lists(st.integers(0, 0x7FFF), min_size=size, max_size=size))
        ht, unc, mtx = draw(st.integers(0, 0x1FF)), draw(st.integers(0, 0x7FFF)), draw(u16)
        key = draw(st.binary(max_size=52))
        pkt = net(4, 1, NetRssConfigValue(hash_types=ht, unclassified_queue=unc,
                                          indirection_table=table, max_tx_vq=mtx, hash_key=key))
        spec = B.net_rss_part(table, hash_types=ht, unclassified_queue=unc, max_tx_vq=mtx, hash_key=key)
        return pkt, spec, sel(4, 1), {"hash_types": ht, "indirection_table": table,
                                      "unclassified_queue": unc, "max_tx_vq": mtx, "hash_key": key.hex()}
    ht, key = draw(st.integers(0, 0x1FF)), draw(st.binary(max_size=52))
    return (net(4, 2, NetHashConfigValue(hash_types=ht, hash_key=key)), B.net_hash_part(ht, key),
            sel(4, 2), {"hash_types": ht, "hash_key": key.hex()})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(part_fields(), min_size=1, max_size=5))
def test_parse_build_fields(parts_path, items):
    scapy_bytes = b"".join(bytes(pkt) for pkt, _s, _so, _vo in items)
    builder_bytes = B.build_parts([spec for _p, spec, _so, _vo in items])
    assert scapy_bytes == builder_bytes
    parts, stop = parts_path.decode(builder_bytes)
    assert stop == len(builder_bytes)
    assert [(p["selector_object"], p["value"]) for p in parts] == [(so, vo) for _p, _s, so, vo in items]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(_fuzz_part(), max_size=6), st.binary(max_size=24))
def test_build_parse_bytes(parts_path, parts, tail):
    buf = b"".join(parts) + tail
    assert parts_path.rebuild(buf) == buf


def test_every_truncation_of_a_real_record_decodes():
    buf = B.virtio_net_vf_blob(2)
    for n in range(len(buf) + 1):
        cut = buf[:n]
        parts, stop, findings = decode_parts(cut)
        assert stop <= n
        assert sum(16 + p.length for p in parts) == stop
        if stop == n:
            assert not [f for f in findings if f.severity == "error"]
        else:
            assert len(findings) == 1
            assert findings[0].offset == stop
        if n % 7 == 0:  # scapy is slow; every 7th cut is enough to show it never raises
            lst = VirtioDevPartList(cut)
            assert len(lst.parts) == len(parts)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(buf):
    from dissect.virtio.parts_fast import decode_value, selector_object
    from dissect.virtio.validate import validate_parts

    parts, stop, findings = decode_parts(buf)
    for p in parts:
        decode_value(p)
        selector_object(p)
    validate_parts(parts, snapshot=True, metadata_size=0)
    VirtioDevPartList(buf).show2(dump=True)
    try:
        strict = decode_parts_strict(buf)
    except DecodeError as e:  # the only exception bad input may raise, with its finding
        assert e.finding.code in ("part_truncated_header", "part_truncated_value")
        assert e.finding.offset == stop
    else:
        assert strict == parts


def test_huge_claimed_lengths_do_not_allocate():
    # a claimed 4 GiB value with 3 bytes present: a finding, no allocation, no hang
    buf = bytes.fromhex("04 01 00 00 00 00 00 00 00 00 00 00 ff ff ff ff 00 01 02")
    parts, stop, findings = decode_parts(buf)
    assert parts == [] and stop == 0
    assert findings[0].code == "part_truncated_value"
    assert findings[0].context["missing"] == 0xFFFFFFFF - 3
    assert len(VirtioDevPartList(buf).parts) == 0
    # RSS mask 0xffff claims 65536 entries in a 13-byte value: raw, not a table
    rss = bytes.fromhex("00 02 00 00 04 01 00 00 00 00 00 00 0d 00 00 00"
                        "01 00 00 00 ff ff 00 00 00 00 00 00 00")
    (sp, _), (fp, _) = PATHS["scapy"].decode(rss), PATHS["fast"].decode(rss)
    assert sp[0]["value"] == fp[0]["value"] == {"raw": "01000000ffff000000000000" + "00"}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(min_size=16, max_size=16), max_size=8), st.binary(max_size=15))
def test_header_list_round_trip(headers, tail):
    from dissect.virtio.parts import VirtioDevPartHdrList

    buf = b"".join(headers) + tail
    lst = VirtioDevPartHdrList(buf)
    assert len(lst.headers) == len(headers)
    assert [(h.part_type, int(h.flags), h.reserved, h.raw_selector(), h.length) for h in lst.headers] == \
        [(int.from_bytes(h[:2], "little"), h[2], h[3], h[4:12], int.from_bytes(h[12:], "little"))
         for h in headers]
    assert bytes(lst) == buf
