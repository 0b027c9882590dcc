# SPDX-License-Identifier: GPL-2.0-only
"""Everything of one migration: all flows of a capture, or a raw stream file,
with the VFIO device data assembled across chunks, sections and multifd
channels and split into vfio-virtio records
(qemu-migration-stream.md §10.8, vfio-virtio-stream.md §2–3).

Output order (json-lines.md): flows in order of their first packet; per flow
the ``flow`` object, then the client→server units, then the server→client
units (return path), each in byte-stream order; capture-level findings last.
Units are spooled per flow (to a temporary file beyond a bound) because
reassembly interleaves the flows.
"""
from __future__ import annotations

import bisect
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from dissect.capture.flows import why_not_decoded
from dissect.common.findings import Finding
from dissect.qemu import wire as W
from dissect.qemu.midstream import Midstream, MidstreamReturnPath, adopted_roles, picks_up
from dissect.qemu.multifd import MultifdParser
from dissect.qemu.pages import PageLog, TappedMultifdParser, tap_stream
from dissect.qemu.retpath import ReturnPathParser
from dissect.qemu.stream import StreamParser
from dissect.qemu.vmdesc import find_trailer
from dissect.vfio.stream import RecordSplitter, VfioRecord

#: Out-of-order multifd device-state bytes held per device before missing packets count as lost.
MAX_PENDING = 64 * 1024 * 1024
#: Units kept in memory per spool before spilling to a temporary file.
SPILL_AT = 20000
READ_CHUNK = 1 << 20


@dataclass
class RecordUnit:
    """A decoded vfio-virtio record with where and when its bytes travelled."""

    device: str
    record: VfioRecord
    phase: str | None
    ts_first_ns: int | None
    ts_last_ns: int | None


@dataclass
class _Dev:
    name: str
    splitter: RecordSplitter
    data_off: int = 0
    starts: list[int] = field(default_factory=list)
    pieces: list[tuple[int | None, str]] = field(default_factory=list)  # (ts, phase) per start
    config: bytes | None = None
    next_idx: int = 0
    pending: dict[int, tuple[int, bytes, int | None, int | None, int]] = field(default_factory=dict)
    pending_bytes: int = 0
    records: int = 0
    multifd_seen: bool = False
    stopped: bool = False
    section_id: int | None = None


@dataclass
class _Held:
    """One unnamed section's VFIO data, in stream order: (phase, data or None for lost bytes,
    length, ts)."""

    pieces: list[tuple[str, bytes | None, int, int | None]] = field(default_factory=list)
    length: int = 0   # bytes of the stream, lost ones included (its data offsets)
    kept: int = 0     # bytes held in memory
    dropped: bool = False  # MAX_PENDING was reached (said once)

    def add(self, phase: str, data: bytes | None, n: int, ts: int | None) -> None:
        self.pieces.append((phase, data, n, ts))
        self.length += n
        self.kept += 0 if data is None else n

    def extend(self, other: "_Held") -> None:
        for piece in other.pieces:
            self.add(*piece)
        self.dropped = self.dropped or other.dropped


class DeviceAssembler:
    """Per VFIO device: concatenates chunk data in stream order (main channel,
    then multifd device-state packets by ``idx``) and splits it into records.

    Implements the parser-side sinks: ``data``/``lost``/``config`` for main
    channel chunks and ``device_state`` for multifd packets; each returns the
    units (``RecordUnit``, ``Finding``, contract dicts) to place in the
    output where the completing bytes arrived.
    """

    def __init__(self) -> None:
        self.devices: dict[str, _Dev] = {}
        #: VFIO data of sections picked up mid-stream whose device is not yet named, by section id
        self.unnamed: dict[int, _Held] = {}
        self.unnamed_bytes = 0  # kept in memory over all of them (bounded by MAX_PENDING)

    def _dev(self, name: str) -> _Dev:
        d = self.devices.get(name)
        if d is None:
            d = self.devices[name] = _Dev(name, RecordSplitter(name))
        return d

    def data_offset(self, device: str | int) -> int:
        if isinstance(device, int):
            held = self.unnamed.get(device)
            return held.length if held is not None else 0
        return self._dev(device).data_off

    def section(self, device: str, section_id: int) -> list[Any]:
        """The main channel announced the device's section id (used for multifd chunks).

        Data held for that id since the connection was picked up mid-stream is split now, from
        its first whole record (:class:`RecordSplitter` ``resync``)."""
        d = self._dev(device)
        d.section_id = section_id
        held = self.unnamed.pop(section_id, None)
        if held is None:
            return []
        self.unnamed_bytes -= held.kept
        out: list[Any] = [Finding("info", "vfio_device_named",
                                  f"section {section_id} is {device}: the {held.length} bytes of device data "
                                  "held since the capture picked it up are split into records now", None,
                                  {"device": device, "section_id": section_id})]
        if d.data_off == 0 and d.records == 0:
            d.splitter = RecordSplitter(device, resync=True)
        for phase, data, n, ts in held.pieces:
            if data is None:
                d.data_off += n
                out.extend(d.splitter.gap(n))
            else:
                out.extend(self._feed(d, phase, data, ts))
        return out

    def absorb(self, other: "DeviceAssembler") -> None:
        """Take over what a mid-stream probe's assembler gathered (its flow was adopted as this
        migration's main channel): its devices and the data held for unnamed sections."""
        for name, d in other.devices.items():
            self.devices.setdefault(name, d)
        for sid, held in other.unnamed.items():
            self.unnamed.setdefault(sid, _Held()).extend(held)
        self.unnamed_bytes += other.unnamed_bytes
        other.devices, other.unnamed, other.unnamed_bytes = {}, {}, 0

    def _hold(self, section_id: int, phase: str, data: bytes | None, n: int, ts: int | None) -> list[Any]:
        held = self.unnamed.setdefault(section_id, _Held())
        out: list[Any] = []
        if data is not None and self.unnamed_bytes + n > MAX_PENDING:
            if not held.dropped:
                out.append(Finding("warning", "vfio_unnamed_too_large",
                                   f"section {section_id}: more than {MAX_PENDING} bytes of device data wait "
                                   "for the device's name; the rest is counted, not kept", None,
                                   {"section_id": section_id}))
            held.dropped = True
            data = None  # counted as lost
        if data is not None:
            self.unnamed_bytes += n
        held.add(phase, data, n, ts)
        return out

    def _ts_phase(self, d: _Dev, off: int) -> tuple[int | None, str | None]:
        i = bisect.bisect_right(d.starts, off) - 1
        if i < 0:
            return None, None
        return d.pieces[i]

    def _feed(self, d: _Dev, phase: str, data: bytes, ts: int | None) -> list[Any]:
        if not data:
            return []
        d.starts.append(d.data_off)
        d.pieces.append((ts, phase))
        d.data_off += len(data)
        out: list[Any] = []
        last_end = None
        for ev in d.splitter.feed_events(data):
            if isinstance(ev, VfioRecord):
                t0, ph = self._ts_phase(d, ev.offset)
                end = ev.offset + 16 + ev.record_size
                t1, _ = self._ts_phase(d, end - 1)
                out.append(RecordUnit(d.name, ev, ph, t0, t1))
                d.records += 1
                last_end = end
            else:
                out.append(ev)
        if last_end is not None:
            # Pieces wholly before the end of the last record are no longer needed.
            k = bisect.bisect_right(d.starts, last_end) - 1
            if k > 0:
                del d.starts[:k]
                del d.pieces[:k]
        return out

    # main channel (StreamParser's DeviceSink); an int device is a section id not yet named
    def data(self, device: str | int, phase: str, data: bytes, ts_ns: int | None, offset: int) -> list[Any]:
        if isinstance(device, int):
            return self._hold(device, phase, data, len(data), ts_ns)
        return self._feed(self._dev(device), phase, data, ts_ns)

    def lost(self, device: str | int, nbytes: int, offset: int) -> list[Any]:
        if isinstance(device, int):
            return self._hold(device, "gap", None, nbytes, None)
        d = self._dev(device)
        d.data_off += nbytes
        return list(d.splitter.gap(nbytes))

    def config(self, device: str, blob: bytes, ts_ns: int | None, offset: int) -> list[Any]:
        self._dev(device).config = blob
        return []

    # multifd (MultifdParser's DeviceStateSink)
    def device_state(self, idstr: str, instance_id: int, idx: int, flags: int, data: bytes,
                     ts_ns: int | None, flow: int | None, offset: int) -> list[Any]:
        d = self._dev(idstr)
        d.multifd_seen = True
        out: list[Any] = []
        if idx < d.next_idx or idx in d.pending:
            return [Finding("error", "vfio_packet_duplicate", f"device-state packet idx {idx} seen twice",
                            offset, {"device": idstr, "flow": flow})]
        d.pending[idx] = (flags, data, ts_ns, flow, offset)
        d.pending_bytes += len(data)
        while d.next_idx in d.pending:
            out.extend(self._deliver(d, d.next_idx))
        if d.pending_bytes > MAX_PENDING:
            first = min(d.pending)
            out.append(Finding("error", "vfio_packet_missing", f"device-state packets {d.next_idx}..{first - 1} "
                               f"missing while {d.pending_bytes} bytes wait; treated as lost", None,
                               {"device": idstr}))
            out.extend(d.splitter.gap(1))
            d.next_idx = first
            while d.next_idx in d.pending:
                out.extend(self._deliver(d, d.next_idx))
        return out

    def _deliver(self, d: _Dev, idx: int) -> list[Any]:
        flags, data, ts, flow, offset = d.pending.pop(idx)
        d.pending_bytes -= len(data)
        d.next_idx = idx + 1
        if flags & W.VFIO_DEVICE_STATE_CONFIG_STATE:
            blob = _strip_config(data)
            d.config = blob if blob is not None else data
            unit = {"kind": "vfio_chunk", "flow": flow, "device": d.name, "section_id": d.section_id, "phase": "config",
                    "offset": offset, "data_offset": None, "size": len(d.config), "ts": _s(ts), "ts_ns": ts, "idx": idx,
                    "data": d.config.hex()}
            out: list[Any] = [unit]
            if blob is None:
                out.append(Finding("warning", "vfio_config_packet", "config-state packet does not hold "
                                   "DEV_CONFIG_STATE … END_OF_STATE", offset, {"device": d.name, "flow": flow}))
            return out
        unit = {"kind": "vfio_chunk", "flow": flow, "device": d.name, "section_id": d.section_id, "phase": "stopcopy",
                "offset": offset, "data_offset": d.data_off, "size": len(data), "ts": _s(ts), "ts_ns": ts, "idx": idx}
        return [unit] + self._feed(d, "stopcopy", data, ts)

    def close(self) -> list[Any]:
        out: list[Any] = []
        for sid, held in self.unnamed.items():
            out.append(Finding("info", "vfio_data_unnamed",
                               f"section {sid}: {held.length} bytes of VFIO device data whose device was never named "
                               "in the capture (its START came before the capture and no later section named "
                               "it): not split into records", None, {"section_id": sid}))
        self.unnamed = {}
        for d in self.devices.values():
            if d.pending:
                out.append(Finding("error", "vfio_packet_missing", f"device-state packet {d.next_idx} never "
                                   f"arrived; {len(d.pending)} later packets not decoded", None,
                                   {"device": d.name}))
                out.extend(d.splitter.gap(1))
            out.extend(d.splitter.close())
        return out


def _strip_config(data: bytes) -> bytes | None:
    """The config blob of a multifd CONFIG_STATE packet: DEV_CONFIG_STATE, blob, END_OF_STATE (§10.6)."""
    if len(data) >= 16 and W.BE64.unpack_from(data)[0] == W.VFIO_MIG_FLAG_DEV_CONFIG_STATE \
            and W.BE64.unpack_from(data, len(data) - 8)[0] == W.VFIO_MIG_FLAG_END_OF_STATE:
        return data[8:-8]
    return None


def _s(ns: int | None) -> float | None:
    return None if ns is None else ns / 1_000_000_000


class Spool:
    """Ordered units of one flow direction; spills converted dicts to a temp file."""

    def __init__(self, convert: Callable[[Any], list[dict[str, Any]]] | None) -> None:
        self.convert = convert
        self.items: list[Any] = []
        self._file: Any = None
        self.count = 0

    def append(self, item: Any) -> None:
        self.count += 1
        if self.convert is not None:
            self.items.extend(self.convert(item))
            if len(self.items) >= SPILL_AT:
                if self._file is None:
                    self._file = tempfile.TemporaryFile("w+", encoding="utf-8")
                for obj in self.items:
                    self._file.write(json.dumps(obj, separators=(",", ":"), default=_jdefault) + "\n")
                self.items = []
        else:
            self.items.append(item)

    def __iter__(self) -> Iterator[Any]:
        if self._file is not None:
            self._file.seek(0)
            for line in self._file:
                yield json.loads(line)
            self._file.close()
            self._file = None
        yield from self.items
        self.items = []


def _jdefault(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    raise TypeError(type(v).__name__)


@dataclass
class CaptureResult:
    """What :func:`decode_capture` learnt besides the units (filled as it runs)."""

    flows: list[Any] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    parsers: dict[tuple[int, str], Any] = field(default_factory=dict)
    assembler: DeviceAssembler = field(default_factory=DeviceAssembler)

    @property
    def zero_pages(self) -> int:
        return sum(p.ram.zero_pages if isinstance(p, StreamParser) else getattr(p, "zero_pages", 0)
                   for p in self.parsers.values() if hasattr(p, "ram") or isinstance(p, MultifdParser))

    @property
    def normal_pages(self) -> int:
        return sum(p.ram.normal_pages if isinstance(p, StreamParser) else getattr(p, "normal_pages", 0)
                   for p in self.parsers.values() if hasattr(p, "ram") or isinstance(p, MultifdParser))


def decode_capture(path: str | os.PathLike[str], *, convert: Callable[[Any], list[dict[str, Any]]] | None = None,
                   result: CaptureResult | None = None, page_log: PageLog | None = None) -> Iterator[Any]:
    """Decode every migration flow of a pcap/pcapng capture.

    Yields the flows' ``FlowStats`` (C's, ``.to_json()`` gives the contract
    ``flow``) each followed by its units, then capture-level findings.
    Units are contract dicts, :class:`Finding` and :class:`RecordUnit`
    objects — or, with ``convert``, whatever ``convert(item)`` returns
    (a list of dicts), which lets large flows spill to disk.  ``page_log``:
    an optional :class:`dissect.qemu.pages.PageLog` that receives every page sent.
    """
    from dissect.capture.tcp import reassemble

    res = result if result is not None else CaptureResult()
    spools: dict[tuple[int, str], Spool] = {}
    page_size = {"v": W.DEFAULT_PAGE_SIZE}
    # One migration = a main channel and the multifd channels to the same server
    # endpoint (§1.2); a later main channel to that endpoint starts a new migration.
    by_server: dict[str, DeviceAssembler] = {}
    assemblers: list[DeviceAssembler] = []

    def assembler(server: str, new: bool) -> DeviceAssembler:
        a = by_server.get(server)
        if a is None or new:
            a = res.assembler if not assemblers else DeviceAssembler()
            by_server[server] = a
            assemblers.append(a)
        return a

    def factory(info: Any, direction: str) -> Any:
        spool = spools[(info.index, direction)] = Spool(convert)
        if direction == "c2s":
            if picks_up(info):  # open before the capture: maybe a migration channel mid-way
                p: Any = Midstream(spool.append, flow=info.index, page_size=page_size["v"],
                                   devices=lambda server=info.server: assembler(server, False))
            elif info.role == "main":
                p = StreamParser(spool.append, flow=info.index, devices=assembler(info.server, True))
                if page_log is not None:
                    tap_stream(p, page_log)
            elif info.role == "multifd" and page_log is not None:
                p = TappedMultifdParser(spool.append, flow=info.index, devices=assembler(info.server, False),
                                        page_size=page_size["v"], page_log=page_log)
            elif info.role == "multifd":
                p = MultifdParser(spool.append, flow=info.index, devices=assembler(info.server, False),
                                  page_size=page_size["v"])
            else:
                return None
        elif info.role == "main":
            p = ReturnPathParser(spool.append, flow=info.index)
        elif not info.syn_seen:  # the return path of a connection that may be picked up mid-stream
            p = MidstreamReturnPath(spool.append, flow=info.index)
        else:
            return None
        res.parsers[(info.index, direction)] = p
        return p

    rr = reassemble(path, factory)
    adopted_roles(rr.flows, {i: p for (i, d), p in res.parsers.items() if d == "c2s"})
    for fl in rr.flows:
        r = res.parsers.get((fl.flow, "s2c"))
        if isinstance(r, MidstreamReturnPath) and fl.role == "main":
            r.flush()
    res.flows = rr.flows
    for fl in rr.flows:
        yield fl
        for direction in ("c2s", "s2c"):
            sp = spools.get((fl.flow, direction))
            if sp is not None:
                yield from sp
    tail: list[Any] = list(rr.findings) + why_not_decoded(rr.flows)
    for a in assemblers:
        tail.extend(a.close())
    res.findings = [f for f in tail if isinstance(f, Finding)]
    for item in tail:
        if convert is not None:
            yield from convert(item)
        else:
            yield item


def decode_stream_file(path: str | os.PathLike[str], *, use_vmdesc: bool = True,
                       assembler: DeviceAssembler | None = None, page_log: PageLog | None = None) -> Iterator[Any]:
    """Decode a raw main-channel stream file (``exec:cat`` output or ``migtrace extract``).

    The vmdesc trailer is read from the end of the file first (as QEMU's
    analyze-migration.py does) so FULL sections are delimited by their
    described size; without a trailer they are delimited by footer
    resynchronisation.  A finding says which.  No timestamps: ``ts`` is None.
    """
    asm = assembler if assembler is not None else DeviceAssembler()
    out: list[Any] = []
    vd, why = find_trailer(path) if use_vmdesc else (None, "not used")
    if vd is not None:
        out.append(Finding("info", "full_sections_by_vmdesc", "FULL sections are delimited by the sizes in the "
                           "vmdesc trailer (read from the end of the file first)", vd.offset))
    else:
        out.append(Finding("info", "no_vmdesc", f"vmdesc trailer not used ({why}); FULL sections are "
                           "delimited by footer resynchronisation", None))
    size = os.path.getsize(path)
    parser = StreamParser(out.append, devices=asm, vmdesc=vd, stream_size=size)
    if page_log is not None:
        tap_stream(parser, page_log)
    with open(path, "rb") as f:
        off = 0
        while True:
            chunk = f.read(READ_CHUNK)
            if not chunk:
                break
            skip = parser.data(off, chunk, None)  # type: ignore[arg-type]
            off += len(chunk)
            if skip and skip > READ_CHUNK and off + skip <= size:
                # Bytes the parser does not need (a mapped-ram page region, page bodies): seek past.
                off += skip
                f.seek(off)
            if out:
                yield from out
                out.clear()
    parser.close()
    out.extend(asm.close())
    yield from out
