# SPDX-License-Identifier: GPL-2.0-only
"""Decoders compiled from scapy layers (dissect.common.fields) and the
device-part value registry (dissect.virtio.values).

``common()`` asserts parse, build and size together, on both the scapy layer
and the compiled twin, in the manner of construct's own tests.  Byte strings
are written by hand from shared/spec (device-parts.md §4/§8.3,
vfio-virtio-stream.md §3.1), never produced by the code under test.
"""
from __future__ import annotations

import json
import struct
import tracemalloc
from typing import Any

import pytest
from scapy.fields import ConditionalField, IPField, LEIntField, LEShortField
from scapy.packet import Packet

from dissect.common.fields import compile_layer, packet_values
from dissect.vfio.layers import HDR as VFIO_HDR
from dissect.vfio.layers import VirtiovfMigrationHeader
from dissect.virtio import names as N
from dissect.virtio import netparts as NP
from dissect.virtio import parts_fast as PF
from dissect.virtio import value_layers as VL
from dissect.virtio import values as V
from dissect.virtio.parts import VirtioDevPartList


def common(layer: type[Packet], data: bytes, values: dict[str, Any], size: int) -> None:
    c = compile_layer(layer)
    assert c.decode(data) == (values, size)
    assert c.encode(values) == data[:size]
    pkt = layer(data)
    assert packet_values(pkt, c) == values
    assert bytes(layer(**{k: v for k, v in values.items() if k not in c.length_fields}))[:size] == data[:size]


def test_vq_cfg_fixed_layout():
    data = bytes.fromhex("0001" "0200" "0100" "0000" "0010000000000000" "0020000000000000" "0030000000000000")
    common(VL.VqCfgValue, data, {"queue_size": 256, "vector": 2, "enabled": 1, "reserved": 0,
                                 "queue_desc": 0x1000, "queue_driver": 0x2000, "queue_device": 0x3000}, 32)
    assert compile_layer(VL.VqCfgValue).struct.format == "<HHHHQQQ"


def test_rss_counted_list_and_length_prefixed_key():
    # hash_types 0x3f, mask 3 (4 entries), unclassified 0, table 0..3, max_tx_vq 4, key len 3 "abc", 2 excess
    data = bytes.fromhex("3f000000" "0300" "0000" "0000010002000300" "0400" "03" "616263" "eeee")
    common(NP.NetRssConfigValue, data, {"hash_types": 0x3F, "indirection_table_mask": 3, "unclassified_queue": 0,
                                        "indirection_table": [0, 1, 2, 3], "max_tx_vq": 4,
                                        "hash_key_length": 3, "hash_key": b"abc"}, 22)


def test_mac_table_two_counted_lists():
    data = bytes.fromhex("01000000" "525400123456" "02000000" "333300000001" "01005e000001")
    common(NP.NetMacTableValue, data, {"unicast_entries": 1, "unicast": ["52:54:00:12:34:56"],
                                       "multicast_entries": 2,
                                       "multicast": ["33:33:00:00:00:01", "01:00:5e:00:00:01"]}, 26)


def test_vfio_header_from_layer():
    data = bytes.fromhex("2600000000000000" "01000000" "00000000")
    c = compile_layer(VirtiovfMigrationHeader)
    assert c.decode(data) == ({"record_size": 38, "flags": 1, "tag": 0}, 16)
    assert VFIO_HDR.format == "<QII" and VFIO_HDR.unpack(data) == (38, 1, 0)


def test_part_header_struct_from_the_union_layer():
    assert PF.HDR.format == "<HBB8sI" and PF.HDR_LEN == 16


def test_inconsistent_values_are_none_and_allocate_nothing():
    mac = compile_layer(NP.NetMacTableValue)
    tracemalloc.start()
    assert mac.decode(b"\xff\xff\xff\xff" + b"\x00" * 6) is None  # 2^32-1 unicast MACs claimed
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 1024
    assert compile_layer(NP.NetVlanTableValue).decode(b"\x01\x00\x02") is None  # half an item
    assert compile_layer(NP.NetHashConfigValue).decode(bytes(12) + b"\x05abc") is None  # key past the end
    assert compile_layer(VL.VqCfgValue).decode(bytes(31)) is None


def test_unsupported_fields_refused_at_compile_time():
    class Odd(Packet):
        fields_desc = [IPField("addr", "0.0.0.0")]

    class Cond(Packet):
        fields_desc = [LEShortField("a", 0), ConditionalField(LEShortField("b", 0), lambda p: p.a)]

    with pytest.raises(TypeError):
        compile_layer(Odd)
    with pytest.raises(TypeError):
        compile_layer(Cond)


def test_registry_keys_and_lengths():
    sel_mac = bytes((1, 1)) + bytes(6)
    assert V.value_layout(N.NET_CVQ_CFG, sel_mac, bytes(6)) == ("net_mac_addr", 6)
    assert V.value_layout(N.NET_CVQ_CFG, sel_mac, bytes(8)) == ("net_mac_addr", 6)  # 2 bytes excess
    assert V.value_layout(N.NET_CVQ_CFG, sel_mac, bytes(5)) == ("raw", 5)
    assert V.value_layout(N.NET_CVQ_CFG, sel_mac, bytes(6), device_type=2) == ("raw", 6)
    pci = struct.pack("<II", 18, 0)  # num_queues, 2 bytes (§5)
    assert V.value_layout(N.PCI_COMMON_CFG, pci, b"\x05\x00") == ("pci_cfg", 2)
    assert V.value_layout(N.PCI_COMMON_CFG, pci, b"\x05\x00\x00") == ("raw", 3)  # exact size only
    assert V.value_layout(N.DEV_FEATURES, bytes(8), b"") == ("raw", 0)
    assert V.value_layout(N.DEV_FEATURES, bytes(8), bytes(12)) == ("raw", 12)


# ------------------------------------------ the extending recipe, end to end


class NetFooValue(VL.ValueLayer):
    """A hypothetical virtio-net part type 0x0201: ``le32 foo, le16 bar`` (docs/extending.md)."""

    name = "virtio_net_foo"
    fields_desc = [LEIntField("foo", 0), LEShortField("bar", 0)]


@pytest.fixture
def net_foo():
    from dissect.virtio.parts import _HDR_FIELDS

    enum = _HDR_FIELDS[0]
    saved = [(d, dict(d)) for d in (V._BY_TYPE, V._FAST_NET, V._BY_LAYER, V.VALUE_LAYERS, N.PART_TYPES,
                                    enum.i2s, enum.s2i)]
    V.register_value("net_foo", NetFooValue, part_type=0x0201, name="NET_FOO")
    yield
    for d, copy in saved:
        d.clear()
        d.update(copy)


# header 0x0201, flags 0, reserved 0, selector 0, length 8 | foo 0x11223344, bar 0x5566, 2 excess bytes
FOO_PART = bytes.fromhex("0102" "00" "00" "0000000000000000" "08000000" "44332211" "6655" "aabb")


def test_new_part_type_through_both_paths(net_foo):
    (p,), stop, findings = PF.decode_parts(FOO_PART)
    assert (stop, findings) == (len(FOO_PART), [])
    want = {"foo": 0x11223344, "bar": 0x5566, "excess": "aabb"}
    assert PF.decode_value(p) == want and PF.decode_values([p]) == [want]
    assert PF.decode_value(p, device_type=2) == {"raw": "443322116655aabb"}
    sp = VirtioDevPartList(FOO_PART).parts[0]
    assert sp.value_object() == want
    assert sp.sprintf("%part_type%") == "NET_FOO"
    assert PF.part_type_name(0x0201) == "NET_FOO"
    assert V.encode_value(NetFooValue, foo=0x11223344, bar=0x5566) == FOO_PART[16:22]


def test_new_part_type_through_the_cli(net_foo, tmp_path, capsys):
    from analysis.cli.main import main

    f = tmp_path / "parts.bin"
    f.write_bytes(FOO_PART)
    assert main(["decode", "--as", "dev-parts", "--json", str(f)]) == 0
    units = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    part = next(u for u in units if u["kind"] == "dev_part")
    assert part["part_type_name"] == "NET_FOO"
    assert part["value"] == {"foo": 0x11223344, "bar": 0x5566, "excess": "aabb"}


# ------------------------------------ adding an admin opcode, end to end


@pytest.fixture
def foo_opcode():
    from dissect.virtio import admin_data as D
    from dissect.virtio import admin_hdr as H

    saved = [(d, dict(d)) for d in (H.OPCODES, H._OPCODE_S2I, H.RESULT_LAYERS, H.OPCODE_GROUP, D.DATA_LAYERS)]
    saved_payloads = list(H.VirtioAdminCmd.payload_guess)
    yield
    for d, copy in saved:
        d.clear()
        d.update(copy)
    H.VirtioAdminCmd.payload_guess[:] = saved_payloads


def test_new_admin_opcode_through_decoders_and_cli(foo_opcode, tmp_path, capsys):
    from analysis.cli.main import main
    from dissect.virtio.admin import AdminLayer, decode_request, decode_result, register_opcode

    class FooData(AdminLayer):
        name = "virtio_admin_cmd_foo_data"
        min_len = 8
        fields_desc = [LEShortField("which", 0), LEShortField("reserved", 0), LEIntField("reserved2", 0)]

    class FooResult(AdminLayer):
        name = "virtio_admin_cmd_foo_result"
        min_len = 8
        fields_desc = [LEIntField("count", 0), LEIntField("size", 0)]

    register_opcode(0x13, "FOO_GET", data=FooData, result=FooResult)
    # virtio_admin_cmd_hdr: opcode 0x13, group SR-IOV (1), reserved, member 3 | which 7, reserved 0
    req = bytes.fromhex("1300" "0100" + "00" * 12 + "0300000000000000" "0700" "0000" "00000000")
    d, findings = decode_request(req)
    assert (d["opcode"], d["opcode_name"], d["data"], findings) == (0x13, "FOO_GET", {"which": 7}, [])
    # virtio_admin_cmd_status: status OK, qualifier 0, reserved | count 2, size 0x40
    res = bytes.fromhex("0000" "0000" "00000000" "02000000" "40000000")
    r, findings = decode_result(res, 0x13)
    assert (r["status_name"], r["result"], findings) == ("OK", {"count": 2, "size": 0x40}, [])
    f = tmp_path / "req.bin"
    f.write_bytes(req)
    assert main(["decode", "--as", "admin-request", "--json", str(f)]) == 0
    unit = next(json.loads(line) for line in capsys.readouterr().out.splitlines()
                if json.loads(line)["kind"] == "admin_cmd")
    assert unit["opcode_name"] == "FOO_GET" and unit["data"]["which"] == 7


def test_string_and_packet_fields_are_refused_not_compiled_as_integers():
    # scapy gives every Field a default fmt "H": a StrField once compiled as a 2-byte integer
    from scapy.fields import StrField

    class Tail(Packet):
        fields_desc = [LEShortField("a", 0), StrField("rest", b"")]

    with pytest.raises(TypeError, match="rest: StrField is not compiled"):
        compile_layer(Tail)
