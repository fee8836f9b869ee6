#!/usr/bin/env bash
# Installs what footfall's tests use from outside the workspace, when missing: the system
# packages the tests start as real processes (Debian/Ubuntu; apt-get update at most once)
# and axe-core, the accessibility engine the Chromium tests run in every page, from the
# npm registry at a pinned version checked against its pinned integrity. Safe to run again.
set -euo pipefail

# axe-core: one exact version and the sha512 of its registry tarball (the registry's
# `dist.integrity`). The browser tests read axe.min.js from AXE_DIR below and check that
# the engine reports this version (crates/footfall-server/tests/it/browser.rs, AXE_VERSION).
AXE_VERSION=4.14.1
AXE_INTEGRITY=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
AXE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/footfall-test-deps/axe-core-$AXE_VERSION"

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
# The browser tests drive Debian's Chromium through chromedriver.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# The deploy and metrics checks: promtool and a real Prometheus, nginx -t, and
# systemd-analyze (verify, security --offline).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# npm fetches axe-core (and node checks its integrity), only when it is not cached yet.
if [[ ! -f $AXE_DIR/axe.min.js ]]; then
  command -v npm >/dev/null 2>&1 || need+=(npm)
  command -v node >/dev/null 2>&1 || need+=(nodejs)
fi

# Each package once, even when several of its commands are missing.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u | sed '/^$/d')

if ((${#need[@]} > 0)); then
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
fi

if [[ ! -f $AXE_DIR/axe.min.js ]]; then
  echo "install-test-deps: fetching axe-core $AXE_VERSION from the npm registry" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null)
  tarball="$work/axe-core-$AXE_VERSION.tgz"
  got=$(node -e '
    const data = require("fs").readFileSync(process.argv[1]);
    process.stdout.write("sha512-" + require("crypto").createHash("sha512").update(data).digest("base64"));
  ' "$tarball")
  if [[ $got != "$AXE_INTEGRITY" ]]; then
    echo "install-test-deps: axe-core-$AXE_VERSION.tgz has integrity $got, expected $AXE_INTEGRITY" >&2
    exit 1
  fi
  tar -xzf "$tarball" -C "$work" package/axe.min.js package/LICENSE
  mkdir -p "$AXE_DIR"
  # Written under a temporary name and renamed, so a cut-off run leaves no half file.
  cp "$work/package/LICENSE" "$AXE_DIR/LICENSE"
  cp "$work/package/axe.min.js" "$AXE_DIR/axe.min.js.part"
  mv "$AXE_DIR/axe.min.js.part" "$AXE_DIR/axe.min.js"
fi
