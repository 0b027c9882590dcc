#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Long fuzz campaign (docs/robustness.md): one family at a time, one worker process, low priority.
#   scripts/fuzz.sh [SECONDS_PER_FAMILY] [OUT_DIR] [FAMILIES(comma-separated)]
# Prints per-family executions and outcomes; exit status 1 when any crash, hang or memory blow-up.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-600}
out=${2:-${TMPDIR:-/tmp}/fuzz-campaign}
fams=${3:-}
exec nice -n 19 python3 -m fuzz.campaign --seconds "$secs" --out "$out" --families "$fams"
