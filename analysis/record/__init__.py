# SPDX-License-Identifier: GPL-2.0-only
"""``migtrace record``: real QEMU migrations captured into run folders (docs/recording.md).

``qmp`` (QEMU's monitor through the ``qemu.qmp`` library), ``capture``
(tcpdump, QEMU log tails, tracefs), ``run`` (one migration → one run folder
with ``run.json``), ``session`` (options, N runs back and forth).
"""
from analysis.record.errors import RecordError
from analysis.record.session import RecordOptions, record

__all__ = ["RecordError", "RecordOptions", "record"]
