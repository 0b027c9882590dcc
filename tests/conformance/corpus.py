# SPDX-License-Identifier: GPL-2.0-only
"""Where the public conformance corpus is, and readers of the oracle outputs kept beside its files.

The corpus (51 files nobody on this project wrote, with their trace-cmd/tshark oracles,
see its README.md) lives outside the repository: ``../shared/corpus`` beside the
checkout, or the folder named by ``MIGTRACE_CORPUS``.  Tests reference the files in
place and skip with a reason when the folder is absent (a user's clone).
"""
from __future__ import annotations

import json
import lzma
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path | None:
    env = os.environ.get("MIGTRACE_CORPUS")
    path = Path(env) if env else ROOT.parent / "shared" / "corpus"
    return path if (path / "provenance.tsv").is_file() else None


CORPUS = corpus_dir()
SKIP_REASON = ("public conformance corpus not found (expected ../shared/corpus beside the checkout, "
               "or set MIGTRACE_CORPUS)")


def require_corpus() -> Path:
    if CORPUS is None:
        pytest.skip(SKIP_REASON)
    return CORPUS


def files(category: str, pattern: str) -> list[str]:
    """Names of the corpus files of ``category`` (a sub-folder) matching ``pattern``; a single
    placeholder when the corpus is absent, so that the parametrised test skips with its reason."""
    if CORPUS is None:
        return ["<corpus absent>"]
    return sorted(p.name for p in (CORPUS / category).glob(pattern))


def provenance() -> list[dict[str, str]]:
    lines = (require_corpus() / "provenance.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, ln.split("\t"))) for ln in lines[1:] if ln.strip()]


def read_text(path: Path) -> str:
    """A kept oracle output, ``.xz``-compressed or not (the corpus compresses those over 512 KiB)."""
    if path.is_file():
        return path.read_text("utf-8", "replace")
    xz = path.with_name(path.name + ".xz")
    with lzma.open(xz, "rt", encoding="utf-8", errors="replace") as fh:
        return fh.read()


def exists(path: Path) -> bool:
    return path.is_file() or path.with_name(path.name + ".xz").is_file()


def json_file(path: Path):
    return json.loads(path.read_text())


# One event header line of ``trace-cmd report`` (µs, or the raw integer for a clock it does not
# count in µs): comm (may hold '-', spaces), pid, [cpu], time, event name.  Any other line is a
# continuation (stack entries, multi-line bprint) or the ``cpus=N`` preamble.
REPORT_EVENT = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s*"
                          r"(?P<ts>\d+(?:\.\d+)?): (?P<event>[^\s:]+):(?P<rest>.*)$")


def parse_report(text: str) -> list[dict]:
    """Events of a kept ``trace-cmd report`` output: cpu, pid, comm, event, ts (the printed
    string), body (after the name's padding; the continuation lines of a multi-line event are
    joined to it with ``\\n``)."""
    out: list[dict] = []
    for line in text.split("\n"):
        m = REPORT_EVENT.match(line)
        if m is None:
            if out and line and not line.startswith("cpus="):
                out[-1]["body"] += "\n" + line
            continue
        ev = m["event"]
        rest = m["rest"]
        out.append({"cpu": int(m["cpu"]), "pid": int(m["pid"]), "comm": m["comm"].strip(), "event": ev,
                    "ts": m["ts"], "body": rest[max(1, 21 - len(ev)):] if rest else ""})
    return out


def report_ts_ns(printed: str) -> tuple[int, int]:
    """A printed report time as ``(ns, unit)``: ``sec.usec`` → ns of that µs and unit 1000, an
    integer (clocks trace-cmd does not print in µs) → itself and unit 1."""
    if "." in printed:
        sec, frac = printed.split(".")
        return int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9]), 10 ** (9 - min(len(frac), 9))
    return int(printed), 1


def as_printed(ts_ns: int, unit: int) -> int:
    """Our ns as trace-cmd prints it at ``unit``: libtraceevent rounds to the nearest µs."""
    if unit == 1:
        return ts_ns
    return (ts_ns + unit // 2) // unit * unit
