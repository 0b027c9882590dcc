# SPDX-License-Identifier: GPL-2.0-only
"""The mutation loop, measured: every execution classified.

Outcomes (issue 14): ``decoded`` (no finding), ``finding`` (findings, no
exception), ``documented`` (an exception the family documents, e.g.
``DecodeError``), ``crash`` (any other exception), ``hang`` (more than
``HANG_S`` seconds of CPU time: a CPU-time timer interrupts Python code; a
worker stuck in C is killed by the campaign's watchdog; CPU time, not wall
time, because the campaign runs under ``nice -n 19`` on a shared machine,
where an execution can wait for the CPU far longer than it runs),
``memory`` (peak RSS growth during the
execution above 10x the input + 200 MB; measured with the kernel's
``VmHWM``, reset before each execution through ``/proc/self/clear_refs``).
"""
from __future__ import annotations

import os
import random
import signal
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzz.mutate import mutate
from fuzz.targets import Target

HANG_S = 5.0
OUTCOMES = ("decoded", "finding", "documented", "crash", "hang", "memory")


class Hang(BaseException):
    """Raised by the soft timer (a BaseException: decoders' ``except Exception`` must not eat it)."""


def _on_alarm(signum, frame):  # pragma: no cover - timing dependent
    raise Hang()


def _status_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB of this process."""
    rss = hwm = 0
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith(b"VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_limit(size: int) -> int:
    """Allowed peak RSS growth in bytes for an input of ``size`` bytes."""
    return 10 * size + 200 * 1024 * 1024


@dataclass
class Result:
    outcome: str
    secs: float  # CPU seconds
    peak_growth: int
    error: str | None = None
    where: str | None = None


def _where(tb) -> str:
    frames = traceback.extract_tb(tb)
    mine = [f for f in frames if "/dissect/" in f.filename or "/analysis/" in f.filename] or frames
    f = mine[-1]
    return f"{Path(f.filename).name}:{f.lineno} ({f.name})"


def run_one(target: Target, data: bytes, path: Path, hang_s: float = HANG_S) -> Result:
    """Decode ``data`` once with ``target`` and classify the outcome."""
    _reset_peak()
    rss0, _ = _status_kb()
    old = signal.signal(signal.SIGPROF, _on_alarm)
    signal.setitimer(signal.ITIMER_PROF, hang_s)  # CPU time of this process
    t0 = time.process_time()
    err = where = None
    try:
        try:
            _, findings = target.run(data, path)
            outcome = "finding" if findings else "decoded"
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except Hang:
        outcome = "hang"
    except MemoryError as e:
        outcome, err, where = "memory", f"MemoryError: {e}", _where(e.__traceback__)
    except target.documented as e:
        outcome, err = "documented", f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - the point: every other exception is a crash
        outcome, err, where = "crash", f"{type(e).__name__}: {str(e)[:300]}", _where(e.__traceback__)
    finally:
        signal.signal(signal.SIGPROF, old)
    secs = time.process_time() - t0
    _, hwm = _status_kb()
    growth = max(0, hwm - rss0) * 1024
    if outcome not in ("crash", "hang", "memory") and growth > memory_limit(len(data)):
        outcome = "memory"
    if outcome not in ("hang",) and secs > hang_s:
        outcome = "hang"
    return Result(outcome, secs, growth, err, where)


def input_for(target: Target, seeds: list[bytes], base: str, i: int) -> bytes:
    return mutate(seeds, random.Random(f"{target.name}:{base}:{i}"), target.dictionary)


@dataclass
class FamilyStats:
    family: str
    execs: int = 0
    secs: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    problems: list[dict[str, Any]] = field(default_factory=list)
    max_secs: float = 0.0
    max_growth: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, "execs": self.execs, "secs": round(self.secs, 1),
                "outcomes": {k: self.outcomes.get(k, 0) for k in OUTCOMES},
                "max_exec_secs": round(self.max_secs, 3), "max_peak_growth_mb": round(self.max_growth / 2**20, 1),
                "problems": self.problems}


def run_family(target: Target, n: int | None = None, seconds: float | None = None, base: str = "smoke",
               start: int = 0, save_dir: Path | None = None, status: Any = None,
               report: Any = None, stop: Any = None) -> FamilyStats:
    """Run ``target`` for ``n`` executions or ``seconds`` (whichever ends first), in this process.

    ``stop`` (a shared value) set to non-zero ends the run after the execution in progress.
    """
    seeds = [s for s in target.seeds() if s is not None]
    if not seeds:
        raise RuntimeError(f"{target.name}: no seeds")
    st = FamilyStats(target.name)
    t_end = None if seconds is None else time.monotonic() + seconds
    last_report = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="migtrace-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as td:
        path = Path(td) / "input"
        i = start
        while ((n is None or i < start + n) and (t_end is None or time.monotonic() < t_end)
               and (stop is None or not stop.value)):
            if status is not None:
                status.value = i
            data = input_for(target, seeds, base, i)
            r = run_one(target, data, path)
            st.execs += 1
            st.secs += r.secs
            st.max_secs = max(st.max_secs, r.secs)
            st.max_growth = max(st.max_growth, r.peak_growth)
            st.outcomes[r.outcome] += 1
            if r.outcome in ("crash", "hang", "memory"):
                rec = {"family": target.name, "base": base, "i": i, "outcome": r.outcome, "error": r.error,
                       "where": r.where, "size": len(data), "secs": round(r.secs, 3),
                       "peak_growth_mb": round(r.peak_growth / 2**20, 1)}
                same = [p for p in st.problems if (p["outcome"], p["where"]) == (r.outcome, r.where)]
                if len(same) < 5:
                    if save_dir is not None:
                        fn = save_dir / f"{target.name}-{base}-{i}.bin"
                        fn.write_bytes(data)
                        rec["file"] = str(fn)
                    st.problems.append(rec)
                    if report is not None:
                        report(("problem", rec))
            if report is not None and time.monotonic() - last_report > 2:
                last_report = time.monotonic()
                report(("stats", st.as_dict()))
            i += 1
    if report is not None:
        report(("stats", st.as_dict()))
    return st
