#!/usr/bin/env bash
# Replaces the vendored crawler-user-agents list with the latest release from the package
# registry, regenerates the crawler corpus the tests score it on, and prints the version.
#
#   scripts/refresh-robots.sh            # latest release
#   scripts/refresh-robots.sh 1.67.0     # a given release
#
# PyPI is asked first (its releases have been the most recent), npm second; both publish the
# same crawler-user-agents.json. Needs python3 and pip (or npm). Then run
#   cargo test -p footfall-server --lib bots
# and follow crates/footfall-server/data/robots/README.md when a test fails.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
data="$root/crates/footfall-server/data/robots"
corpus="$root/crates/footfall-server/tests/data/user-agents/crawlers-crawler-user-agents.txt"
wanted="${1:-}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

version=""
if command -v pip >/dev/null 2>&1 || command -v pip3 >/dev/null 2>&1; then
    pip_cmd="$(command -v pip || command -v pip3)"
    spec="crawler-user-agents${wanted:+==$wanted}"
    if "$pip_cmd" download --quiet --no-deps --only-binary :all: -d "$work/pypi" "$spec"; then
        wheel="$(ls "$work"/pypi/crawler_user_agents-*.whl)"
        version="$(basename "$wheel" | sed -E 's/^crawler_user_agents-([^-]+)-.*/\1/')"
        python3 - "$wheel" "$work/out" <<'PY'
import pathlib, sys, zipfile
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir()
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith("/crawler-user-agents.json"):
            (out / "crawler-user-agents.json").write_bytes(z.read(name))
        elif name.endswith("/licenses/LICENSE") or name.endswith(".dist-info/LICENSE"):
            (out / "LICENSE").write_bytes(z.read(name))
PY
        source="PyPI"
    fi
fi
if [[ -z "$version" ]] && command -v npm >/dev/null 2>&1; then
    (cd "$work" && npm pack --silent "crawler-user-agents${wanted:+@$wanted}" >/dev/null)
    mkdir -p "$work/npm" "$work/out"
    tar -xzf "$work"/crawler-user-agents-*.tgz -C "$work/npm"
    version="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$work/npm/package/package.json")"
    cp "$work/npm/package/crawler-user-agents.json" "$work/out/"
    cp "$work/npm/package/LICENSE" "$work/out/"
    source="npm"
fi
if [[ -z "$version" || ! -s "$work/out/crawler-user-agents.json" ]]; then
    echo "refresh-robots: could not fetch crawler-user-agents from PyPI or npm" >&2
    exit 1
fi

old_version="$(cat "$data/crawler-user-agents.version" 2>/dev/null || echo none)"
python3 - "$data/crawler-user-agents.json" "$work/out/crawler-user-agents.json" <<'PY'
import json, sys
old = {e["pattern"] for e in json.load(open(sys.argv[1]))} if __import__("os").path.exists(sys.argv[1]) else set()
new = {e["pattern"] for e in json.load(open(sys.argv[2]))}
print(f"entries: {len(old)} -> {len(new)} (+{len(new - old)} added, -{len(old - new)} removed)")
PY

cp "$work/out/crawler-user-agents.json" "$data/crawler-user-agents.json"
[[ -s "$work/out/LICENSE" ]] && cp "$work/out/LICENSE" "$data/LICENSE-crawler-user-agents"
echo "$version" > "$data/crawler-user-agents.version"

# The corpus the recall test reads: every example instance, once, in list order.
python3 - "$data/crawler-user-agents.json" "$corpus" <<'PY'
import json, sys
seen, lines = set(), []
for entry in json.load(open(sys.argv[1])):
    for ua in entry.get("instances", []):
        ua = ua.strip()
        if ua and ua not in seen and "\n" not in ua:
            seen.add(ua)
            lines.append(ua)
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
print(f"crawler corpus: {len(lines)} instances")
PY

echo "crawler-user-agents $old_version -> $version (from $source, $(date -u +%Y-%m-%d))"
echo "Now: cargo test -p footfall-server --lib bots; then update the version and date in"
echo "     crates/footfall-server/data/robots/README.md and tests/data/user-agents/PROVENANCE.md"
