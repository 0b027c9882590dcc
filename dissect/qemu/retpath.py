# SPDX-License-Identifier: GPL-2.0-only
"""Return-path messages: the destination→source direction of the main channel
(qemu-migration-stream.md §13): be16 type, be16 length, payload.
"""
from __future__ import annotations

from typing import Any

from dissect.qemu import wire as W
from dissect.qemu.incremental import IncrementalParser

#: Most bitmap bytes a RECV_BITMAP may announce before we call it corrupt (1 TiB of 4 KiB pages).
MAX_BITMAP = 1 << 25


def rp_value(mtype: int, payload: bytes) -> Any:
    """The contract's ``rp_message.value`` for a payload of the right length."""
    if mtype in (W.MIG_RP_MSG_SHUT, W.MIG_RP_MSG_PONG, W.MIG_RP_MSG_RESUME_ACK) and len(payload) == 4:
        return W.BE32.unpack(payload)[0]
    if mtype == W.MIG_RP_MSG_REQ_PAGES and len(payload) == 12:
        return {"start": W.BE64.unpack_from(payload)[0], "len": W.BE32.unpack_from(payload, 8)[0]}
    if mtype == W.MIG_RP_MSG_REQ_PAGES_ID and len(payload) >= 13:
        ln = payload[12]
        return {"start": W.BE64.unpack_from(payload)[0], "len": W.BE32.unpack_from(payload, 8)[0],
                "id": payload[13:13 + ln].decode("utf-8", "replace")}
    if mtype == W.MIG_RP_MSG_RECV_BITMAP and payload:
        return {"block": payload[1:1 + payload[0]].decode("utf-8", "replace")}
    if payload:
        return {"raw": payload.hex()}
    return None


_EXPECT_LEN = {1: 4, 2: 4, 4: 12, 6: 4, 7: 0}


class ReturnPathParser(IncrementalParser):
    """Decodes return-path messages; a ``StreamConsumer`` for the s2c direction."""

    def __init__(self, sink, *, flow: int | None = None) -> None:
        super().__init__(sink, flow=flow)
        self.messages = 0
        self._bitmap: dict[str, Any] | None = None

    def _parse(self, b: Any, p: int, end: int, base: int) -> int:
        if self._lost:
            # No resync signature exists for RP messages; what follows a gap is not decoded.
            self._skip = 1 << 62
            return end
        if self._bitmap is not None:
            return self._bitmap_tail(b, p, end, base)
        if end - p < 4:
            return -p - 1
        mtype, ln = W.RP_HDR.unpack_from(b, p)
        if end - p < 4 + ln:
            return -p - 1
        payload = bytes(b[p + 4:p + 4 + ln])
        off = base + p
        name = W.RP_MESSAGES.get(mtype)
        want = _EXPECT_LEN.get(mtype)
        if name is None or mtype == 0:
            self._finding("warning", "rp_unknown_type", f"return-path message type {mtype} (len {ln})", off)
        elif want is not None and ln != want:
            self._finding("error", "rp_bad_length", f"{name} with len {ln} (expected {want})", off)
        self.messages += 1
        self.sink({"kind": "rp_message", "flow": self.flow, "offset": off, "type": mtype,
                   "type_name": name if mtype else "INVALID", "len": ln, "value": rp_value(mtype, payload),
                   "ts": self._ts / 1_000_000_000, "ts_ns": self._ts})
        if mtype == W.MIG_RP_MSG_RECV_BITMAP:
            self._bitmap = {"offset": base + p + 4 + ln}
        return p + 4 + ln

    def _bitmap_tail(self, b: Any, p: int, end: int, base: int) -> int:
        # be64 size, size bytes of little-endian bitmap words, be64 end mark (outside the message).
        if "size" not in self._bitmap:
            if end - p < 8:
                return -p - 1
            size = W.BE64.unpack_from(b, p)[0]
            if size > MAX_BITMAP:
                self._finding("error", "rp_bitmap_size", f"RECV_BITMAP announces {size} bitmap bytes", base + p)
                self._lost = True
                self._bitmap = None
                return p + 8
            self._bitmap["size"] = size
            p += 8
            q = p + size
            if q > end:
                self._skip = q - end
                return end
            return p + size
        if end - p < 8:
            return -p - 1
        mark = W.BE64.unpack_from(b, p)[0]
        if mark != W.RECV_BITMAP_ENDING:
            self._finding("error", "rp_bitmap_end", f"RECV_BITMAP end mark 0x{mark:016x}", base + p)
        self._bitmap = None
        return p + 8
