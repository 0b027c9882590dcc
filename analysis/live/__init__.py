# SPDX-License-Identifier: GPL-2.0-only
"""Live decoding: captures read from a pipe or while they are written (docs/capture.md, "Streaming")."""
