#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs redring's build, test and benchmark dependencies from Debian 12 packages.
# Idempotent; needs root (sessions and CI run as root). Skips apt when everything is present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  liburing-dev libssl-dev openssl libfmt-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  redis-server redis-tools
  libhiredis-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts a system redis-server on install; our tests start private ones, so stop it.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop redis-server >/dev/null 2>&1 || true; fi
echo "install-deps: installed ${missing[*]}"
