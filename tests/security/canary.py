#!/usr/bin/python3
"""Canary: message payloads (ciphertext to the server) are stored in the
messages table exactly as sent and appear nowhere else.

Starts its own parleyd node(s) (stdout and stderr to files, PARLEY_LOG=debug
so that every log line the server can write is written) inside the stack
tests/harness/with_stack.sh started and migrated, and a Redis MONITOR
capture (redis-cli MONITOR) before the first call. Then, through the normal
path, messages whose payloads carry a random marker "CANARY-<hex>": stream
and unary Send, one payload for all and one per device, in a direct chat and
in a group, with devices spread over the nodes (--nodes 2: every message
also crosses nodes). Every recipient device must get exactly its own
payload, live and in GetHistory, and never another device's. Refused sends
(per-device payloads with a missing or a stale device, an unknown chat, an
oversized payload) carry a second marker that must appear nowhere at all,
not even in the messages table.

Then the marker (raw, hex, base64 at every alignment) must not be in:
  - parleyd's stdout and stderr (every node);
  - Redis: every key (redis-cli --scan; each key's DUMP and its value read
    by type: GET, HGETALL, SMEMBERS, LRANGE, ZRANGE, XRANGE), SLOWLOG, and
    the MONITOR capture of every command during the test — which includes
    the PUBLISH traffic between nodes;
  - PostgreSQL, on every server: pg_dump of the whole database (every
    shard schema and the metadata schema) without the messages tables'
    data, plus every shard's messages table without its payload and
    device_payloads columns; and the PostgreSQL and Redis server logs in
    the stack directory;
  - any API response other than the recipient's own Message (ListChats,
    GetChat, a device's GetHistory never carries another device's payload).
The payload and device_payloads columns are bytea and hold each message
exactly as sent (device_payloads: the encoded DevicePayload list), once.

The bearer tokens are checked the same way (the server keeps only hashes):
every device's token, a forged one (a real token with one byte changed)
and a revoked one, both refused, must not be in the logs, Redis or
PostgreSQL either.

There is no media store yet (encrypted media has no server side
in this tree), so there is nothing there to check; when one exists its blobs
and metadata belong in this test.

  canary.py --parleyd BIN [--nodes N]   (under with_stack.sh --migrate)
"""
import base64
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time

import secutil as su
from secutil import SC, chats, messaging

READY = re.compile(rb"listening on \S+:(\d+)")


# ---------------------------------------------------------------- what to look for

def needles(marker):
    """The marker as raw bytes, hex (both cases) and base64/base64url at each alignment."""
    out = {"raw": marker, "hex": marker.hex().encode(), "HEX": marker.hex().upper().encode()}
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + marker)
        core = enc[(8 * k + 5) // 6:].rstrip(b"=")[:-2]
        out["base64@%d" % k] = core
        out["base64url@%d" % k] = core.replace(b"+", b"-").replace(b"/", b"_")
    return out


def find(blob, marks):
    """Names of the needles found in blob."""
    return sorted(name for name, n in marks.items() if n and n in blob)


# ---------------------------------------------------------------- parleyd

class Node:
    def __init__(self, parleyd, node, tmp, env, extra):
        self.out_path = os.path.join(tmp, "node%d.out" % node)
        self.err_path = os.path.join(tmp, "node%d.err" % node)
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        cmd = [parleyd, "--port=0", "--node-id=%d" % node, "--workers=2"] + extra
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, env=env)
        self.addr = None
        end = time.time() + 30
        while time.time() < end and self.proc.poll() is None:
            with open(self.out_path, "rb") as f:
                m = READY.search(f.read())
            if m:
                self.addr = "127.0.0.1:%s" % m.group(1).decode()
                return
            time.sleep(0.05)
        raise su.Failure("parleyd node %d did not start:\n%s" % (node, open(self.err_path, "rb").read().decode(
            errors="replace")[-3000:]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "hung (killed)"
        self.out.close()
        self.err.close()
        return rc

    def logs(self):
        data = b""
        for p in (self.out_path, self.err_path):
            with open(p, "rb") as f:
                data += f.read()
        return data


# ---------------------------------------------------------------- Redis

class Resp:
    """A minimal binary-safe Redis client (RESP2) for reading values."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=10)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(parts))
        return self.read()

    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t in (b"+", b":"):
            return rest
        if t == b"-":
            return b"ERR " + rest
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise su.Failure("bad RESP reply %r" % line)


def flatten(v):
    if v is None:
        return b""
    if isinstance(v, list):
        return b"\n".join(flatten(x) for x in v)
    return v


class Monitor:
    """redis-cli MONITOR into a file, from before the first call to the end."""

    def __init__(self, host, port, path):
        self.path = path
        self.f = open(path, "wb")
        self.proc = subprocess.Popen(["redis-cli", "-h", host, "-p", str(port), "MONITOR"], stdout=self.f,
                                     stderr=subprocess.STDOUT)
        end = time.time() + 10
        while time.time() < end and os.path.getsize(path) == 0:  # "OK" once monitoring
            time.sleep(0.05)

    def stop(self):
        time.sleep(0.5)
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.f.close()
        with open(self.path, "rb") as f:
            return f.read()


def redis_contents(host, port):
    """Every key's DUMP and value, SLOWLOG and the pub/sub channels: (bytes, key count)."""
    keys = subprocess.run(["redis-cli", "-h", host, "-p", str(port), "--scan"], check=True,
                          capture_output=True).stdout.split(b"\n")
    keys = [k for k in keys if k]
    r = Resp(host, port)
    blob = []
    for k in keys:
        t = r.cmd("TYPE", k)
        blob += [k, flatten(r.cmd("DUMP", k))]
        if t == b"string":
            blob.append(flatten(r.cmd("GET", k)))
        elif t == b"hash":
            blob.append(flatten(r.cmd("HGETALL", k)))
        elif t == b"set":
            blob.append(flatten(r.cmd("SMEMBERS", k)))
        elif t == b"list":
            blob.append(flatten(r.cmd("LRANGE", k, 0, -1)))
        elif t == b"zset":
            blob.append(flatten(r.cmd("ZRANGE", k, 0, -1, "WITHSCORES")))
        elif t == b"stream":
            blob.append(flatten(r.cmd("XRANGE", k, "-", "+")))
    blob.append(flatten(r.cmd("SLOWLOG", "GET", 1000)))
    blob.append(flatten(r.cmd("PUBSUB", "CHANNELS")))
    return b"\n".join(blob), len(keys)


# ---------------------------------------------------------------- PostgreSQL

def psql(conninfo, sql):
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                          check=True, capture_output=True).stdout


def message_schemas(conninfo):
    out = psql(conninfo, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'messages' "
                         "ORDER BY 1")
    return [s for s in out.decode().split("\n") if s]


def decode_device_payloads(raw):
    """The packed parley.internal.v1.DevicePayloads (repeated DevicePayload items = 1) as {device: payload}."""
    out, i = {}, 0

    def varint():
        nonlocal i
        v, shift = 0, 0
        while True:
            b = raw[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v
    while i < len(raw):
        tag = varint()
        if tag != (1 << 3 | 2):
            raise ValueError("unexpected field %d" % tag)
        n = varint()
        dp = messaging.DevicePayload.FromString(raw[i:i + n])
        i += n
        out[dp.device_id] = dp.payload
    return out


# ---------------------------------------------------------------- the test

def body(ck, parleyd, nodes, tmp):
    marker = ("CANARY-" + secrets.token_hex(16)).encode()
    refused_marker = ("REFUSED-" + secrets.token_hex(16)).encode()
    marks, rmarks = needles(marker), needles(refused_marker)
    print("markers:", marker.decode(), refused_marker.decode(), flush=True)
    servers = [s for s in os.environ["PARLEY_POSTGRES_SERVER"].split(";") if s.strip()]
    rhost, rport = os.environ["PARLEY_REDIS_HOST"], int(os.environ["PARLEY_REDIS_PORT"])

    env = dict(os.environ)
    env["PARLEY_SMS_FILE"] = os.environ["PARLEY_SMS_FILE"] = os.path.join(tmp, "sms.log")
    env["PARLEY_LOG"] = "debug"
    ctx = {}
    monitor = Monitor(rhost, rport, os.path.join(tmp, "monitor.txt"))
    started = []
    try:
        for n in range(nodes):
            started.append(Node(parleyd, n, tmp, env, ["--rate.codes_per_address_per_hour=1000"]))
        where = [nd.addr for nd in started]
        at = lambda i: where[i % len(where)]  # noqa: E731
        run_sends(ck, at, marker, refused_marker, ctx)
        ck.step("Redis: every key and value while the nodes run")
        rblob, nkeys = redis_contents(rhost, rport)
        ck.check(nkeys > 0 and b"parley:" in rblob, "Redis holds no parley keys: the key check cannot fail")
    finally:
        rcs = [nd.stop() for nd in started]
        mon = monitor.stop()

    ck.step("parleyd exited cleanly, no sanitizer reports")
    for i, (nd, rc) in enumerate(zip(started, rcs)):
        err = open(nd.err_path, "rb").read()
        ck.check(rc == 0, "node %d exit status %s" % (i, rc))
        ck.check(b"ERROR: AddressSanitizer" not in err and b"runtime error:" not in err
                 and b"LeakSanitizer" not in err, "node %d sanitizer report:\n%s" % (i, err[-4000:].decode(
                     errors="replace")))

    tokens = {("token of %s" % c.name): c.token.encode() for c in ctx["clients"]}
    tokens.update({name: t.encode() for name, t in ctx.get("bad_tokens", {}).items()})
    secrets_hex = {("token secret (hex) of %s" % c.name): su.token_parts(c.token)[1].hex().encode()
                   for c in ctx["clients"]}

    def no_leak(blob, where, also_refused=True, also_tokens=True):
        hits = find(blob, marks)
        ck.check(not hits, "the payload marker is in %s (%s)" % (where, ", ".join(hits)))
        if also_refused:
            hits = find(blob, rmarks)
            ck.check(not hits, "a refused payload's marker is in %s (%s)" % (where, ", ".join(hits)))
        if also_tokens:
            hits = [name for name, t in list(tokens.items()) + list(secrets_hex.items()) if t in blob]
            ck.check(not hits, "%s: %s" % (where, ", ".join(hits)))

    ck.step("parleyd logs")
    for i, nd in enumerate(started):
        logs = nd.logs()
        ck.check(b"listening on" in logs, "node %d's log capture is empty" % i)
        no_leak(logs, "node %d's stdout/stderr" % i)

    ck.step("Redis: keys, values, SLOWLOG, MONITOR")
    no_leak(rblob, "Redis keys/values/SLOWLOG")
    ck.check(b"parley:" in mon and len(mon.split(b"\n")) > 50,
             "the MONITOR capture is empty or partial (%d bytes): the check cannot fail" % len(mon))
    hits = find(mon, marks)
    cmds = sorted({m.group(1).decode().upper() for line in mon.split(b"\n") if marker in line
                   for m in [re.search(rb'\] "(\w+)"', line)] if m})
    ck.check(not hits, "the payload marker passed through Redis (MONITOR: %s; in commands: %s)" % (
        ", ".join(hits), ", ".join(cmds)))
    hits = find(mon, rmarks)
    ck.check(not hits, "a refused payload's marker passed through Redis (%s)" % ", ".join(hits))
    hits = [name for name, t in list(tokens.items()) + list(secrets_hex.items()) if t in mon]
    ck.check(not hits, "the Redis MONITOR capture: %s" % ", ".join(hits))

    ck.step("PostgreSQL: everything but the payload columns, and the server logs")
    for i, conninfo in enumerate(servers):
        dump = subprocess.run(["pg_dump", "--no-owner", "--exclude-table-data=*.messages", "-d", conninfo],
                              check=True, capture_output=True).stdout
        ck.check(b"CREATE TABLE" in dump and b"COPY " in dump, "pg_dump of server %d is empty" % i)
        no_leak(dump, "pg_dump of server %d (messages data excluded)" % i)
        for schema in message_schemas(conninfo):
            cols = psql(conninfo, "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) "
                                  "FROM information_schema.columns WHERE table_schema = '%s' AND table_name = "
                                  "'messages' AND column_name NOT IN ('payload', 'device_payloads')" % schema)
            cols = cols.decode().strip()
            data = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c",
                                   "COPY (SELECT %s FROM %s.messages) TO STDOUT" % (cols, schema)],
                                  check=True, capture_output=True).stdout
            no_leak(data, "%s.messages (other columns) on server %d" % (schema, i))
            types = psql(conninfo, "SELECT column_name || ':' || data_type FROM information_schema.columns "
                                   "WHERE table_schema = '%s' AND table_name = 'messages' AND column_name IN "
                                   "('payload', 'device_payloads') ORDER BY 1" % schema).decode().split()
            ck.check(types == ["device_payloads:bytea", "payload:bytea"], "%s.messages payload types: %s" % (
                schema, types))
            refused = psql(conninfo, "SELECT count(*) FROM %s.messages WHERE position('\\x%s'::bytea IN "
                                     "coalesce(payload, '') || coalesce(device_payloads, '')) > 0" % (
                                         schema, refused_marker.hex())).strip()
            ck.check(refused == b"0", "%s refused payloads stored in %s.messages" % (refused.decode(), schema))
    stack = os.environ.get("PARLEY_STACK_DIR", "")
    logs = []
    for root, _, files in os.walk(stack):
        for f in files:
            if f.endswith(".log") or f.startswith("postgresql-"):
                logs.append(os.path.join(root, f))
    ck.check(logs, "no PostgreSQL/Redis server logs under %s" % stack)
    for p in logs:
        with open(p, "rb") as f:
            no_leak(f.read(), "server log %s" % os.path.relpath(p, stack))

    ck.step("PostgreSQL: each message stored once, exactly as sent, as bytea")
    found = {}
    for i, conninfo in enumerate(servers):
        for schema in message_schemas(conninfo):
            rows = psql(conninfo, "SELECT chat_id, seq, coalesce(encode(payload, 'hex'), '-'), "
                                  "coalesce(encode(device_payloads, 'hex'), '-') FROM %s.messages WHERE "
                                  "position('\\x%s'::bytea IN coalesce(payload, '') || "
                                  "coalesce(device_payloads, '')) > 0" % (schema, marker.hex()))
            for line in rows.decode().split("\n"):
                if not line:
                    continue
                chat, seq, p, dp = line.split("|")
                found.setdefault((int(chat), int(seq)), []).append((schema, i, p, dp))
    sent = ctx["sent"]
    ck.check(set(found) == set(sent), "rows holding the marker %s != messages sent %s" % (
        sorted(found), sorted(sent)))
    for key, (payload, dps) in sorted(sent.items()):
        rows = found.get(key, [])
        if not ck.check(len(rows) == 1, "message %s is stored %d times" % (key, len(rows))):
            continue
        _, _, p, dp = rows[0]
        if dps is None:
            ck.check(p == payload.hex() and dp == "-", "message %s stored as payload=%s… device_payloads=%s…, "
                     "sent %s…" % (key, p[:40], dp[:40], payload.hex()[:40]))
        else:
            got = decode_device_payloads(bytes.fromhex(dp)) if dp != "-" else None
            ck.check(p in ("-", "") and got == dps, "message %s per-device payloads stored as %s, sent %s" % (
                key, got, dps))


def run_sends(ck, at, marker, refused_marker, ctx):
    ck.step("register A (two devices), B and C; devices spread over the nodes")
    a1 = su.new_client(at(0), "A1")
    a2 = su.second_device(at(1), a1, "A2")
    b = su.new_client(at(1), "B")
    c = su.new_client(at(0), "C")
    clients = [a1, a2, b, c]
    ctx["clients"] = clients
    direct = a1.rpc("Chats", "OpenDirectChat", chats.OpenDirectChatRequest(account_id=b.account_id)).chat_id
    group = a1.rpc("Chats", "CreateGroup", chats.CreateGroupRequest(
        name="canary group", member_ids=[b.account_id, c.account_id])).chat_id
    members = {direct: [a1, a2, b], group: [a1, a2, b, c]}
    streams = {cl.device_id: cl.connect() for cl in clients}
    for s in streams.values():
        s.wait_ready()

    def payload(label):
        return secrets.token_bytes(5) + b"\x00" + marker + b"|" + label.encode() + b"\xff\x00"

    sent = {}  # (chat, seq) -> (payload, None) or (None, {device: payload})
    ck.step("send: stream and unary, one payload and per-device payloads, direct chat and group")
    plan = [
        ("d-stream-one", direct, a1, "stream", False),
        ("d-unary-one", direct, b, "unary", False),
        ("d-stream-dev", direct, a1, "stream", True),
        ("d-unary-dev", direct, b, "unary", True),
        ("g-stream-one", group, c, "stream", False),
        ("g-unary-one", group, a2, "unary", False),
        ("g-stream-dev", group, b, "stream", True),
        ("g-unary-dev", group, a1, "unary", True),
    ]
    for label, chat, sender, how, per_device in plan:
        recipients = [m for m in members[chat] if m.device_id != sender.device_id]
        if per_device:
            one, dps = None, {r.device_id: payload("%s-for-%d" % (label, r.device_id)) for r in recipients}
        else:
            one, dps = payload(label), None
        if how == "stream":
            s = streams[sender.device_id]
            ev = s.answer(s.send_message(chat, label, one or b"", device_payloads=dps))
            if not ck.check(ev.WhichOneof("event") == "accepted", "%s refused: %s" % (label, su.describe(ev))):
                continue
            seq = ev.accepted.seq
        else:
            resp, _ = su.send_unary(sender, chat, label, one or b"", device_payloads=dps)
            seq = resp.seq
        sent[(chat, seq)] = (one, dps)
        for r in recipients:
            m = streams[r.device_id].wait_message(chat, seq)
            want = one if dps is None else dps[r.device_id]
            ck.check(m.payload == want and not m.payload_missing,
                     "%s: device %s got %r, not its payload" % (label, r.name, m.payload[:60]))
    ctx["sent"] = sent

    ck.step("refused sends (second marker): missing and stale devices, unknown chat, oversized payload")

    def rpay(label, size=0):
        p = secrets.token_bytes(3) + refused_marker + b"|" + label.encode()
        return p + b"\x01" * max(0, size - len(p))
    s = streams[a1.device_id]
    ev = s.answer(s.send_message(direct, "r-missing", device_payloads={b.device_id: rpay("missing")}))
    ck.check(su.is_error(ev, SC.FAILED_PRECONDITION), "per-device send missing a device: %s" % su.describe(ev))
    refused = [
        ("stale device", group, None, {a2.device_id: rpay("s1"), b.device_id: rpay("s2"), c.device_id: rpay("s3"),
                                       424242: rpay("s4")}),
        ("unknown chat", group + 4096, rpay("unknown"), None),
        ("oversized payload", direct, rpay("big", 70000), None),
    ]
    for what, chat, one, dps in refused:
        code, _ = su.call_code(lambda: su.send_unary(a1, chat, "r-" + what.replace(" ", "-"), one or b"",
                                                     device_payloads=dps))
        ck.check(code != SC.OK, "a send with %s was accepted" % what)

    ck.step("API: each device sees only its own payload; chat views carry none")
    for (chat, seq), (one, dps) in sorted(sent.items()):
        for r in members[chat]:
            h = su.history(r, chat, after_seq=seq - 1, limit=1)
            if not ck.check(len(h.messages) == 1 and h.messages[0].seq == seq,
                            "%s's GetHistory lacks %d/%d" % (r.name, chat, seq)):
                continue
            m = h.messages[0]
            if dps is not None:
                want = dps.get(r.device_id)
                ck.check((want is not None and m.payload == want) or (want is None and m.payload in (b"", )),
                         "%s's GetHistory payload of %d/%d: %r" % (r.name, chat, seq, m.payload[:60]))
                others = [p for d, p in dps.items() if d != r.device_id]
                raw = h.SerializeToString()
                ck.check(not any(p in raw for p in others),
                         "%s's GetHistory of %d/%d carries another device's payload" % (r.name, chat, seq))
            else:
                ck.check(m.payload == one, "%s's GetHistory payload of %d/%d differs" % (r.name, chat, seq))
    for cl in clients:
        views = [cl.rpc("Chats", "ListChats", chats.ListChatsRequest()).SerializeToString()]
        for chat in (direct, group):
            if any(m.account_id == cl.account_id for m in members[chat]):
                views.append(cl.rpc("Chats", "GetChat", chats.GetChatRequest(chat_id=chat)).SerializeToString())
        blob = b"".join(views)
        ck.check(marker not in blob and refused_marker not in blob, "%s's chat views carry a payload" % cl.name)

    ck.step("refused tokens: a real one with a byte changed, a revoked one")
    a3 = su.second_device(at(2), a1, "A3")
    clients.append(a3)
    a3.rpc("Accounts", "RemoveDevice", su.accounts.RemoveDeviceRequest(device_id=a3.device_id))
    dev, secret = su.token_parts(a1.token)
    flipped = bytearray(secret)
    flipped[0] ^= 0x80
    ctx["bad_tokens"] = {"a forged token": su.make_token(dev, bytes(flipped)), "a revoked token": a3.token}
    for what, tok in ctx["bad_tokens"].items():
        code, _ = su.call_code(lambda: a1.rpc("Accounts", "GetProfile", metadata=[("authorization",
                                                                                  "Bearer " + tok)]))
        ck.check(code == SC.UNAUTHENTICATED, "%s: %s" % (what, code.name))
    time.sleep(0.5)
    for s in streams.values():
        s.close()
    for cl in clients:
        cl.close()


def main(argv):
    parleyd = argv[argv.index("--parleyd") + 1] if "--parleyd" in argv else None
    if not parleyd or "PARLEY_POSTGRES_SERVER" not in os.environ:
        print(__doc__, file=sys.stderr)
        return 2
    nodes = su.nodes_arg(argv)
    tmp = tempfile.mkdtemp(prefix="parley-canary-")
    rc = su.run("canary (%d node%s)" % (nodes, "" if nodes == 1 else "s"), lambda ck: body(ck, parleyd, nodes, tmp))
    if rc == 0:
        subprocess.run(["rm", "-rf", tmp])
    else:
        print("canary: the captures are kept in %s" % tmp, file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
