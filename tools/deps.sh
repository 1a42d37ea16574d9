#!/usr/bin/env bash
# deps.sh — install (as root) or list (otherwise) the Debian 12 packages Parley
# needs to build, run and test. Everything Parley uses comes from Debian.
#
#   tools/deps.sh            install what is missing (root), else list it and exit 1
#   tools/deps.sh --check    only report what is missing (exit 1 if anything is)
#   tools/deps.sh --help
set -euo pipefail

# Build: compilers, build tools and libraries.
BUILD_PKGS=(gcc g++ make cmake pkg-config clang clang-format libclang-rt-14-dev
  libnghttp2-dev libssl-dev libevent-dev zlib1g-dev libsodium-dev
  nanopb libnanopb-dev protobuf-compiler libprotobuf-dev libprotoc-dev
  libpq-dev libhiredis-dev libjansson-dev libinih-dev libcurl4-openssl-dev)
# Run: the local stack's servers and tools.
RUN_PKGS=(postgresql redis-server openssl procps iproute2)
# Test and benchmark: real peers from other projects.
TEST_PKGS=(python3 python3-grpcio python3-protobuf nodejs npm nghttp2-client
  libgrpc++-dev protobuf-compiler-grpc curl ca-certificates
  ccache)  # the README walk-through test builds a fresh clone: a warm cache saves minutes

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

check_only=0
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --check) check_only=1 ;;
  "") ;;
  *) echo "deps.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

missing=()
for p in "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}" "${TEST_PKGS[@]}"; do
  # A node/npm installed outside Debian (nvm, npm's self-upgrade) is fine too.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$check_only" = 1 ] || [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
  echo "deps.sh: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts packaged services on install; Parley runs its own private
# instances on free ports, so the system-wide ones are not needed.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now redis-server postgresql >/dev/null 2>&1 || true
fi
echo "deps.sh: done"
