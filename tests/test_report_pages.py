# SPDX-License-Identifier: GPL-2.0-only
"""The redesigned report (issue 11 §1): an index with one compact fleet table and a page per
migration whose card answers at a glance, panels only where they apply, details collapsed,
human units, one missing-value mark, no Python reprs, truth with named tolerances."""
from __future__ import annotations

import html
import re

import matplotlib
import pytest

import analysis
from analysis.report import figures as F
from analysis.report import fmt
from tests.conftest import ROOT, TRACES, run_cli

matplotlib.use("Agg")
RUNS = [TRACES / "sim" / "variants" / "two-vfs", TRACES / "real" / "runs" / "qemu-file",
        TRACES / "sim" / "policies" / "fw-28.40-cap128"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    proc = run_cli("report", *map(str, RUNS), "-o", str(out), "--no-cache")
    assert proc.returncode == 0, proc.stderr
    return out


def _pages(out):
    return {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.html")}


def test_index_is_one_fleet_table_linking_one_page_per_migration(report):
    idx = (report / "index.html").read_text(encoding="utf-8")
    body = idx.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = body.count("<tr>")
    assert rows == 4  # two-vfs: 2 VFs; qemu-file: no VF (one row); cap128: 1 VF
    links = set(re.findall(r"href='([^']+\.html)'", body))
    assert len(links) == 3 and all((report / link).is_file() for link in links)
    groups = re.findall(r"<th class='g' colspan='(\d+)'>([^<]+)</th>", idx)
    assert [g for _, g in groups] == ["Migration", "Time (ms)", "Pre-copy", "Device", "Findings"]
    assert sum(int(n) for n, _ in groups) == len(re.findall(r"<tr class='h'>(.*?)</tr>", idx)[0].split("</th>")) - 1
    assert "<script>" in idx and "http" not in idx.split("<script>")[1]  # inline, no CDN
    # human units: the cap128 run's stop-copy bytes as bytes, its total time in ms (header unit)
    assert ">589 B<" in body


def test_pages_spell_values_once_and_never_as_python(report):
    for name, page in _pages(report).items():
        text = html.unescape(re.sub(r"<(script|style)>.*?</\1>", "", page, flags=re.S))
        text = re.sub(r"<[^>]+>", " ", text)
        for bad in ("<NA>", " None", "nan ", "NaN", "{'", "[{", "e+0", "True", "False"):
            assert bad not in text, (name, bad)
        tables = re.sub(r"<summary>Findings.*?</details>", "", page, flags=re.S)  # messages quote offsets
        assert not re.search(r"\b\d{16,}\b", re.sub(r"<[^>]+>", " ", tables)), name  # no epoch nanoseconds
        assert " - " not in text.replace(" - migtrace", "")  # the one missing mark is —
        assert not re.search(r"\b\d+\.000\b", text), name  # an offset is an integer, not 641192.000


def test_card_answers_at_a_glance(report):
    page = (report / "28.40.1000-ratelimited-q9.x-two-vfs-s200.html").read_text(encoding="utf-8")
    m = analysis.load(RUNS[0])
    mig = analysis.summary_objects(m)[0]
    card = page.split("<div class='card'>", 1)[1].split("<div class='panels'>", 1)[0]
    for k in ("Total time", "Downtime (QEMU)", "Downtime (wire)", "Pre-copy iterations", "PRE_COPY policy",
              "Stop-copy", "Record size median / max", "Kernel trailer bug", "Findings"):
        assert k in card, k
    assert fmt.ms(mig["downtime_wire_ms"]) in card and "class='bar'" in card  # the breakdown as one bar
    assert f"method: {mig['precopy_iterations_method']}" in card
    assert card.count("pre-copy snapshots (from records)") == 2  # the policy's evidence, per VF
    assert page.index("<div class='card'>") < page.index("<details>")  # details come after, collapsed
    assert "<details open" not in page


def test_panels_only_where_they_apply(report):
    pages = _pages(report)
    imgs = {n: re.findall(r"<img src='([^']+)' alt='([^']+)'", p) for n, p in pages.items() if n != "index.html"}
    assert [a for _, a in imgs["28.40.1000-ratelimited-q9.x-two-vfs-s200.html"]] == ["timeline", "convergence",
                                                                                     "record-sizes"]
    # a file stream with a QEMU log: no VFIO device, no timed data -> only convergence, no empty panels
    assert [a for _, a in imgs["real-qemu-file.html"]] == ["convergence"]
    for srcs in imgs.values():
        for src, _ in srcs:
            assert (report / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_file_run_plots_remaining_bytes_not_zeros():
    """The RAM-bytes-0 bug: an untimed file stream gave 0 RAM bytes in every iteration."""
    m = analysis.load(RUNS[1])
    fig = F.convergence(m)
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    assert list(lines) == ["RAM remaining (QEMU pending)"]
    logged = [int(x) for x in re.findall(r"migrate_pending pending size (\d+)",
                                         (ROOT / "traces/real/qemu-file.src.log").read_text())]
    ys = list(lines["RAM remaining (QEMU pending)"].get_ydata())
    assert len(ys) >= 5 and set(ys) <= set(logged) and max(ys) > 10_000_000  # not the 0s of the bug
    assert min(ys[:-1]) > 0 and ys[-1] == logged[-1]  # the last iteration ends with QEMU's last pending
    assert ys == sorted(ys, reverse=True)  # the guest converged: pending shrinks every iteration
    from analysis import plots

    labels = [ln.get_label() for ln in plots.convergence(m).axes[0].lines]
    assert "RAM bytes sent" not in labels


def test_timeline_zooms_into_the_switchover():
    m = analysis.load(RUNS[0])
    fig = F.timeline(m)
    zoom = next(ax for ax in fig.axes if ax.get_xlabel() == "ms since switchover")
    lanes = [t.get_text() for t in zoom.get_yticklabels()]
    assert lanes == ["stopcopy 05.0", "config 05.0", "resume 05.0", "stopcopy 06.0", "config 06.0", "resume 06.0"]
    w = F.switchover_window(m)
    lo, hi = zoom.get_xlim()
    assert lo < 0 and hi > (w[1] - w[0]) / 1e6  # the whole window at ms scale, padded
    mig = analysis.summary_objects(m)[0]
    assert (w[1] - w[0]) / 1e6 == pytest.approx(mig["downtime_wire_ms"], abs=1e-6)
    assert any(t.get_text() == f"Switchover: {fmt.ms(mig['downtime_wire_ms'])}" for t in fig.texts)


def test_truth_only_where_one_exists_with_the_tolerance_named(report):
    pages = _pages(report)
    assert "simulator truth" not in pages["real-qemu-file.html"]
    page = pages["28.40.1000-ratelimited-q9.x-two-vfs-s200.html"]
    sec = page.split("Measured vs simulator truth", 1)[1].split("</details>", 1)[0]
    n = int(re.match(r" \((\d+) values, 0 outside tolerance\)", sec).group(1))
    assert n > 40
    cells = re.findall(r"<tr>(.*?)</tr>", sec.split("<tbody>", 1)[1])
    agrees = {re.findall(r"<td>(.*?)</td>", c)[-1] for c in cells}
    tolerances = {re.findall(r"<td>(.*?)</td>", c)[-2] for c in cells}
    assert agrees == {"yes"} and len(cells) == n
    assert tolerances >= {"±1 ms (QEMU counts whole ms)", "exact", "equal", "±2 % or ±0.05 ms"}


def test_iterations_in_ms_since_start(report):
    m = analysis.load(RUNS[0])
    page = (report / "28.40.1000-ratelimited-q9.x-two-vfs-s200.html").read_text(encoding="utf-8")
    sec = page.split("Pre-copy iterations (", 1)[1].split("</details>", 1)[0]
    first = m.iterations.iloc[0]
    assert f"<td>{(int(first['ts_ns']) - m.t0_ns) / 1e6:.3f}</td>" in sec
    assert "start (ms)" in sec


def test_value_spelling():
    assert (fmt.num(29700.0), fmt.num(0.000014), fmt.num(None), fmt.num(True)) == ("29 700", "0.000014", "—", "yes")
    assert (fmt.size(481), fmt.size(27700), fmt.size(34086912)) == ("481 B", "27.1 KiB", "32.5 MiB")
    assert (fmt.ms(8.195706), fmt.ms(3562.09), fmt.ms(0.000014), fmt.ms(float("nan"))) == (
        "8.2 ms", "3 562 ms", "<0.001 ms", "—")
    assert fmt.text({"ram": 0.0, "vfio": 0.37}) == "ram 0, vfio 0.37"


def test_cached_pages_are_reused_unchanged(tmp_path, monkeypatch):
    from analysis.report import build_report, group_inputs
    from analysis.report import inputs

    monkeypatch.setenv("MIGTRACE_REPORT_CACHE", str(tmp_path / "cache"))
    groups = group_inputs([RUNS[2]])
    _, first = build_report(groups, tmp_path / "a", jobs=1, progress=False)
    monkeypatch.setattr(inputs, "load_one", lambda *a, **k: pytest.fail("a cached page was loaded again"))
    _, again = build_report(groups, tmp_path / "b", jobs=1, progress=False)
    name = f"{first[0].slug}.html"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert again[0].rows == first[0].rows and again[0].panels == first[0].panels
    assert again[0].summary.equals(first[0].summary)


def test_progress_covers_every_stage(tmp_path):
    """The bar counts migrations through loading, analysis and plotting, then names the index
    stage (before: it reached 100 % after loading and then said nothing while plotting)."""
    proc = run_cli("report", str(RUNS[0]), str(RUNS[2]), "-o", str(tmp_path / "r"), "--no-cache", "--progress",
                   "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.replace("\r", "\n")
    assert "load, analyse, plot:" in err and "2/2" in err
    assert "write index" in err
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert last.startswith("write index") and "2/2" in last
