#!/usr/bin/env bash
# Runs every test of the workspace, with every backend, after installing the servers the
# tests start themselves (redis-server, ...). Nothing needs to be running beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
# Library, binaries, integration tests and doc tests; benchmarks are built by clippy in
# .ci/run and run on demand (see docs/PERFORMANCE.md), never as tests.
cargo test --workspace --all-features
