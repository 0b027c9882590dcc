# SPDX-License-Identifier: GPL-2.0-only
"""Fast path for device parts: split and decode without scapy objects.

Spec: shared/spec/device-parts.md §2 (header), §4/§5/§8 (values), §7 DP-01,
DP-02 and DP-14 (structural checks done while splitting).  Nothing here
declares a layout: the header struct is compiled from the scapy header layer
(:mod:`dissect.virtio.parts`) and the value decoders from the value layers
(:mod:`dissect.virtio.values`), so both paths read the same declaration;
tests still run every parts test through both and require equal fields.
"""
from __future__ import annotations

import struct
from typing import Any, NamedTuple, Sequence

from dissect.common.fields import compile_layer
from dissect.common.findings import DecodeError, Finding
from dissect.virtio import names as N
from dissect.virtio.parts import VirtioDevPartHdr
from dissect.virtio.values import _FAST_NET, decode_value, pci_field, value_layout  # noqa: F401  (re-exported)

#: ``struct virtio_dev_part_hdr`` (part_type, flags, reserved, selector, length),
#: compiled from the header layer with its raw ``selector`` view.
HDR: struct.Struct = compile_layer(VirtioDevPartHdr, union=("selector",)).struct
HDR_LEN = HDR.size
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")

TRAILER_LEN = 8
TRAILER_KERNELS = "6.13.0–6.15.2"


class PartTuple(NamedTuple):
    """One device part as plain values (offset is absolute: base_offset + position)."""

    offset: int
    part_type: int
    flags: int
    selector: bytes
    length: int
    value: bytes | memoryview
    reserved: int = 0

    @property
    def optional(self) -> bool:
        return bool(self.flags & N.F_OPTIONAL)


def decode_parts(buf: bytes | bytearray | memoryview, base_offset: int = 0,
                 ) -> tuple[list[PartTuple], int, list[Finding]]:
    """Split a parts blob (DEV_PARTS_GET result / DEVICE_DATA payload).

    Returns ``(parts, stop, findings)``: ``stop`` is where parsing stopped
    relative to ``buf`` (the length of the valid parts prefix).  Exactly 8
    bytes left over is the CVE-2025-38314 trailer (DP-14): a warning, not
    an error, and ``stop`` is ``len(buf) - 8``.  A length field is never
    used to allocate: values are slices of ``buf``.
    """
    if not isinstance(buf, bytes):
        buf = memoryview(buf).cast("B") if not isinstance(buf, memoryview) else buf.cast("B")
    n = len(buf)
    pos = 0
    parts: list[PartTuple] = []
    findings: list[Finding] = []
    append = parts.append
    unpack = HDR.unpack_from
    new = tuple.__new__
    PT = PartTuple
    while n - pos >= HDR_LEN:
        pt, fl, rsv, sel, ln = unpack(buf, pos)
        end = pos + HDR_LEN + ln
        if end > n:
            findings.append(Finding(
                "error", "part_truncated_value",
                f"part 0x{pt:04x} claims {ln} value bytes, only {n - pos - HDR_LEN} remain "
                f"({end - n} missing) (DP-02)",
                base_offset + pos, {"rule": "DP-02", "part_type": pt, "missing": end - n}))
            return parts, pos, findings
        append(new(PT, (base_offset + pos, pt, fl, sel, ln, buf[pos + HDR_LEN:end], rsv)))
        pos = end
    rest = n - pos
    if rest == TRAILER_LEN:
        findings.append(Finding(
            "warning", "parts_trailer_8",
            f"8-byte trailer after the last part: source kernel {TRAILER_KERNELS} "
            f"(CVE-2025-38314); bytes {bytes(buf[pos:]).hex()} are not a part (DP-14)",
            base_offset + pos, {"rule": "DP-14", "trailer": bytes(buf[pos:]).hex()}))
    elif rest:
        findings.append(Finding(
            "error", "part_truncated_header",
            f"{rest} bytes left where a 16-byte part header is expected "
            f"({HDR_LEN - rest} missing) (DP-01)",
            base_offset + pos, {"rule": "DP-01", "missing": HDR_LEN - rest}))
    return parts, pos, findings


def decode_parts_strict(buf: bytes | bytearray | memoryview, base_offset: int = 0) -> list[PartTuple]:
    """Parts of a blob that must be well formed: raises :class:`DecodeError`
    (carrying the finding) on truncation; the 8-byte trailer is tolerated."""
    parts, _stop, findings = decode_parts(buf, base_offset)
    for f in findings:
        if f.severity == "error":
            raise DecodeError(f)
    return parts


def mac_str(b: bytes | memoryview) -> str:
    return ":".join(f"{x:02x}" for x in bytes(b))


def decode_values(parts: Sequence[PartTuple], device_type: int = 1) -> list[dict[str, Any]]:
    """:func:`decode_value` for every part."""
    if device_type != 1:
        return [decode_value(p, device_type) for p in parts]
    # decode_value's virtio-net dispatch inlined: one call per part
    get = _FAST_NET.get
    out = []
    append = out.append
    for p in parts:
        f = get(p[1])
        o = f(p[5], p[3]) if f is not None else None
        append(o if o is not None else {"raw": bytes(p[5]).hex()})
    return out


def selector_object(part: PartTuple | Sequence[Any], device_type: int = 1) -> dict[str, Any]:
    """The contract's ``dev_part.selector`` object for one part."""
    pt, sel = part[1], part[3]
    if pt == N.PCI_COMMON_CFG:
        return {"offset": _U32.unpack_from(sel, 0)[0]}
    if pt == N.VQ_CFG or pt == N.VQ_NOTIFY_CFG:
        return {"vq_index": _U16.unpack_from(sel, 0)[0]}
    if pt == N.NET_CVQ_CFG and device_type == 1:
        c, m = sel[0], sel[1]
        return {"class": c, "command": m, "class_name": N.net_class_name(c),
                "command_name": N.net_command_name(c, m)}
    if pt in (N.DEV_FEATURES, N.DRV_FEATURES, N.DEVICE_STATUS):
        return {}
    return {"raw": bytes(sel).hex()}


def part_type_name(part_type: int, device_type: int = 1) -> str | None:
    if part_type >= N.DEVICE_TYPE_PARTS and device_type != N.NET_DEVICE_ID:
        return None
    return N.PART_TYPES.get(part_type)


COLUMNS = ("offset", "part_type", "part_type_name", "flags", "optional", "reserved",
           "selector", "cfg_offset", "vq_index", "cvq_class", "cvq_command", "length", "value")


def _selector_columns(pt: int, sel: bytes) -> tuple[int | None, int | None, int | None, int | None]:
    if pt == N.PCI_COMMON_CFG:
        return _U32.unpack_from(sel, 0)[0], None, None, None
    if pt == N.VQ_CFG or pt == N.VQ_NOTIFY_CFG:
        return None, _U16.unpack_from(sel, 0)[0], None, None
    if pt == N.NET_CVQ_CFG:
        return None, None, sel[0], sel[1]
    return None, None, None, None


def parts_dataframe(buf: bytes | bytearray | memoryview, base_offset: int = 0):
    """One row per part: header fields, the selector (hex and its decoded view)
    and the raw value bytes.  Selector views that do not apply are <NA>.

    Structural findings are attached as ``df.attrs["findings"]`` and the stop
    offset as ``df.attrs["stop"]``.
    """
    import pandas as pd

    parts, stop, findings = decode_parts(buf, base_offset)
    names = N.PART_TYPES
    df = pd.DataFrame.from_records(
        [(p.offset, p.part_type, names.get(p.part_type), p.flags, bool(p.flags & 1), p.reserved,
          p.selector.hex(), *_selector_columns(p.part_type, p.selector), p.length, bytes(p.value))
         for p in parts],
        columns=list(COLUMNS))
    for col in ("cfg_offset", "vq_index", "cvq_class", "cvq_command"):
        df[col] = df[col].astype("Int64")
    df.attrs["findings"] = findings
    df.attrs["stop"] = stop
    return df
