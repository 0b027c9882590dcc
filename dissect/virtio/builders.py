# SPDX-License-Identifier: GPL-2.0-only
"""Build device-part blobs: single parts and realistic virtio-net VF snapshots.

Spec: shared/spec/device-parts.md.  Values are encoded by the encoders
compiled from the scapy value layers (:func:`dissect.virtio.values.encode_value`,
one definition per format); the layers themselves build the same bytes (tests check it).
Used by tests, benchmarks and the simulator.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from dissect.virtio import names as N
from dissect.virtio import netparts as NP
from dissect.virtio import value_layers as VL
from dissect.virtio.parts_fast import HDR
from dissect.virtio.values import encode_value

_Z8 = b"\x00" * 8


@dataclass(frozen=True, slots=True)
class PartSpec:
    """One part to build: header fields and the encoded value."""

    part_type: int
    value: bytes = b""
    selector: bytes = _Z8
    flags: int = 0
    reserved: int = 0
    #: override the header's length (to build malformed parts); None = len(value)
    length: int | None = None

    def to_bytes(self) -> bytes:
        ln = len(self.value) if self.length is None else self.length
        return HDR.pack(self.part_type, self.flags, self.reserved, bytes(self.selector).ljust(8, b"\0"),
                        ln) + bytes(self.value)


def build_parts(parts: Iterable[Any]) -> bytes:
    """Concatenate parts: ``PartSpec``, ``PartTuple``-like (part_type, flags,
    selector, value, reserved attributes), or anything ``bytes()`` accepts
    (e.g. a scapy ``VirtioDevPart``)."""
    out = []
    for p in parts:
        if isinstance(p, PartSpec):
            out.append(p.to_bytes())
        elif hasattr(p, "part_type") and hasattr(p, "selector") and hasattr(p, "value") \
                and not hasattr(p, "fields_desc"):
            v = bytes(p.value)
            out.append(HDR.pack(p.part_type, p.flags, getattr(p, "reserved", 0), bytes(p.selector), len(v)) + v)
        else:
            out.append(bytes(p))
    return b"".join(out)


# ------------------------------------------------------------- common parts


def features_part(bits: Iterable[int], *, driver: bool = False, optional: bool | None = None,
                  words: int | None = None) -> PartSpec:
    """DEV_FEATURES (default, with F_OPTIONAL) or DRV_FEATURES from bit numbers."""
    bits = sorted(set(bits))
    need = (bits[-1] // 64 + 1) if bits else 1
    nwords = max(need, words or 1)
    vals = [0] * nwords
    for b in bits:
        vals[b // 64] |= 1 << (b % 64)
    if optional is None:
        optional = not driver
    return PartSpec(N.DRV_FEATURES if driver else N.DEV_FEATURES,
                    struct.pack(f"<{nwords}Q", *vals), flags=N.F_OPTIONAL if optional else 0)


def common_cfg_part(field: str | int, value: int) -> PartSpec:
    """PCI_COMMON_CFG for the field named (or at offset) ``field`` (§5)."""
    off = N.PCI_COMMON_CFG_BY_NAME[field] if isinstance(field, str) else field
    _name, size = N.PCI_COMMON_CFG_FIELDS[off]
    fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[size]
    return PartSpec(N.PCI_COMMON_CFG, struct.pack(fmt, value), struct.pack("<II", off, 0))


def status_part(status: int = 0x0F) -> PartSpec:
    return PartSpec(N.DEVICE_STATUS, bytes((status,)))


def _vq_sel(index: int) -> bytes:
    return struct.pack("<H6x", index)


def vq_cfg_part(index: int, queue_size: int = 256, vector: int = 0, enabled: int = 1,
                queue_desc: int = 0, queue_driver: int = 0, queue_device: int = 0) -> PartSpec:
    return PartSpec(N.VQ_CFG, encode_value(VL.VqCfgValue, queue_size=queue_size, vector=vector, enabled=enabled,
                                           queue_desc=queue_desc, queue_driver=queue_driver,
                                           queue_device=queue_device), _vq_sel(index))


def vq_notify_part(index: int, queue_notify_off: int = 0, queue_notif_config_data: int = 0) -> PartSpec:
    return PartSpec(N.VQ_NOTIFY_CFG, encode_value(VL.VqNotifyCfgValue, queue_notify_off=queue_notify_off,
                                                  queue_notif_config_data=queue_notif_config_data),
                    _vq_sel(index))


# ------------------------------------------------------------ virtio-net CVQ


def net_cvq_part(cls: int, cmd: int, value: bytes) -> PartSpec:
    return PartSpec(N.NET_CVQ_CFG, value, bytes((cls, cmd)) + b"\0" * 6)


def net_rx_part(command: int | str, on: bool) -> PartSpec:
    if isinstance(command, str):
        command = {v: k for k, v in N.NET_CTRL_COMMANDS[0].items()}[command]
    return net_cvq_part(0, command, encode_value(NP.NetRxValue, on=1 if on else 0))


def net_mac_table_part(unicast: Sequence[str | bytes] = (), multicast: Sequence[str | bytes] = ()) -> PartSpec:
    return net_cvq_part(1, 0, encode_value(NP.NetMacTableValue, unicast=list(unicast), multicast=list(multicast)))


def net_mac_addr_part(mac: str | bytes) -> PartSpec:
    return net_cvq_part(1, 1, encode_value(NP.NetMacAddrValue, mac=mac))


def net_vlan_part(vlans: Sequence[int]) -> PartSpec:
    return net_cvq_part(2, 0, encode_value(NP.NetVlanTableValue, vlans=list(vlans)))


def net_announce_part() -> PartSpec:
    return net_cvq_part(3, 0, b"")


def net_mq_pairs_part(pairs: int) -> PartSpec:
    return net_cvq_part(4, 0, encode_value(NP.NetMqVqPairsValue, virtqueue_pairs=pairs))


def net_rss_part(indirection_table: Sequence[int], *, hash_types: int = 0x3F,
                 unclassified_queue: int = 0, max_tx_vq: int = 1, hash_key: bytes = b"") -> PartSpec:
    """MQ_RSS_CONFIG; ``indirection_table`` holds ``rss_rq_id`` values (rx vq index / 2)."""
    n = len(indirection_table)
    if n == 0 or n & (n - 1):
        raise ValueError("indirection table size must be a power of two")
    return net_cvq_part(4, 1, encode_value(NP.NetRssConfigValue, hash_types=hash_types,
                                           unclassified_queue=unclassified_queue,
                                           indirection_table=list(indirection_table), max_tx_vq=max_tx_vq,
                                           hash_key=hash_key))


def net_hash_part(hash_types: int = 0x3F, hash_key: bytes = b"") -> PartSpec:
    return net_cvq_part(4, 2, encode_value(NP.NetHashConfigValue, hash_types=hash_types, hash_key=hash_key))


# --------------------------------------------------------- realistic snapshot

#: The Microsoft RSS verification-suite Toeplitz key (40 bytes), as drivers default to.
TOEPLITZ_KEY = bytes.fromhex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c"
                             "6a42b73bbeac01fa")

NET_VF_DEV_FEATURES = (0, 1, 3, 5, 7, 8, 11, 12, 15, 16, 17, 18, 19, 21, 22, 23, 60,
                       32, 33, 35, 37, 39)
NET_VF_DRV_FEATURES = (0, 1, 3, 5, 7, 8, 11, 12, 15, 16, 17, 18, 19, 21, 22, 23, 60, 32, 33, 35)


def virtio_net_vf_parts(queue_pairs: int = 4, *, mac: str = "52:54:00:12:34:56",
                        status: int = 0x0F, rss_table_size: int = 128,
                        dev_features: Sequence[int] = NET_VF_DEV_FEATURES,
                        drv_features: Sequence[int] = NET_VF_DRV_FEATURES,
                        ring_base: int = 0x1_0000_0000, generation: int = 0) -> list[PartSpec]:
    """A GET ALL snapshot of a running virtio-net VF with ``queue_pairs`` pairs.

    Order per §6: features, PCI common cfg (config_msix_vector, num_queues),
    status, VQ_CFG for every queue incl. the CVQ (index 2N), VQ_NOTIFY_CFG
    for every queue, then the net CVQ parts (RX switches, MAC, MAC table,
    VLAN table, MQ pairs, RSS with ``rss_table_size`` entries, hash config).
    ``generation`` perturbs the ring addresses so successive snapshots differ.
    """
    nq = 2 * queue_pairs + 1
    parts = [features_part(dev_features, words=2), features_part(drv_features, driver=True),
             common_cfg_part("config_msix_vector", 0), common_cfg_part("num_queues", nq),
             status_part(status)]
    for i in range(nq):
        base = ring_base + (i << 16) + generation * 0x1000_0000
        cvq = i == nq - 1
        parts.append(vq_cfg_part(i, 64 if cvq else 256, i + 1, 1, base, base + 0x1000, base + 0x2000))
    for i in range(nq):
        parts.append(vq_notify_part(i, i, i))
    parts += [net_rx_part("RX_PROMISC", False), net_rx_part("RX_ALLMULTI", True),
              net_mac_addr_part(mac),
              net_mac_table_part([mac], ["33:33:00:00:00:01", "01:00:5e:00:00:01"]),
              net_vlan_part([]), net_mq_pairs_part(queue_pairs)]
    if rss_table_size:
        parts.append(net_rss_part([i % queue_pairs for i in range(rss_table_size)],
                                  max_tx_vq=queue_pairs, hash_key=TOEPLITZ_KEY))
    return parts


def virtio_net_vf_blob(queue_pairs: int = 4, **kw: Any) -> bytes:
    """Bytes of :func:`virtio_net_vf_parts` (a DEV_PARTS_GET(ALL) result)."""
    return build_parts(virtio_net_vf_parts(queue_pairs, **kw))
