#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Install everything the test suite needs (Debian tools when missing, the
# package with its test extras in .venv) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# tool -> Debian package: the oracles (tshark, trace-cmd), real migrations
# (QEMU, tcpdump, and gcc/ld to build the tiny dirtying guest), the browser tests,
# the compressors that make the compressed golden captures (zstd, gzip, xz, bzip2)
declare -A pkg=([tshark]=tshark [trace-cmd]=trace-cmd [tcpdump]=tcpdump
                [qemu-system-x86_64]=qemu-system-x86 [chromium]=chromium
                [gcc]=gcc [ld]=binutils [zstd]=zstd [gzip]=gzip [xz]=xz-utils [bzip2]=bzip2)
need=()
for tool in "${!pkg[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || need+=("${pkg[$tool]}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  else
    echo "warning: ${need[*]} missing and cannot be installed here; their tests skip" >&2
  fi
fi

# QEMU 10.0.2 from bookworm-backports, unpacked beside the system QEMU (never installed): its
# trace-events-all is the oracle of the committed subset (tests/test_qemu10_trace_events.py)
q10=/opt/qemu10
if [ ! -f "$q10/usr/share/qemu/trace-events-all" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "unpacking QEMU 10.0.2 into $q10" >&2
  python3 traces/real/record_qemu10.py unpack --root "$q10" >&2 \
    || echo "warning: QEMU 10.0.2 could not be unpacked; the tests that need it skip" >&2
fi

bash scripts/setup.sh test
export PATH="$PWD/.venv/bin:$PATH"

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit $rc
