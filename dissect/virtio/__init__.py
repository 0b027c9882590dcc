# SPDX-License-Identifier: GPL-2.0-only
"""virtio 1.4 admin commands and device parts (scapy layers and fast paths)."""
