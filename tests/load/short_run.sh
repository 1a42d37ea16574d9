#!/usr/bin/env bash
# short_run.sh PARLEY_LOAD — 40 devices over both nodes, 1:1 and groups of
# 5, at a modest rate, then closed-loop: parley-load exits non-zero on any
# error, loss, duplicate or dropped stream.
set -euo pipefail
load=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--addr "$PARLEY_ADDR_0" --addr "$PARLEY_ADDR_1" --devices 40 --group-size 5 --group-ratio 0.3
        --sms-file "$PARLEY_SMS_FILE" --devices-file "$tmp/devices" --warmup 1 --quiet)
"$load" "${common[@]}" --rate 400 --duration 3 --json "$tmp/rate.json"
"$load" "${common[@]}" --window 2 --duration 2 --json "$tmp/closed.json"
python3 - "$tmp/rate.json" "$tmp/closed.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    assert r["ready"] == r["devices"] == 40, r
    assert r["accepted"] > 0 and r["delivered"] > 0, r
    assert r["lost"] == 0 and r["duplicate_acks"] == 0 and not r["errors"], r
    print(path.rsplit("/", 1)[1], "accepted", r["accepted"], "delivered", r["delivered"], "lost", r["lost"])
PY
