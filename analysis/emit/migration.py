# SPDX-License-Identifier: GPL-2.0-only
"""Migration captures and raw QEMU stream files → contract JSON Lines.

Kinds (json-lines.md): ``flow``, ``section``, ``command``, ``rp_message``,
``ram``, ``multifd_packet``, ``vmdesc``, ``vfio_marker``, ``vfio_chunk``,
``vfio_record``, ``dev_part``, ``finding``; plus ``header``,
``configuration`` and ``eof`` for the stream records that have no contract
kind (docs/qemu-stream.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

from analysis.emit.vfio import record_objects
from dissect.common.findings import Finding
from dissect.qemu.session import RecordUnit, decode_capture, decode_stream_file


def _s(ns: int | None) -> float | None:
    return None if ns is None else ns / 1_000_000_000


def to_objects(item: Any, flow: int | None = None) -> list[dict[str, Any]]:
    """Contract objects of one session item (dict, Finding, RecordUnit)."""
    if isinstance(item, dict):
        return [item]
    if isinstance(item, Finding):
        obj = item.to_json()
        if flow is not None:
            obj.setdefault("flow", flow)
        return [obj]
    if isinstance(item, RecordUnit):
        objs = list(record_objects(item.record, device=item.device, phase=item.phase, ts=_s(item.ts_last_ns)))
        # exact integers beside the contract's float seconds (epoch ns exceed a float's precision)
        objs[0]["ts_ns"] = item.ts_last_ns
        objs[0]["ts_first"] = _s(item.ts_first_ns)
        objs[0]["ts_first_ns"] = item.ts_first_ns
        objs[0]["ts_last"] = _s(item.ts_last_ns)
        objs[0]["ts_last_ns"] = item.ts_last_ns
        return objs
    to_json = getattr(item, "to_json", None)
    if to_json is not None:
        return [to_json()]
    raise TypeError(f"unexpected session item {type(item).__name__}")


def emit_capture(path: Path, args: argparse.Namespace | None = None) -> Iterator[dict[str, Any]]:
    """``migtrace decode CAPTURE`` for a migration pcap/pcapng."""
    # the analysis passes a page tap (dissect/qemu/pages.py) to estimate pre-copy passes
    for item in decode_capture(path, convert=to_objects, page_log=getattr(args, "page_log", None)):
        if isinstance(item, dict):
            yield item
        else:
            yield from to_objects(item)


def emit_stream_file(path: Path, args: argparse.Namespace | None = None) -> Iterator[dict[str, Any]]:
    """``migtrace decode FILE`` for a raw main-channel stream (``QEVM`` …)."""
    for item in decode_stream_file(path, page_log=getattr(args, "page_log", None)):
        yield from to_objects(item)
