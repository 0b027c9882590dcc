# SPDX-License-Identifier: GPL-2.0-only
"""multifd RAM packet layouts by QEMU generation, written here byte by byte from QEMU's source
(migration/multifd.h ``MultiFDPacketHdr_t`` / ``MultiFDPacket_t``, multifd.c
``multifd_send_fill_packet``, multifd-nocomp.c ``multifd_ram_fill_packet``): the offset
array always has MULTIFD_PACKET_SIZE / page size slots (the fixed ``packet_len``); 10.0 SYNC
packets carry ``pages_alloc`` 0 and no RAM fields; the decoder picks the array size by
validation when ``pages_alloc`` disagrees and says so."""
from __future__ import annotations

import struct

from dissect.common.findings import Finding
from dissect.qemu.multifd import MultifdParser

UUID = bytes(range(16))
INIT = struct.pack(">II16sB7s32s", 0x11223344, 1, UUID, 2, bytes(7), bytes(32))


def packet(*, flags: int, pages_alloc: int, normal: list[int], zero: list[int], num: int, block: bytes,
           slots: int = 128, page: int = 4096, next_size: int | None = None) -> bytes:
    """MultiFDPacketHdr_t + MultiFDPacket_t (packed, big-endian) + ``slots`` be64 offsets + data."""
    nxt = len(normal) * page if next_size is None else next_size
    fixed = struct.pack(">III" "IIIQ" "II24s256s", 0x11223344, 1, flags, pages_alloc, len(normal), nxt, num,
                        len(zero), 0, bytes(24), block.ljust(256, b"\0"))
    offs = normal + zero + [0] * (slots - len(normal) - len(zero))
    data = b"".join(bytes([(o // page) & 0xFF or 1]) * page for o in normal)
    return fixed + struct.pack(f">{slots}Q", *offs) + data


def decode(data: bytes, step: int | None = None, page_size: int = 4096) -> list:
    out: list = []
    p = MultifdParser(out.append, flow=1, page_size=page_size)
    step = step or len(data)
    for i in range(0, len(data), step):
        p.data(i, data[i:i + step], 0)
    p.close()
    return out


def test_qemu10_sync_packet_has_pages_alloc_0_and_the_full_array():
    ram1 = packet(flags=0, pages_alloc=128, normal=[0x1000, 0x5000], zero=[0x2000], num=4, block=b"pc.ram")
    sync = packet(flags=1, pages_alloc=0, normal=[], zero=[], num=5, block=b"")
    ram2 = packet(flags=0, pages_alloc=128, normal=[], zero=[0x3000, 0x4000], num=9, block=b"pc.ram")
    assert len(sync) == 12 + 308 + 1024  # 320-byte fixed part + 128 be64 slots
    data = INIT + ram1 + sync + ram2
    for step in (None, 1, 13, 1448):
        out = decode(data, step)
        assert not [f for f in out if isinstance(f, Finding) and f.severity != "info"]
        pk = [u for u in out if isinstance(u, dict) and u["type"] != "init"]
        assert [(u["type"], u["offset"], u["packet_num"], u["pages_alloc"], u["normal_pages"], u["zero_pages"],
                 u["ramblock"]) for u in pk] == [
            ("ram", 64, 4, 128, 2, 1, "pc.ram"), ("sync", 64 + len(ram1), 5, 0, 0, 0, None),
            ("ram", 64 + len(ram1) + len(sync), 9, 128, 0, 2, "pc.ram")]
        (lay,) = [f for f in out if isinstance(f, Finding) and f.code == "multifd_layout"]
        assert lay.offset == 64 + len(ram1) and lay.context["slots"] == 128 and lay.context["pages_alloc"] == 0


def test_final_sync_packet_at_the_end_of_the_stream():
    sync = packet(flags=1, pages_alloc=0, normal=[], zero=[], num=0, block=b"")
    out = decode(INIT + sync)
    assert [f.code for f in out if isinstance(f, Finding)] == ["multifd_layout"]
    assert [u["type"] for u in out if isinstance(u, dict)] == ["init", "sync"]


def test_7_2_packets_pages_alloc_equals_the_slots():
    # 7.2: pages_alloc = page count in every packet, bytes 32..35 unused (0), stale next_packet_size in SYNC
    a = packet(flags=0, pages_alloc=128, normal=[0x1000], zero=[], num=0, block=b"pc.ram")
    b = packet(flags=1, pages_alloc=128, normal=[], zero=[], num=1, block=b"pc.ram", next_size=4096)
    out = decode(INIT + a + b)
    assert [f for f in out if isinstance(f, Finding)] == []
    assert [(u["type"], u["normal_pages"]) for u in out if isinstance(u, dict)] == [("init", None), ("ram", 1),
                                                                                   ("sync", 0)]


def test_other_page_size_is_taken_from_pages_alloc_by_validation():
    # A 16 KiB-page target: 32 slots, 16 KiB page data; the parser assumed 4 KiB pages.
    a = packet(flags=0, pages_alloc=32, normal=[0x4000, 0xC000], zero=[0x8000], num=0, block=b"pc.ram",
               slots=32, page=16384)
    b = packet(flags=1, pages_alloc=32, normal=[], zero=[], num=1, block=b"", slots=32, page=16384)
    out = decode(INIT + a + b, 1000)
    assert not [f for f in out if isinstance(f, Finding) and f.severity != "info"]
    (lay,) = [f for f in out if isinstance(f, Finding) and f.code == "multifd_layout"]
    assert lay.context == {"flow": 1, "pages_alloc": 32, "slots": 32}
    assert [(u["type"], u["normal_pages"], u["zero_pages"]) for u in out if isinstance(u, dict)][1:] == [
        ("ram", 2, 1), ("sync", 0, 0)]


def test_a_zero_slot_sync_packet_is_recognised_and_said():
    # No QEMU writes a SYNC packet without its array; if one did, validation finds the next header.
    sync0 = packet(flags=1, pages_alloc=0, normal=[], zero=[], num=0, block=b"", slots=0)
    ram = packet(flags=0, pages_alloc=128, normal=[0x1000], zero=[], num=1, block=b"pc.ram")
    out = decode(INIT + sync0 + ram)
    (lay,) = [f for f in out if isinstance(f, Finding) and f.code == "multifd_layout"]
    assert lay.context["slots"] == 0
    assert [u["type"] for u in out if isinstance(u, dict)] == ["init", "sync", "ram"]
