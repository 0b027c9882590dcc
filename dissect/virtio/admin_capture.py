# SPDX-License-Identifier: GPL-2.0-only
"""The admin-queue capture format: a 16-byte pseudo-header + the bytes the device saw.

Contract: ``shared/contract/admin-capture.md``.  One record = pseudo-header
(version, direction, reserved, tag, owner, opcode, subtype; little-endian)
followed by the device-readable part (request) or the device-writable part
truncated to the used length (completion).  Containers: pcap/pcapng packets
of link type ``LINKTYPE_USER0`` (147) by default, and ftrace
``trace_marker_raw`` writes split into pieces (``id`` 0x76697274 "virt",
``total_length``, ``piece_offset``, piece bytes).

Two twins of the pseudo-header: the scapy layer :class:`AdminCaptureHdr`
(registered for LINKTYPE_USER0 so that ``scapy.rdpcap`` dissects admin
records after this module is imported) and the ``struct`` used by the
streaming reader (:func:`iter_admin_records`), which builds no scapy object
per packet.  The tests hold them equal.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from scapy.config import conf
from scapy.fields import ByteEnumField, ByteField, LEIntField, LEShortField
from scapy.packet import Packet

from dissect.capture import formats as F
from dissect.capture.reader import CaptureReader
from dissect.capture.writer import PcapngWriter, PcapWriter
from dissect.common.findings import Finding
from dissect.virtio.admin import OPCODES, OpcodeField, VirtioAdminCmd, VirtioAdminCmdResult, owner_str

VERSION = 1
REQUEST = 0
COMPLETION = 1
DIRECTIONS: dict[int, str] = {REQUEST: "request", COMPLETION: "completion"}
LINKTYPE_ADMIN = F.LINKTYPE_USER0
HDR_LEN = 16
#: version, direction, reserved, tag, owner, opcode, subtype.
_HDR = struct.Struct("<BBHIIHH")

#: ftrace form: ``id`` of every piece, "virt" read as a little-endian u32.
TRACE_ID = 0x76697274
_PIECE = struct.Struct("<III")  # id, total_length, piece_offset
PIECE_HDR_LEN = _PIECE.size
#: Largest record the piece joiner assembles; larger claims are corrupt.
MAX_TRACE_RECORD = 16 << 20


# --- scapy layer ------------------------------------------------------------------

class PciOwnerField(LEIntField):
    """``owner``: domain << 16 | bus << 8 | device << 3 | function, shown dddd:bb:dd.f."""

    def i2repr(self, pkt: Packet | None, x: int) -> str:
        return owner_str(x or 0)


class AdminCaptureHdr(Packet):
    """The admin-capture pseudo-header (16 bytes); payload = request or completion."""

    name = "migtrace_admin_record"
    fields_desc = [
        ByteField("version", VERSION),
        ByteEnumField("direction", REQUEST, DIRECTIONS),
        LEShortField("reserved", 0),
        LEIntField("tag", 0),
        PciOwnerField("owner", 0),
        OpcodeField("opcode", 0),
        LEShortField("subtype", 0),
    ]

    def admin_context(self) -> tuple[int, int]:
        """(opcode, subtype) that select a completion's result layout."""
        return self.opcode, self.subtype

    def guess_payload_class(self, payload: bytes) -> type[Packet]:
        # ``Packet.direction`` is a scapy slot (sniff direction) that shadows the
        # field's attribute access: read the field explicitly.
        direction = self.getfieldval("direction")
        if direction == REQUEST:
            return VirtioAdminCmd
        if direction == COMPLETION:
            return VirtioAdminCmdResult
        return conf.raw_layer


conf.l2types.register(LINKTYPE_ADMIN, AdminCaptureHdr)


# --- records ------------------------------------------------------------------------

@dataclass(slots=True)
class AdminRecord:
    """One admin-capture record (admin-capture.md, "Record")."""

    version: int
    direction: int
    tag: int
    owner: int
    opcode: int
    subtype: int
    payload: bytes
    ts_ns: int = 0
    reserved: int = 0
    offset: int | None = None  # file offset of the carrying packet, when read from a file

    @property
    def is_request(self) -> bool:
        return self.direction == REQUEST

    @property
    def owner_str(self) -> str:
        return owner_str(self.owner)

    def to_bytes(self) -> bytes:
        return _HDR.pack(self.version, self.direction, self.reserved, self.tag, self.owner,
                         self.opcode, self.subtype) + bytes(self.payload)

    @classmethod
    def from_bytes(cls, buf: bytes | memoryview, ts_ns: int = 0,
                   offset: int | None = None) -> tuple["AdminRecord | None", list[Finding]]:
        """Parse one record; None (and an error finding) when no header is there."""
        findings: list[Finding] = []
        if len(buf) < HDR_LEN:
            findings.append(Finding("error", "admin_record_short",
                                    f"admin record is {len(buf)} bytes, its pseudo-header alone is 16",
                                    offset, {"missing": HDR_LEN - len(buf)}))
            return None, findings
        ver, dirn, rsv, tag, owner, opcode, subtype = _HDR.unpack_from(buf, 0)
        rec = cls(ver, dirn, tag, owner, opcode, subtype, bytes(buf[HDR_LEN:]), ts_ns, rsv, offset)
        if ver != VERSION:
            findings.append(Finding("warning", "admin_record_version",
                                    f"admin record version {ver} (expected {VERSION}); decoded as version 1",
                                    offset, {"tag": tag}))
        if dirn not in DIRECTIONS:
            findings.append(Finding("error", "admin_record_direction",
                                    f"admin record direction {dirn} is neither request (0) nor completion (1)",
                                    offset, {"tag": tag}))
        if rsv:
            findings.append(Finding("warning", "admin_reserved_nonzero",
                                    f"admin record reserved field is {rsv:#x}", offset, {"tag": tag}))
        return rec, findings


def request_record(tag: int, owner: int | str, cmd: bytes, ts_ns: int = 0, *,
                   subtype: int = 0) -> AdminRecord:
    """A request record for the device-readable bytes ``cmd`` (opcode read from them)."""
    o = _owner_int(owner)
    opcode = int.from_bytes(bytes(cmd[:2]).ljust(2, b"\0"), "little")
    return AdminRecord(VERSION, REQUEST, tag, o, opcode, subtype, bytes(cmd), ts_ns)


def completion_record(tag: int, owner: int | str, opcode: int, status_and_result: bytes,
                      ts_ns: int = 0, *, subtype: int = 0) -> AdminRecord:
    """A completion record (writable bytes truncated to the used length)."""
    return AdminRecord(VERSION, COMPLETION, tag, _owner_int(owner), opcode, subtype,
                       bytes(status_and_result), ts_ns)


def _owner_int(owner: int | str) -> int:
    if isinstance(owner, str):
        from dissect.virtio.admin import parse_owner
        return parse_owner(owner)
    return owner


# --- pcap / pcapng reader and writers -----------------------------------------------

def is_admin_linktype(linktype: int, wanted: int | None = None) -> bool:
    if wanted is not None:
        return linktype == wanted
    return F.LINKTYPE_USER0 <= linktype <= F.LINKTYPE_USER15


def iter_admin_records(path: str | os.PathLike,
                       linktype: int | None = None) -> Iterator[AdminRecord | Finding]:
    """Admin records of a pcap/pcapng capture, in file order, with findings between.

    ``linktype``: the USER link type carrying the records (default: any of
    147-162).  Packets of other link types are skipped with one finding per
    link type.  A packet captured shorter than it was (snaplen) is decoded
    as far as it goes and reported.
    """
    reader = CaptureReader(path)
    seen = 0
    foreign: set[int] = set()
    for pkt in reader.packets():
        if len(reader.findings) > seen:
            yield from reader.findings[seen:]
            seen = len(reader.findings)
        if not is_admin_linktype(pkt.linktype, linktype):
            if pkt.linktype not in foreign:
                foreign.add(pkt.linktype)
                yield Finding("info", "admin_capture_foreign_linktype",
                              f"packets of link type {pkt.linktype} are not admin records; skipped",
                              pkt.offset, {"linktype": pkt.linktype})
            continue
        rec, findings = AdminRecord.from_bytes(pkt.data, pkt.ts_ns, pkt.offset)
        if pkt.orig_len > len(pkt.data):
            findings.append(Finding("warning", "admin_record_truncated",
                                    f"admin record captured with {len(pkt.data)} of {pkt.orig_len} bytes "
                                    "(snaplen); the missing tail is not decoded", pkt.offset,
                                    {"missing": pkt.orig_len - len(pkt.data)}))
        yield from findings
        if rec is not None:
            yield rec
    if len(reader.findings) > seen:
        yield from reader.findings[seen:]


def write_admin_pcap(path: str | os.PathLike, records: Iterable[AdminRecord], *,
                     linktype: int = LINKTYPE_ADMIN, nanosecond: bool = True) -> None:
    """Write ``records`` as a classic pcap of link type ``linktype``."""
    with open(path, "wb") as f:
        w = PcapWriter(f, linktype, nanosecond=nanosecond)
        for r in records:
            w.write(r.ts_ns, r.to_bytes())


def write_admin_pcapng(path: str | os.PathLike, records: Iterable[AdminRecord], *,
                       linktype: int = LINKTYPE_ADMIN, if_name: str | None = "avq") -> None:
    """Write ``records`` as a pcapng with one interface of link type ``linktype``."""
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        w.add_interface(linktype, name=if_name)
        for r in records:
            w.write(r.ts_ns, r.to_bytes())


# --- pairing ------------------------------------------------------------------------

@dataclass(slots=True)
class AdminExchange:
    """A request and its completion (either may be missing from the capture)."""

    request: AdminRecord | None
    completion: AdminRecord | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def latency_ns(self) -> int | None:
        if self.request is None or self.completion is None:
            return None
        return self.completion.ts_ns - self.request.ts_ns


class Pairer:
    """Pairs completions with requests by (owner, tag); a tag is free again once completed."""

    def __init__(self) -> None:
        self.pending: dict[tuple[int, int], AdminRecord] = {}

    def feed(self, rec: AdminRecord) -> tuple[AdminExchange | None, list[Finding]]:
        """Feed a record in capture order; returns the exchange it completes, if any.

        A request whose tag is still outstanding ends the earlier request's
        exchange as unanswered (returned); a completion with no outstanding
        request is returned alone.
        """
        key = (rec.owner, rec.tag)
        if rec.direction == REQUEST:
            old = self.pending.pop(key, None)
            self.pending[key] = rec
            if old is not None:
                f = Finding("warning", "admin_tag_reused",
                            f"tag {rec.tag} reused by a new request before the earlier "
                            f"{OPCODES.get(old.opcode, hex(old.opcode))} completed",
                            rec.offset, {"tag": rec.tag, "owner": owner_str(rec.owner)})
                return AdminExchange(old, None, [f]), [f]
            return None, []
        if rec.direction != COMPLETION:
            return None, []
        req = self.pending.pop(key, None)
        findings: list[Finding] = []
        if req is None:
            findings.append(Finding("warning", "admin_completion_unmatched",
                                    f"completion with tag {rec.tag} has no request in the capture; "
                                    "decoded from its own opcode/subtype", rec.offset,
                                    {"tag": rec.tag, "owner": owner_str(rec.owner)}))
        elif req.opcode != rec.opcode:
            findings.append(Finding("warning", "admin_completion_opcode_mismatch",
                                    f"completion tag {rec.tag} echoes opcode {rec.opcode:#x}, its request "
                                    f"has {req.opcode:#x}; decoded against the request", rec.offset,
                                    {"tag": rec.tag}))
        return AdminExchange(req, rec, findings), findings

    def close(self) -> list[AdminExchange]:
        """Requests never completed, in request order."""
        out = [AdminExchange(r, None, [Finding(
            "warning", "admin_request_unanswered",
            f"{OPCODES.get(r.opcode, hex(r.opcode))} tag {r.tag} has no completion in the capture",
            r.offset, {"tag": r.tag, "owner": owner_str(r.owner)})]) for r in self.pending.values()]
        self.pending.clear()
        return out


def pair_records(records: Iterable[AdminRecord | Finding]) -> Iterator[AdminExchange]:
    """Exchanges in completion order, then the unanswered requests (findings skipped)."""
    p = Pairer()
    for rec in records:
        if isinstance(rec, AdminRecord):
            ex, _ = p.feed(rec)
            if ex is not None:
                yield ex
    yield from p.close()


# --- ftrace form (trace_marker_raw pieces) -------------------------------------------

def trace_pieces(record_bytes: bytes, max_piece: int = 4000) -> list[bytes]:
    """Split one record into ``trace_marker_raw`` writes of at most ``max_piece`` bytes.

    Each write is ``id | total_length | piece_offset | piece bytes`` (u32 LE).
    Every piece but the last carries a multiple of 4 bytes: the kernel pads
    each write to 4 bytes and a piece's own length is not recorded, so only
    the last piece (whose end ``total_length`` gives) may be padded.
    """
    room = (max_piece - PIECE_HDR_LEN) & ~3
    if room <= 0:
        raise ValueError(f"max_piece must be at least {PIECE_HDR_LEN + 4}")
    total = len(record_bytes)
    out = []
    off = 0
    while True:
        chunk = record_bytes[off:off + room]
        out.append(_PIECE.pack(TRACE_ID, total, off) + bytes(chunk))
        off += len(chunk)
        if off >= total:
            return out


@dataclass(slots=True)
class _Partial:
    total: int
    data: bytearray
    ts_ns: int


class TracePieceJoiner:
    """Joins ``trace_marker_raw`` pieces per thread into records.

    :meth:`feed` takes one write as :func:`trace_pieces` made it (``id``
    first; the kernel's 4-byte padding after the piece is ignored because
    ``total_length``/``piece_offset`` say where the record ends).  A record
    whose pieces are missing is dropped with an ``admin_trace_piece_missing``
    finding; memory grows only with bytes actually fed.
    """

    def __init__(self) -> None:
        self._partial: dict[int, _Partial] = {}
        #: Timestamp of the first piece of the record last returned by :meth:`feed`.
        self.last_ts_ns: int | None = None

    def feed_raw_data(self, pid: int, ts_ns: int, id: int, buf: bytes) -> tuple[bytes | None, list[Finding]]:
        """Same as :meth:`feed` for a ``raw_data`` event split into its ``id`` and ``buf``."""
        if id != TRACE_ID:
            return None, []
        return self.feed(pid, ts_ns, struct.pack("<I", id) + bytes(buf))

    def feed(self, pid: int, ts_ns: int, buf: bytes) -> tuple[bytes | None, list[Finding]]:
        findings: list[Finding] = []
        if len(buf) < 4 or struct.unpack_from("<I", buf, 0)[0] != TRACE_ID:
            return None, findings
        ctx = {"pid": pid, "ts_ns": ts_ns}
        if len(buf) < PIECE_HDR_LEN:
            findings.append(Finding("error", "admin_trace_piece_short",
                                    f"admin trace piece of {len(buf)} bytes lacks its 12-byte header",
                                    None, ctx))
            return None, findings
        _, total, off = _PIECE.unpack_from(buf, 0)
        body = bytes(buf[PIECE_HDR_LEN:PIECE_HDR_LEN + max(total - off, 0)])
        part = self._partial.get(pid)
        if total > MAX_TRACE_RECORD:
            findings.append(Finding("error", "admin_trace_piece_bad",
                                    f"admin trace piece claims a {total}-byte record (limit {MAX_TRACE_RECORD})",
                                    None, ctx))
            return None, findings
        if off == 0:
            if part is not None:
                findings.append(self._missing(pid, part, "a new record started"))
            part = self._partial[pid] = _Partial(total, bytearray(), ts_ns)
        elif part is not None and total == part.total and 0 < len(part.data) - off < 4:
            # The previous piece was padded by the kernel (a writer that did not
            # keep pieces 4-aligned): this piece's offset says where it really ended.
            del part.data[off:]
        if off and (part is None or off != len(part.data) or total != part.total):
            if part is not None:
                findings.append(self._missing(pid, part, f"next piece starts at {off}"))
                del self._partial[pid]
            findings.append(Finding("error", "admin_trace_piece_missing",
                                    f"admin trace piece at offset {off} of a {total}-byte record without "
                                    "its earlier pieces; dropped", None, {**ctx, "piece_offset": off}))
            return None, findings
        part.data += body
        if len(part.data) < part.total:
            return None, findings
        del self._partial[pid]
        self.last_ts_ns = part.ts_ns
        return bytes(part.data[:part.total]), findings

    def _missing(self, pid: int, part: _Partial, why: str) -> Finding:
        return Finding("error", "admin_trace_piece_missing",
                       f"admin record of {part.total} bytes from pid {pid} incomplete "
                       f"({len(part.data)} bytes joined; {why}); dropped", None,
                       {"pid": pid, "ts_ns": part.ts_ns, "missing": part.total - len(part.data)})

    def close(self) -> list[Finding]:
        """Findings for records still incomplete at the end of the trace."""
        out = [self._missing(pid, p, "trace ended") for pid, p in self._partial.items()]
        self._partial.clear()
        return out
