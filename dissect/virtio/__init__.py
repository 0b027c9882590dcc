# SPDX-License-Identifier: GPL-2.0-only
"""virtio 1.4 admin commands and device parts (scapy layers and fast paths)."""

# The admin modules import each other (admin re-exports the decoders and registers the data and
# result layers at its end): importing ``admin`` first, whatever submodule is asked for, keeps
# that one import order, so any of them can be the first import (a wider untangling is issue 13's).
from dissect.virtio import admin as _admin  # noqa: E402,F401
