#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Install everything the test suite needs (Debian tools when missing, the
# package with its test extras) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tshark    >/dev/null 2>&1 || need+=(tshark)
command -v trace-cmd >/dev/null 2>&1 || need+=(trace-cmd)
command -v tcpdump   >/dev/null 2>&1 || need+=(tcpdump)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  else
    echo "warning: ${need[*]} missing and cannot be installed here; their tests skip" >&2
  fi
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

set +e
python3 -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit $rc
