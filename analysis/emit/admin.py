# SPDX-License-Identifier: GPL-2.0-only
"""Emitters for virtio admin commands: single buffers and admin captures.

Contract: ``shared/contract/json-lines.md`` (``admin_cmd``, ``admin_result``,
``dev_part`` with ``admin_tag``, ``finding``) and
``shared/contract/admin-capture.md``.  Decoding is
:mod:`dissect.virtio.admin`; this module only shapes contract objects.

Finding offsets of a command are relative to the command buffer (the
record's payload); findings about a captured record also carry ``tag``,
``owner`` and ``record_offset`` (the file offset of the carrying packet).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

from analysis.emit.vfio import dev_part_objects
from dissect.common.findings import Finding
from dissect.virtio import admin as A
from dissect.virtio.admin_capture import (COMPLETION, REQUEST, AdminRecord, Pairer, TracePieceJoiner,
                                          iter_admin_records)
from dissect.virtio.admin_data import GET_ALL
from dissect.virtio.admin_decode import decode_request, decode_result, request_subtype

#: Opcodes whose subtype field in the capture header must echo the request's ``type``.
_TYPED = (A.DEV_PARTS_METADATA_GET, A.DEV_PARTS_GET)


def _ts(ts_ns: int | None) -> float | None:
    return None if ts_ns is None else ts_ns / 1_000_000_000


def _parts(buf: bytes, offset: int, tag: int | None, ctx: dict[str, Any],
           snapshot: bool = False) -> Iterator[dict[str, Any]]:
    """``dev_part`` lines (and their findings) for the parts at ``buf[offset:]``.

    ``snapshot``: a DEV_PARTS_GET ALL result, checked with the complete-snapshot rules.
    """
    for obj in dev_part_objects(buf[offset:], admin_tag=tag, base_offset=offset, snapshot=snapshot):
        if obj.get("kind") == "finding":
            for k, v in ctx.items():
                obj.setdefault(k, v)
        yield obj


def _findings(findings: list[Finding], ctx: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for f in findings:
        yield f.with_context(**ctx).to_json()


def admin_objects(record: AdminRecord, request: AdminRecord | None = None) -> Iterator[dict[str, Any]]:
    """Contract objects for one record: ``admin_cmd`` or ``admin_result``, then
    ``dev_part`` lines for parts carried by DEV_PARTS_SET data / DEV_PARTS_GET
    results, then findings.

    A completion decodes against ``request`` when given (its opcode and the
    request field that selects the result layout), else against the record's
    own ``opcode``/``subtype``.
    """
    owner = record.owner_str
    ctx: dict[str, Any] = {"tag": record.tag, "owner": owner}
    if record.offset is not None:
        ctx["record_offset"] = record.offset
    payload = record.payload
    base = {"tag": record.tag, "owner": owner, "ts": _ts(record.ts_ns), "ts_ns": record.ts_ns}
    if record.direction == REQUEST:
        d, findings = decode_request(payload, parts_findings=False)
        if len(payload) >= 2 and d["opcode"] != record.opcode:
            findings.append(Finding("warning", "admin_record_opcode_mismatch",
                                    f"pseudo-header opcode {record.opcode:#x} differs from the command's "
                                    f"{d['opcode']:#x}", None))
        _check_subtype(record, d["opcode"], request_subtype(d["opcode"], d["data"]), findings)
        yield {"kind": "admin_cmd", **base, **{k: v for k, v in d.items() if k != "data"}, "data": d["data"]}
        if d["opcode"] == A.DEV_PARTS_SET and "parts_offset" in d["data"]:
            yield from _parts(payload, d["data"]["parts_offset"], record.tag, ctx)
        yield from _findings(findings, ctx)
        return
    if record.direction != COMPLETION:
        return  # the reader reported the bad direction; nothing to decode against
    if request is not None:
        rd, _ = decode_request(request.payload, parts_findings=False)
        opcode, subtype = rd["opcode"], request_subtype(rd["opcode"], rd["data"])
    else:
        opcode, subtype = record.opcode, record.subtype
    d, findings = decode_result(payload, opcode, subtype, parts_findings=False)
    if request is not None:
        _check_subtype(record, opcode, subtype, findings)
    latency = None if request is None else record.ts_ns - request.ts_ns
    yield {"kind": "admin_result", **base, **{k: v for k, v in d.items() if k != "result"},
           "latency_ns": latency, "result": d["result"]}
    if opcode == A.DEV_PARTS_GET and "parts_offset" in d["result"]:
        yield from _parts(payload, d["result"]["parts_offset"], record.tag, ctx,
                          snapshot=subtype == GET_ALL)
    yield from _findings(findings, ctx)


def _check_subtype(record: AdminRecord, opcode: int, subtype: int, findings: list[Finding]) -> None:
    want = subtype if opcode in _TYPED else 0
    if record.subtype != want:
        findings.append(Finding("warning", "admin_record_subtype_mismatch",
                                f"pseudo-header subtype {record.subtype} but the request selects {want}", None))


# --- emitters (analysis.emit.REGISTRY) -------------------------------------------------

def emit_admin_request(path: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """``--as admin-request``: one device-readable buffer."""
    buf = Path(path).read_bytes()
    rec = AdminRecord(1, REQUEST, 0, 0, int.from_bytes(buf[:2].ljust(2, b"\0"), "little"), 0, buf)
    yield from _bare(admin_objects(rec))


def emit_admin_completion(path: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """``--as admin-completion --opcode N [--subtype N]``: one device-writable buffer."""
    buf = Path(path).read_bytes()
    rec = AdminRecord(1, COMPLETION, 0, 0, args.opcode, getattr(args, "subtype", 0) or 0, buf)
    yield from _bare(admin_objects(rec))


def _bare(objs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A bare buffer has no tag, owner or time: those fields are null."""
    for o in objs:
        if o["kind"] in ("admin_cmd", "admin_result"):
            o.update(tag=None, owner=None, ts=None, ts_ns=None)
        elif o["kind"] == "dev_part":
            o["admin_tag"] = None
        else:
            for k in ("tag", "owner"):
                o.pop(k, None)
        yield o


def _paired_objects(pairer: Pairer, rec: AdminRecord) -> Iterator[dict[str, Any]]:
    """Objects of one record of a capture or trace, decoded against its paired request."""
    ex, pf = pairer.feed(rec)
    if rec.direction == COMPLETION:
        yield from admin_objects(rec, ex.request if ex is not None else None)
        yield from (f.to_json() for f in pf)
    else:
        yield from (f.to_json() for f in pf)
        yield from admin_objects(rec)


def emit_admin_capture(path: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """pcap/pcapng of admin records: every record in capture order, completions
    decoded against their request (paired by owner and tag)."""
    pairer = Pairer()
    for item in iter_admin_records(path, getattr(args, "admin_linktype", None)):
        if isinstance(item, Finding):
            yield item.to_json()
        else:
            yield from _paired_objects(pairer, item)
    for ex in pairer.close():
        yield from (f.to_json() for f in ex.findings)


class AdminTraceDecoder:
    """Admin records carried by ftrace ``raw_data`` events (admin-capture.md, container 2).

    Feed every ``raw_data`` event in trace order; events whose id is not
    0x76697274 return nothing.  Pieces are joined per thread; a record's time
    is its first piece's.  Completions decode against their request.
    """

    def __init__(self) -> None:
        self.joiner = TracePieceJoiner()
        self.pairer = Pairer()

    def raw_data(self, pid: int, ts_ns: int, event_id: int, buf: bytes) -> list[dict[str, Any]]:
        """Contract objects completed by this event (often none)."""
        data, findings = self.joiner.feed_raw_data(pid, ts_ns, event_id, buf)
        out = [f.to_json() for f in findings]
        if data is None:
            return out
        rec, findings = AdminRecord.from_bytes(data, self.joiner.last_ts_ns or ts_ns)
        out += [f.with_context(pid=pid).to_json() for f in findings]
        if rec is not None:
            out += list(_paired_objects(self.pairer, rec))
        return out

    def close(self) -> list[dict[str, Any]]:
        """Findings for incomplete records and unanswered requests at the end of the trace."""
        out = [f.to_json() for f in self.joiner.close()]
        for ex in self.pairer.close():
            out += [f.to_json() for f in ex.findings]
        return out
