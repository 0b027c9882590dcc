#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Long fuzz campaign (docs/robustness.md): one family at a time, one process, low priority.
#   scripts/fuzz.sh [SECONDS_PER_FAMILY] [OUT_DIR] [FAMILIES(comma-separated)]
#   FUZZ_EXECS=1000000 scripts/fuzz.sh 36000 ...   stops each family at that many executions
#   python3 -m fuzz.tally --add OUT_DIR/results.jsonl --machine "..."   keeps the figures in git
# Default engine: the project's measured mutation loop (python3 -m fuzz.campaign), which prints
# per-family executions and outcomes (decoded/finding/documented/crash/hang/memory) and exits 1
# on any crash, hang or memory blow-up.
# FUZZ_ENGINE=atheris: coverage-guided atheris/libFuzzer per family (pip install -e '.[fuzz]'),
# corpus and crash-* files under OUT_DIR/<family>/, libFuzzer's final stats printed.
set -eu
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
secs=${1:-600}
out=${2:-${TMPDIR:-/tmp}/fuzz-campaign}
fams=${3:-}
if [ "${FUZZ_ENGINE:-loop}" = atheris ]; then
    [ -n "$fams" ] || fams=$(python3 -c "from fuzz.targets import targets; print(','.join(targets()))")
    status=0
    for f in $(echo "$fams" | tr ',' ' '); do
        mkdir -p "$out/$f/corpus"
        echo "$f: atheris, $secs s"
        (cd "$out/$f" && nice -n 19 python3 -m fuzz.atheris_run "$f" corpus -max_total_time="$secs" \
            -print_final_stats=1 -artifact_prefix="$out/$f/" 2>"$out/$f/log") || status=1
        grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^(==|SUMMARY)" \
            "$out/$f/log" | sed "s/^/  $f: /"
        ls "$out/$f" | grep -E '^(crash|timeout|oom|leak)-' | sed "s/^/  $f: found /" || true
    done
    exit $status
fi
exec nice -n 19 python3 -m fuzz.campaign --seconds "$secs" --out "$out" --families "$fams" \
    --execs "${FUZZ_EXECS:-0}"
