#!/usr/bin/python3
"""buf_compare_test.py — parleyctl's output against `buf curl`'s (Buf's CLI,
which prints with Go's protojson) for the same calls on a running
interop_server, both using server reflection over h2c. Only whitespace is
normalised (protojson varies it on purpose); everything else must match.

  buf_compare_test.py --parleyctl BIN --port N

buf comes from $PARLEY_BUF, or is installed with npm into
$PARLEY_CACHE/buf-VERSION (default ~/.cache/parley), as
tests/interop/buf_curl_test.sh does.
"""
import argparse
import os
import subprocess
import sys

BUF_VERSION = "1.75.0"
TS = "grpc.testing.TestService"

CALLS = [
    # (method, requests (one per line), extra flags for both tools)
    (TS + "/EmptyCall", ["{}"], []),
    (TS + "/UnaryCall", ['{"responseSize": 5, "payload": {"body": "AAECAwQ="}}'], []),
    (TS + "/UnaryCall", ['{"response_size": 3, "response_type": "COMPRESSABLE"}'], ["--emit-defaults"]),
    (TS + "/StreamingOutputCall", ['{"responseParameters": [{"size": 1}, {"size": 4}, {"size": 7}]}'], []),
    (TS + "/StreamingInputCall", ['{"payload": {"body": "AAAA"}}', '{"payload": {"body": "AAECAwQFBgc="}}', "{}"],
     []),
    (TS + "/FullDuplexCall", ['{"responseParameters": [{"size": %d}]}' % n for n in (1, 2, 3, 10)], []),
    ("grpc.health.v1.Health/Check", ["{}"], []),
    ("grpc.health.v1.Health/Check", ['{"service": ""}'], ["--emit-defaults"]),
]


def find_buf():
    buf = os.environ.get("PARLEY_BUF")
    if buf:
        return buf
    cache = os.path.join(os.environ.get("PARLEY_CACHE", os.path.expanduser("~/.cache/parley")),
                         "buf-" + BUF_VERSION)
    buf = os.path.join(cache, "node_modules", ".bin", "buf")
    if not os.access(buf, os.X_OK):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", cache,
                        "@bufbuild/buf@" + BUF_VERSION], check=True, stdout=subprocess.DEVNULL)
    return buf


def strip_whitespace(text):
    """Drops whitespace outside JSON strings; strings stay as they are."""
    out, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif not ch.isspace():
            out.append(ch)
    return "".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parleyctl", required=True)
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()
    buf = find_buf()
    url = "http://127.0.0.1:%d" % a.port
    failed = 0
    for method, requests, flags in CALLS:
        data = "\n".join(requests) + "\n"
        theirs = subprocess.run([buf, "curl", "--http2-prior-knowledge", "--protocol", "grpc"] + flags +
                                ["-d", "@-", url + "/" + method], input=data, capture_output=True, text=True,
                                timeout=60)
        ours = subprocess.run([a.parleyctl] + flags + ["127.0.0.1:%d" % a.port, "call", method], input=data,
                              capture_output=True, text=True, timeout=60)
        what = "%s %s %s" % (method, " ".join(flags), " | ".join(requests))
        if theirs.returncode != 0 or ours.returncode != 0:
            print("FAIL %s: exit buf %d, parleyctl %d\n  buf: %s\n  parleyctl: %s" %
                  (what, theirs.returncode, ours.returncode, theirs.stderr, ours.stderr))
            failed += 1
        elif strip_whitespace(theirs.stdout) != strip_whitespace(ours.stdout):
            print("FAIL %s: outputs differ\n  buf:       %s\n  parleyctl: %s" %
                  (what, strip_whitespace(theirs.stdout), strip_whitespace(ours.stdout)))
            failed += 1
        else:
            print("PASS %s: %s" % (what, strip_whitespace(ours.stdout)))

    theirs = subprocess.run([buf, "curl", "--http2-prior-knowledge", "--protocol", "grpc", "--list-services", url],
                            capture_output=True, text=True, timeout=60)
    ours = subprocess.run([a.parleyctl, "127.0.0.1:%d" % a.port, "list"], capture_output=True, text=True,
                          timeout=60)
    if theirs.returncode or ours.returncode or sorted(theirs.stdout.split()) != ours.stdout.split():
        print("FAIL list: buf %r, parleyctl %r" % (theirs.stdout, ours.stdout))
        failed += 1
    else:
        print("PASS list: %d services" % len(ours.stdout.split()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
