#!/usr/bin/env python3
"""parleyd_budgets.py — the inbound budget and the HPACK bomb against parleyd
itself (not only interop_server): incomplete request messages on an
unauthenticated connection (grpc.health.v1.Health/Check, no token), on an
authenticated one (Messaging/Send after a call with a valid token), and
header blocks of references to a large HPACK entry. Runs under
with_stack.sh and with_parleyd.py (parleyd with a short message timeout);
registers a device for its token.

usage: parleyd_budgets.py H2_BUDGETS_BINARY"""
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from parley_py import register  # noqa: E402


def main(argv):
    binary = argv[1]
    dev = register(os.environ["PARLEY_ADDR"], "+1558%07d" % random.randrange(10 ** 7), "budget test")
    runs = [
        ("unauthenticated", ["--case=partial_messages", "--path=/grpc.health.v1.Health/Check"]),
        ("authenticated", ["--case=partial_messages", "--path=/parley.v1.Messaging/Send", "--bearer=" + dev.token]),
        ("HPACK bomb", ["--case=hpack_bomb"]),
    ]
    failed = 0
    for name, args in runs:
        print("== parleyd, %s" % name, flush=True)
        failed += subprocess.run([binary, "--health"] + args).returncode != 0
    print("%d passed, %d failed" % (len(runs) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
