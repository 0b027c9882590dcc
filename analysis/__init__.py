# SPDX-License-Identifier: GPL-2.0-only
"""migtrace analysis: pandas pipelines, plots, the simulator and the CLI.

Dependencies run one way: ``analysis`` imports ``dissect``, never the reverse.
"""
__version__ = "0.1.0"
