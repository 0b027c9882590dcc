# SPDX-License-Identifier: GPL-2.0-only
"""The VM description (vmdesc) JSON trailer (qemu-migration-stream.md §9, §7).

The trailer describes every FULL section: field sizes of VMSD devices (with
the subsections that were actually sent) and ``size`` of old-style
``save_state`` devices.  That is the only way to know the payload length of
an ordinary device's FULL section, which carries no length of its own.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from dissect.qemu.wire import QEMU_VM_EOF, QEMU_VM_VMDESCRIPTION, VMDESC_LEN

#: QEMU's analyze-migration.py looks at the last 10 MB; so do we.
TAIL_WINDOW = 10 * 1024 * 1024
#: A vmdesc larger than this is not believed (no allocation sized by an untrusted field).
MAX_VMDESC = 64 * 1024 * 1024


@dataclass
class VmDesc:
    """A parsed trailer: page size and the device entries in stream order."""

    page_size: int | None
    devices: list[dict[str, Any]]
    offset: int | None = None           # of the 0x06 type byte in the stream
    raw_len: int = 0
    _by_key: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, text: bytes | str, offset: int | None = None) -> "VmDesc":
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise ValueError("vmdesc is not a JSON object")
        devs = obj.get("devices") or []
        if not isinstance(devs, list):
            raise ValueError("vmdesc 'devices' is not a list")
        vd = cls(obj.get("page_size") if isinstance(obj.get("page_size"), int) else None,
                 [d for d in devs if isinstance(d, dict)], offset, len(text))
        for d in vd.devices:
            key = (str(d.get("name")), int(d.get("instance_id") or 0))
            vd._by_key.setdefault(key, []).append(d)
        return vd

    def device(self, idstr: str, instance_id: int, nth: int = 0) -> dict[str, Any] | None:
        lst = self._by_key.get((idstr, instance_id))
        if not lst or nth >= len(lst):
            return None
        return lst[nth]

    def payload_length(self, idstr: str, instance_id: int, nth: int = 0) -> int | None:
        """Bytes of the FULL section payload (without header and footer), or None."""
        d = self.device(idstr, instance_id, nth)
        if d is None:
            return None
        try:
            return device_payload_length(d)
        except (TypeError, ValueError, KeyError):
            return None


def _fields_length(fields: list[dict[str, Any]]) -> int:
    total = 0
    for f in fields:
        n = f.get("array_len", 1)
        if "size" in f:
            size = int(f["size"])
        elif isinstance(f.get("struct"), dict):
            size = _vmsd_length(f["struct"])
        else:
            raise ValueError(f"field {f.get('name')!r} has no size")
        total += size * int(n)
    return total


def _vmsd_length(d: dict[str, Any]) -> int:
    total = _fields_length(d.get("fields") or [])
    for sub in d.get("subsections") or []:
        name = str(sub.get("vmsd_name", "")).encode()
        # 0x05, u8 name length, name, be32 version_id (§7)
        total += 1 + 1 + len(name) + 4 + _vmsd_length(sub)
    return total


def device_payload_length(d: dict[str, Any]) -> int:
    """Payload bytes of one vmdesc device entry: VMSD fields + subsections, or ``size``."""
    if "vmsd_name" not in d and "size" in d:
        return int(d["size"])
    return _vmsd_length(d)


def find_trailer(path: str | os.PathLike[str]) -> tuple[VmDesc | None, str | None]:
    """Find the vmdesc trailer at the end of a stream file.

    Returns ``(vmdesc, None)`` or ``(None, reason)``.  Like QEMU's own
    analyze-migration.py this searches the file's tail: the trailer is
    ``00`` (EOF), ``06``, be32 length, JSON that runs to the end of the file.
    """
    size = os.path.getsize(path)
    start = max(0, size - TAIL_WINDOW)
    with open(path, "rb") as f:
        f.seek(start)
        tail = f.read()
    pos = len(tail)
    while True:
        pos = tail.rfind(b"\x00\x06", 0, pos)
        if pos < 0:
            return None, "no EOF + VMDESCRIPTION trailer in the last 10 MB"
        if pos + 6 < len(tail) and tail[pos + 6:pos + 7] == b"{":
            (n,) = VMDESC_LEN.unpack_from(tail, pos + 2)
            if n <= MAX_VMDESC and pos + 6 + n == len(tail):
                try:
                    return VmDesc.from_json(tail[pos + 6:], offset=start + pos + 1), None
                except (ValueError, UnicodeDecodeError) as e:
                    return None, f"vmdesc JSON does not parse: {e}"
        if pos == 0:
            return None, "no EOF + VMDESCRIPTION trailer in the last 10 MB"


__all__ = ["VmDesc", "device_payload_length", "find_trailer", "QEMU_VM_EOF", "QEMU_VM_VMDESCRIPTION"]
