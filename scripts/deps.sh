#!/usr/bin/env bash
# Installs the system packages MEFF needs on Debian/Ubuntu: ALSA headers for cpal, pkg-config,
# and iproute2 + iptables for the NAT tests. Skips what is already there.
set -euo pipefail
need=()
for p in libasound2-dev pkg-config iproute2 iptables; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
