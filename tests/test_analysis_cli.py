# SPDX-License-Identifier: GPL-2.0-only
"""migtrace summary / report / plot: exit codes, --json objects, outputs."""
from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, run_cli

REAL = ROOT / "traces" / "real"


@pytest.fixture(scope="module")
def sim_corpus(tmp_path_factory):
    simulate = pytest.importorskip("analysis.simulate").simulate
    root = tmp_path_factory.mktemp("corpus")
    simulate("default", 5, root / "fw-a" / "run-0")
    return root


def test_summary_real_log_and_info_migrate():
    p = run_cli("summary", str(REAL / "qemu-tcp-returnpath.src.log"), str(REAL / "qemu-tcp-returnpath.src-info-migrate.txt"))
    assert p.returncode == 0, p.stderr
    header, row = p.stdout.splitlines()[:2]
    assert "qemu_profile" in header and "downtime_qemu_ms" in header
    assert " 7.2 " in row and " 3.00" in row


def test_summary_json_objects(sim_corpus):
    p = run_cli("summary", "--json", str(sim_corpus))
    assert p.returncode == 0, p.stderr
    objs = [json.loads(line) for line in p.stdout.splitlines()]
    kinds = [o["kind"] for o in objs]
    assert kinds[:2] == ["migration_summary", "device_summary"]
    dev = objs[1]
    assert dev["precopy_policy"] == "ratelimited"
    assert dev["device"] in ("0000:3b:00.1", "0000:00:05.0/vfio")  # host name (trace only) or stream idstr
    assert set(kinds) <= {"migration_summary", "device_summary", "finding"}
    assert all("code" in o for o in objs if o["kind"] == "finding")


def test_summary_usage_errors(tmp_path):
    assert run_cli("summary", str(tmp_path / "nope.pcap")).returncode == 2
    bad = tmp_path / "run"
    bad.mkdir()
    (bad / "run.json").write_text('{"schema": 1, "kind": "real", "captures": []}')
    p = run_cli("summary", str(bad))
    assert p.returncode == 2 and "'run_id'" in p.stderr and "run.json" in p.stderr


def test_summary_input_error_exit_1(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    p = run_cli("summary", str(junk))
    assert p.returncode == 1
    assert "capture_unknown_format" in p.stdout
    p = run_cli("summary", "--json", str(junk))
    assert any(json.loads(x).get("code") == "capture_unknown_format" for x in p.stdout.splitlines())


def test_report_corpus(sim_corpus, tmp_path):
    out = tmp_path / "report"
    p = run_cli("report", str(sim_corpus), "-o", str(out), "--no-cache")
    assert p.returncode == 0, p.stderr
    html = (out / "index.html").read_text()
    page = next(out.glob("28.40.1000-ratelimited*.html")).read_text()
    assert f"href='{next(out.glob('28.40.1000-ratelimited*.html')).name}'" in html
    assert page.count("<img src='img/") == 3 and "Downtime (wire)" in page  # timeline, convergence, records
    assert "28.40.1000-ratelimited" in html
    assert "run_id" in p.stdout and str(out / "index.html") in p.stdout


def test_plot_png_svg_and_bad_suffix(sim_corpus, tmp_path):
    run = sim_corpus / "fw-a" / "run-0"
    png = tmp_path / "t.png"
    assert run_cli("plot", "timeline", str(run), "-o", str(png)).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "d.svg"
    assert run_cli("plot", "downtime", str(run), "-o", str(svg)).returncode == 0
    assert b"<svg" in svg.read_bytes()[:400]
    assert run_cli("plot", "timeline", str(run), "-o", str(tmp_path / "x.gif")).returncode == 2
    assert run_cli("plot", "nosuch", str(run), "-o", str(png)).returncode == 2


@pytest.mark.slow
def test_main_job_report_on_the_bundled_traces(tmp_path):
    """README command (1): `migtrace report traces/ -o report/` covers every bundled run."""
    runs = sorted(p.parent for p in (ROOT / "traces").rglob("run.json"))
    if not runs:
        pytest.skip("no run folders under traces/")
    out = tmp_path / "report"
    p = run_cli("report", str(ROOT / "traces"), "-o", str(out), "--no-cache")
    assert p.returncode in (0, 1), p.stderr  # 1: a bundled run has input errors on purpose
    html = (out / "index.html").read_text()
    pages = {x.name: x.read_text() for x in out.glob("*.html") if x.name != "index.html"}
    assert len(pages) == len(runs)
    for run in runs:
        run_id = json.loads((run / "run.json").read_text())["run_id"]
        assert f">{run_id}</a>" in html, run_id
        assert run_id in p.stdout
        assert any(f"<h1>{run_id}</h1>" in pg for pg in pages.values()), run_id
    assert sum("Measured vs simulator truth" in pg for pg in pages.values()) == \
        sum(1 for r in runs if "truth" in json.loads((r / "run.json").read_text()))


def test_progress_goes_to_stderr_only(sim_corpus):
    plain = run_cli("summary", str(sim_corpus))
    p = run_cli("summary", "--progress", str(sim_corpus))
    assert p.returncode == plain.returncode == 0
    assert p.stdout == plain.stdout  # progress never mixes into stdout
    assert "decoding" in p.stderr and "decoding" not in plain.stderr  # stderr is not a tty here
