#!/usr/bin/python3
"""port_in_use.py SERVER_BIN PORT — a second server started on a port that a
running server listens on must refuse to start, naming the address, instead
of sharing the port's connections through SO_REUSEPORT."""
import subprocess
import sys


def main(argv):
    server, port = argv[1], argv[2]
    try:
        p = subprocess.run([server, "--port=%s" % port], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        print("FAIL: a second server on port %s started and kept running" % port)
        return 1
    out = p.stdout + p.stderr
    if p.returncode == 0 or "listening on" in out:
        print("FAIL: a second server on port %s started (exit %d): %s" % (port, p.returncode, out.strip()))
        return 1
    if "Address already in use" not in out or port not in out:
        print("FAIL: the refusal does not say why: %s" % out.strip())
        return 1
    print("PASS: refused: %s" % out.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
