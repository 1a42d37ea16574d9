#!/usr/bin/env bash
# parley_chat_test.sh — tools/parley-chat end to end, as two people would use
# it but with pipes instead of keyboards (under with_parleyd.py):
# --help and bad usage; B registers (code from the SMS file) and listens;
# A registers and sends two lines to B with --to; B shows them, with A's
# name; A's second run reuses its saved device (no new registration),
# reopens the last chat with its history, and gets B's answer, sent while A
# was away, shown once.
#
#   parley_chat_test.sh PARLEY_CHAT
set -euo pipefail
chat=$1
: "${PARLEY_ADDR:?run under tests/harness/with_parleyd.py}" "${PARLEY_SMS_FILE:?}"
tmp=$(mktemp -d /tmp/parley-chat-test.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*.out; do echo "--- $f"; cat "$f"; done; exit 1; }
n=$((RANDOM % 9000 + 1000))
a="+1555300$n" b="+1555400$n"
run() { # who, then parley-chat arguments; stdin is the input
  local who=$1; shift
  "$chat" --server "$PARLEY_ADDR" --sms-file "$PARLEY_SMS_FILE" --state-dir "$tmp/$who" "$@"
}

echo "-- --help and bad usage"
"$chat" --help | grep -q -- "--phone NUMBER" || fail "--help does not explain --phone"
set +e
"$chat" --to +15551234567 >/dev/null 2>&1; [ $? -eq 2 ] || fail "no --phone: want exit 2"
"$chat" --phone 12345 >/dev/null 2>&1; [ $? -eq 2 ] || fail "a bad number: want exit 2"
set -e

echo "-- B registers, then listens"
run B --phone "$b" --name Bob </dev/null >"$tmp/b0.out" 2>&1 || fail "B's registration"
grep -q "Registered" "$tmp/b0.out" || fail "B did not register"
[ "$(stat -c %a "$tmp/B/device")" = 600 ] || fail "the credentials file is not private"
(sleep 8) | run B --phone "$b" >"$tmp/b1.out" 2>&1 &
listener=$!
sleep 1

echo "-- A registers and writes to B"
printf 'hello Bob\nhow are you?\n' | run A --phone "$a" --name Alice --to "$b" >"$tmp/a0.out" 2>&1 ||
  fail "A's run failed"
grep -q "Registered" "$tmp/a0.out" || fail "A did not register"
wait $listener || fail "B's listening run failed"
grep -q "Alice: hello Bob" "$tmp/b1.out" || fail "B did not show A's first line with A's name"
grep -q "Alice: how are you?" "$tmp/b1.out" || fail "B did not show A's second line"
[ "$(grep -c "hello Bob" "$tmp/b1.out")" = 1 ] || fail "B showed A's line more than once"

echo "-- B answers while A is away; A comes back to its last chat"
printf 'fine, thanks\n' | run B --phone "$b" --to "$a" >"$tmp/b2.out" 2>&1 || fail "B's answer"
(sleep 3) | run A --phone "$a" >"$tmp/a1.out" 2>&1 || fail "A's second run"
grep -q "Registering" "$tmp/a1.out" && fail "A registered again instead of reusing its device"
grep -q "you: hello Bob" "$tmp/a1.out" || fail "A's last chat and its history did not come back"
[ "$(grep -c "Bob: fine, thanks" "$tmp/a1.out")" = 1 ] || fail "A did not show B's answer exactly once"
echo "PASS client.parley_chat"
