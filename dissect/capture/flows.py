# SPDX-License-Identifier: GPL-2.0-only
"""Flow roles of a migration capture (qemu-migration-stream.md §1.1, §1.2).

A connection whose first client-to-server bytes are ``QEVM`` + be32 3 is a
main channel; one whose first bytes are the multifd magic 0x11223344 is a
multifd channel.  The return path is not a flow of its own: it is the
server-to-client direction of a main channel.  Everything else is "other".
"""
from __future__ import annotations

from typing import Literal

QEMU_VM_FILE_MAGIC = b"QEVM"
QEMU_VM_FILE_VERSION = b"\x00\x00\x00\x03"
MULTIFD_MAGIC = b"\x11\x22\x33\x44"

Role = Literal["main", "multifd", "other"]

#: Bytes :func:`classify` needs to decide.
CLASSIFY_BYTES = 8


def classify(first_bytes: bytes | memoryview) -> Role:
    """Role of a connection from the first bytes its client sent.

    The multifd check uses the 4-byte magic only, as QEMU's destination does
    when it peeks (the version that follows differs between releases).
    """
    head = bytes(first_bytes[:CLASSIFY_BYTES])
    if head[:4] == QEMU_VM_FILE_MAGIC and head[4:8] == QEMU_VM_FILE_VERSION:
        return "main"
    if head[:4] == MULTIFD_MAGIC:
        return "multifd"
    return "other"
