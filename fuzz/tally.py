# SPDX-License-Identifier: GPL-2.0-only
"""The campaign record: every long campaign's per-family figures, kept in git, and their totals.

    python3 -m fuzz.tally --add OUT_DIR/results.jsonl [--machine "..."]   # append a campaign
    python3 -m fuzz.tally                                                  # totals per family
    python3 -m fuzz.tally --markdown                                       # docs/robustness.md's table

A campaign's ``results.jsonl`` lives in a temporary folder and each session
runs on a new machine, so the figures that count are appended to
``fuzz/campaigns.jsonl`` (one compact line per family and campaign, no
reproducer paths).  Executions of different campaigns are different inputs
(the campaign name seeds the mutator), so a family's total is the sum of its
lines whose ``counted`` is true: campaigns run on code that already had
every fix the campaigns found (earlier ones stay listed, not counted).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fuzz.engine import OUTCOMES

RECORD = Path(__file__).resolve().parent / "campaigns.jsonl"
BAD = ("crash", "hang", "memory")
#: the issue's bar for each family
GOAL = 1_000_000


def read_record(path: Path = RECORD) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                row = json.loads(line)
                missing = {"family", "campaign", "execs", "outcomes", "counted"} - set(row)
                if missing:
                    raise ValueError(f"{path}:{n}: missing {sorted(missing)}")
                if sum(row["outcomes"].values()) != row["execs"]:
                    raise ValueError(f"{path}:{n}: outcomes do not add up to execs")
                rows.append(row)
    return rows


def compact(result: dict[str, Any], machine: str, counted: bool = True) -> dict[str, Any]:
    """One ``results.jsonl`` line of :mod:`fuzz.campaign` as a record line."""
    return {"family": result["family"], "campaign": result["base"], "commit": result.get("commit"),
            "execs": result["execs"], "outcomes": {k: result["outcomes"][k] for k in OUTCOMES},
            "wall_s": result["wall_secs"], "cpu_s": result["secs"],
            "slowest_exec_s": result["max_exec_secs"], "peak_growth_mb": result["max_peak_growth_mb"],
            "problems": len(result["problems"]), "machine": machine, "counted": counted}


def totals(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per family, over the counted lines: executions, outcomes, campaigns, CPU and wall time."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        if not r["counted"]:
            continue
        t = out.setdefault(r["family"], {"execs": 0, "outcomes": {k: 0 for k in OUTCOMES}, "campaigns": [],
                                         "cpu_s": 0.0, "wall_s": 0.0, "slowest_exec_s": 0.0})
        t["execs"] += r["execs"]
        for k in OUTCOMES:
            t["outcomes"][k] += r["outcomes"].get(k, 0)
        if r["campaign"] not in t["campaigns"]:
            t["campaigns"].append(r["campaign"])
        t["cpu_s"] += r.get("cpu_s") or 0.0
        t["wall_s"] += r.get("wall_s") or 0.0
        t["slowest_exec_s"] = max(t["slowest_exec_s"], r.get("slowest_exec_s") or 0.0)
    return out


def markdown(rows: list[dict[str, Any]], families: list[str]) -> str:
    """The totals table of docs/robustness.md, one row per family in ``families`` order."""
    tot = totals(rows)
    head = ("| family | executions | ≥ 10⁶ | campaigns | wall time | decoded | finding | documented "
            "| crash | hang | memory | slowest execution |")
    lines = [head, "|---|---:|:-:|" + "---:|" * 9]
    for fam in families:
        t = tot.get(fam, {"execs": 0, "outcomes": {k: 0 for k in OUTCOMES}, "campaigns": [], "wall_s": 0.0,
                          "slowest_exec_s": 0.0})
        o = t["outcomes"]
        lines.append(f"| `{fam}` | {t['execs']:,} | {'yes' if t['execs'] >= GOAL else 'no'} | "
                     f"{len(t['campaigns'])} | {t['wall_s'] / 3600:.2f} h | "
                     + " | ".join(f"{o[k]:,}" for k in OUTCOMES) + f" | {t['slowest_exec_s']:.2f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", type=Path, default=RECORD)
    ap.add_argument("--add", type=Path, help="a campaign's results.jsonl to append")
    ap.add_argument("--machine", default="", help="where it ran (cores, load), kept with each line")
    ap.add_argument("--not-counted", action="store_true", help="append as history, outside the totals")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    if a.add:
        with open(a.add, encoding="utf-8") as f:
            new = [compact(json.loads(ln), a.machine, not a.not_counted) for ln in f if ln.strip()]
        with open(a.record, "a", encoding="utf-8") as f:
            for r in new:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{len(new)} line(s) added to {a.record}")
    rows = read_record(a.record) if a.record.exists() else []
    from fuzz.targets import targets

    fams = list(targets())
    if a.markdown:
        print(markdown(rows, fams))
        return 0
    tot = totals(rows)
    for fam in fams:
        t = tot.get(fam)
        n = t["execs"] if t else 0
        bad = sum(t["outcomes"][k] for k in BAD) if t else 0
        print(f"{fam:<18}{n:>12,}  {'>= 1e6' if n >= GOAL else '':<7} crash/hang/memory {bad}")
    return 1 if any(sum(t["outcomes"][k] for k in BAD) for t in tot.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
