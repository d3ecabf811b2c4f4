#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make setup`: idempotent. A .venv with pinned packages, the ARM toolchain and QEMU from Debian
# packages when missing, and the NSNet2 baseline in the cache (sha256 checked).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
APT_PKGS="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"

if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null \
   || [ ! -f /usr/lib/arm-none-eabi/newlib/rdimon.specs ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing $APT_PKGS"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $APT_PKGS
  else
    echo "setup: the ARM toolchain or QEMU is missing; run as root:"
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $APT_PKGS"
    exit 1
  fi
fi

stamp=.venv/.nsconv-installed
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "setup: installing Python packages (pinned)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
  touch "$stamp"
fi

.venv/bin/python -m nsconv.model.assets
