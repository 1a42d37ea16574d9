#!/usr/bin/python3
"""walkthrough.py — follows the README as a reader would, on a fresh clone,
so that its instructions cannot drift from what the code does.

  walkthrough.py SOURCE_DIR

Clones SOURCE_DIR (its HEAD: uncommitted changes are not part of the test)
into a temp directory and there:
  - runs `tools/run --port P` on a free port P other than 7443, checks that
    it announces 127.0.0.1:P first, that a second `tools/run --port P`
    refuses at once with advice, and that the databases it started hold
    none of the caller's descriptors (a lock file it had open);
  - runs every command of the README's walk-through (the indented code
    blocks between the `<!-- walkthrough` markers) as written, in one bash
    with -euo pipefail, changing only ADDR to 127.0.0.1:P; no command may
    name 7443 itself. Each step's answers are checked: tokens and ids,
    the chat, accepted and ready for the sender, the message and ready for
    the receiver, and that the sample answers in the README show the kinds
    of events the real ones have, and only keys they have;
  - runs the two parley-chat commands of "Try it" with --server 127.0.0.1:P
    and checks that the credentials land in the stack's .parley/chat/;
  - stops everything and deletes the clone, whatever happened.
The clone's tools/run builds what it needs: a minute or two on two cores,
well under one when ccache is installed and has seen the sources before.
Set PARLEY_WALKTHROUGH_KEEP=1 to keep the clone for a look afterwards.
"""
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

DEFAULT_ADDR = "127.0.0.1:7443"
START_TIMEOUT = 600  # tools/run: build, databases, migrations
STEP_TIMEOUT = 120
TOTAL_TIMEOUT = 840  # then clean up and fail, before ctest's TIMEOUT (900) kills us without cleaning up


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def log(msg):
    print("walkthrough: " + msg, flush=True)


def on_signal(sig, frame):
    if sig == signal.SIGALRM:
        raise Failure("not done within %d s" % TOTAL_TIMEOUT)
    raise Failure("interrupted by signal %d" % sig)


# ---- the README ----


def code_blocks(lines):
    """The indented code blocks among lines, each de-indented, in order."""
    blocks, cur, prev_blank = [], None, True
    for line in lines:
        if cur is not None:
            if line.startswith("    ") or not line.strip():
                cur.append(line[4:])
                continue
            while cur and not cur[-1].strip():
                cur.pop()
            blocks.append("\n".join(cur))
            cur = None
        if line.startswith("    ") and prev_blank:
            cur = [line[4:]]
        prev_blank = not line.strip()
    if cur:
        while cur and not cur[-1].strip():
            cur.pop()
        blocks.append("\n".join(cur))
    return blocks


def walkthrough_blocks(readme):
    lines = readme.split("\n")
    begin = [i for i, l in enumerate(lines) if l.startswith("<!-- walkthrough") and not l.startswith("<!-- walkthrough: end")]
    end = [i for i, l in enumerate(lines) if l.startswith("<!-- walkthrough: end")]
    check(len(begin) == 1 and len(end) == 1 and begin[0] < end[0],
          "README.md: expected one '<!-- walkthrough' marker and one '<!-- walkthrough: end -->' after it")
    return code_blocks(lines[begin[0] + 1:end[0]])


def section(readme, heading):
    lines = readme.split("\n")
    start = lines.index(heading)
    stop = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start + 1:stop]


def commands_of(block):
    return [l for l in block.split("\n") if l.strip() and not l.lstrip().startswith("#")]


def sample_of(block):
    """The block's sample answer: its comment lines, '# ' removed."""
    return "\n".join(l.lstrip()[2:] for l in block.split("\n") if l.lstrip().startswith("# "))


# ---- answers ----


def json_values(text):
    """Every JSON value in text (pretty objects and one-per-line events)."""
    dec, out, i = json.JSONDecoder(), [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return out
        try:
            v, j = dec.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        out.append(v)
        i = j


def kind(event):
    return next((k for k in event if k != "requestId"), None)


def keys_of(text):
    return set(re.findall(r'"([A-Za-z]+)"\s*:', text))


def check_sample_keys(block, output, what):
    """The README's sample answer names only keys the real answer has."""
    missing = keys_of(sample_of(block)) - keys_of(output)
    check(not missing, "%s: the README's sample shows %s, the real answer has not:\n%s" %
          (what, sorted(missing), output))


def check_sample_events(block, events, what):
    """The real events are of the kinds the README's sample shows, all of
    them, each with at least the sample's keys for it."""
    sample = {}
    for line in sample_of(block).split("\n"):
        for v in json_values(line):
            sample.setdefault(kind(v), set()).update(keys_of(line))
    absent = set(sample) - {kind(e) for e in events}
    check(not absent, "%s: the README's sample shows %s, the real answer has none: %s" %
          (what, sorted(absent), events))
    for ev in events:
        k = kind(ev)
        check(k in sample, "%s: a '%s' event the README's sample does not show: %s" % (what, k, ev))
        real = keys_of(json.dumps(ev))
        check(sample[k] <= real, "%s: the README's sample '%s' shows %s, the real one has not: %s" %
              (what, k, sorted(sample[k] - real), ev))


# ---- processes ----


def cmdline(pid):
    """pid's command line, or None once it has exited (zombies included)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except (OSError, IndexError):
        return None


def stack_pids(stack_dir):
    """PostgreSQL postmasters and Redis of the stack in stack_dir, as
    {pid: command line}."""
    pids = []
    try:
        ports = dict(l.split("=", 1) for l in open(os.path.join(stack_dir, "ports")).read().split())
    except OSError:
        return pids
    base = ports.get("pgbase") or stack_dir
    for i in range(int(ports.get("pg_servers", "0"))):
        try:
            pids.append(int(open(os.path.join(base, "pg%d" % i, "postmaster.pid")).readline()))
        except (OSError, ValueError):
            pass
    try:
        pids.append(int(open(os.path.join(stack_dir, "redis", "redis.pid")).read()))
    except (OSError, ValueError):
        pass
    return {pid: cmdline(pid) for pid in pids if cmdline(pid)}


def holders(pids, path):
    """Those of pids that have path open."""
    out = []
    for pid in pids:
        d = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(d)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(d, fd)) == path:
                    out.append((pid, int(fd)))
            except OSError:
                pass
    return out


def wait_for_listen(proc, logpath, port, deadline):
    want = re.compile(r"^parleyd: node \d+ listening on 127\.0\.0\.1:%d " % port, re.M)
    while time.time() < deadline:
        text = open(logpath, errors="replace").read()
        if want.search(text):
            return text
        if proc.poll() is not None:
            raise Failure("tools/run ended (status %s) before parleyd listened:\n%s" % (proc.returncode, text))
        time.sleep(0.5)
    raise Failure("parleyd did not listen on port %d within %d s:\n%s" %
                  (port, START_TIMEOUT, open(logpath, errors="replace").read()))


# ---- the test ----


def run_walkthrough(clone, readme, addr, tmp):
    blocks = walkthrough_blocks(readme)
    check(blocks, "README.md: no code blocks between the walkthrough markers")
    setup = blocks[0].split("\n")
    check(setup.count("ADDR=" + DEFAULT_ADDR) == 1,
          "README.md: the walk-through's first block must set ADDR=%s (once)" % DEFAULT_ADDR)
    for b in blocks:
        for c in commands_of(b):
            check(c == "ADDR=" + DEFAULT_ADDR or "7443" not in c,
                  "README.md: a walk-through command names 7443 instead of using $ADDR: " + c)
    blocks[0] = "\n".join("ADDR=" + addr if l == "ADDR=" + DEFAULT_ADDR else l for l in setup)

    def block_with(*words):
        found = [i for i, b in enumerate(blocks) if all(w in "\n".join(commands_of(b)) for w in words)]
        check(len(found) == 1, "README.md: expected one walk-through block with %s, found %d" % (words, len(found)))
        return found[0]

    # step 5 says: run it again, and the message comes again
    bob_connect = block_with("Messaging/Connect", "BOB_TOKEN")
    script = ["set -euo pipefail"]
    run_blocks = blocks + [blocks[bob_connect]]
    for i, b in enumerate(run_blocks):
        script += ["echo '@@block %d'" % i, b]
    path = os.path.join(tmp, "walkthrough.sh")
    with open(path, "w") as f:
        f.write("\n".join(script) + "\n")
    log("running the walk-through's %d blocks (%d commands) against %s" %
        (len(blocks), sum(len(commands_of(b)) for b in blocks), addr))
    r = subprocess.run(["bash", path], cwd=clone, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=STEP_TIMEOUT)
    parts = re.split(r"^@@block (\d+)\n", r.stdout, flags=re.M)
    outputs = {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    if r.returncode != 0:
        last = max(outputs) if outputs else 0
        raise Failure("the walk-through failed (status %d) in this block:\n%s\n-- its output:\n%s\n-- stderr:\n%s" %
                      (r.returncode, run_blocks[last], outputs.get(last, ""), r.stderr))
    check(len(outputs) == len(run_blocks), "not every block ran:\n" + r.stdout)

    def read_json(name):
        with open(os.path.join(clone, name)) as f:
            return json.load(f)

    # 1. Register: Alice's answer shown and kept, Bob's kept
    i = block_with("Accounts/Verify", "+15550001111")
    check_sample_keys(blocks[i], outputs[i], "step 1 (Alice)")
    alice = [v for v in json_values(outputs[i]) if "token" in v]
    check(len(alice) == 1 and alice[0].get("accountId") and alice[0].get("deviceId"),
          "step 1: no account, device and token in Verify's answer:\n" + outputs[i])
    alice = alice[0]
    bob = read_json(".parley/bob.json")
    check(bob.get("token") and bob.get("accountId") and bob["accountId"] != alice["accountId"],
          "step 1: Bob's answer (.parley/bob.json) is not a second account: %s" % bob)
    log("step 1: Alice is account %s, Bob %s" % (alice["accountId"], bob["accountId"]))

    # 2. Open a chat: a direct chat of the two
    i = block_with("Chats/OpenDirectChat")
    check_sample_keys(blocks[i], outputs[i], "step 2")
    chat = read_json(".parley/chat.json")
    members = {m.get("accountId") for m in chat.get("members", [])}
    check(chat.get("chatId") and chat.get("kind") == "CHAT_KIND_DIRECT" and
          members == {alice["accountId"], bob["accountId"]},
          "step 2: not a direct chat of Alice and Bob:\n" + outputs[i])
    chat_id = chat["chatId"]
    log("step 2: chat %s" % chat_id)

    # 3. Connect and send: accepted, the stream caught up to ready, no errors
    i = block_with("Messaging/Connect", '"send"')
    events = json_values(outputs[i])
    check_sample_events(blocks[i], events, "step 3")
    accepted = [e["accepted"] for e in events if kind(e) == "accepted"]
    check(len(accepted) == 1 and accepted[0].get("chatId") == chat_id and accepted[0].get("seq"),
          "step 3: the send was not accepted in the chat:\n" + outputs[i])
    check(any(kind(e) == "ready" for e in events), "step 3: no ready:\n" + outputs[i])
    seq = accepted[0]["seq"]
    log("step 3: events %s" % " ".join(kind(e) for e in events))

    # 5. Receive: Bob gets the message he missed, then ready; again the
    # second time, since he did not acknowledge it
    for i, what in ((bob_connect, "step 5"), (len(blocks), "step 5, run again")):
        events = json_values(outputs[i])
        check_sample_events(blocks[bob_connect], events, what)
        msgs = [e["message"] for e in events if kind(e) == "message"]
        check(any(m.get("chatId") == chat_id and m.get("seq") == seq and
                  m.get("senderAccountId") == alice["accountId"] and m.get("payload") for m in msgs),
              "%s: Bob did not get Alice's message (chat %s, seq %s):\n%s" % (what, chat_id, seq, outputs[i]))
        check(events and kind(events[-1]) == "ready", "%s: the stream did not end with ready:\n%s" %
              (what, outputs[i]))
        log("%s: events %s" % (what, " ".join(kind(e) for e in events)))


def run_chat(clone, readme, addr, tmp, port):
    """The two parley-chat commands of "Try it", with --server as the README says."""
    cmds = [c for b in code_blocks(section(readme, "## Try it: chat in two terminals")) for c in commands_of(b)]
    cmds = [c for c in cmds if "parley-chat" in c]
    check(len(cmds) == 2, "README.md: expected two parley-chat commands in \"Try it\", found %d" % len(cmds))
    home = os.path.join(tmp, "home")  # the state must not go under $HOME
    os.mkdir(home)
    env = dict(os.environ, HOME=home)
    for cmd, text in ((cmds[0], ""), (cmds[1], "hello from the walk-through test\n")):
        argv = shlex.split(cmd) + ["--server", addr]
        r = subprocess.run(argv, cwd=clone, input=text, capture_output=True, text=True, env=env,
                           timeout=STEP_TIMEOUT)
        check(r.returncode == 0, "%s: status %d\n%s%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr))
        phone = argv[argv.index("--phone") + 1]
        where = ".parley/chat/" + phone
        check("kept in " + where in r.stdout, "parley-chat did not say it keeps %s's credentials in %s:\n%s" %
              (phone, where, r.stdout))
        device = os.path.join(clone, where, "device")
        check(os.path.exists(device) and (os.stat(device).st_mode & 0o777) == 0o600,
              "%s: missing or not mode 0600" % device)
        check("server=%s\n" % addr in open(device).read(), "%s is not for %s" % (device, addr))
    check(not os.path.exists(os.path.join(home, ".parley-chat")), "parley-chat wrote under $HOME")
    # a second run reuses the saved device
    r = subprocess.run(shlex.split(cmds[0]) + ["--server", addr], cwd=clone, input="", capture_output=True,
                       text=True, env=env, timeout=STEP_TIMEOUT)
    check(r.returncode == 0 and "Registering" not in r.stdout,
          "parley-chat registered again instead of reusing .parley/chat/:\n" + r.stdout + r.stderr)
    log("parley-chat: credentials in .parley/chat/, reused on the next run")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source = os.path.abspath(sys.argv[1])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, on_signal)
    signal.alarm(TOTAL_TIMEOUT)
    started = time.time()
    tmp = tempfile.mkdtemp(prefix="parley-walkthrough.")
    os.chmod(tmp, 0o755)  # as root, PostgreSQL (user postgres) keeps its data in the clone
    clone = os.path.join(tmp, "parley")
    stack_dir = os.path.join(clone, ".parley")
    run = None
    seen_pids = {}
    status = 1
    try:
        subprocess.run(["git", "clone", "--quiet", source, clone], check=True, timeout=120)
        port = int(subprocess.run([sys.executable, "tools/free-port"], cwd=clone, capture_output=True, text=True,
                                  check=True).stdout)
        check(port != 7443, "free-port gave 7443")
        addr = "127.0.0.1:%d" % port
        readme = open(os.path.join(clone, "README.md")).read()
        # The build is most of the test's time: a compiler cache, if there is
        # one, makes the next run's nearly free. Paths relative to the temp
        # directory, so that every run's fresh clone hits the same entries.
        cache_env = {}
        if shutil.which("ccache") and not os.environ.get("CMAKE_C_COMPILER_LAUNCHER"):
            cache_env = {"CMAKE_C_COMPILER_LAUNCHER": "ccache", "CCACHE_BASEDIR": tmp, "CCACHE_NOHASHDIR": "true"}

        r = subprocess.run(["tools/run", "--help"], cwd=clone, capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and r.stdout.startswith("tools/run") and "set -euo" not in r.stdout,
              "tools/run --help:\n" + r.stdout + r.stderr)

        # tools/run with a lock file open: the databases must not keep it
        lock_path = os.path.join(tmp, "caller.lock")
        lock = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        run_log = os.path.join(tmp, "run.log")
        log("tools/run --port %d in %s (it builds first%s)" % (port, clone, ", through ccache" if cache_env else ""))
        with open(run_log, "w") as out:
            run = subprocess.Popen(["tools/run", "--port", str(port)], cwd=clone, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, pass_fds=(lock,), start_new_session=True,
                                   env=dict(os.environ, **cache_env))
        os.close(lock)
        text = wait_for_listen(run, run_log, port, time.time() + START_TIMEOUT)
        log("parleyd listening after %.0f s" % (time.time() - started))
        first = text.split("\n", 1)[0]
        check(first == "run: parleyd on %s (h2c)" % addr, "tools/run's first line: " + first)
        seen_pids = stack_pids(stack_dir)
        check(len(seen_pids) == 3, "expected two PostgreSQL servers and Redis in %s, found pids %s" %
              (stack_dir, list(seen_pids)))
        # parleyd, which tools/run became, has it (the probe works); the
        # databases, which outlive tools/run, must not
        check(holders([run.pid], lock_path), "parleyd (pid %d) does not hold the lock file" % run.pid)
        held = holders(seen_pids, lock_path)
        check(not held, "the stack's daemons hold the caller's lock file (pid, fd): %s" % held)

        # the port is taken now: a second tools/run refuses at once, with advice
        t0 = time.time()
        r = subprocess.run(["tools/run", "--port", str(port)], cwd=clone, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        check(r.returncode != 0 and "cannot listen on %s" % addr in r.stderr and "tools/run --port" in r.stderr
              and time.time() - t0 < 10,
              "a second tools/run on %s: status %d in %.1f s\n%s%s" % (addr, r.returncode, time.time() - t0,
                                                                      r.stdout, r.stderr))

        run_walkthrough(clone, readme, addr, tmp)
        run_chat(clone, readme, addr, tmp, port)
        status = 0
    except Failure as e:
        print("walkthrough: FAILED: %s" % e, file=sys.stderr)
        if run is not None and os.path.exists(os.path.join(tmp, "run.log")):
            print("-- tools/run's output (the end):\n" + open(os.path.join(tmp, "run.log")).read()[-3000:],
                  file=sys.stderr)
    except subprocess.SubprocessError as e:
        print("walkthrough: FAILED: %s" % e, file=sys.stderr)
    finally:
        signal.alarm(0)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        if not cleanup(run, clone, stack_dir, seen_pids):
            status = 1
        if os.environ.get("PARLEY_WALKTHROUGH_KEEP"):
            print("walkthrough: kept " + tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        log("%s in %.0f s, cleaned up" % ("passed" if status == 0 else "failed", time.time() - started))
    return status


def cleanup(run, clone, stack_dir, seen_pids):
    """parleyd drained (Ctrl-C), then tools/run --stop, then the stack's data.
    False when a database outlived tools/run --stop (it is killed then)."""
    if run is not None:
        # parleyd (tools/run execs it) or, if it had not got that far, the
        # build: tools/run leads its own process group
        try:
            os.killpg(run.pid, signal.SIGINT)
            run.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(run.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        run.wait()
    t0 = time.time()
    pids = seen_pids or stack_pids(stack_dir)
    if os.path.exists(os.path.join(clone, "tools", "run")):
        # the data is deleted next: PostgreSQL need not write its shutdown
        # checkpoint (half a minute when others load the disk)
        for i in range(2):
            subprocess.run(["tools/stack", "pg-stop", str(i), "--mode", "immediate", "--dir", stack_dir], cwd=clone,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        subprocess.run(["tools/run", "--stop"], cwd=clone, stdout=subprocess.DEVNULL, timeout=120)
        subprocess.run(["tools/stack", "reset", "--dir", stack_dir], cwd=clone, stdout=subprocess.DEVNULL,
                       timeout=120)
    # pg_ctl stop returns once the pid file is gone, a moment before the
    # process: give them that moment
    deadline = time.time() + 10
    while time.time() < deadline and any(cmdline(p) == c for p, c in pids.items()):
        time.sleep(0.1)
    log("stopped in %.1f s" % (time.time() - t0))
    ok = True
    for pid, line in pids.items():
        if cmdline(pid) == line:  # the same process, not a new one with its pid
            print("walkthrough: %s (pid %d) outlived tools/run --stop: killing it" %
                  (line.replace(b"\0", b" ").decode(errors="replace"), pid), file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
            ok = False
    return ok


if __name__ == "__main__":
    sys.exit(main())
