# SPDX-License-Identifier: GPL-2.0-only
"""Capture files (pcap, pcapng) and TCP reassembly."""
