# SPDX-License-Identifier: GPL-2.0-only
"""The simulated VF's device context: one DEV_PARTS_GET(ALL) result per snapshot.

Built with engineer B's part builders (:mod:`dissect.virtio.builders`), in
the order of device-parts.md §6: features, PCI common cfg, status, VQ_CFG
and VQ_NOTIFY_CFG for every queue (incl. the CVQ), then the net CVQ parts.
The firmware profile picks the composition; snapshot ``generation`` grows
the multicast MAC table (the guest joins groups while pre-copy runs), which
is how the context grows from the first pre-copy snapshot to the stop-copy
record.
"""
from __future__ import annotations

from dataclasses import dataclass

from dissect.virtio import builders as B

from analysis.simulate.profiles import FirmwareProfile


@dataclass(frozen=True)
class Context:
    """One snapshot: the parts blob and what it is made of."""

    payload: bytes
    part_types: tuple[int, ...]
    multicast_macs: int


def vf_mac(vf: int) -> str:
    return f"52:54:00:12:34:{0x56 + vf:02x}"


def _multicast(n: int, vf: int) -> list[str]:
    # IPv6 solicited-node style groups, unique per entry
    return [f"33:33:ff:{vf:02x}:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}" for i in range(n)]


def context(fw: FirmwareProfile, vf: int, generation: int) -> Context:
    """The device context of VF ``vf`` (0-based) at snapshot ``generation`` (0 = first)."""
    qp = fw.queue_pairs
    nq = 2 * qp + 1
    mcast = min(fw.multicast_max, fw.multicast_macs + fw.multicast_growth * generation)
    mac = vf_mac(vf)
    parts = [B.features_part(B.NET_VF_DEV_FEATURES, words=2),
             B.features_part(B.NET_VF_DRV_FEATURES, driver=True),
             B.common_cfg_part("config_msix_vector", 0),
             B.common_cfg_part("num_queues", nq),
             B.status_part(0x0F)]
    ring_base = 0x1_0000_0000 + (vf << 28)
    for i in range(nq):
        base = ring_base + (i << 16)
        cvq = i == nq - 1
        parts.append(B.vq_cfg_part(i, 64 if cvq else 256, i + 1, 1, base, base + 0x1000, base + 0x2000))
    for i in range(nq):
        parts.append(B.vq_notify_part(i, i, i))
    parts += [B.net_rx_part("RX_PROMISC", False), B.net_rx_part("RX_ALLMULTI", False),
              B.net_mac_table_part([mac], _multicast(mcast, vf)),
              B.net_mac_addr_part(mac)]
    if fw.vlans:
        parts.append(B.net_vlan_part([100 + i for i in range(fw.vlans)]))
    parts.append(B.net_mq_pairs_part(qp))
    if fw.rss_table_size:
        parts.append(B.net_rss_part([i % qp for i in range(fw.rss_table_size)],
                                    max_tx_vq=qp, hash_key=B.TOEPLITZ_KEY))
    payload = B.build_parts(parts)
    return Context(payload, tuple(p.part_type for p in parts), mcast)


def metadata_size(fw: FirmwareProfile, parts_len: int) -> int:
    """What DEV_PARTS_METADATA_GET(SIZE) reports for a context of ``parts_len`` bytes."""
    size = parts_len + fw.metadata_slack
    r = max(1, fw.metadata_round)
    return -(-size // r) * r
