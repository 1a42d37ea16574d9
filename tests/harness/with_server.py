#!/usr/bin/python3
"""with_server.py — runs a client command against a server started for it.

  with_server.py SERVER_CMD... -- CLIENT_CMD...

The server is started with its own arguments (use --port=0 or --port 0 so it
picks a free port) and must print "listening on HOST:PORT". Every "{port}" in
the client command is replaced by that port, every "{pid}" by the server's pid. Afterwards the server gets
SIGTERM and must exit 0 within the grace period: a crash, a sanitizer report
or a hang on shutdown fails the test too. Exit status: the client's, or 1.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

READY = re.compile(r"listening on \S+:(\d+)")


def main(argv):
    if "--" not in argv or argv.index("--") == 0 or argv.index("--") == len(argv) - 1:
        sys.stderr.write(__doc__)
        return 2
    cut = argv.index("--")
    server_cmd, client_cmd = argv[:cut], argv[cut + 1:]
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.time() + 20
    out_lines = []
    while time.time() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        out_lines.append(line)
        m = READY.search(line)
        if m:
            port = m.group(1)
            break
    if port is None:
        server.kill()
        _, err = server.communicate()
        sys.stderr.write("with_server: server did not start:\n%s%s" % ("".join(out_lines), err))
        return 1
    # keep draining the server's output so it never blocks on a full pipe
    captured = {"out": [], "err": []}

    def drain(stream, key):
        for line in stream:
            captured[key].append(line)

    threads = [threading.Thread(target=drain, args=(server.stdout, "out"), daemon=True),
               threading.Thread(target=drain, args=(server.stderr, "err"), daemon=True)]
    for t in threads:
        t.start()
    client = subprocess.run([a.replace("{port}", port).replace("{pid}", str(server.pid)) for a in client_cmd])
    server.send_signal(signal.SIGTERM)
    try:
        server_rc = server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        sys.stderr.write("with_server: server did not stop within 30 s of SIGTERM\n")
        return 1
    for t in threads:
        t.join(timeout=5)
    if server_rc != 0:
        sys.stderr.write("with_server: server exited with %d\n%s" % (server_rc, "".join(captured["err"])))
        return 1
    if client.returncode != 0 and captured["err"]:
        sys.stderr.write("with_server: server stderr:\n%s" % "".join(captured["err"]))
    return client.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
