#!/usr/bin/python3
"""fault_run.py — one fault scenario end to end, then the checker.

  fault_run.py --parleyd BIN --driver BIN [--out DIR] [--keep] [--parleyd-flag FLAG]...
               SCENARIO [-- DRIVER FLAGS...]

Runs inside tests/harness/with_stack.sh --migrate (two PostgreSQL servers
and Redis, migrated; PARLEY_STACK_DIR for tools/stack). Starts the
scenario's parleyd nodes on fixed free ports (so a node restarts on the same
port) and the proxies it needs (tcp_proxy.py), runs fault_driver against
them, and once the driver says SENDING, injects the scenario's faults on a
timeline (seconds after SENDING). When the driver is done (quiescent or
not), stops the surviving nodes (SIGTERM: they must exit 0), looks for
sanitizer reports in every node's log, and runs checker.py over the
records and the PostgreSQL shards.

Scenarios (README.md has the why):
  kill_restart  parleyd hung (SIGSTOP) then killed (-9) under load, restarted on
                the same port; then killed and restarted at once
  failover      two nodes behind two proxies (each falls over to the other
                node); node 1 killed (-9) and left down
  pg_restart    PostgreSQL server 0, then server 1, restarted (immediate stop)
  pg_outage     PostgreSQL server 1 stopped for 10 s
  redis_kill    two nodes; Redis killed (-9) and started again 5 s later
  redis_stall   two nodes, 20 sends/s per device; Redis holds write commands
                for 2.5 s (CLIENT PAUSE WRITE), at 5 s and as the sending ends
                (with commits held back just before): commands time out and
                their connections reset while the nodes' subscriptions stay
                up, so nothing triggers a resync
  net_stall     the network to half the devices stalls both ways for 8 s
                (longer than libparley's keepalive), then flows again; then
                the other half stalls and its connections are dropped

Exit status: 0 when the driver reached quiescence, every node behaved and
the checker passed; 1 otherwise. The records stay in --out (default a temp
directory, kept when the scenario fails or with --keep).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from tcp_proxy import Proxy  # noqa: E402

STACK = os.path.join(ROOT, "tools", "stack")
FREE_PORT = os.path.join(ROOT, "tools", "free-port")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "SUMMARY: UndefinedBehavior")
# Registration makes more codes from 127.0.0.1 than the defaults allow.
PARLEYD_FLAGS = ["--rate.codes_per_address_per_hour=10000", "--rate.codes_per_phone_per_hour=1000"]


def free_port():
    """A port no outgoing connection can take before parleyd (re)binds it."""
    return int(subprocess.run([FREE_PORT], stdout=subprocess.PIPE, text=True, check=True).stdout)


class Run:
    """What a scenario's timeline works with."""

    def __init__(self, args, out):
        self.args, self.out = args, out
        self.nodes, self.proxies = [], []
        self.t0 = None  # when the driver said SENDING
        self.failures = []

    def log(self, msg):
        t = "" if self.t0 is None else "t=%5.1fs " % (time.monotonic() - self.t0)
        print("fault_run: %s%s" % (t, msg), flush=True)

    def at(self, seconds):
        """Sleeps until `seconds` after SENDING."""
        delay = self.t0 + seconds - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def stack(self, *argv):
        cmd = [STACK] + list(argv) + ["--dir", os.environ["PARLEY_STACK_DIR"]]
        self.log("tools/stack %s" % " ".join(argv))
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("tools/stack %s failed (%d): %s" % (" ".join(argv), r.returncode, r.stdout))

    def redis_pid(self):
        with open(os.path.join(os.environ["PARLEY_STACK_DIR"], "redis", "redis.pid")) as f:
            return int(f.read().strip())

    def redis_pause(self, ms):
        """Redis holds every write command (scripts, PUBLISH) for ms while
        still answering the nodes' subscription probes, as when a flood of
        commands makes it fall behind: the nodes' command connections time
        out and reset, their subscriptions stay up."""
        port = os.environ["PARLEY_REDIS_PORT"]
        self.log("Redis pauses writes for %d ms (CLIENT PAUSE WRITE)" % ms)
        r = subprocess.run(["redis-cli", "-p", port, "CLIENT", "PAUSE", str(ms), "WRITE"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.stdout.strip() != "OK":
            raise RuntimeError("CLIENT PAUSE failed: %s" % r.stdout.strip())

    def pg_pids(self):
        """Every process of the stack's PostgreSQL servers (postmasters and
        their backends)."""
        stack = os.environ["PARLEY_STACK_DIR"]
        conf = dict(line.strip().split("=", 1) for line in open(os.path.join(stack, "ports")) if "=" in line)
        base = conf.get("pgbase") or stack
        pids = []
        for i in range(int(conf.get("pg_servers", "2"))):
            with open(os.path.join(base, "pg%d" % i, "postmaster.pid")) as f:
                pm = int(f.readline().strip())
            kids = subprocess.run(["pgrep", "-P", str(pm)], stdout=subprocess.PIPE, text=True).stdout.split()
            pids += [pm] + [int(k) for k in kids]
        return pids

    def pg_freeze(self, frozen):
        self.log("PostgreSQL %s" % ("frozen (SIGSTOP)" if frozen else "thawed (SIGCONT)"))
        for pid in self.pg_pids():
            try:
                os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)
            except ProcessLookupError:
                pass

    def redis_kill9(self):
        pidfile = os.path.join(os.environ["PARLEY_STACK_DIR"], "redis", "redis.pid")
        with open(pidfile) as f:
            pid = int(f.read().strip())
        self.log("kill -9 Redis (pid %d)" % pid)
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):  # until it is gone (it is not our child: no wait)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise RuntimeError("Redis pid %d did not die" % pid)


class Node:
    def __init__(self, run, node_id):
        self.run, self.node_id = run, node_id
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.proc = None
        self.logs = []
        self.killed = False

    def start(self):
        path = os.path.join(self.run.out, "node%d.%d.log" % (self.node_id, len(self.logs)))
        self.logs.append(path)
        cmd = [self.run.args.parleyd, "--port=%d" % self.port, "--node-id=%d" % self.node_id, "--workers=2"]
        cmd += PARLEYD_FLAGS + self.run.args.parleyd_flags
        with open(path, "w") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open(path, errors="replace") as f:
                if "listening on" in f.read():
                    self.run.log("node %d up on %s (pid %d)" % (self.node_id, self.addr, self.proc.pid))
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(path, errors="replace") as f:
            tail = f.read()[-3000:]
        raise RuntimeError("node %d did not start (exit %s):\n%s" % (self.node_id, self.proc.poll(), tail))

    def freeze(self):
        self.run.log("SIGSTOP node %d (pid %d)" % (self.node_id, self.proc.pid))
        self.proc.send_signal(signal.SIGSTOP)

    def kill9(self):
        self.run.log("kill -9 node %d (pid %d)" % (self.node_id, self.proc.pid))
        self.proc.kill()
        self.proc.wait()
        self.killed = True

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM; True when it exited 0 within 30 s."""
        if not self.alive():
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.run.failures.append("node %d did not stop within 30 s of SIGTERM" % self.node_id)
            return False
        if rc != 0:
            self.run.failures.append("node %d exited with %d after SIGTERM (log %s)" % (self.node_id, rc,
                                                                                           self.logs[-1]))
            return False
        return True

    def sanitizer_reports(self):
        found = []
        for path in self.logs:
            with open(path, errors="replace") as f:
                for line in f:
                    if any(m in line for m in SANITIZER_MARKS):
                        found.append("%s: %s" % (os.path.basename(path), line.strip()))
        return found


# ---- the scenarios: (nodes, how devices reach them, the timeline, a check of the fault itself) ----


def direct(run):
    return [n.addr for n in run.nodes]


def sc_kill_restart(run):
    node = run.nodes[0]
    run.at(5)
    node.freeze()  # first hung (sends pile up unanswered), then killed
    run.at(6.5)
    node.kill9()
    run.at(8)
    node.start()
    run.at(13)
    node.kill9()
    node.start()  # at once: the devices find it back within their backoff


def sc_failover_servers(run):
    n0, n1 = [("127.0.0.1", n.port) for n in run.nodes]
    run.proxies = [Proxy([n0, n1], "lb0"), Proxy([n1, n0], "lb1")]
    return [p.addr for p in run.proxies]


def sc_failover(run):
    run.at(6)
    run.lb1_before = dict(run.proxies[1].by_backend)
    run.nodes[1].kill9()


def sc_failover_check(run):
    n0 = ("127.0.0.1", run.nodes[0].port)
    n1 = ("127.0.0.1", run.nodes[1].port)
    lb1 = run.proxies[1]
    if run.lb1_before.get(n1, 0) == 0:
        return "no device reached node 1 before it was killed"
    if lb1.by_backend.get(n0, 0) <= run.lb1_before.get(n0, 0):
        return "no device of node 1 failed over to node 0"
    run.log("lb1 connections: before the kill %s, at the end %s" % (run.lb1_before, lb1.by_backend))
    return None


def sc_pg_restart(run):
    run.at(5)
    run.stack("pg-stop", "0", "--mode", "immediate")
    run.stack("pg-start", "0")
    run.at(12)
    run.stack("pg-stop", "1", "--mode", "immediate")
    run.stack("pg-start", "1")


def sc_pg_outage(run):
    run.at(5)
    run.stack("pg-stop", "1")
    run.at(15)
    run.stack("pg-start", "1")


def sc_redis_kill(run):
    run.at(5)
    run.redis_kill9()
    run.at(10)
    run.stack("redis-start")


def sc_redis_stall(run):
    run.at(5)
    run.redis_pause(2500)
    # The last pause catches messages between their commit and their notice
    # to the other node, as the sending ends (no later message of the chat
    # would reveal the loss): PostgreSQL holds commits back while the rate
    # checks pass, then Redis pauses, then the commits complete and their
    # route lookups and publishes time out.
    run.at(19.0)
    run.pg_freeze(True)
    run.at(19.8)
    run.redis_pause(2500)
    run.pg_freeze(False)


def sc_net_stall_servers(run):
    n0 = ("127.0.0.1", run.nodes[0].port)
    run.proxies = [Proxy([n0], "net0"), Proxy([n0], "net1")]
    return [p.addr for p in run.proxies]


def sc_net_stall(run):
    a, b = run.proxies
    run.at(4)
    run.log("net1 stalls (both ways)")
    b.stall()
    run.at(12)
    run.log("net1 flows again")
    b.resume()
    run.at(14)
    run.log("net0 stalls (both ways)")
    a.stall()
    run.at(19)
    run.log("net0 drops its connections and flows again")
    a.cut()
    a.resume()


def keepalive_check(run):
    """The stalls must have been noticed by libparley's keepalive."""
    n = 0
    for name in os.listdir(run.out):
        if name.startswith("dev") and name.endswith(".tsv"):
            with open(os.path.join(run.out, name)) as f:
                n += sum(1 for line in f if line.startswith("S\t") and "keepalive" in line)
    if n == 0:
        return "no device noticed a stall through its keepalive"
    run.log("%d keepalive disconnects" % n)
    return None


SCENARIOS = {
    # name: (nodes, servers(run) -> addresses, timeline, check, driver flags)
    "kill_restart": (1, direct, sc_kill_restart, None, ["--duration", "20"]),
    "failover": (2, sc_failover_servers, sc_failover, sc_failover_check, ["--duration", "20"]),
    "pg_restart": (1, direct, sc_pg_restart, None, ["--duration", "20"]),
    "pg_outage": (1, direct, sc_pg_outage, None, ["--duration", "22"]),
    "redis_kill": (2, direct, sc_redis_kill, None, ["--duration", "20"]),
    "redis_stall": (2, direct, sc_redis_stall, None, ["--duration", "20", "--rate", "20"]),
    "net_stall": (1, sc_net_stall_servers, sc_net_stall, keepalive_check, ["--duration", "24"]),
}


def run_driver(run, servers, flags):
    cmd = [run.args.driver, "--out", run.out] + flags + run.args.driver_flags
    for s in servers:
        cmd += ["--server", s]
    run.log("driver: %s" % " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sending = threading.Event()
    lines = []

    def pump():
        for line in proc.stdout:
            lines.append(line)
            print("driver| " + line, end="", flush=True)
            if line.rstrip().endswith("SENDING"):
                sending.set()
        sending.set()  # it ended: stop waiting

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return proc, sending, t, lines


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parleyd", required=True)
    ap.add_argument("--driver", required=True)
    ap.add_argument("--checker", default=os.path.join(HERE, "checker.py"))
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--parleyd-flag", dest="parleyd_flags", action="append", default=[])
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("driver_flags", nargs="*")
    args = ap.parse_args(argv)
    for var in ("PARLEY_STACK_DIR", "PARLEY_POSTGRES_SERVER"):
        if var not in os.environ:
            print("fault_run: %s is not set: run under tests/harness/with_stack.sh --migrate" % var)
            return 2

    out = args.out or tempfile.mkdtemp(prefix="parley-fault-%s-" % args.scenario)
    os.makedirs(out, exist_ok=True)
    os.environ["PARLEY_SMS_FILE"] = os.path.join(out, "sms.log")
    run = Run(args, out)
    nnodes, servers_of, timeline, check, flags = SCENARIOS[args.scenario]
    rc = 1
    driver = None
    try:
        run.nodes = [Node(run, i) for i in range(nnodes)]
        for n in run.nodes:
            n.start()
        servers = servers_of(run)
        driver, sending, pump, _ = run_driver(run, servers, flags)
        if not sending.wait(180) or driver.poll() is not None:
            run.failures.append("the driver did not start sending")
        else:
            run.t0 = time.monotonic()
            run.log("scenario %s begins" % args.scenario)
            timeline(run)
            run.log("scenario %s: faults done" % args.scenario)
        try:
            drc = driver.wait(timeout=300)
        except subprocess.TimeoutExpired:
            driver.kill()
            drc = driver.wait()
            run.failures.append("the driver did not finish within 300 s")
        pump.join(10)
        if drc != 0:
            run.failures.append("the driver exited with %d%s" % (drc, " (not quiescent)" if drc == 3 else ""))
        if check and run.t0 is not None:
            why = check(run)
            if why:
                run.failures.append("the fault did not happen as planned: " + why)
    except Exception as e:  # a broken scenario is a failed test, with the reason
        run.failures.append("scenario error: %r" % e)
        if driver and driver.poll() is None:
            driver.kill()
            driver.wait()
    finally:
        for p in run.proxies:
            p.close()
        for n in run.nodes:
            n.stop()
        for n in run.nodes:
            for rep in n.sanitizer_reports():
                run.failures.append("node %d sanitizer report: %s" % (n.node_id, rep))

    if os.path.exists(os.path.join(out, "setup.tsv")):
        r = subprocess.run([sys.executable, args.checker, out])
        if r.returncode != 0:
            run.failures.append("the checker failed (exit %d)" % r.returncode)
    else:
        run.failures.append("no records to check (the driver's setup failed)")

    if run.failures:
        print("fault_run: %s FAILED:" % args.scenario)
        for f in run.failures:
            print("  - " + f)
        print("fault_run: records and node logs kept in %s" % out)
    else:
        print("fault_run: %s passed" % args.scenario)
        rc = 0
        if not args.keep and not args.out:
            shutil.rmtree(out, ignore_errors=True)
        else:
            print("fault_run: records in %s" % out)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
