#!/usr/bin/env bash
# Checks the document API against its OpenAPI document (Docs/openapi.json): starts `weft serve`
# on a throwaway SQLite store, checks that it serves Docs/openapi.json as it is, and runs
# schemathesis (from PyPI, in a throwaway virtualenv) against it: every operation, with valid and
# invalid inputs, must answer a documented status with a body of the documented shape, and never
# a 5xx. Needs the debug build (`make test` made it). `make api-check` runs it; CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT="${SWIFT:-swift}"
WEFT="$($SWIFT build --show-bin-path)/weft"
[ -x "$WEFT" ] || $SWIFT build --product weft
work="$(mktemp -d /tmp/weft-openapi.XXXXXX)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
token="openapi-check-token-0123456789"
cat > "$work/weft.toml" <<TOML
[persistence]
conflict_resolution = "crdt"

[server]
listen = "127.0.0.1:$port"
store_path = "$work/central.sqlite"

[server.limits]
max_long_poll_ms = 500
max_request_bytes = 1048576

[[server.tokens]]
token = "$token"
databases = ["shop"]
access = "read_write"
scopes = ["documents"]
TOML
"$WEFT" serve --config "$work/weft.toml" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "check-openapi: weft serve exited" >&2; exit 1; }
    sleep 0.1
done

# The server serves the document in Docs/ byte for byte.
curl -fsS "http://127.0.0.1:$port/openapi.json" > "$work/served.json"
if ! cmp -s "$work/served.json" Docs/openapi.json; then
    echo "check-openapi: GET /openapi.json differs from Docs/openapi.json" >&2
    diff "$work/served.json" Docs/openapi.json | head -20 >&2
    exit 1
fi

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
# A few documents to read, so the reads do not only meet 404s.
for id in a b c; do
    curl -fsS -X PUT -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
        -d "{\"status\":\"open\",\"n\":1}" "http://127.0.0.1:$port/v1/shop/documents/orders/$id" > /dev/null
done
# Every request names the database the token covers (other names are a plain 403).
cat > "$work/schemathesis.toml" <<TOML
[parameters]
"path.database" = "shop"
TOML
"$work/venv/bin/st" --config-file "$work/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "${OPENAPI_EXAMPLES:-60}" --seed 18 --workers 1 --request-timeout 30 \
    --phases examples,coverage,fuzzing
