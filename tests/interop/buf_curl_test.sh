#!/usr/bin/env bash
# buf_curl_test.sh PORT — `buf curl` (Buf's CLI, from npm) against a running
# server: it must list our services through reflection (v1) and call
# grpc.health.v1.Health/Check over h2c with the gRPC protocol.
# The buf binary comes from $PARLEY_BUF, or is installed with npm into
# $PARLEY_CACHE (default ~/.cache/parley).
set -euo pipefail
port=${1:?usage: buf_curl_test.sh PORT}
BUF_VERSION=1.75.0
buf=${PARLEY_BUF:-}
if [ -z "$buf" ]; then
  cache=${PARLEY_CACHE:-$HOME/.cache/parley}/buf-$BUF_VERSION
  buf=$cache/node_modules/.bin/buf
  if [ ! -x "$buf" ]; then
    mkdir -p "$cache"
    npm install --silent --no-audit --no-fund --prefix "$cache" "@bufbuild/buf@$BUF_VERSION" >/dev/null
  fi
fi
url=http://127.0.0.1:$port
fail() { echo "FAIL buf curl: $*"; exit 1; }

services=$("$buf" curl --http2-prior-knowledge --protocol grpc --list-services "$url") || fail "--list-services failed"
for s in grpc.health.v1.Health grpc.reflection.v1.ServerReflection grpc.testing.TestService; do
  grep -qx "$s" <<<"$services" || fail "service $s not listed; got: $services"
done
echo "PASS buf curl --list-services ($(wc -l <<<"$services") services)"

methods=$("$buf" curl --http2-prior-knowledge --protocol grpc --list-methods "$url") \
  || fail "--list-methods failed"
grep -qx "grpc.testing.TestService/FullDuplexCall" <<<"$methods" || fail "FullDuplexCall not listed: $methods"
echo "PASS buf curl --list-methods"

out=$("$buf" curl --http2-prior-knowledge --protocol grpc -d '{}' "$url/grpc.health.v1.Health/Check") \
  || fail "Health/Check failed"
tr -d ' \n' <<<"$out" | grep -q '"status":"SERVING"' || fail "Health/Check answered: $out"
echo "PASS buf curl Health/Check: $(tr -d ' \n' <<<"$out")"

# An error status must come back as such (buf exits non-zero and prints the code).
if err=$("$buf" curl --http2-prior-knowledge --protocol grpc -d '{"service":"nope"}' \
         "$url/grpc.health.v1.Health/Check" 2>&1); then
  fail "Health/Check of an unknown service succeeded: $err"
fi
grep -qi 'not_found' <<<"$err" || fail "unknown service: expected not_found, got: $err"
echo "PASS buf curl error status (not_found)"

out=$("$buf" curl --http2-prior-knowledge --protocol grpc \
      -d '{"responseSize": 3, "payload": {"body": "AAAA"}}' "$url/grpc.testing.TestService/UnaryCall") \
  || fail "UnaryCall failed"
tr -d ' \n' <<<"$out" | grep -q '"body":"AAAA"' || fail "UnaryCall answered: $out"
echo "PASS buf curl TestService/UnaryCall"
