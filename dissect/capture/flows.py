# SPDX-License-Identifier: GPL-2.0-only
"""Flow roles of a migration capture (qemu-migration-stream.md §1.1, §1.2).

A connection whose first client-to-server bytes are ``QEVM`` + be32 3 is a
main channel; one whose first bytes are the multifd magic 0x11223344 is a
multifd channel.  The return path is not a flow of its own: it is the
server-to-client direction of a main channel.  Everything else is "other".
:func:`why_not_decoded` turns the "other" flows into findings (TLS, a capture
started mid-connection, no migration at all) so that nothing is dropped silently.
"""
from __future__ import annotations

from typing import Any, Literal

from dissect.common.findings import Finding

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


#: TLS record layer (RFC 8446 §5.1): content type 22 (handshake), legacy version 3.0-3.4
_TLS_HANDSHAKE = 0x16


def is_tls(first_bytes: bytes | memoryview) -> bool:
    """The client's first bytes are a TLS handshake record (a ClientHello: handshake type 1)."""
    h = bytes(first_bytes[:6])
    return (len(h) == 6 and h[0] == _TLS_HANDSHAKE and h[1] == 3 and h[2] <= 4
            and 0 < int.from_bytes(h[3:5], "big") <= (1 << 14) + 2048 and h[5] == 1)


def why_not_decoded(flows: list[Any]) -> list[Finding]:
    """Findings for the flows no decoder took (role ``other``), so a capture that decodes to
    nothing says why: a TLS-encrypted migration (QEMU ``tls-creds``) cannot be decoded; a flow
    already open when the capture started (no SYN) does not begin with the stream's header; and
    when no flow is a QEMU main or multifd channel, one capture-level warning.

    ``flows``: the reassembler's ``FlowStats`` (``head`` = the client's first bytes)."""
    out: list[Finding] = []
    migration = any(fl.role in ("main", "multifd") for fl in flows)
    tls = late = 0
    for fl in flows:
        if fl.role != "other" or not fl.c2s_bytes:
            continue
        ctx = {"flow": fl.flow, "c2s_bytes": fl.c2s_bytes, "s2c_bytes": fl.s2c_bytes}
        if is_tls(fl.head):
            tls += 1
            out.append(Finding(
                "info" if migration else "warning", "tls_stream",
                f"flow {fl.flow} ({fl.client} -> {fl.server}) is TLS-encrypted (a ClientHello first): a "
                f"migration with tls-creds cannot be decoded; its {fl.c2s_bytes} + {fl.s2c_bytes} bytes are "
                "not decoded (capture a migration without TLS to decode it)", 0, ctx))
        elif not fl.syn_seen:
            late += 1
            out.append(Finding(
                "info", "flow_started_before_capture",
                f"flow {fl.flow} ({fl.client} -> {fl.server}) was already open when the capture started (no "
                f"SYN), its first captured bytes ({bytes(fl.head).hex()}) are no stream header and no "
                f"migration record was found in it to pick it up from: its {fl.c2s_bytes} bytes are not "
                "decoded (start the capture before migrate)", 0, ctx))
    if flows and not migration:
        why = []
        if tls:
            why.append(f"{tls} TLS-encrypted")
        if late:
            why.append(f"{late} already open when the capture started")
        out.append(Finding(
            "warning", "no_migration_stream",
            f"none of the {len(flows)} TCP flows begins with a QEMU stream (QEVM) or multifd header: nothing "
            "to decode" + (f" ({', '.join(why)})" if why else ""), None,
            {"flows": len(flows), "tls_flows": tls, "late_flows": late}))
    return out
