#!/usr/bin/env bash
# Builds the DocC documentation of every library target with swift-docc-plugin, treating DocC
# warnings as errors: a symbol link that does not resolve, a topic that names nothing, an
# undocumented parameter fail the build. `make docs` runs it; CI runs it after the tests.
#
#     bash scripts/build-docs.sh              # every target below
#     bash scripts/build-docs.sh Weft WeftCRDT
#
# The only warnings let through are the ones listed in scripts/docs-known-warnings.txt, each
# waiting for a change in a file this check could not edit when it was added. A target with a
# listed warning is built on its own and its diagnostics compared with the list: any other
# warning fails, and so does a listed one that is no longer reported (delete its line), so the
# list only shrinks. Every other target is built with `--warnings-as-errors`.
#
# Run it after a debug build (`swift build`, which `make test` does): the plugin reuses that
# build to extract the symbols. The archives land in
# .build/plugins/Swift-DocC/outputs/TARGET.doccarchive.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT="${SWIFT:-swift}"
known="scripts/docs-known-warnings.txt"

# The targets with a catalog (Sources/NAME/NAME.docc) first, then the other libraries.
targets=(Weft WeftCRDT WeftServer WeftPostgres WeftWire WeftSQLite WeftHTTPCore WeftHTTP WeftURLSession WeftTesting)
if [ "$#" -gt 0 ]; then targets=("$@"); fi

strict=()
listed=()
for target in "${targets[@]}"; do
  if grep -q "^Sources/$target/" "$known"; then listed+=("$target"); else strict+=("$target"); fi
done

# `--disable-indexing`: no LMDB navigator index, which only Xcode reads.
if [ "${#strict[@]}" -gt 0 ]; then
  arguments=()
  for target in "${strict[@]}"; do arguments+=(--target "$target"); done
  "$SWIFT" package generate-documentation "${arguments[@]}" --disable-indexing --warnings-as-errors
fi

if [ "${#listed[@]}" -gt 0 ]; then
  diagnostics="$(mktemp -d /tmp/weft-docs.XXXXXX)"
  trap 'rm -rf "$diagnostics"' EXIT
  for target in "${listed[@]}"; do
    "$SWIFT" package generate-documentation --target "$target" --disable-indexing \
      --diagnostics-file "$diagnostics/$target.json"
    python3 - "$diagnostics/$target.json" "$known" "$target" <<'EOF'
import json, os, sys
from urllib.parse import unquote, urlparse

path, known_path, target = sys.argv[1:]
root = os.getcwd() + "/"
prefix = f"Sources/{target}/"
known = {
    line.rstrip("\n") for line in open(known_path, encoding="utf-8")
    if line.startswith(prefix)
}
seen, unexpected = set(), []
for diagnostic in json.load(open(path, encoding="utf-8"))["diagnostics"]:
    source = diagnostic.get("source")
    where = unquote(urlparse(source).path).removeprefix(root) if source else ""
    start = (diagnostic.get("range") or {}).get("start") or {}
    key = f"{where}: {diagnostic['summary']}"
    if diagnostic["severity"] == "warning" and key in known:
        seen.add(key)
        print(f"docs: known warning, listed in {known_path}: {where}:{start.get('line', '?')}: {diagnostic['summary']}")
    elif diagnostic["severity"] in ("warning", "error"):
        unexpected.append(f"{where}:{start.get('line', '?')}:{start.get('column', '?')}: {diagnostic['severity']}: {diagnostic['summary']}")
for line in unexpected:
    print(line, file=sys.stderr)
stale = sorted(known - seen)
for key in stale:
    print(f"docs: no longer reported, delete its line from {known_path}: {key}", file=sys.stderr)
if unexpected or stale:
    print(f"docs: {target}: {len(unexpected)} DocC warning(s) not listed, {len(stale)} listed one(s) gone", file=sys.stderr)
    sys.exit(1)
EOF
  done
fi
echo "docs: ${#targets[@]} targets documented with no DocC warning but the ones listed in $known"
