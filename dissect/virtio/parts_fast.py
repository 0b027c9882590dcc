# SPDX-License-Identifier: GPL-2.0-only
"""Fast path for device parts: split and decode without scapy objects.

Spec: shared/spec/device-parts.md §2 (header), §4/§5/§8 (values), §7 DP-01,
DP-02 and DP-14 (structural checks done while splitting).  The scapy layers
in :mod:`dissect.virtio.parts` are the declarative twin; tests run every
parts test through both paths and require every field to be equal.

The layout dispatcher :func:`value_layout` is shared by both paths so that
they agree on when a value is decodable and how many bytes the known layout
covers (the rest is "excess", DP-08's "longer than known").
"""
from __future__ import annotations

import struct
from typing import Any, NamedTuple, Sequence

from dissect.common.findings import DecodeError, Finding
from dissect.virtio import names as N

#: ``struct virtio_dev_part_hdr``: part_type, flags, reserved, selector, length.
HDR = struct.Struct("<HBB8sI")
HDR_LEN = HDR.size
#: ``struct virtio_dev_part_vq_cfg``.
VQ_CFG = struct.Struct("<HHHHQQQ")
#: ``struct virtio_dev_part_vq_notify_data``.
VQ_NOTIFY = struct.Struct("<HH4s")
#: RSS fixed head (hash_types, indirection_table_mask, unclassified_queue).
RSS_HEAD = struct.Struct("<IHH")
#: hash config fixed head (hash_types, reserved[8], hash_key_length).
HASH_HEAD = struct.Struct("<I8sB")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_PCI_FMT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}

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


# --------------------------------------------------------------------------
# value layouts


def pci_field(selector: bytes) -> tuple[int, str | None, int | None]:
    """(offset, field name, field size) of a PCI_COMMON_CFG selector."""
    off = _U32.unpack_from(selector, 0)[0]
    f = N.PCI_COMMON_CFG_FIELDS.get(off)
    return (off, f[0], f[1]) if f else (off, None, None)


def value_layout(part_type: int, selector: bytes, value: bytes | memoryview,
                 device_type: int = 1) -> tuple[str, int]:
    """Which value layout applies and how many value bytes it covers.

    Returns ``(key, known_len)``; ``key`` is ``"raw"`` when the value cannot
    be decoded with a known layout (unknown type, too short, inconsistent).
    ``len(value) - known_len`` bytes are excess (a newer, longer layout).
    Part types 0x0200+ are named for virtio-net (``device_type`` 1) only.
    """
    ln = len(value)
    if part_type == N.DEV_FEATURES or part_type == N.DRV_FEATURES:
        return ("features", ln) if ln and ln % 8 == 0 else ("raw", ln)
    if part_type == N.VQ_CFG:
        return ("vq_cfg", N.VQ_CFG_LEN) if ln >= N.VQ_CFG_LEN else ("raw", ln)
    if part_type == N.VQ_NOTIFY_CFG:
        return ("vq_notify", N.VQ_NOTIFY_CFG_LEN) if ln >= N.VQ_NOTIFY_CFG_LEN else ("raw", ln)
    if part_type == N.DEVICE_STATUS:
        return ("status", 1) if ln >= 1 else ("raw", ln)
    if part_type == N.PCI_COMMON_CFG:
        _off, _name, size = pci_field(selector)
        return ("pci_cfg", ln) if size is not None and size == ln else ("raw", ln)
    if part_type == N.NET_CVQ_CFG and device_type == 1:
        return _net_layout(selector[0], selector[1], value)
    return ("raw", ln)


def _net_layout(cls: int, cmd: int, v: bytes | memoryview) -> tuple[str, int]:
    ln = len(v)
    if cls == 0 and cmd <= 5:
        return ("net_rx", 1) if ln >= 1 else ("raw", ln)
    if cls == 1 and cmd == 1:
        return ("net_mac_addr", 6) if ln >= 6 else ("raw", ln)
    if cls == 1 and cmd == 0:
        if ln < 4:
            return ("raw", ln)
        uc = _U32.unpack_from(v, 0)[0]
        mpos = 4 + 6 * uc
        if mpos + 4 > ln:
            return ("raw", ln)
        mc = _U32.unpack_from(v, mpos)[0]
        used = mpos + 4 + 6 * mc
        return ("net_mac_table", used) if used <= ln else ("raw", ln)
    if cls == 2 and cmd == 0:
        return ("net_vlan", ln) if ln % 2 == 0 else ("raw", ln)
    if cls == 3 and cmd == 0:
        return ("net_announce", 0)
    if cls == 4 and cmd == 0:
        return ("net_mq_pairs", 2) if ln >= 2 else ("raw", ln)
    if cls == 4 and cmd == 1:
        if ln < RSS_HEAD.size:
            return ("raw", ln)
        n = _U16.unpack_from(v, 4)[0] + 1
        kpos = 8 + 2 * n + 2
        if kpos + 1 > ln:
            return ("raw", ln)
        used = kpos + 1 + v[kpos]
        return ("net_rss", used) if used <= ln else ("raw", ln)
    if cls == 4 and cmd == 2:
        if ln < HASH_HEAD.size:
            return ("raw", ln)
        used = HASH_HEAD.size + v[12]
        return ("net_hash", used) if used <= ln else ("raw", ln)
    return ("raw", ln)


def mac_str(b: bytes | memoryview) -> str:
    return ":".join(f"{x:02x}" for x in bytes(b))


def _features(v: bytes | memoryview) -> dict[str, Any]:
    words = struct.unpack_from(f"<{len(v) // 8}Q", v, 0)
    bits = [w * 64 + i for w, word in enumerate(words) if word for i in range(64) if word >> i & 1]
    return {"bits": bits, "names": [N.feature_name(b) for b in bits]}


def decode_value(part: PartTuple | Sequence[Any], device_type: int = 1) -> dict[str, Any]:
    """The contract's ``dev_part.value`` object (json-lines.md) for one part.

    Undecodable values give ``{"raw": hex}``; a value longer than its known
    layout gives the decoded prefix plus ``"excess": hex``.
    """
    part_type, sel, v = part[1], part[3], part[5]
    # Hot path: the fixed-size per-queue parts dominate real snapshots.
    if part_type == 0x0104 and len(v) == 32:
        qs, vec, en, _r, d, dr, dv = VQ_CFG.unpack_from(v, 0)
        return {"queue_size": qs, "vector": vec, "enabled": en,
                "queue_desc": d, "queue_driver": dr, "queue_device": dv}
    if part_type == 0x0105 and len(v) == 8:
        off, data, _r = VQ_NOTIFY.unpack_from(v, 0)
        return {"queue_notify_off": off, "queue_notif_config_data": data}
    key, used = value_layout(part_type, sel, v, device_type)
    out = _DECODERS[key](v, sel)
    if used < len(v) and key != "raw":
        out["excess"] = bytes(v[used:]).hex()
    return out


def decode_values(parts: Sequence[PartTuple], device_type: int = 1) -> list[dict[str, Any]]:
    """:func:`decode_value` for every part."""
    return [decode_value(p, device_type) for p in parts]


def _d_raw(v, sel):
    return {"raw": bytes(v).hex()}


def _d_pci(v, sel):
    off, name, size = pci_field(sel)
    return {"field": name, "value": struct.unpack_from(_PCI_FMT[size], v, 0)[0]}


def _d_status(v, sel):
    s = v[0]
    return {"value": s, "names": N.status_names(s)}


def _d_vq_cfg(v, sel):
    qs, vec, en, _r, d, dr, dv = VQ_CFG.unpack_from(v, 0)
    return {"queue_size": qs, "vector": vec, "enabled": en,
            "queue_desc": d, "queue_driver": dr, "queue_device": dv}


def _d_vq_notify(v, sel):
    off, data, _r = VQ_NOTIFY.unpack_from(v, 0)
    return {"queue_notify_off": off, "queue_notif_config_data": data}


def _d_rx(v, sel):
    return {"on": bool(v[0])}


def _d_mac_addr(v, sel):
    return {"mac": mac_str(v[:6])}


def _d_mac_table(v, sel):
    uc = _U32.unpack_from(v, 0)[0]
    mpos = 4 + 6 * uc
    mc = _U32.unpack_from(v, mpos)[0]
    return {"unicast": [mac_str(v[4 + 6 * i:10 + 6 * i]) for i in range(uc)],
            "multicast": [mac_str(v[mpos + 4 + 6 * i:mpos + 10 + 6 * i]) for i in range(mc)]}


def _d_vlan(v, sel):
    return {"vlans": list(struct.unpack_from(f"<{len(v) // 2}H", v, 0))}


def _d_announce(v, sel):
    return {}


def _d_mq_pairs(v, sel):
    return {"virtqueue_pairs": _U16.unpack_from(v, 0)[0]}


def _d_rss(v, sel):
    ht, mask, unclassified = RSS_HEAD.unpack_from(v, 0)
    n = mask + 1
    table = list(struct.unpack_from(f"<{n}H", v, 8))
    kpos = 8 + 2 * n
    max_tx = _U16.unpack_from(v, kpos)[0]
    k = v[kpos + 2]
    return {"hash_types": ht, "indirection_table": table, "unclassified_queue": unclassified,
            "max_tx_vq": max_tx, "hash_key": bytes(v[kpos + 3:kpos + 3 + k]).hex()}


def _d_hash(v, sel):
    ht, _r, k = HASH_HEAD.unpack_from(v, 0)
    return {"hash_types": ht, "hash_key": bytes(v[13:13 + k]).hex()}


_DECODERS = {
    "raw": _d_raw, "features": lambda v, s: _features(v),
    "pci_cfg": _d_pci, "status": _d_status, "vq_cfg": _d_vq_cfg, "vq_notify": _d_vq_notify,
    "net_rx": _d_rx, "net_mac_addr": _d_mac_addr, "net_mac_table": _d_mac_table,
    "net_vlan": _d_vlan, "net_announce": _d_announce, "net_mq_pairs": _d_mq_pairs,
    "net_rss": _d_rss, "net_hash": _d_hash,
}


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
    if part_type >= 0x0200 and device_type != 1:
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
