# SPDX-License-Identifier: GPL-2.0-only
"""The Linux vfio-virtio migration record stream (16-byte virtiovf_migration_header)."""
