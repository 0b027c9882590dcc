# SPDX-License-Identifier: GPL-2.0-only
"""The TCP reassembler's data: what consumers receive and report, and per-direction state.

Spec: qemu-migration-stream.md §1.3 (TCP reassembly); the reassembly
itself is :mod:`dissect.capture.tcp`, which re-exports the public names.
``_Dir`` and ``_Flow`` are the state the generic path and the inlined paths
(:mod:`dissect.capture.fastpath`, :mod:`dissect.capture.fastpath_ng`)
share.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

from dissect.common.findings import Finding

__all__ = ["Direction", "StreamConsumer", "FlowInfo", "FlowStats", "ReassemblyResult", "ConsumerFactory"]

Direction = Literal["c2s", "s2c"]

_M32 = 0xFFFFFFFF


class StreamConsumer(Protocol):
    """Receives one direction's bytes.  ``data`` may return an int k > 0: the k
    bytes after ``data`` are not needed (e.g. the rest of a RAM page body), so
    the reassembler drops them without a call and passes the next bytes at
    their own offset (before a ``gap`` or ``close`` it first calls ``data``
    with no bytes at the offset reached).  None/0: every byte is passed."""

    def data(self, offset: int, data: bytes | memoryview, ts_ns: int) -> int | None: ...
    def gap(self, start: int, end: int) -> None: ...
    def close(self) -> None: ...


@dataclass(slots=True)
class FlowInfo:
    """What a consumer factory learns about a flow.

    ``role`` is the flow's role as known when the factory is called: the
    client-to-server direction is classified on its first 8 bytes before its
    consumer is made, so a return-path consumer (s2c of a main flow) sees
    ``"main"`` unless the server spoke first.
    """
    index: int
    client: str
    server: str
    first_ts_ns: int
    role: str = "other"
    #: the capture holds the connection's SYN (False: it was open before the capture started)
    syn_seen: bool = False


@dataclass(slots=True)
class FlowStats:
    """Contract ``flow`` fields (json-lines.md) plus counters."""
    flow: int
    client: str
    server: str
    role: str
    c2s_bytes: int = 0
    s2c_bytes: int = 0
    retransmitted_bytes: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    first_ts_ns: int = 0
    last_ts_ns: int = 0
    packets: int = 0
    overlap_mismatch_bytes: int = 0
    syn_seen: bool = False
    fin_seen: bool = False
    rst_seen: bool = False
    #: the first bytes the client sent (what the role was decided on; not in the contract object)
    head: bytes = b""

    @property
    def first_ts(self) -> float:
        return self.first_ts_ns / 1_000_000_000

    @property
    def last_ts(self) -> float:
        return self.last_ts_ns / 1_000_000_000

    @property
    def gap_bytes(self) -> int:
        return sum(g["end"] - g["start"] for g in self.gaps)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "flow", "flow": self.flow, "client": self.client, "server": self.server,
                "role": self.role, "c2s_bytes": self.c2s_bytes, "s2c_bytes": self.s2c_bytes,
                "retransmitted_bytes": self.retransmitted_bytes, "gaps": list(self.gaps),
                "first_ts": self.first_ts, "last_ts": self.last_ts,
                "first_ts_ns": self.first_ts_ns, "last_ts_ns": self.last_ts_ns,
                "packets": self.packets, "overlap_mismatch_bytes": self.overlap_mismatch_bytes,
                "syn_seen": self.syn_seen, "fin_seen": self.fin_seen, "rst_seen": self.rst_seen}


@dataclass(slots=True)
class ReassemblyResult:
    flows: list[FlowStats]
    findings: list[Finding]
    packets: int = 0
    linktypes: list[int] = field(default_factory=list)


ConsumerFactory = Callable[[FlowInfo, Direction], "StreamConsumer | None"]


class _Dir:
    """One direction of a connection."""

    __slots__ = ("name", "flow", "base", "nxt", "pending", "heap", "pending_bytes", "consumer",
                 "state", "head", "head_off", "head_ts", "ring", "ring_len", "delivered",
                 "max_end", "fin_off", "trunc_hole", "ack_out", "before_start", "peer", "fast", "expect",
                 "ring_from", "skip")

    def __init__(self, name: Direction, flow: "_Flow") -> None:
        self.name = name
        self.flow = flow
        self.base: int | None = None  # sequence number of stream offset 0
        self.nxt = 0  # next stream offset to deliver
        self.pending: dict[int, tuple[bytes, int, int]] = {}  # off -> (data, ts, file offset)
        self.heap: list[int] = []
        self.pending_bytes = 0
        self.consumer: StreamConsumer | None = None
        self.state = 0  # 0 no data yet, 1 consumer open (or declined), 2 closed
        self.head = bytearray()
        self.head_off = 0
        self.head_ts = 0
        self.ring: memoryview | None = None
        self.ring_len = 0  # stream offset after the last byte written to the ring
        self.ring_from = 0  # the ring holds nothing below this offset (start, or end of the last gap)
        self.delivered = 0
        self.max_end = 0  # highest stream offset a captured header proved was sent
        self.fin_off: int | None = None
        self.trunc_hole: tuple[int, int] | None = None
        self.ack_out: int | None = None  # latest ACK number this side sent (acknowledges the peer)
        # Inlined-path state, refreshed after every packet of the generic path:
        # ``fast`` = consumer open, start known, nothing buffered, flow oriented,
        # ring ready; ``expect`` = the raw sequence number of stream offset nxt.
        self.fast = False
        self.expect = -1
        self.before_start = 0
        # Bytes after nxt the consumer said it does not need (the int its data() returned).
        self.skip = 0
        self.peer: _Dir  # set by _Flow

    def unwrap(self, seq: int) -> int:
        rel = (seq - self.base) & _M32  # type: ignore[operator]
        delta = (rel - (self.nxt & _M32)) & _M32
        if delta >= 0x80000000:
            delta -= 0x100000000
        return self.nxt + delta


class _Flow:
    __slots__ = ("stats", "info", "c2s", "s2c", "key_client", "client_fixed", "ip_version", "closed")

    def __init__(self, index: int, ts: int) -> None:
        self.stats = FlowStats(index, "", "", "other", first_ts_ns=ts, last_ts_ns=ts)
        self.info = FlowInfo(index, "", "", ts)
        self.c2s = _Dir("c2s", self)
        self.s2c = _Dir("s2c", self)
        self.c2s.peer = self.s2c
        self.s2c.peer = self.c2s
        self.client_fixed = False
        self.closed = False
