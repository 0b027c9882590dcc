# SPDX-License-Identifier: GPL-2.0-only
"""Round-trip properties: whatever the builders write, the parsers decode to
the same counts and data, however the bytes are split."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.common.findings import Finding
from dissect.qemu import build as B
from dissect.qemu.multifd import MultifdParser
from dissect.qemu.session import DeviceAssembler, RecordUnit
from dissect.qemu.stream import StreamParser
from dissect.vfio.stream import build_record

BLOCKS = ["pc.ram", "pc.bios", "/rom@etc/acpi/tables"]
ops = st.lists(st.tuples(st.sampled_from(["zero", "page", "xbzrle", "comp"]), st.sampled_from(BLOCKS),
                         st.integers(0, 255)), max_size=40)
splits = st.lists(st.integers(1, 5000), min_size=1, max_size=8)


def feed(parser, data: bytes, sizes: list[int]) -> None:
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        parser.data(i, data[i:i + n], i)
        i += n
        k += 1
    parser.close()


@settings(max_examples=40, deadline=None)
@given(ops, st.integers(1, 3), splits)
def test_ram_pages_round_trip(seq, nsec, sizes):
    w = B.RamWriter()
    stream = B.file_header() + B.section_start(2, "ram", 0, 4, w.setup([(b, 1 << 20) for b in BLOCKS]))
    want: dict[str, list[int]] = {}
    per = max(1, len(seq) // nsec)
    for s in range(nsec):
        body = b""
        for kind, blk, pg in seq[s * per:(s + 1) * per] if s < nsec - 1 else seq[s * per:]:
            off = pg * 4096
            c = want.setdefault(blk, [0, 0, 0, 0])
            if kind == "zero":
                body += w.zero_page(blk, off)
                c[0] += 1
            elif kind == "page":
                body += w.normal_page(blk, off, bytes([pg]) * 4096)
                c[1] += 1
            elif kind == "xbzrle":
                body += w.xbzrle_page(blk, off, bytes(pg % 50))
                c[2] += 1
            else:
                body += w.compressed_page(blk, off, bytes(pg % 70))
                c[3] += 1
        stream += B.section_part(2, body + w.eos())
    stream += B.eof()
    units: list = []
    p = StreamParser(units.append)
    feed(p, stream, sizes)
    assert [u for u in units if isinstance(u, Finding) and u.severity != "info"] == []
    rams = [u for u in units if isinstance(u, dict) and u["kind"] == "ram"]
    assert len(rams) == 1 + nsec
    got: dict[str, list[int]] = {}
    for r in rams[1:]:
        for blk, c in r["blocks"].items():
            g = got.setdefault(blk, [0, 0])
            g[0] += c["zero_pages"]
            g[1] += c["normal_pages"]
    assert got == {b: c[:2] for b, c in want.items() if c[0] or c[1]}
    assert sum(r["xbzrle_pages"] for r in rams) == sum(c[2] for c in want.values())
    assert sum(r["compressed_pages"] for r in rams) == sum(c[3] for c in want.values())
    assert (p.ram.zero_pages, p.ram.normal_pages) == (sum(c[0] for c in want.values()), sum(c[1] for c in want.values()))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=5), st.integers(1, 400),
       st.permutations(range(6)), splits)
def test_multifd_device_state_out_of_order_round_trip(payloads, bufsize, order, sizes):
    """Records cut into device-state packets that arrive in any order come out whole, in order."""
    stream = b"".join(build_record(p) for p in payloads)
    chunks = [stream[i:i + bufsize] for i in range(0, len(stream), bufsize)]
    idxs = list(range(len(chunks)))
    # permute the first up-to-6 packets
    head = [i for i in order if i < len(idxs)]
    idxs = head + idxs[len(head):] if len(idxs) >= len(head) else idxs
    data = B.multifd_init(bytes(16), 0) + b"".join(
        B.multifd_device_state_packet("0000:00:05.0/vfio", 0, i, chunks[i]) for i in idxs)
    units: list = []
    asm = DeviceAssembler()
    p = MultifdParser(units.append, devices=asm)
    feed(p, data, sizes)
    units += asm.close()
    recs = [u for u in units if isinstance(u, RecordUnit)]
    assert [r.record.payload for r in recs] == payloads
    assert [r.record.index for r in recs] == list(range(len(payloads)))
    assert not [u for u in units if isinstance(u, Finding)]
