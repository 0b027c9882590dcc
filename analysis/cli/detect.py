# SPDX-License-Identifier: GPL-2.0-only
"""Capture auto-detection by content (cli.md, "Capture auto-detection")."""
from __future__ import annotations

import re
from pathlib import Path
from typing import BinaryIO

from dissect.capture import formats as F
from dissect.ftrace.utf8 import looks_binary
from dissect.capture.compressed import head as read_head
from dissect.capture.compressed import sniff

#: Every kind ``--as`` accepts.
KINDS = (
    "pcap", "pcapng", "qemu-stream", "trace-dat", "ftrace-text", "trace-cmd-report",
    "qemu-log", "vfio-stream", "dev-parts", "admin-request", "admin-completion",
)

_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
_FTRACE_LINE = re.compile(r"^\s*\S.*-\d+\s+(\(\s*[\d-]+\)\s+)?\[\d+\]\s+(\S{4,5}\s+)?\d+\.\d+:\s+\S+:")
_REPORT_LINE = re.compile(r"^\s*\S.*-\d+\s+\[\d+\]\s+\d+(\.\d+)?:\s+\S+:")
_QEMU_LOG = re.compile(
    r"^(\d+@\d+\.\d+:[a-z_][a-z0-9_]*( |$)"                 # tid@sec.usec:event
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z? [a-z_][a-z0-9_]*( |$)"  # ISO-8601 prefix
    r"|[a-z_][a-z0-9_]*( |$))"                                # bare event line
)


class UnknownFormat(Exception):
    """No detector matched; the message lists what was tried."""


def _text_kind(head: bytes) -> str | None:
    # Text vs binary by NUL and control bytes, not by UTF-8: real traces hold comms and
    # marker texts of any bytes (read as \xNN, as the text readers do).
    if looks_binary(head):
        return None
    text = head.decode("utf-8", "backslashreplace")
    lines = [ln for ln in text.splitlines()[:64] if ln.strip()]
    if not lines:
        return None
    if re.match(r"^cpus=\d+\s*$", lines[0]) or (lines[0].startswith("version =") and any(l.startswith("cpus=") for l in lines[:4])):
        return "trace-cmd-report"
    if lines[0].startswith("# tracer:"):
        return "ftrace-text"
    body = [ln for ln in lines if not ln.startswith("#")]
    if body and sum(bool(_FTRACE_LINE.match(ln)) for ln in body) * 2 > len(body):
        return "ftrace-text"
    if body and sum(bool(_REPORT_LINE.match(ln)) for ln in body) * 2 > len(body):
        return "trace-cmd-report"
    if body and sum(bool(_QEMU_LOG.match(ln)) for ln in body) * 2 > len(body):
        return "qemu-log"
    return None


def detect(path: str | Path) -> str:
    """Return the capture kind of ``path`` or raise :class:`UnknownFormat`.

    A zstd, gzip, xz or bzip2 file is detected by what it holds (the kind inside;
    dissect/capture/compressed.py reads its first decompressed bytes)."""
    problems: list = []
    head = read_head(path, findings=problems)
    if head[:4] in _PCAP_MAGICS:
        return "pcap"
    if head[:4] == b"\x0a\x0d\x0d\x0a":
        return "pcapng"
    if head[:4] == b"QEVM":
        return "qemu-stream"
    if head[:3] == b"\x17\x08\x44" and head[3:10] == b"tracing":
        return "trace-dat"
    kind = _text_kind(head)
    if kind:
        return kind
    comp = sniff(path)
    what = "unknown format" if comp is None else \
        f"{comp} data that decompresses to nothing readable" + "".join(f" ({f.message})" for f in problems[:1]) \
        if not head else f"unknown format inside {comp} data"
    raise UnknownFormat(
        f"{path}: {what} (tried pcap, pcapng, QEMU stream 'QEVM', trace.dat, "
        "ftrace text, trace-cmd report text, QEMU log text); name the kind with --as "
        "vfio-stream|dev-parts|admin-request|admin-completion")


def pcap_linktypes(path: str | Path) -> list[int]:
    """Link types of a pcap (one) or of a pcapng's interfaces (all sections)."""
    with open(path, "rb") as f:
        return linktypes_of(f)


def linktypes_of(f: BinaryIO) -> list[int]:
    """:func:`pcap_linktypes` of an open, seekable file (e.g. the peeked start of a pipe)."""
    import struct

    head = f.read(24)
    if head[:4] in _PCAP_MAGICS:
        bo = "<" if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        return [F.pcap_file_header(bo).unpack(head)[6] & 0xFFFF] if len(head) == 24 else []
    f.seek(0)
    types: list[int] = []
    bo = "<"
    # Walk blocks until the first packet block: interfaces precede packets in practice.
    for _ in range(4096):
        hdr = f.read(8)
        if len(hdr) < 8:
            break
        if hdr[:4] == b"\x0a\x0d\x0d\x0a":
            magic = f.read(4)
            bo = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">"
            total = struct.unpack(bo + "I", hdr[4:])[0]
            f.seek(total - 12, 1)
            continue
        btype, total = struct.unpack(bo + "II", hdr)
        if total < 12:
            break
        if btype == F.PCAPNG_IDB:
            body = f.read(4)
            types.append(struct.unpack(bo + "H", body[:2])[0])
            f.seek(total - 12, 1)
        elif btype in (F.PCAPNG_EPB, F.PCAPNG_SPB, F.PCAPNG_OPB):
            break
        else:
            f.seek(total - 8, 1)
    return types
