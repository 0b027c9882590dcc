# SPDX-License-Identifier: GPL-2.0-only
"""The ``migtrace`` command line (contract: shared/contract/cli.md)."""
