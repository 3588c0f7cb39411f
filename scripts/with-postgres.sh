#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: initdb into a temporary folder, listening
# only on 127.0.0.1 on a free port, trust authentication for the one user. The command sees
# WEFT_POSTGRES_URL (and WEFT_POSTGRES_BIN, for tests that restart the server). The server is
# stopped and its folder removed when the command ends, pass or fail, or when this script is
# killed (a watchdog).
set -euo pipefail

bin=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$candidate/initdb" ]; then bin="$candidate"; break; fi
done
if [ -z "$bin" ]; then
  echo "with-postgres: no PostgreSQL server binaries (Debian package postgresql); run: bash scripts/ensure-system-packages.sh --with-postgres (make test does)" >&2
  exit 1
fi

root="$(mktemp -d /tmp/weft-postgres.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  # initdb refuses to run as root: the server runs as the postgres user the package creates.
  chown postgres "$root"
  as_owner=(runuser -u postgres --)
fi

stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$root/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap stop EXIT

"${as_owner[@]}" "$bin/initdb" -D "$root/data" -U weft --auth=trust -E UTF8 >"$root/initdb.log" 2>&1 \
  || { cat "$root/initdb.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $root -c fsync=on -c max_connections=200" start >/dev/null \
  || { cat "$root/server.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U weft weft_test

# The trap does not run if this script is killed with SIGKILL (a CI timeout, kill -9), and the
# server, a daemon, would live on. A watchdog in a session of its own polls this script's
# process once a second and, once it is gone, stops the server and removes its folder.
setsid bash -c 'parent=$1 bin=$2 root=$3; shift 3
  while kill -0 "$parent" 2>/dev/null; do sleep 1; done
  "$@" "$bin/pg_ctl" -D "$root/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$root"' with-postgres-watchdog "$$" "$bin" "$root" "${as_owner[@]}" </dev/null >/dev/null 2>&1 &

export WEFT_POSTGRES_URL="postgres://weft@127.0.0.1:$port/weft_test"
export WEFT_POSTGRES_BIN="$bin"
export WEFT_POSTGRES_DATA="$root/data"
export WEFT_POSTGRES_PORT="$port"
export WEFT_POSTGRES_RUN_AS="${as_owner[*]:-}"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($root)"
"$@"
