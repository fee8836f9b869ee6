#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target in fuzz/ for a bounded time (FUZZ_SECONDS each, 20 by
# default: four targets stay within CI's 90 s fuzzing budget), starting from the committed
# seeds, after replaying the committed regression inputs. New corpus entries go to a
# scratch directory, so the checkout stays clean; a crash fails the script and leaves its
# input in fuzz/artifacts/<target>/ (move it to fuzz/regressions/<target>/ once fixed).
#
# libFuzzer needs a nightly compiler. Without one, RUSTC_BOOTSTRAP=1 lets the stable
# compiler accept the nightly-only flags cargo-fuzz passes (the known workaround).
# `--sanitizer none`: the workspace forbids unsafe code, so AddressSanitizer would find
# nothing libFuzzer's own panic detection does not, and would double build time.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-20}"
# Outside the checkout, so a machine that fuzzed before (a developer's, or CI on the
# same machine) reuses the build: a cold release build of the server's dependency tree
# takes minutes. Several codegen units: the smoke run needs a quick build more than the
# last few per cent of executions per second.
target_dir="${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/footfall/fuzz-target}"
build_flags=(--sanitizer none --codegen-units 16 --target-dir "$target_dir")

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

"${fuzz[@]}" build "${build_flags[@]}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $("${fuzz[@]}" list); do
    if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target")" ]; then
        echo "== $target: replaying regressions"
        "${fuzz[@]}" run "${build_flags[@]}" "$target" "regressions/$target" -- -runs=0
    fi
    echo "== $target: fuzzing for ${seconds}s"
    mkdir -p "$scratch/$target"
    "${fuzz[@]}" run "${build_flags[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1
done
