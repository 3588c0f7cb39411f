#!/usr/bin/env bash
# Installs the Debian packages Weft builds against, if any are missing.
# With root (or sudo) it runs apt-get; without, it prints the exact command and fails.
set -euo pipefail
# postgresql: the server binaries for the throwaway PostgreSQL the tests start (scripts/with-postgres.sh),
# installed only with --with-postgres (`make test`), with openssl, which the JWT tests use to make an
# RSA key; building and `make demo` need only the libraries.
packages=(libsqlite3-dev libzstd-dev)
if [ "${1:-}" = "--with-postgres" ]; then packages+=(postgresql openssl); fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing missing system packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "Cannot install packages without root. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
