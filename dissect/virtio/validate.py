# SPDX-License-Identifier: GPL-2.0-only
"""Validation of a list of device parts: shared/spec/device-parts.md §7.

Implements DP-03 … DP-13 and DP-15 … DP-19 (DP-01, DP-02 and DP-14 are
structural and reported by ``parts_fast.decode_parts`` while splitting).
Findings are data; nothing here raises on bad input.  Every finding carries
``rule`` (the DP id), ``index`` (position of the part in the list) and
``part_type`` in its context.  Codes are listed in docs/parts.md.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from dissect.common.findings import Finding
from dissect.virtio import names as N
from dissect.virtio.parts_fast import (HDR_LEN, PartTuple, decode_parts, pci_field,
                                       value_layout)

_NO_SELECTOR = (N.DEV_FEATURES, N.DRV_FEATURES, N.DEVICE_STATUS)
# device status in normal operation: DRIVER_OK set, neither DEVICE_NEEDS_RESET nor FAILED (DP-17)
_DRIVER_OK = N.STATUS_BIT["DRIVER_OK"]
_BROKEN = N.STATUS_BIT["DEVICE_NEEDS_RESET"] | N.STATUS_BIT["FAILED"]
_FIXED = {N.DEVICE_STATUS: N.DEVICE_STATUS_LEN, N.VQ_CFG: N.VQ_CFG_LEN,
          N.VQ_NOTIFY_CFG: N.VQ_NOTIFY_CFG_LEN}


def as_part_tuples(parts: Iterable[Any]) -> list[PartTuple]:
    """PartTuples from PartTuples or scapy ``VirtioDevPart`` packets (offsets cumulative)."""
    out: list[PartTuple] = []
    off = 0
    for p in parts:
        if isinstance(p, PartTuple):
            out.append(p)
            continue
        got, _stop, _f = decode_parts(bytes(p), off)
        out.extend(got)
        off += HDR_LEN + (got[-1].length if got else 0)
    return out


def _known_type(pt: int, device_type: int) -> bool:
    if pt >= N.DEVICE_TYPE_PARTS:
        return device_type == N.NET_DEVICE_ID and pt == N.NET_CVQ_CFG
    return pt in N.PART_TYPES


def validate_parts(parts: Sequence[Any], *, snapshot: bool = False, device_type: int = 1,
                   metadata_size: int | None = None) -> list[Finding]:
    """Check parts against §7.  ``snapshot``: the list is a complete GET ALL
    snapshot (a vfio-virtio DEVICE_DATA record) and DP-13 applies.
    ``metadata_size``: the METADATA SIZE reported for it (DP-19)."""
    ps = as_part_tuples(parts)
    fs: list[Finding] = []

    def add(sev: str, code: str, rule: str, msg: str, i: int | None, p: PartTuple | None, **ctx):
        c: dict[str, Any] = {"rule": rule}
        if p is not None:
            c.update(index=i, part_type=p.part_type)
        c.update(ctx)
        fs.append(Finding(sev, code, f"{msg} ({rule})", p.offset if p is not None else None, c))

    seen_single: dict[int, int] = {}
    seen_cfg: dict[int, int] = {}
    seen_vq: dict[tuple[int, int], int] = {}
    seen_cvq: dict[tuple[int, int], int] = {}
    last_common = 0
    device_part_seen = False
    dev_feat: PartTuple | None = None
    drv_feat: PartTuple | None = None
    status: PartTuple | None = None
    num_queues: int | None = None
    vq_cfg_idx: set[int] = set()
    vq_notify: list[tuple[int, PartTuple]] = []

    for i, p in enumerate(ps):
        pt, sel, v = p.part_type, bytes(p.selector), p.value
        name = N.PART_TYPES.get(pt) if _known_type(pt, device_type) else None
        label = name or f"0x{pt:04x}"
        if p.reserved:
            add("warning", "part_reserved_nonzero", "DP-03",
                f"{label}: header reserved byte is 0x{p.reserved:02x}", i, p)
        if p.flags & ~N.F_OPTIONAL:
            add("warning", "part_flags_unknown", "DP-04",
                f"{label}: flags 0x{p.flags:02x} have undefined bits", i, p)
        if name is None:
            add("warning", "part_type_unknown", "DP-05",
                f"part type 0x{pt:04x} is unassigned/reserved or not defined for this device "
                f"type; value kept raw", i, p)
            continue
        # ordering (DP-11, DP-12)
        if pt < N.DEVICE_TYPE_PARTS:
            if pt < last_common:
                add("error", "part_order", "DP-11",
                    f"{label} after {N.PART_TYPES[last_common]}: common parts must be in order "
                    f"DEV_FEATURES, DRV_FEATURES, PCI_COMMON_CFG, DEVICE_STATUS, VQ_CFG, VQ_NOTIFY_CFG",
                    i, p)
            last_common = max(last_common, pt)
            if device_part_seen:
                add("warning", "part_device_before_common", "DP-12",
                    f"{label} comes after a device-type part (expected after all common parts)", i, p)
        else:
            device_part_seen = True
        # optional flag (DP-15)
        if pt == N.DEV_FEATURES and not p.flags & N.F_OPTIONAL:
            add("warning", "dev_features_not_optional", "DP-15",
                "DEV_FEATURES without F_OPTIONAL (the only optional part in 1.4)", i, p)
        elif pt != N.DEV_FEATURES and pt < N.DEVICE_TYPE_PARTS and p.flags & N.F_OPTIONAL:
            add("warning", "part_optional_unexpected", "DP-15",
                f"{label} carries F_OPTIONAL (only DEV_FEATURES is optional in 1.4)", i, p)
        # selectors (DP-06, DP-07, DP-09, DP-18)
        if pt in _NO_SELECTOR and any(sel):
            add("warning", "part_selector_nonzero", "DP-06",
                f"{label} has a non-zero selector {sel.hex()}", i, p)
        # lengths and per-type checks
        ln = len(v)
        if pt in (N.DEV_FEATURES, N.DRV_FEATURES):
            if ln == 0 or ln % 8:
                add("error", "features_length_bad", "DP-08",
                    f"{label} length {ln} is not a non-zero multiple of 8", i, p)
            key = "dev" if pt == N.DEV_FEATURES else "drv"
            if pt in seen_single:
                add("error", "part_duplicate", "DP-10", f"second {label} part", i, p)
            else:
                seen_single[pt] = i
                if key == "dev":
                    dev_feat = p
                else:
                    drv_feat = p
        elif pt == N.PCI_COMMON_CFG:
            off, field, size = pci_field(sel)
            if field is None:
                add("error", "pci_cfg_bad_offset", "DP-07",
                    f"PCI_COMMON_CFG offset {off} is not the start of a virtio_pci_common_cfg field",
                    i, p, cfg_offset=off)
            elif ln != size:
                add("error", "pci_cfg_bad_length", "DP-07",
                    f"PCI_COMMON_CFG {field} (offset {off}) has length {ln}, the field is {size} bytes",
                    i, p, cfg_offset=off)
            elif field == "num_queues":
                num_queues = int.from_bytes(bytes(v), "little")
            if any(sel[4:]):
                add("warning", "part_selector_nonzero", "DP-07",
                    f"PCI_COMMON_CFG selector reserved bytes are {sel[4:].hex()}", i, p)
            if off in seen_cfg:
                add("error", "part_duplicate", "DP-10",
                    f"duplicate PCI_COMMON_CFG offset {off} (first at part {seen_cfg[off]})", i, p,
                    cfg_offset=off)
            else:
                seen_cfg[off] = i
        elif pt in _FIXED:
            want = _FIXED[pt]
            if ln < want:
                add("error", "part_length_short", "DP-08",
                    f"{label} length {ln} < {want}; value kept raw", i, p)
            elif ln > want:
                add("warning", "part_length_long", "DP-08",
                    f"{label} length {ln} > {want}: longer than known, possibly a newer spec; "
                    f"known prefix decoded", i, p)
            if pt == N.DEVICE_STATUS:
                if pt in seen_single:
                    add("error", "part_duplicate", "DP-10", "second DEVICE_STATUS part", i, p)
                else:
                    seen_single[pt] = i
                    status = p
                if ln >= 1:
                    s = v[0]
                    if not s & _DRIVER_OK or s & _BROKEN:
                        add("info", "device_status_abnormal", "DP-17",
                            f"device status 0x{s:02x} ({'|'.join(N.status_names(s)) or 'none'}): "
                            f"device not in normal operation when captured", i, p, status=s)
            else:
                idx = sel[0] | sel[1] << 8
                if any(sel[2:]):
                    add("warning", "part_selector_nonzero", "DP-09",
                        f"{label} vq_index reserved bytes are {sel[2:].hex()}", i, p)
                if pt == N.VQ_CFG and ln >= 8 and (v[6] or v[7]):
                    add("warning", "part_value_reserved_nonzero", "DP-09",
                        f"VQ_CFG {idx} reserved field is non-zero", i, p, vq_index=idx)
                if pt == N.VQ_NOTIFY_CFG and ln >= 8 and any(v[4:8]):
                    add("warning", "part_value_reserved_nonzero", "DP-09",
                        f"VQ_NOTIFY_CFG {idx} reserved bytes are non-zero", i, p, vq_index=idx)
                if (pt, idx) in seen_vq:
                    add("error", "part_duplicate", "DP-10",
                        f"duplicate {label} for vq_index {idx}", i, p, vq_index=idx)
                else:
                    seen_vq[(pt, idx)] = i
                    if pt == N.VQ_CFG:
                        vq_cfg_idx.add(idx)
                    else:
                        vq_notify.append((i, p))
        elif pt == N.NET_CVQ_CFG:
            cls, cmd = sel[0], sel[1]
            cc = f"{N.net_class_name(cls) or cls}/{N.net_command_name(cls, cmd) or cmd}"
            if (cls, cmd) not in N.NET_CVQ_ALLOWED:
                add("warning", "net_cvq_selector_unknown", "DP-18",
                    f"net CVQ part with (class, command) ({cls}, {cmd}) = {cc}, not a part selector",
                    i, p, **{"class": cls, "command": cmd})
            else:
                key, used = value_layout(pt, sel, v, device_type)
                if key == "raw" or used != ln:
                    add("warning", "net_cvq_length", "DP-18",
                        f"net CVQ {cc} value length {ln} does not match its layout"
                        + (f" ({ln - used} bytes beyond it)" if key != "raw" else ""),
                        i, p, **{"class": cls, "command": cmd})
                elif key == "net_mq_pairs":
                    n = v[0] | v[1] << 8
                    if not N.MQ_VQ_PAIRS_MIN <= n <= N.MQ_VQ_PAIRS_MAX:
                        add("warning", "net_mq_pairs_range", "DP-18",
                            f"MQ_VQ_PAIRS_SET virtqueue_pairs {n} outside 1..0x8000", i, p)
                elif key == "net_rss":
                    n = (v[4] | v[5] << 8) + 1
                    if n & (n - 1):
                        add("warning", "net_rss_table_size", "DP-18",
                            f"RSS indirection table size {n} is not a power of two", i, p)
            if any(sel[2:]):
                add("warning", "part_selector_nonzero", "DP-18",
                    f"net CVQ selector reserved bytes are {sel[2:].hex()}", i, p)
            if (cls, cmd) in seen_cvq:
                add("error", "part_duplicate", "DP-10",
                    f"duplicate net CVQ part {cc} (first at part {seen_cvq[(cls, cmd)]})", i, p,
                    **{"class": cls, "command": cmd})
            else:
                seen_cvq[(cls, cmd)] = i

    # DP-16: features consistency
    if drv_feat is not None and len(drv_feat.value) % 8 == 0 and drv_feat.value:
        drv = int.from_bytes(bytes(drv_feat.value), "little")
        if dev_feat is not None and len(dev_feat.value) % 8 == 0 and dev_feat.value:
            dev = int.from_bytes(bytes(dev_feat.value), "little")
            extra = drv & ~dev
            if extra:
                bits = [b for b in range(extra.bit_length()) if extra >> b & 1]
                add("warning", "drv_features_unoffered", "DP-16",
                    "driver accepted features the device does not offer: "
                    + ", ".join(N.feature_name(b) for b in bits), ps.index(drv_feat), drv_feat, bits=bits)
        if not drv >> N.VIRTIO_F_VERSION_1 & 1:
            add("warning", "drv_features_no_version_1", "DP-16",
                "DRV_FEATURES lacks VIRTIO_F_VERSION_1 (modern device)", ps.index(drv_feat), drv_feat)
    # DP-13: completeness of a full snapshot
    if snapshot:
        for pt, have in ((N.DRV_FEATURES, drv_feat), (N.DEVICE_STATUS, status)):
            if have is None:
                add("warning", "snapshot_part_missing", "DP-13",
                    f"full snapshot without a {N.PART_TYPES[pt]} part", None, None,
                    part_type=pt)
        for i, p in vq_notify:
            idx = p.selector[0] | p.selector[1] << 8
            if idx not in vq_cfg_idx:
                add("warning", "vq_notify_without_cfg", "DP-13",
                    f"VQ_NOTIFY_CFG for vq_index {idx} without a VQ_CFG", i, p, vq_index=idx)
        if num_queues is not None:
            over = sorted(x for x in vq_cfg_idx if x >= num_queues)
            if over:
                add("warning", "vq_index_out_of_range", "DP-13",
                    f"VQ_CFG indices {over} >= num_queues {num_queues}", None, None, vq_indices=over)
            missing = [x for x in range(num_queues) if x not in vq_cfg_idx]
            if missing:
                add("info", "vq_indices_incomplete", "DP-13",
                    f"no VQ_CFG for {len(missing)} of num_queues {num_queues} queues "
                    f"(first missing {missing[0]}); whether devices omit disabled queues is unverified",
                    None, None, missing=len(missing))
    # DP-19
    if metadata_size is not None:
        total = sum(HDR_LEN + len(p.value) for p in ps)
        if metadata_size < total:
            add("warning", "parts_exceed_metadata_size", "DP-19",
                f"parts total {total} bytes > METADATA SIZE {metadata_size}", None, None,
                total=total, metadata_size=metadata_size)
    return fs
