# SPDX-License-Identifier: GPL-2.0-only
"""QEMU: the migration stream (main channel, return path, multifd) and trace events."""
