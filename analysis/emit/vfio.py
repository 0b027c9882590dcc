# SPDX-License-Identifier: GPL-2.0-only
"""Contract objects for device parts and vfio-virtio records (json-lines.md).

``migtrace decode --as dev-parts`` (a DEV_PARTS_GET result) and
``--as vfio-stream`` (bytes read from a vfio-virtio migration fd).
:func:`dev_part_objects` and :func:`record_objects` are shared with the
admin and migration emitters (INTERFACES.md, section B).

Offsets: ``vfio_record.offset`` and the ``dev_part.offset`` of its parts are
positions in the device's concatenated data; for a bare parts buffer they
are ``base_offset`` + the position in the buffer.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable, Iterator

from dissect.common.findings import Finding
from dissect.vfio.stream import READ_CHUNK, RecordSplitter, VfioRecord
from dissect.virtio.parts_fast import (PartTuple, decode_parts, decode_value, part_type_name,
                                       selector_object)
from dissect.virtio.validate import validate_parts


def _finding(f: Finding, ctx: dict[str, Any]) -> dict[str, Any]:
    ctx = {k: v for k, v in ctx.items() if v is not None}
    return (f.with_context(**ctx) if ctx else f).to_json()


def part_object(p: PartTuple, index: int, *, device: str | None = None, record: int | None = None,
                admin_tag: int | None = None, device_type: int = 1) -> dict[str, Any]:
    """One ``dev_part`` object."""
    return {
        "kind": "dev_part", "device": device, "record": record, "admin_tag": admin_tag,
        "index": index, "offset": p.offset, "part_type": p.part_type,
        "part_type_name": part_type_name(p.part_type, device_type),
        "flags": p.flags, "optional": bool(p.flags & 1),
        "selector": selector_object(p, device_type), "length": p.length,
        "value": decode_value(p, device_type),
    }


def _part_objects(parts: list[PartTuple], ctx: dict[str, Any], *, snapshot: bool,
                  device_type: int) -> Iterator[dict[str, Any]]:
    # Validation findings follow the part they are about; list-wide ones come last.
    by_index: dict[int, list[Finding]] = {}
    tail: list[Finding] = []
    for f in validate_parts(parts, snapshot=snapshot, device_type=device_type):
        i = f.context.get("index")
        (by_index.setdefault(i, []) if i is not None else tail).append(f)
    for i, p in enumerate(parts):
        yield part_object(p, i, device=ctx.get("device"), record=ctx.get("record"),
                          admin_tag=ctx.get("admin_tag"), device_type=device_type)
        for f in by_index.get(i, ()):
            yield _finding(f, ctx)
    for f in tail:
        yield _finding(f, ctx)


def dev_part_objects(buf: bytes | bytearray | memoryview, *, device: str | None = None,
                     record: int | None = None, admin_tag: int | None = None,
                     base_offset: int = 0, snapshot: bool = False,
                     device_type: int = 1) -> Iterator[dict[str, Any]]:
    """``dev_part`` objects (+ findings) for a parts buffer.

    ``snapshot``: the buffer is a complete GET ALL result, so the DP-13
    completeness checks apply.
    """
    parts, _stop, structural = decode_parts(buf, base_offset)
    ctx = {"device": device, "record": record, "admin_tag": admin_tag}
    yield from _part_objects(parts, ctx, snapshot=snapshot, device_type=device_type)
    for f in structural:
        yield _finding(f, ctx)


def record_object(rec: VfioRecord, *, device: str | None, phase: str | None,
                  ts: float | None) -> dict[str, Any]:
    """The ``vfio_record`` object of one record."""
    return {
        "kind": "vfio_record", "device": device, "index": rec.index, "offset": rec.offset,
        "record_size": rec.record_size, "flags": rec.flags, "tag": rec.tag,
        "tag_name": rec.tag_name, "optional": rec.optional, "phase": phase,
        "parts": len(rec.parts) if rec.parts is not None else 0,
        "trailer_bytes": rec.trailer_bytes, "parts_length": rec.parts_length, "ts": ts,
    }


def record_objects(rec: VfioRecord, *, device: str | None = None, phase: str | None = None,
                   ts: float | None = None, device_type: int = 1) -> Iterator[dict[str, Any]]:
    """One ``vfio_record`` object, its findings, then its ``dev_part`` objects.

    A DEVICE_DATA record is a full GET ALL snapshot, so parts are validated
    with the snapshot rules (DP-13).
    """
    device = device if device is not None else rec.device
    yield record_object(rec, device=device, phase=phase, ts=ts)
    ctx = {"device": device, "record": rec.index}
    for f in rec.findings:
        yield _finding(f, ctx)
    if rec.parts is not None:
        yield from _part_objects(rec.parts, ctx, snapshot=True, device_type=device_type)


def stream_objects(chunks: Iterable[bytes], *, device: str | None = None) -> Iterator[dict[str, Any]]:
    """All objects of one device's stream given as successive byte chunks."""
    sp = RecordSplitter(device)
    for chunk in chunks:
        for ev in sp.feed_events(chunk):
            if isinstance(ev, VfioRecord):
                yield from record_objects(ev, device=device)
            else:
                yield _finding(ev, {"device": device})
    for f in sp.close():
        yield _finding(f, {"device": device})


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while True:
            b = fh.read(READ_CHUNK)
            if not b:
                return
            yield b


def emit_vfio_stream(path: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """``migtrace decode --as vfio-stream FILE``."""
    yield from stream_objects(_read_chunks(Path(path)))


def emit_dev_parts(path: Path, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """``migtrace decode --as dev-parts FILE`` (a DEV_PARTS_GET result)."""
    yield from dev_part_objects(Path(path).read_bytes())
