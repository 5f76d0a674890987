#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the store tests and print the variable to
# export: eval "$(bash .ci/postgres.sh)". Installs the Debian package when it is missing.
set -euo pipefail
PORT="${LEADRULES_PG_PORT:-54329}"
DATA="${LEADRULES_PG_DATA:-/tmp/leadrules-pg}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
run_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
if ! run_pg "$BIN/pg_ctl -D $DATA status" >/dev/null 2>&1; then
  rm -rf "$DATA"; mkdir -p "$DATA"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
  run_pg "$BIN/initdb -D $DATA -U postgres --auth=trust -E UTF8" >&2
  run_pg "$BIN/pg_ctl -D $DATA -l $DATA/log -o '-h 127.0.0.1 -p $PORT -k /tmp' -w start" >&2
fi
run_pg "$BIN/psql -h 127.0.0.1 -p $PORT -U postgres -tc \"SELECT 1 FROM pg_database WHERE datname='leadrules_test'\"" | grep -q 1 \
  || run_pg "$BIN/createdb -h 127.0.0.1 -p $PORT -U postgres leadrules_test" >&2
echo "export LEADRULES_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PORT/leadrules_test"
