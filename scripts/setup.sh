#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Create (or reuse) the virtual environment .venv and install migtrace into it
# (editable), with the extras named in $1 (e.g. "test" or "notebook").
# Stock Debian refuses `pip install` into the system Python (PEP 668) and ships
# venv without ensurepip: as root, python3-venv is installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"

make_venv() { "$py" -m venv .venv >/dev/null 2>&1; }

if [ ! -x .venv/bin/python ]; then
  if ! make_venv; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      echo "installing Debian packages: python${ver}-venv" >&2
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "python${ver}-venv" >&2 \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2
      make_venv
    else
      echo "error: '$py -m venv' failed; install your distribution's venv package (Debian: python3-venv)" >&2
      exit 1
    fi
  fi
fi

spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"
