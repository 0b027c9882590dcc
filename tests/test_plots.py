# SPDX-License-Identifier: GPL-2.0-only
"""What each figure shows (axes, series, values) on the hand-built migration — not pixels."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import analysis  # noqa: E402
from analysis import plots  # noqa: E402
from tests import test_analysis_fixture as U  # noqa: E402


@pytest.fixture(scope="module")
def m():
    return analysis.load("s", "t", "a", units=U.units())


def labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else []


def test_timeline(m):
    fig = plots.timeline(m)
    top, bottom = fig.axes
    assert [t.get_text() for t in top.get_yticklabels()] == [U.DEV]
    assert labels(top) == ["setup", "precopy", "stopcopy", "config", "resume"]
    assert bottom.get_xlabel() == "time since migration start (s)"
    assert bottom.get_ylabel() == "cumulative bytes sent"
    lines = {ln.get_label(): ln for ln in bottom.lines}
    vfio = lines[f"VFIO bytes {U.DEV}"]
    assert list(vfio.get_ydata()) == [1000, 2016, 3048, 4248]
    # t0 is the flow's first packet at T: the first chunk at 20 ms
    assert vfio.get_xdata()[0] == pytest.approx(0.020)
    assert lines["RAM bytes"].get_ydata()[-1] == 200 + 4 * 5000 + 8300


def test_convergence(m):
    ax = plots.convergence(m).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("QEMU pre-copy iteration", "bytes")
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert list(lines["VFIO bytes sent"].get_ydata()) == [1000, 1016, 1032, 0]
    assert list(lines["VFIO pending reported by QEMU (initial + dirty)"].get_ydata()) == [1000, 1016, 1032, 0]
    assert list(lines["device snapshot taken"].get_xdata()) == [1, 2, 3]
    assert list(lines["RAM bytes sent"].get_ydata()) == [5000] * 4


def test_record_sizes(m):
    ax = plots.record_sizes(m).axes[0]
    assert ax.get_ylabel() == "record size (bytes)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["precopy", "stopcopy"]
    pts = {ln.get_label(): ln for ln in ax.lines if not ln.get_label().startswith("_")}
    assert sorted(pts["precopy (3 records)"].get_ydata()) == [984, 1000, 1016]
    assert list(pts["stopcopy (1 records)"].get_ydata()) == [1184]


def test_part_composition(m):
    ax = plots.part_composition(m).axes[0]
    assert ax.get_xlabel() == "record index"
    assert labels(ax) == ["NET_CVQ_CFG", "VQ_CFG", "DEV_FEATURES"]
    heights = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}
    assert heights == {"NET_CVQ_CFG": [1048], "VQ_CFG": [112], "DEV_FEATURES": [24]}


def test_downtime_breakdown(m):
    ax = plots.downtime_breakdown(m).axes[0]
    assert ax.get_xlabel() == "downtime (ms)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["(a) QEMU", "(b) wire", "(c) breakdown", "(d) model"]
    widths = {c.get_label(): c.patches[0].get_width() for c in ax.containers}
    assert widths["(a) QEMU"] == pytest.approx(57.0) and widths["(b) wire"] == pytest.approx(50.0)
    assert [widths[f"(c) {k}"] for k in ("ram", "vfio", "config", "dst_load")] == pytest.approx([10, 18, 7, 15])
    assert labels(ax) == ["(c) ram", "(c) vfio", "(c) config", "(c) dst_load"]


def test_empty_migration_plots_say_so():
    e = analysis.load()
    for fn in plots.KINDS.values():
        fig = fn(e)
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert any(t.startswith("no ") for t in texts), fn.__name__
        assert np.all([ax.get_xlabel() or ax.get_ylabel() for ax in fig.axes])


def test_timeline_from_traces_only():
    u = U.units()
    m = analysis.load("t", units={0: u[1]})
    bottom = plots.timeline(m).axes[1]
    lines = {ln.get_label(): ln for ln in bottom.lines}
    vfio = lines[f"VFIO bytes {U.HOST} (vfio_save_block)"]
    assert list(vfio.get_ydata()) == [1000, 2016, 3048, 4248]


def test_corpus_downtime(m):
    import pandas as pd

    table = pd.concat([analysis.summarize(m).assign(run_id="a"),
                       analysis.summarize(m).assign(run_id="b", downtime_wire_ms=70.0)])
    ax = plots.corpus_downtime(table).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    widths = {c.get_label(): [p.get_width() for p in c.patches] for c in ax.containers}
    assert widths == {"(a) QEMU": [57.0, 57.0], "(b) wire": [50.0, 70.0]}
