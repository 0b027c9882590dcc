# SPDX-License-Identifier: GPL-2.0-only
"""A migration connection that was already open when the capture started (no SYN, no header).

``tcpdump`` started after ``migrate`` misses the stream header, the setup sections (with the
section names) and, for multifd, the init packet: :func:`dissect.capture.flows.classify` cannot
tell the connection from its first bytes, so it is ``other``.  :class:`Midstream` is the
client-to-server consumer of such a flow: it feeds the first bytes to a main-channel parser and
to a multifd parser at once, both starting lost (:class:`~dissect.qemu.stream.StreamParser`
``midstream=True``: resynchronise on a section footer followed by a plausible record, learn the
RAM section's id from its data; :class:`~dissect.qemu.multifd.MultifdParser`: resynchronise on
a packet header), and adopts the first whose output after its resynchronisation is clean
(main: two sections; multifd: one packet).  The units it held are then handed on, preceded by
an info ``flow_picked_up_midstream``, and the parser takes every later byte directly.  Nothing is
adopted within :data:`PROBE_LIMIT` bytes (or by the end): the flow stays ``other`` and nothing is
emitted for it (``why_not_decoded`` reports it).

The return path of such a flow is :class:`MidstreamReturnPath`.  Not recovered mid-stream: the names of sections announced before the capture other than RAM (kept opaque: VFIO device data
among them, ``section_unnamed``), and the RAM block of CONTINUE pages before the first named one
(block ``?``).
"""
from __future__ import annotations

from typing import Any, Callable

from dissect.common.findings import Finding
from dissect.qemu import wire as W
from dissect.qemu.multifd import MultifdParser
from dissect.qemu.stream import StreamParser

#: Bytes probed before the flow is left alone (a RAM section of 512 KiB pages fits many times).
PROBE_LIMIT = 8 << 20


def _new_assembler() -> Any:
    from dissect.qemu.session import DeviceAssembler  # the session imports this module

    return DeviceAssembler()


def picks_up(info: Any) -> bool:
    """Is the client-to-server side of this flow (a ``FlowInfo``) one to probe: open before the
    capture (no SYN) and not begun by the stream header (a multifd magic first is then a packet
    header, not the init packet)."""
    return not info.syn_seen and info.role != "main"


def adopted_roles(flows: list[Any], probes: dict[int, Any]) -> None:
    """Give each flow picked up mid-stream (``probes``: flow index -> :class:`Midstream`) the
    role it was decoded as."""
    for fl in flows:
        m = probes.get(fl.flow)
        if isinstance(m, Midstream) and m.role is not None:
            fl.role = m.role


class _Collect:
    """A probe's units, with what adoption asks of them kept up to date as they arrive (a probe
    is asked after every chunk, so its units are not rescanned)."""

    def __init__(self, kind: str | None = None) -> None:
        self.units: list[Any] = []
        self.kind = kind
        self.resynced = False  # the parser's first ``resync`` finding was seen
        self.spoiled = False   # an error after it
        self.count = 0         # units of ``kind`` after it

    def __call__(self, item: Any) -> None:
        self.units.append(item)
        if isinstance(item, Finding):
            if not self.resynced:
                self.resynced = item.code == "resync"
            elif item.severity == "error":
                self.spoiled = True
        elif self.resynced and isinstance(item, dict) and item.get("kind") == self.kind:
            self.count += 1

    def clean(self, need: int) -> bool:
        """After the first ``resync``: ``need`` units of ``kind`` and no error."""
        return self.resynced and not self.spoiled and self.count >= need


class Midstream:
    """``StreamConsumer`` for the client-to-server bytes of a flow open before the capture."""

    def __init__(self, sink: Callable[[Any], None], *, flow: int, page_size: int = W.DEFAULT_PAGE_SIZE,
                 devices: Callable[[], Any] | None = None) -> None:
        self.sink = sink
        self.flow = flow
        #: the session's device sink of this flow's migration, asked for once the role is known;
        #: the main probe feeds a private one meanwhile (a flow that turns out not to be a main
        #: channel must leave nothing behind), absorbed on adoption
        self._devices = devices
        self._probe_devices = _new_assembler() if devices is not None else None
        #: "main" or "multifd" once adopted
        self.role: str | None = None
        self.parser: Any = None
        main_sink, mfd_sink = _Collect("section"), _Collect("multifd_packet")
        mfd = MultifdParser(mfd_sink, flow=flow, page_size=page_size)
        mfd._init_done = True  # the init packet came before the capture
        mfd._lost = True
        self._probes: dict[str, tuple[Any, _Collect]] = {
            "main": (StreamParser(main_sink, flow=flow, midstream=True, page_size=page_size,
                                  devices=self._probe_devices), main_sink),
            "multifd": (mfd, mfd_sink),
        }
        self._start: int | None = None

    @property
    def parsers(self) -> list[Any]:
        return [self.parser] if self.parser is not None else []

    def data(self, offset: int, data: bytes | memoryview, ts_ns: int) -> int | None:
        if self.parser is not None:
            return self.parser.data(offset, data, ts_ns)
        if not self._probes:
            return None
        if self._start is None:
            self._start = offset
        for role, (p, col) in list(self._probes.items()):
            p.data(offset, data, ts_ns)  # skip hints ignored while probing: every byte is passed
            if col.clean(2 if role == "main" else 1):
                self._adopt(role, offset + len(data))
                return None
        if offset + len(data) - self._start > PROBE_LIMIT:
            self._probes = {}  # not a migration stream we can pick up: left alone
        return None

    def gap(self, start: int, end: int) -> None:
        if self.parser is not None:
            self.parser.gap(start, end)
        for p, _ in self._probes.values():
            p.gap(start, end)

    def close(self) -> None:
        if self.parser is not None:
            self.parser.close()
            return
        # a short flow: what resynchronised cleanly by its end is taken, then closed (its end
        # findings, e.g. a record cut by the capture's end, are the adopted flow's)
        for role, (p, col) in list(self._probes.items()):
            if col.clean(1):
                self._adopt(role, None)
                p.close()
                return
        self._probes = {}

    def _adopt(self, role: str, at: int | None) -> None:
        p, col = self._probes[role]
        self._probes = {}
        self.role, self.parser = role, p
        res = next(u for u in col.units if isinstance(u, Finding) and u.code == "resync")
        self.sink(Finding("info", "flow_picked_up_midstream",
                          f"flow {self.flow} was already open when the capture started: decoded as a "
                          f"{'QEMU main channel' if role == 'main' else 'multifd channel'} from offset "
                          f"{res.offset}, the first record found; what it carried before the capture "
                          "(stream header, setup, section names) is missing", res.offset,
                          {"flow": self.flow, "role": role}))
        for u in col.units:
            self.sink(u)
        p.sink = self.sink
        if self._devices is not None:
            shared = self._devices()
            if role == "main":
                shared.absorb(self._probe_devices)
            p.devices = shared
        self._probe_devices = None


#: units a return-path probe keeps (a real return path holds a handful of messages)
MAX_RP_UNITS = 10_000


class MidstreamReturnPath:
    """``StreamConsumer`` for the server-to-client bytes of a flow open before the capture.

    Return-path messages are small and sent apart, so a capture usually starts between two: a
    :class:`~dissect.qemu.retpath.ReturnPathParser` reads from the first captured byte into a
    buffer; :meth:`flush` (called by the session once the client side was picked up as a main
    channel) hands its units on when they hold no error, or one info finding when the capture
    started inside a message (nothing is guessed).  Never flushed: nothing is emitted.
    """

    def __init__(self, sink: Callable[[Any], None], *, flow: int) -> None:
        from dissect.qemu.retpath import ReturnPathParser

        self.sink = sink
        self.flow = flow
        self._col = _Collect()
        self.parser = ReturnPathParser(self._col, flow=flow)
        self._start: int | None = None

    def data(self, offset: int, data: bytes | memoryview, ts_ns: int) -> None:
        if self._start is None:
            self._start = offset
        if len(self._col.units) < MAX_RP_UNITS:
            self.parser.data(offset, data, ts_ns)

    def gap(self, start: int, end: int) -> None:
        self.parser.gap(start, end)

    def close(self) -> None:
        self.parser.close()

    def flush(self) -> None:
        units = self._col.units
        if any(isinstance(u, Finding) and u.severity == "error" for u in units):
            self.sink(Finding("info", "return_path_not_picked_up",
                              f"flow {self.flow}: the return path's first captured bytes are inside a message "
                              "(the capture started there): not decoded", self._start, {"flow": self.flow}))
            return
        if not units:
            return
        self.sink(Finding("info", "flow_picked_up_midstream",
                          f"flow {self.flow}: return path decoded from its first captured byte (messages "
                          "sent before the capture are missing)", self._start,
                          {"flow": self.flow, "role": "return-path"}))
        for u in units:
            self.sink(u)
