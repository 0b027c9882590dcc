# SPDX-License-Identifier: GPL-2.0-only
"""Emitters: turn one capture into the contract's JSON Lines objects.

Each emitter is ``emit(path, args) -> Iterator[dict]`` and yields the units
in capture order, findings included; the ``decode`` command adds the
closing ``summary``.  The registry maps a detected kind to its emitter so
that the command itself stays format-agnostic.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any, Callable, Iterator

Emitter = Callable[[Path, argparse.Namespace], Iterator[dict[str, Any]]]

REGISTRY: dict[str, str] = {
    "pcap": "analysis.emit.capture:emit",
    "pcapng": "analysis.emit.capture:emit",
    "qemu-stream": "analysis.emit.migration:emit_stream_file",
    "trace-dat": "analysis.emit.trace:emit_trace_dat",
    "ftrace-text": "analysis.emit.trace:emit_text",
    "trace-cmd-report": "analysis.emit.trace:emit_text",
    "qemu-log": "analysis.emit.trace:emit_text",
    "vfio-stream": "analysis.emit.vfio:emit_vfio_stream",
    "dev-parts": "analysis.emit.vfio:emit_dev_parts",
    "admin-request": "analysis.emit.admin:emit_admin_request",
    "admin-completion": "analysis.emit.admin:emit_admin_completion",
    "admin-capture": "analysis.emit.admin:emit_admin_capture",
    "migration-capture": "analysis.emit.migration:emit_capture",
}


def emitter_for(kind: str) -> Emitter:
    module, func = REGISTRY[kind].split(":")
    return getattr(importlib.import_module(module), func)
