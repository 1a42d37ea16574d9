#!/usr/bin/python3
"""with_parleyd.py — runs a command against parleyd nodes started for it.

  with_parleyd.py --parleyd BIN [--nodes N] [--workers N] [-- extra parleyd flags ...] -- CMD...

Run inside tests/harness/with_stack.sh (which exports the PostgreSQL and
Redis settings parleyd reads from its environment, and migrates the cluster).
Starts N nodes (node ids 0..N-1) on free ports, each writing verification
codes to $PARLEY_SMS_FILE (a temp file, exported to CMD). CMD sees
PARLEY_ADDR (node 0's host:port), PARLEY_ADDR_<i> for every node, and
PARLEY_PIDS (space-separated pids, node order). Afterwards every node gets
SIGTERM and must exit 0: a crash, a sanitizer report or a hang fails the
test. Exit status: CMD's, or 1.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

READY = re.compile(r"listening on \S+:(\d+)")


def start_node(parleyd, node, workers, extra, env):
    cmd = [parleyd, "--port=0", "--node-id=%d" % node, "--workers=%d" % workers] + extra
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 30
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = READY.search(line)
        if m:
            return proc, m.group(1)
    proc.kill()
    _, err = proc.communicate()
    sys.stderr.write("with_parleyd: node %d did not start:\n%s%s" % (node, "".join(lines), err))
    return None, None


def main(argv):
    parleyd, nodes, workers, extra = None, 1, 2, []
    i = 0
    while i < len(argv) and argv[i] != "--":
        a = argv[i]
        if a == "--parleyd":
            parleyd, i = argv[i + 1], i + 2
        elif a == "--nodes":
            nodes, i = int(argv[i + 1]), i + 2
        elif a == "--workers":
            workers, i = int(argv[i + 1]), i + 2
        else:
            sys.stderr.write("with_parleyd: unknown argument %s\n%s" % (a, __doc__))
            return 2
    rest = argv[i + 1:]
    if "--" in rest:  # extra parleyd flags, then the command
        cut = rest.index("--")
        extra, rest = rest[:cut], rest[cut + 1:]
    if not parleyd or not rest:
        sys.stderr.write(__doc__)
        return 2

    tmp = tempfile.mkdtemp(prefix="parleyd-")
    env = dict(os.environ)
    env["PARLEY_SMS_FILE"] = os.path.join(tmp, "sms.log")
    procs, ports = [], []
    captured = []
    try:
        for n in range(nodes):
            proc, port = start_node(parleyd, n, workers, extra, env)
            if not proc:
                return 1
            procs.append(proc)
            ports.append(port)
            out = {"err": []}
            captured.append(out)
            for stream, key in ((proc.stdout, None), (proc.stderr, "err")):
                def drain(s=stream, k=key, o=out, node=n):
                    for line in s:
                        if k:
                            o[k].append(line)
                            if os.environ.get("PARLEY_TEST_VERBOSE"):
                                sys.stderr.write("[node %d] %s" % (node, line))
                threading.Thread(target=drain, daemon=True).start()
        env["PARLEY_ADDR"] = "127.0.0.1:%s" % ports[0]
        for n, port in enumerate(ports):
            env["PARLEY_ADDR_%d" % n] = "127.0.0.1:%s" % port
        env["PARLEY_PIDS"] = " ".join(str(p.pid) for p in procs)
        client = subprocess.run(rest, env=env)
        rc = client.returncode
        for n, proc in enumerate(procs):
            if proc.poll() is not None:
                continue  # the test stopped or killed it on purpose
            proc.send_signal(signal.SIGTERM)
        for n, proc in enumerate(procs):
            try:
                prc = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                sys.stderr.write("with_parleyd: node %d did not stop within 30 s of SIGTERM\n" % n)
                rc = rc or 1
                continue
            if prc not in (0, -signal.SIGKILL) or any("ERROR: AddressSanitizer" in l or "runtime error:" in l
                                                       for l in captured[n]["err"]):
                sys.stderr.write("with_parleyd: node %d exited with %d\n%s" % (n, prc, "".join(captured[n]["err"])))
                rc = rc or 1
        if rc != 0 and not os.environ.get("PARLEY_TEST_VERBOSE"):
            for n in range(len(procs)):
                tail = "".join(captured[n]["err"][-40:])
                if tail:
                    sys.stderr.write("with_parleyd: node %d stderr (last lines):\n%s" % (n, tail))
        return rc
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
