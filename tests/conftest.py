# SPDX-License-Identifier: GPL-2.0-only
"""Shared test helpers."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "traces"


def require_tool(name: str) -> str:
    """Path of an external tool, or skip the test saying which tool is missing."""
    path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed (scripts/test.sh installs it on Debian as root)")
    return path


def run_cli(*argv: str, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``migtrace`` as a user would (a real process, real exit code)."""
    proc = subprocess.run([sys.executable, "-m", "analysis.cli.main", *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"migtrace {' '.join(argv)} -> {proc.returncode}\n{proc.stderr}")
    return proc


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="module", params=["fast", "layer"])
def admin_path(request):
    """Every admin test through both paths (dissect.cstruct's style): the compiled
    walk of :mod:`dissect.virtio.admin_flat` and its declarative twin, scapy."""
    from dissect.virtio import admin_decode

    before = admin_decode.FAST
    admin_decode.FAST = request.param == "fast"
    yield request.param
    admin_decode.FAST = before
