# SPDX-License-Identifier: GPL-2.0-only
"""The report in a real browser (issue 11 §3): headless Chromium (Debian's ``chromium``)
driven by playwright, never a downloaded browser. At 1280 px: no horizontal overflow,
every image loaded, no console error or failed request, sorting and filtering work."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import TRACES, run_cli

CHROMIUM = os.environ.get("MIGTRACE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUNS = [TRACES / "sim" / "variants" / "two-vfs", TRACES / "real" / "runs" / "qemu-file",
        TRACES / "sim" / "policies" / "fw-28.40-cap128", TRACES / "sim" / "variants" / "trailer",
        TRACES / "real" / "qemu10" / "runs" / "multipass"]


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install 'migtrace[test]'); browser tests need it")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package chromium; MIGTRACE_CHROMIUM names another)")
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _playwright()
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        except Exception as e:  # a Chromium that cannot start here (e.g. no sandbox support)
            pytest.skip(f"Chromium at {CHROMIUM} cannot start: {e}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "out"
    runs = [r for r in RUNS if r.exists()]
    proc = run_cli("report", *map(str, runs), "-o", str(out), "--no-cache")
    assert proc.returncode in (0, 1), proc.stderr
    return out


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def _fits(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def test_index_fits_1280_and_sorts(browser, report):
    page, problems = _open(browser, report / "index.html")
    width, inner = _fits(page)
    assert width <= inner == 1280
    col = page.evaluate("Array.from(document.querySelectorAll('table.fleet tr.h th')).map(t => t.textContent)"
                        ".indexOf('downtime wire')")
    assert col > 0
    values = f"Array.from(document.querySelectorAll('table.fleet tbody tr')).map(r => r.cells[{col}]" \
             ".getAttribute('data-v'))"
    before = page.evaluate(values)
    nums = [float(v) for v in before if v != ""]
    assert len(nums) >= 4 and nums != sorted(nums)  # unsorted to begin with, so the click is seen
    header = page.locator("table.fleet tr.h th").nth(col)
    header.click()
    after = page.evaluate(values)
    assert [float(v) for v in after if v != ""] == sorted(nums) and after[len(nums):] == [""] * (len(after) - len(nums))
    header.click()
    desc = page.evaluate(values)
    assert [float(v) for v in desc if v != ""] == sorted(nums, reverse=True)
    assert page.evaluate("document.querySelector('table.fleet tr.h th.desc').textContent") == "downtime wire"
    page.fill("input.filter", "cap128")
    shown = page.evaluate("Array.from(document.querySelectorAll('table.fleet tbody tr'))"
                          ".filter(r => r.style.display !== 'none').map(r => r.textContent)")
    assert len(shown) == 1 and "cap128" in shown[0]
    assert problems == []


def test_every_migration_page_fits_and_loads_its_images(browser, report):
    pages = sorted(p for p in report.glob("*.html") if p.name != "index.html")
    assert len(pages) >= 4
    for path in pages:
        page, problems = _open(browser, path)
        width, inner = _fits(page)
        assert width <= inner, (path.name, width)
        imgs = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, "
                             "i.naturalWidth, i.getBoundingClientRect().right])")
        assert imgs, path.name
        for src, complete, natural, right in imgs:
            assert complete and natural > 0, (path.name, src)
            assert right <= 1280, (path.name, src)
        # details are collapsed; opened, their tables scroll inside, the page still fits
        assert page.evaluate("Array.from(document.querySelectorAll('details')).every(d => !d.open)")
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert _fits(page)[0] <= inner, path.name
        page.click("text=← all migrations")
        assert page.url.endswith("/index.html")
        assert problems == [], (path.name, problems)
        page.close()


def test_committed_screenshot_is_small_and_shown_in_the_readme():
    from tests.conftest import ROOT

    shot = ROOT / "docs" / "screenshots" / "report-migration.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size < 200_000
    assert "docs/screenshots/report-migration.png" in (ROOT / "README.md").read_text(encoding="utf-8")
