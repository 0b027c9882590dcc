# SPDX-License-Identifier: GPL-2.0-only
"""Split the vfio-virtio migration stream into records, incrementally.

Spec: shared/spec/vfio-virtio-stream.md §3 (record format, stream rules,
decoder algorithm), §5.3 (what the target kernel accepts) and §6 (the
8-byte trailer, CVE-2025-38314).  DEVICE_DATA payloads are split into
device parts with :func:`dissect.virtio.parts_fast.decode_parts`.

Memory: a header's ``record_size`` is never used to allocate.  Payload bytes
are kept only as they arrive (bounded by the largest real record); a
record claiming more than 0xFFFFFFFF bytes (which the kernel rejects with
-ENOMEM) is consumed without keeping its bytes, so a claimed 2^63-byte
record decodes in constant memory.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from dissect.common.findings import Finding
from dissect.vfio.layers import (FLAGS_TAG_OPTIONAL, HDR, HDR_LEN, MAX_LOAD_SIZE, TAG_DEVICE_DATA,
                                 TAGS)
from dissect.virtio.parts_fast import HDR as PART_HDR
from dissect.virtio.parts_fast import TRAILER_KERNELS, TRAILER_LEN, PartTuple, decode_parts, part_type_name

#: Mid-stream search (``resync``): largest record taken for a first record (a virtio-net VF's
#: state is kilobytes; MAX_LOAD_SIZE would let one bad header hold the search for 4 GiB), and
#: how many bytes are searched before giving up.
RESYNC_MAX_RECORD = 16 << 20
RESYNC_LIMIT = 2 * RESYNC_MAX_RECORD + HDR_LEN
_ZERO7 = bytes(7)
_NONZERO = re.compile(rb"[^\x00]")
#: Above this the target's u32 "record_size + 8" buffer arithmetic wraps (DERIVED, §3.3).
WRAP_SIZE = 0xFFFFFFF7
READ_CHUNK = 1 << 20


@dataclass(slots=True)
class VfioRecord:
    """One record of a device's concatenated migration data."""

    index: int
    offset: int
    record_size: int
    flags: int
    tag: int
    tag_name: str | None
    optional: bool
    payload: bytes
    parts: list[PartTuple] | None
    trailer_bytes: int = 0
    findings: list[Finding] = field(default_factory=list)
    device: str | None = None

    @property
    def parts_length(self) -> int:
        """Bytes of parts data (record_size without the trailer)."""
        return self.record_size - self.trailer_bytes

    @property
    def end(self) -> int:
        return self.offset + HDR_LEN + self.record_size


class RecordSplitter:
    """Incremental record splitter for one device's stream (INTERFACES.md B).

    ``feed()`` returns the records completed by the data, ``gap()`` reports
    lost data and stops decoding, ``close()`` reports an incomplete last
    record.  ``findings`` holds every finding so far (record findings too).
    """

    def __init__(self, device: str | None = None, *, resync: bool = False) -> None:
        self.device = device
        #: the stream was captured from an unknown point (a migration picked up mid-stream): the
        #: first record is searched for (:meth:`_find_record`) before records are split
        self._resync = resync
        self._probe = bytearray()
        self._probe_from = 0
        self.findings: list[Finding] = []
        self._events: list[VfioRecord | Finding] = []
        self._pos = 0              # stream bytes consumed so far
        self._hdr = bytearray()    # partial header
        self._cur: tuple[int, int, int, int] | None = None  # offset, size, flags, tag
        self._chunks: list[bytes] = []
        self._remaining = 0
        self._keep = True
        self._index = 0
        self._stopped = False
        self._closed = False

    # -------------------------------------------------------------- helpers
    def _ctx(self, f: Finding, **ctx) -> Finding:
        if self.device is not None:
            ctx.setdefault("device", self.device)
        return f.with_context(**ctx) if ctx else f

    def _stream_finding(self, f: Finding) -> None:
        f = self._ctx(f)
        self.findings.append(f)
        self._events.append(f)

    def _drain(self) -> list[VfioRecord | Finding]:
        ev, self._events = self._events, []
        return ev

    # ------------------------------------------------------------------ API
    def feed(self, data: bytes | bytearray | memoryview) -> list[VfioRecord]:
        """Consume the next bytes of the stream; return the records they complete."""
        self._feed(data)
        return [e for e in self._drain() if isinstance(e, VfioRecord)]

    def feed_events(self, data: bytes | bytearray | memoryview) -> list[VfioRecord | Finding]:
        """Like :meth:`feed`, but also returns the stream-level findings raised by
        this data (oversized or wrapping record sizes), in stream order."""
        self._feed(data)
        return self._drain()

    def gap(self, nbytes: int) -> list[Finding]:
        """``nbytes`` of the stream were lost: report and stop decoding this stream."""
        if self._stopped or self._closed:
            self._pos += nbytes
            return []
        where = self._pos
        lost = ""
        if self._cur is not None:
            lost = f"; record {self._index} at offset {self._cur[0]} is lost"
        elif self._hdr:
            lost = f"; the record header at offset {self._pos - len(self._hdr)} is lost"
        self._stream_finding(Finding(
            "error", "vfio_stream_gap",
            f"{nbytes} bytes of device data missing at offset {where}{lost}; "
            f"record framing cannot be recovered, decoding of this stream stops",
            where, {"missing": nbytes}))
        self._pos += nbytes
        self._stopped = True
        self._cur, self._hdr, self._chunks = None, bytearray(), []
        return [e for e in self._drain() if isinstance(e, Finding)]

    def close(self) -> list[Finding]:
        """End of stream: report a partial header or payload (spec §5.3: the target drops it silently)."""
        if self._closed:
            return []
        if self._resync and not self._stopped:
            k = self._find_record(final=True)
            if k is not None:  # a record found only now that the end is known: split what follows it
                self._feed(self._picked_up(k))
        self._closed = True
        if not self._stopped:
            if self._cur is not None:
                off, size, _fl, tag = self._cur
                got = size - self._remaining
                self._stream_finding(Finding(
                    "error", "vfio_truncated_payload",
                    f"record {self._index} at offset {off} ends after {got} of {size} payload bytes "
                    f"({self._remaining} missing); the target kernel drops it without an error",
                    off, {"record": self._index, "missing": self._remaining,
                          "record_size": size, "tag": tag}))
            elif self._hdr:
                off = self._pos - len(self._hdr)
                self._stream_finding(Finding(
                    "error", "vfio_truncated_header",
                    f"stream ends {len(self._hdr)} bytes into a 16-byte record header "
                    f"({HDR_LEN - len(self._hdr)} missing)",
                    off, {"record": self._index, "missing": HDR_LEN - len(self._hdr)}))
        self._cur, self._hdr, self._chunks = None, bytearray(), []
        return [e for e in self._drain() if isinstance(e, Finding)]

    @property
    def offset(self) -> int:
        """Stream bytes consumed so far."""
        return self._pos

    # ------------------------------------------------------------- machine
    def _feed(self, data: bytes | bytearray | memoryview) -> None:
        mv = memoryview(data).cast("B")
        n = len(mv)
        if self._stopped or self._closed:
            self._pos += n
            return
        if self._resync:
            self._probe += mv
            k = self._find_record()
            if k is None:
                return
            mv = memoryview(self._picked_up(k))
            n = len(mv)
        i = 0
        while i < n:
            if self._cur is None:
                if not self._hdr and n - i >= HDR_LEN:
                    size, flags, tag = HDR.unpack_from(mv, i)
                    self._pos += HDR_LEN
                    i += HDR_LEN
                    self._start(self._pos - HDR_LEN, size, flags, tag)
                    # Fast path: the whole payload is in this buffer.
                    if self._cur is not None and self._keep and not self._chunks and self._remaining <= n - i:
                        end = i + self._remaining
                        self._pos += self._remaining
                        self._remaining = 0
                        self._finish(bytes(mv[i:end]))
                        i = end
                    continue
                take = min(HDR_LEN - len(self._hdr), n - i)
                self._hdr += mv[i:i + take]
                i += take
                self._pos += take
                if len(self._hdr) == HDR_LEN:
                    size, flags, tag = HDR.unpack(bytes(self._hdr))
                    self._hdr = bytearray()
                    self._start(self._pos - HDR_LEN, size, flags, tag)
                continue
            take = min(self._remaining, n - i)
            if self._keep:
                self._chunks.append(bytes(mv[i:i + take]))
            i += take
            self._pos += take
            self._remaining -= take
            if self._remaining == 0:
                payload = b"".join(self._chunks)
                self._chunks = []
                self._finish(payload)

    def _picked_up(self, k: int) -> bytes:
        """End the search at the record found ``k`` bytes in: the bytes before it are consumed, the
        rest is returned to be split."""
        rest = bytes(self._probe[k:])
        self._pos += k
        self._resync, self._probe = False, bytearray()
        return rest

    def _find_record(self, final: bool = False) -> int | None:
        """Offset in the probe where the first whole record starts, or None (more bytes needed,
        or the search was given up: a finding then says so).

        There is no magic (spec §3.2), so a start is a header the source writes (tag 0, flags
        0 or TAG_OPTIONAL, a size from 16 to RESYNC_MAX_RECORD) whose payload is device parts,
        the first of a known type, whose lengths end exactly at the record's end (or 8 bytes
        before it, the trailer of §6), followed by another such header or by the end of the
        bytes.  A candidate whose payload has not all arrived is waited for unless ``final``.
        """
        buf = self._probe
        n = len(buf)
        k = self._probe_from
        while k + HDR_LEN <= n:
            # a candidate's flags (le32, 0 or 1) and tag (le32 0) hold 7 zero bytes at +9: jump to the
            # next such run instead of trying every offset (device data of another kind, e.g. a
            # vendor VF's, is searched at the speed of bytes.find)
            z = buf.find(_ZERO7, k + 9)
            if z < 0 or z - 9 + HDR_LEN > n:
                k = max(k, n - HDR_LEN + 1)
                break
            k = z - 9
            size, flags, tag = HDR.unpack_from(buf, k)
            if size == 0:
                # inside a run of zeros every offset reads size 0: go to 2 bytes before its end
                nz = _NONZERO.search(buf, k)
                k = max(k + 1, (nz.start() if nz else n) - 2)
                continue
            if tag != TAG_DEVICE_DATA or flags & ~FLAGS_TAG_OPTIONAL or not HDR_LEN <= size <= RESYNC_MAX_RECORD:
                k += 1
                continue
            if k + 2 * HDR_LEN > n and not final:
                break  # the first part header is not here yet
            if k + 2 * HDR_LEN > n or part_type_name(PART_HDR.unpack_from(buf, k + HDR_LEN)[0]) is None:
                k += 1
                continue
            fit = _parts_fit(buf, k + HDR_LEN, size)
            end = k + HDR_LEN + size
            if fit is None and not final:
                break  # a plausible candidate not yet whole: wait (bounded by RESYNC_LIMIT)
            if fit and (end + HDR_LEN > n or _plausible_header(buf, end)):
                where = (f"the first record found starts {k} bytes in (those bytes end a record begun "
                         "before the capture)" if k else "its first captured byte starts a record")
                self._stream_finding(Finding(
                    "info", "vfio_stream_picked_up",
                    f"device data captured from the middle of its stream: {where}; offsets count from "
                    "the first captured byte", k, {"skipped": k}))
                return k
            k += 1
        self._probe_from = k
        if n - k > RESYNC_LIMIT or final:
            self._stream_finding(Finding(
                "warning", "vfio_stream_not_picked_up",
                f"no record start found in the {n} bytes of device data captured mid-stream; "
                "this device's data is not split into records", 0, {"searched": n}))
            self._resync, self._probe, self._stopped = False, bytearray(), True
            self._pos += n
        return None

    def _start(self, off: int, size: int, flags: int, tag: int) -> None:
        self._cur = (off, size, flags, tag)
        self._remaining = size
        self._keep = True
        if size > MAX_LOAD_SIZE:
            self._keep = False
            self._stream_finding(Finding(
                "error", "vfio_record_too_large",
                f"record {self._index} at offset {off} claims record_size {size} (> 0xFFFFFFFF): "
                f"the target kernel rejects it with -ENOMEM; its bytes are skipped, not kept",
                off, {"record": self._index, "record_size": size}))
        elif size > WRAP_SIZE:
            self._stream_finding(Finding(
                "warning", "vfio_record_size_wraps",
                f"record {self._index} at offset {off}: record_size 0x{size:x} > 0xFFFFFFF7, the "
                f"target's u32 buffer-size arithmetic (record_size + 8) wraps",
                off, {"record": self._index, "record_size": size}))
        if size == 0:
            self._finish(b"")

    def _finish(self, payload: bytes) -> None:
        off, size, flags, tag = self._cur  # type: ignore[misc]
        self._cur = None
        idx = self._index
        self._index += 1
        optional = bool(flags & FLAGS_TAG_OPTIONAL)
        rec = VfioRecord(idx, off, size, flags, tag, TAGS.get(tag), optional, payload, None,
                         device=self.device)
        fs: list[Finding] = []
        if flags & ~FLAGS_TAG_OPTIONAL:
            fs.append(Finding("warning", "vfio_flags_unknown",
                              f"record flags 0x{flags:x} have bits other than TAG_OPTIONAL set", off))
        if tag == TAG_DEVICE_DATA:
            if size == 0:
                fs.append(Finding("warning", "vfio_record_empty",
                                  "DEVICE_DATA record with record_size 0: the target still issues "
                                  "a DEV_PARTS_SET without parts", off))
            if optional:
                fs.append(Finding("info", "vfio_device_data_optional",
                                  "DEVICE_DATA record carries TAG_OPTIONAL (the kernel ignores flags "
                                  "for tag 0; the source always writes 0)", off))
            if self._keep:
                parts, stop, pf = decode_parts(payload, off + HDR_LEN)
                rec.parts = parts
                if size - stop == TRAILER_LEN:
                    rec.trailer_bytes = TRAILER_LEN
                fs.extend(pf)
        elif optional:
            fs.append(Finding("warning", "vfio_unknown_optional_tag",
                              f"record with unknown tag {tag} and TAG_OPTIONAL: skipped "
                              f"({size} bytes), as the target kernel does", off, {"tag": tag}))
        else:
            fs.append(Finding("error", "vfio_unknown_mandatory_tag",
                              f"record with unknown tag {tag} without TAG_OPTIONAL: the target "
                              f"kernel fails the load with -EOPNOTSUPP", off, {"tag": tag}))
        fs = [self._ctx(f, record=idx) for f in fs]
        rec.findings = fs
        self.findings.extend(fs)
        self._events.append(rec)


def _parts_fit(buf: bytearray, start: int, size: int) -> bool | None:
    """Do the part lengths from ``start`` end at ``size`` (or 8 before)?  None: not all here."""
    n = min(len(buf), start + size)
    pos = start
    while pos + HDR_LEN <= n:
        pos += HDR_LEN + PART_HDR.unpack_from(buf, pos)[4]
    if start + size > len(buf):
        return None if pos <= start + size else False
    return (start + size - pos) in (0, TRAILER_LEN)


def _plausible_header(buf: bytearray, at: int) -> bool:
    _size, flags, tag = HDR.unpack_from(buf, at)
    return tag == TAG_DEVICE_DATA and not flags & ~FLAGS_TAG_OPTIONAL


def split_records(data: bytes | bytearray | memoryview | BinaryIO,
                  device: str | None = None) -> Iterator[VfioRecord | Finding]:
    """Records and stream findings of a whole stream (bytes or a binary file), in order.

    Record-level findings are in each ``VfioRecord.findings``; the Findings
    yielded here are the stream-level ones (oversized claims, truncation).
    """
    sp = RecordSplitter(device)
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield from sp.feed_events(data)
    else:
        while True:
            chunk = data.read(READ_CHUNK)
            if not chunk:
                break
            yield from sp.feed_events(chunk)
    yield from sp.close()


def build_record(payload: bytes, tag: int = TAG_DEVICE_DATA, flags: int = 0,
                 trailer_bug: bool = False, trailer: bytes = b"\xa5" * TRAILER_LEN) -> bytes:
    """One record: 16-byte header + payload.  ``trailer_bug`` appends the 8
    junk bytes (and counts them in record_size) as kernels 6.13.0–6.15.2 did."""
    if trailer_bug:
        if len(trailer) != TRAILER_LEN:
            raise ValueError("the trailer is 8 bytes")
        payload = bytes(payload) + trailer
    return HDR.pack(len(payload), flags, tag) + bytes(payload)


__all__ = ["RecordSplitter", "VfioRecord", "split_records", "build_record", "TRAILER_KERNELS",
           "HDR_LEN", "TAG_DEVICE_DATA", "TAGS"]
