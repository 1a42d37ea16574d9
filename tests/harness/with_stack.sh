#!/usr/bin/env bash
# with_stack.sh — runs a command against a throw-away stack: PostgreSQL
# servers and Redis on free ports in a temp directory (tools/stack --fast),
# optionally with the schema migrated, torn down afterwards whatever happens.
#
#   with_stack.sh [--pg-servers N] [--shards N] [--migrate PARLEY_MIGRATE] -- CMD...
#
# CMD sees the stack's PARLEY_POSTGRES_SERVER, PARLEY_POSTGRES_SHARDS,
# PARLEY_REDIS_HOST/PORT, and PARLEY_STACK_DIR (for tools/stack pg-stop
# and friends). Exit status: CMD's, or 1 when the stack fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
pg_servers=2
shards=16
migrate=
while [ $# -gt 0 ]; do
  case "$1" in
    --pg-servers) pg_servers=$2; shift ;;
    --shards) shards=$2; shift ;;
    --migrate) migrate=$2; shift ;;
    --) shift; break ;;
    *) echo "with_stack: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ $# -gt 0 ] || { sed -n '2,10p' "$0" >&2; exit 2; }

tmp=$(mktemp -d /tmp/parley-stack.XXXXXX)
chmod 755 "$tmp"
stack() { "$root/tools/stack" "$@" --dir "$tmp/stack"; }
cleanup() { stack reset >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

stack up --pg-servers "$pg_servers" --fast
set -a
eval "$(stack env)"
set +a
export PARLEY_POSTGRES_SHARDS=$shards PARLEY_STACK_DIR=$tmp/stack
if [ -n "$migrate" ]; then
  "$migrate" --quiet init
  "$migrate" --quiet up
fi
rc=0
"$@" || rc=$?
exit "$rc"
