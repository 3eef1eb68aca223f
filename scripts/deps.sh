#!/usr/bin/env bash
# Installs the Debian packages allowd needs to build, test and benchmark.
# Idempotent: only what is missing is installed; uses sudo when not root.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libmicrohttpd-dev libjansson-dev libsqlite3-dev sqlite3 libpq-dev
  libpcre2-dev libhyperscan-dev libsodium-dev libidn2-dev libpsl-dev
  libmilter-dev libcmocka-dev libgmime-3.0-dev libcurl4-openssl-dev
  clang-tidy cppcheck valgrind nodejs npm curl nginx-light wrk
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node may come from outside Debian (as on the CI image); accept any node >= 18 with npm.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  tmp=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
