# SPDX-License-Identifier: GPL-2.0-only
"""Long fuzz campaign: one family at a time, one worker process, a watchdog for hangs in C code.

    python3 -m fuzz.campaign --out /tmp/fuzz-campaign --seconds 600 [--families pcap,trace-dat] [--base run1]

Each family runs in a forked worker (the input of execution ``i`` is rebuilt
from ``(family, base, i)``, so nothing is sent per execution).  The worker
publishes the number of the execution it is in; when that number does not
move while the worker burns ``HANG_S`` + 10 s of CPU time (a soft timer could
not interrupt the decoder), or for ten minutes,
the worker is killed, the input rebuilt and saved as a hang, and a new worker
continues with the next execution.  The worker's address space is limited
(``--as-limit-gb``) so a blow-up ends as a ``memory`` outcome instead of
taking the machine.  Results: ``<out>/results.jsonl`` (one line per family
and snapshot), reproducers ``<out>/<family>-<base>-<i>.bin``, and a table on
stdout.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from fuzz.engine import HANG_S, OUTCOMES, input_for, run_family
from fuzz.targets import targets


def _worker(family: str, base: str, start: int, seconds: float, n: int | None, out: str, status, q,
            as_gb: float, stop) -> None:
    # SIGTERM/SIGINT reach the whole process group: the campaign decides when the worker stops
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(19) if os.nice(0) < 19 else None
    if as_gb > 0:
        with open("/proc/self/status") as f:
            vm = next(int(ln.split()[1]) for ln in f if ln.startswith("VmSize:")) * 1024
        lim = vm + int(as_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    t = targets()[family]
    run_family(t, n=n, seconds=seconds, base=base, start=start, save_dir=Path(out), status=status, report=q.put,
               stop=stop)


#: set by SIGTERM/SIGINT: the running family ends after its worker's current execution and its
#: figures are written like a finished family's; the families after it are not started
_STOP = None


def _on_stop(signum, frame) -> None:
    if _STOP is not None:
        _STOP.value = 1


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def campaign_family(family: str, seconds: float, out: Path, base: str, as_gb: float, execs: int | None = None) -> dict:
    """Run ``family`` for ``seconds`` of wall time or ``execs`` executions, whichever ends first."""
    ctx = mp.get_context("fork")
    t_end = time.monotonic() + seconds
    start = 0
    total = {"family": family, "base": base, "execs": 0, "secs": 0.0, "outcomes": {k: 0 for k in OUTCOMES},
             "max_exec_secs": 0.0, "max_peak_growth_mb": 0.0, "problems": [], "workers": 0}
    done_before = {"execs": 0, "secs": 0.0, "outcomes": {k: 0 for k in OUTCOMES}}
    t0 = last_print = time.monotonic()
    while (time.monotonic() < t_end - 1 and (execs is None or done_before["execs"] < execs)
           and not _STOP.value):
        status = ctx.Value("q", start)
        left = None if execs is None else execs - done_before["execs"]
        q = ctx.Queue()
        p = ctx.Process(target=_worker, args=(family, base, start, t_end - time.monotonic(), left, str(out), status,
                                              q, as_gb, _STOP), daemon=True)
        p.start()
        total["workers"] += 1
        last_i, last_move, cpu_move = status.value, time.monotonic(), 0.0
        snap = None
        killed = False
        while True:
            try:
                kind, obj = q.get(timeout=1.0)
                if kind == "stats":
                    snap = obj
                    if time.monotonic() - last_print > 60:
                        last_print = time.monotonic()
                        print(f"  {family}: {done_before['execs'] + obj['execs']} execs, {time.monotonic() - t0:.0f} s",
                              flush=True)
                else:
                    total["problems"].append(obj)
                    print(f"  {family}: {obj['outcome']} at {obj['i']}: {obj['error']} @ {obj['where']}", flush=True)
            except Exception:  # queue.Empty
                pass
            i = status.value
            if i != last_i:
                last_i, last_move, cpu_move = i, time.monotonic(), _cpu(p.pid)
            if not p.is_alive() and q.empty():
                break
            # stuck: HANG_S + 10 s of the worker's CPU time (it is niced: wall time says little)
            # in one execution, or ten minutes without progress
            if _cpu(p.pid) - cpu_move > HANG_S + 10 or time.monotonic() - last_move > 600:
                p.kill()
                p.join()
                t = targets()[family]
                data = input_for(t, t.seeds(), base, i)
                fn = out / f"{family}-{base}-{i}.bin"
                fn.write_bytes(data)
                rec = {"family": family, "base": base, "i": i, "outcome": "hang", "error": "watchdog: no progress",
                       "where": None, "size": len(data), "file": str(fn)}
                total["problems"].append(rec)
                print(f"  {family}: hang (watchdog) at {i}", flush=True)
                killed = True
                break
        p.join(timeout=5)
        if snap is not None:
            for k in ("execs", "secs"):
                done_before[k] += snap[k]
            for k in OUTCOMES:
                done_before["outcomes"][k] += snap["outcomes"][k]
            total["max_exec_secs"] = max(total["max_exec_secs"], snap["max_exec_secs"])
            total["max_peak_growth_mb"] = max(total["max_peak_growth_mb"], snap["max_peak_growth_mb"])
        if killed:
            done_before["execs"] += 1
            done_before["outcomes"]["hang"] += 1
            start = last_i + 1
            continue
        if p.exitcode not in (0, None):
            print(f"  {family}: worker died with exit code {p.exitcode} near execution {last_i}", flush=True)
            total["problems"].append({"family": family, "i": last_i, "outcome": "crash",
                                      "error": f"worker exit code {p.exitcode}"})
            start = last_i + 1
            continue
        break
    total["execs"] = done_before["execs"]
    total["secs"] = round(done_before["secs"], 1)
    total["outcomes"] = done_before["outcomes"]
    total["wall_secs"] = round(time.monotonic() - t0, 1)
    total["next_i"] = start + total["execs"]
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/fuzz-campaign", help="folder for results and reproducers")
    ap.add_argument("--seconds", type=float, default=600, help="wall seconds per family (at most)")
    ap.add_argument("--execs", type=int, default=0, help="executions per family (0: until --seconds)")
    ap.add_argument("--families", default="", help="comma-separated (default: all)")
    ap.add_argument("--base", default=time.strftime("c%Y%m%d%H%M"), help="campaign name (seeds the RNG)")
    ap.add_argument("--as-limit-gb", type=float, default=3.0, help="worker address-space headroom (0: none)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    fams = [f for f in a.families.split(",") if f] or list(targets())
    rows = []
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except OSError:
        commit = None
    global _STOP
    _STOP = mp.get_context("fork").Value("b", 0)
    signal.signal(signal.SIGTERM, _on_stop)
    signal.signal(signal.SIGINT, _on_stop)
    for fam in fams:
        if _STOP.value:
            print(f"{fam}: not started (stopped)", flush=True)
            continue
        print(f"{fam}: {a.seconds:.0f} s ...", flush=True)
        r = campaign_family(fam, a.seconds, out, a.base, a.as_limit_gb, a.execs or None)
        r["commit"] = commit
        rows.append(r)
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(r) + "\n")
        o = r["outcomes"]
        print(f"{fam}: {r['execs']} execs in {r['wall_secs']} s  " + " ".join(f"{k}={o[k]}" for k in OUTCOMES),
              flush=True)
    print()
    print(f"{'family':<18}{'execs':>9}{'wall s':>8}  " + "".join(f"{k:>11}" for k in OUTCOMES))
    for r in rows:
        print(f"{r['family']:<18}{r['execs']:>9}{r['wall_secs']:>8.0f}  "
              + "".join(f"{r['outcomes'][k]:>11}" for k in OUTCOMES))
    bad = sum(r["outcomes"][k] for r in rows for k in ("crash", "hang", "memory"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
