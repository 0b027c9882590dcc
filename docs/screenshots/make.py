#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Write docs/screenshots/report-migration.png: one migration page of the report
(traces/sim/variants/two-vfs) at 1280 px in headless Chromium (Debian's, driven by
playwright), reduced to a 128-colour palette so it stays small.

    python3 docs/screenshots/make.py [CHROMIUM]
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv: list[str]) -> int:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    chromium = argv[1] if len(argv) > 1 else "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r"
        subprocess.run([sys.executable, "-m", "analysis.cli.main", "report", "traces/sim/variants/two-vfs",
                        "-o", str(out), "--no-cache"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        page_file = next(p for p in out.glob("*.html") if p.name != "index.html")
        shot = Path(tmp) / "shot.png"
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
            page = b.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(page_file.as_uri())
            page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1280, "height": 1000})
            b.close()
        dest = ROOT / "docs" / "screenshots" / "report-migration.png"
        Image.open(shot).convert("RGB").quantize(colors=128).save(dest, optimize=True)
    print(f"{dest}: {dest.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
