# SPDX-License-Identifier: GPL-2.0-only
"""The HTML report: an index with one compact, sortable fleet table and one page per
migration (a card of the answers, the panels that apply, details collapsed).

- :mod:`analysis.report.inputs`: command-line paths → migrations; the terminal table.
- :mod:`analysis.report.build`: pages and index, in worker processes (``build_report``)
  or for migrations already loaded (``write_report``).
- :mod:`analysis.report.page`, :mod:`analysis.report.fleet`: the two kinds of page;
  :mod:`analysis.report.figures`: the panels; :mod:`analysis.report.truth`: measured
  vs a simulated run's truth with tolerances; :mod:`analysis.report.fmt`: how values are
  spelled (human units, one missing-value mark).
"""
from __future__ import annotations

from analysis.report.build import build_report, write_report
from analysis.report.inputs import TABLE_COLUMNS, format_table, group_inputs, load_groups, summary_table
from analysis.report.truth import truth_rows, truth_table

__all__ = ["TABLE_COLUMNS", "build_report", "format_table", "group_inputs", "load_groups", "summary_table",
           "truth_rows", "truth_table", "write_report"]
