#!/usr/bin/env bash
# Installs the system packages footfall's tests start as real processes, when missing.
# Debian/Ubuntu only; runs apt-get update at most once. Safe to run again.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
# The deploy and metrics checks: promtool and a real Prometheus, nginx -t, and
# systemd-analyze (verify, security --offline).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)

# Each package once, even when several of its commands are missing.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u | sed '/^$/d')

if ((${#need[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-test-deps: need root or sudo to install: ${need[*]}" >&2
    exit 1
  }
  sudo="sudo"
fi
echo "install-test-deps: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
