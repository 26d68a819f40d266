#!/usr/bin/env bash
# Installs what MEFF's build and tests need on Debian/Ubuntu: ALSA headers for cpal,
# pkg-config, iproute2 + iptables for the NAT tests, Chromium + chromedriver for the web
# player's browser test, and (in target/web-test-venv) the Python clients the web tests
# drive: py-sonic (a Subsonic client no one here wrote) and selenium. Skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in libasound2-dev pkg-config iproute2 iptables chromium chromium-driver; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
venv=target/web-test-venv
want="py-sonic==1.2.0 selenium==4.51.0"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$want" ]; then
  rm -rf "$venv"
  mkdir -p target
  if ! python3 -m venv "$venv" 2>/dev/null; then
    $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $want
  echo "$want" >"$venv/.installed"
fi
