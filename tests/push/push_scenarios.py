#!/usr/bin/python3
"""push_scenarios.py — pushes end to end: parleyd against local APNs and FCM
stand-ins (providers.mjs) that check JWTs, headers and payloads as Apple
and Google document them.

Run inside tests/harness/with_stack.sh; starts the providers and parleyd
itself (the restart scenario kills and starts it again).

    push_scenarios.py --parleyd BIN --parleyctl BIN [SCENARIO ...]   (default: all)
"""
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "tests", "harness"))
import parley_py as pp  # noqa: E402
from with_parleyd import start_node  # noqa: E402

CERTS = os.path.join(ROOT, "tests", "certs")
KID, TEAM, TOPIC = "KEYID12345", "TEAM123456", "org.parley.test"
EMAIL, PROJECT = "push@parley-test.iam.gserviceaccount.com", "parley-test"
GRACE_MS, ALERT_MS = 1500, 2000  # a loaded CI machine sends and acks well within 1.5 s
CANARY_TEXT = b"CANARY-PAYLOAD-7f3a"
CANARY_NAME = "CanarySenderName"
expect = pp.expect


def run(args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Providers:
    def __init__(self, tmp):
        self.tmp = tmp
        ec, rsa = os.path.join(tmp, "apns.p8"), os.path.join(tmp, "fcm.pem")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec])
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa])
        run(["openssl", "pkey", "-in", ec, "-pubout", "-out", ec + ".pub"])
        run(["openssl", "pkey", "-in", rsa, "-pubout", "-out", rsa + ".pub"])
        self.apns_key = ec
        self.proc = subprocess.Popen(
            ["node", os.path.join(HERE, "providers.mjs"), "--cert", os.path.join(CERTS, "server.pem"),
             "--key", os.path.join(CERTS, "server.key"), "--apns-public-key", ec + ".pub",
             "--apns-key-id", KID, "--apns-team-id", TEAM, "--fcm-public-key", rsa + ".pub",
             "--fcm-client-email", EMAIL, "--fcm-project", PROJECT, "--apns-min-rotation-s", "2"],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        expect(line.startswith("READY "), "providers did not start: %r" % line)
        self.port = int(line.split()[1])
        self.url = "https://localhost:%d" % self.port
        self.creds = os.path.join(tmp, "fcm.json")
        with open(rsa) as f:
            pem = f.read()
        with open(self.creds, "w") as f:
            json.dump({"type": "service_account", "project_id": PROJECT, "client_email": EMAIL,
                       "private_key": pem, "token_uri": self.url + "/token"}, f)
        self.ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))

    def control(self, method, what, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/control/" + what, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def log(self):
        return self.control("GET", "log")

    def script(self, *rules):
        self.control("POST", "script", {"rules": list(rules)})

    def requests_for(self, token):
        out = []
        for r in self.log()["requests"]:
            if r["provider"] == "apns" and r["path"].endswith("/" + token):
                out.append(r)
            elif r["provider"] == "fcm" and ('"token":"%s"' % token) in r["body"]:
                out.append(r)
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


class Node:
    def __init__(self, parleyd, providers, extra=()):
        self.parleyd = parleyd
        self.flags = ["--push.apns_url=" + providers.url, "--push.apns_sandbox_url=" + providers.url,
                      "--push.apns_key_file=" + providers.apns_key, "--push.apns_key_id=" + KID,
                      "--push.apns_team_id=" + TEAM, "--push.fcm_url=" + providers.url,
                      "--push.fcm_credentials=" + providers.creds,
                      "--push.ca_file=" + os.path.join(CERTS, "ca.pem"), "--push.grace_ms=%d" % GRACE_MS,
                      "--push.alert_interval_ms=%d" % ALERT_MS, "--push.sweep_interval_ms=1000",
                      "--push.apns_token_refresh_ms=3000", "--rate.sends_per_second=1000",
                      "--rate.sends_burst=1000", "--rate.codes_per_address_per_hour=1000"] + list(extra)
        self.start()

    def start(self):
        self.proc, port = start_node(self.parleyd, 0, 2, self.flags, os.environ)
        expect(self.proc is not None, "parleyd did not start")
        self.addr = "127.0.0.1:%s" % port
        import threading
        for s in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=lambda s=s: [sys.stderr.write(l) for l in s
                                                 if "ERROR" in l or "runtime error" in l or "push:" in l],
                             daemon=True).start()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        expect(rc == 0, "parleyd exited with %d" % rc)


_phone = [int(time.time() * 1000) % 1000000]


def new_device(node, name="test"):
    _phone[0] += 1
    dev = pp.register(node.addr, "+1555%07d" % _phone[0], name)
    dev.phone = "+1555%07d" % _phone[0]
    # every sender carries the canary name: no push may show it
    dev.call(dev.acc, "UpdateProfile", pp.accounts.UpdateProfileRequest(display_name=CANARY_NAME))
    return dev


def apns_token(i):
    return ("%064x" % (0xabc000 + i + _phone[0] * 1000))[-64:]


def register_token(dev, provider, token, app_id=TOPIC):
    return dev.call(dev.push, "RegisterPushToken",
                    pp.push.RegisterPushTokenRequest(provider=provider, token=token, app_id=app_id))


def direct_chat(a, b):
    return a.call(a.chats, "OpenDirectChat", pp.chats.OpenDirectChatRequest(account_id=b.account_id)).chat_id


def send(dev, chat, cid, kind=0, payload=CANARY_TEXT):
    om = pp.messaging.OutgoingMessage(client_message_id=cid, chat_id=chat, payload=payload, content_type="text",
                                      push=kind)
    return dev.call(dev.msg, "Send", pp.messaging.SendRequest(message=om))


def wait_for(what, fn, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise pp.Failure("timed out waiting for " + what)


def ok_count(reqs):
    return sum(1 for r in reqs if r["status"] == 200)


APNS, VOIP, FCM = 1, 2, 3


def sc_offline_burst(node, prov):
    """20 messages to a device without a stream: exactly one alert."""
    a, b = new_device(node), new_device(node)
    tok = apns_token(1)
    register_token(b, APNS, tok)
    chat = direct_chat(a, b)
    # the burst on the sender's stream, pipelined: all stored well within the grace period
    s = a.connect()
    s.wait_ready()
    t0 = time.time()
    ids = [s.send_message(chat, "burst-%d" % i, payload=CANARY_TEXT) for i in range(20)]
    for rid in ids:
        expect(s.answer(rid).WhichOneof("event") == "accepted", "burst message %d accepted" % rid)
    stored_in = time.time() - t0
    s.close()
    expect(stored_in < GRACE_MS / 1000, "the burst took %.2f s, more than the grace period" % stored_in)
    wait_for("the alert", lambda: ok_count(prov.requests_for(tok)) >= 1)
    time.sleep((GRACE_MS + ALERT_MS) / 1000 + 1.5)
    reqs = prov.requests_for(tok)
    expect(len(reqs) == 1 and reqs[0]["status"] == 200, "one alert for 20 messages, got %s" %
           [(r["status"], r["reason"]) for r in reqs])
    h = reqs[0]["headers"]
    expect(h.get("apns-push-type") == "alert" and h.get("apns-priority") == "10" and
           h.get("apns-topic") == TOPIC and h.get("apns-collapse-id"), "alert headers: %s" % h)


def sc_online(node, prov):
    """A device whose stream acknowledges the message gets no push."""
    a, b = new_device(node), new_device(node)
    tok = "fcm-online-%d:%s" % (_phone[0], "x" * 100)
    register_token(b, FCM, tok)
    chat = direct_chat(a, b)
    s = b.connect()
    s.wait_ready()
    seq = send(a, chat, "online-1").seq
    s.wait_message(chat, seq)
    s.send(pp.messaging.ClientEvent(delivered=pp.messaging.Cursor(chat_id=chat, seq=seq)))
    time.sleep((GRACE_MS + 1500) / 1000)
    expect(prov.requests_for(tok) == [], "an online device got a push")
    s.close()
    # the same device offline: FCM with priority HIGH
    seq = send(a, chat, "online-2").seq
    reqs = wait_for("the FCM push", lambda: prov.requests_for(tok))
    body = json.loads(reqs[0]["body"])["message"]
    expect(reqs[0]["status"] == 200 and body["android"]["priority"] == "HIGH" and body["data"]["k"] == "message",
           "FCM push: %s" % reqs[0])


def sc_muted(node, prov):
    """A muted chat: no alert (one background push wakes the app to sync)."""
    a, b = new_device(node), new_device(node)
    tok = apns_token(2)
    register_token(b, APNS, tok)
    chat = direct_chat(a, b)
    b.call(b.push, "MuteChat", pp.push.MuteChatRequest(chat_id=chat, forever=True))
    for i in range(3):
        send(a, chat, "muted-%d" % i)
    wait_for("the background push", lambda: prov.requests_for(tok))
    time.sleep(1.5)
    reqs = prov.requests_for(tok)
    expect(all(r["headers"].get("apns-push-type") == "background" for r in reqs) and len(reqs) <= 1,
           "muted chat pushes: %s" % [(r["headers"].get("apns-push-type"), r["status"]) for r in reqs])
    expect(len(reqs) == 1 and reqs[0]["headers"].get("apns-priority") == "5", "one background push")


def sc_call(node, prov):
    """A call: a VoIP push with expiration 0, nothing to the alert token."""
    a, b = new_device(node), new_device(node)
    alert, voip = apns_token(3), apns_token(4)
    register_token(b, APNS, alert)
    register_token(b, VOIP, voip)
    chat = direct_chat(a, b)
    send(a, chat, "call-1", kind=pp.messaging.PUSH_KIND_CALL)
    reqs = wait_for("the VoIP push", lambda: prov.requests_for(voip))
    h = reqs[0]["headers"]
    expect(reqs[0]["status"] == 200 and h.get("apns-push-type") == "voip" and h.get("apns-expiration") == "0" and
           h.get("apns-topic") == TOPIC + ".voip", "VoIP push: %s" % reqs[0])
    time.sleep(1)
    expect(prov.requests_for(alert) == [], "a call also alerted the alert token")
    # on Android: a high-priority FCM data message that is not kept for later
    c = new_device(node)
    tok = "fcm-call-%d" % _phone[0]
    register_token(c, FCM, tok)
    send(a, direct_chat(a, c), "call-2", kind=pp.messaging.PUSH_KIND_CALL)
    reqs = wait_for("the FCM call push", lambda: prov.requests_for(tok))
    m = json.loads(reqs[0]["body"])["message"]
    expect(reqs[0]["status"] == 200 and m["android"]["priority"] == "HIGH" and m["android"]["ttl"] == "0s" and
           m["data"]["k"] == "call", "FCM call push: %s" % m)


def test_push(dev, provider=0):
    return dev.call(dev.push, "TestPush", pp.push.TestPushRequest(provider=provider))


def sc_dead_tokens(node, prov):
    """410 and 404 UNREGISTERED clear tokens; a token registered again after
    the 410's timestamp survives it."""
    a, b, c, d = new_device(node), new_device(node), new_device(node), new_device(node)
    dead, fcm_dead, alive = apns_token(5), "fcm-dead-%d" % _phone[0], apns_token(6)
    register_token(b, APNS, dead)
    register_token(c, FCM, fcm_dead)
    prov.script({"provider": "apns", "token": dead, "status": 410, "reason": "Unregistered",
                 "timestamp_ms": int(time.time() * 1000) + 60000},
                {"provider": "fcm", "token": fcm_dead, "status": 404, "reason": "UNREGISTERED"})
    send(a, direct_chat(a, b), "dead-1")
    send(a, direct_chat(a, c), "dead-2")
    for dev, tok in ((b, dead), (c, fcm_dead)):
        wait_for("the refused push", lambda tok=tok: prov.requests_for(tok))

        def gone(dev=dev):
            try:
                test_push(dev)
                return False
            except pp.grpc.RpcError as e:
                return e.code() == pp.grpc.StatusCode.FAILED_PRECONDITION
        wait_for("the token's removal", gone)
    # re-registered after the 410's timestamp: kept, and the push goes through
    register_token(d, APNS, alive)
    stamp = int(time.time() * 1000)
    time.sleep(0.05)
    register_token(d, APNS, alive)
    prov.script({"provider": "apns", "token": alive, "status": 410, "reason": "Unregistered", "timestamp_ms": stamp})
    send(a, direct_chat(a, d), "alive-1")
    reqs = wait_for("the push after the late 410", lambda: ok_count(prov.requests_for(alive)) >= 1 and
                    prov.requests_for(alive))
    expect([r["status"] for r in reqs] == [410, 200], "late 410 then 200: %s" % [r["status"] for r in reqs])
    expect(test_push(d).http_status == 200, "the re-registered token still works")


def sc_storm(node, prov):
    """503s and 429s with Retry-After: retried, one alert in the end."""
    a, b = new_device(node), new_device(node)
    tok = apns_token(7)
    register_token(b, APNS, tok)
    prov.script({"provider": "apns", "token": tok, "status": 503, "reason": "ServiceUnavailable", "times": 2,
                 "retry_after": 1},
                {"provider": "apns", "token": tok, "status": 429, "reason": "TooManyRequests", "times": 2})
    chat = direct_chat(a, b)
    t0 = time.time()
    send(a, chat, "storm-1")
    wait_for("the alert after the storm", lambda: ok_count(prov.requests_for(tok)) == 1, timeout=30)
    time.sleep(ALERT_MS / 1000 + 1.5)
    reqs = prov.requests_for(tok)
    expect([r["status"] for r in reqs] == [503, 503, 429, 429, 200], "storm answers: %s" %
           [r["status"] for r in reqs])
    gaps = [(reqs[i + 1]["time_ms"] - reqs[i]["time_ms"]) for i in range(len(reqs) - 1)]
    expect(gaps[0] >= 900 and gaps[1] >= 900, "Retry-After honoured: gaps %s" % gaps)
    expect(gaps[2] >= 400 and gaps[3] >= 900, "backoff grows: gaps %s (from %.1f s)" % (gaps, time.time() - t0))


def sc_restart(node, prov):
    """parleyd killed with a push queued: it goes out after the restart."""
    a, b = new_device(node), new_device(node)
    tok = apns_token(8)
    register_token(b, APNS, tok)
    prov.script({"provider": "apns", "token": tok, "status": 503, "reason": "ServiceUnavailable",
                 "retry_after": 2})
    send(a, direct_chat(a, b), "restart-1")
    wait_for("the first attempt", lambda: prov.requests_for(tok))
    # killed once the refusal is on record (a job killed mid-push waits for its 60 s lease)
    rescheduled = "SELECT count(*) FROM %s.push_jobs WHERE device_id = %d AND last_error IS NOT NULL" % (
        schema_of(b.device_id), b.device_id)
    wait_for("the job rescheduled", lambda: psql(rescheduled, schema_of(b.device_id)) == "1")
    node.kill()
    time.sleep(0.5)
    node.start()
    reqs = wait_for("the push after the restart", lambda: ok_count(prov.requests_for(tok)) == 1 and
                    prov.requests_for(tok), timeout=40)
    expect([r["status"] for r in reqs] == [503, 200], "restart answers: %s" % [r["status"] for r in reqs])


def sc_jwt(node, prov):
    """One provider token for many pushes; a new one on schedule and after
    ExpiredProviderToken, never more."""
    a = new_device(node)
    devs = [new_device(node) for _ in range(5)]
    toks = [apns_token(20 + i) for i in range(5)]
    for d, t in zip(devs, toks):
        register_token(d, APNS, t)
    before = prov.log()["jwts_seen"]
    t0 = time.time()
    for d in devs:
        send(a, direct_chat(a, d), "jwt-1")
    wait_for("5 alerts", lambda: all(ok_count(prov.requests_for(t)) == 1 for t in toks))
    for d in devs:
        expect(test_push(d).http_status == 200, "TestPush")
    used = prov.log()["jwts_seen"] - before
    expect(used <= 1 + int((time.time() - t0) / 3.0 + 1), "%d provider tokens for 10 pushes in %.1f s" %
           (used, time.time() - t0))
    time.sleep(3.5)  # past [push] apns_token_refresh_ms
    n = prov.log()["jwts_seen"]
    expect(test_push(devs[0]).http_status == 200, "TestPush after the refresh interval")
    expect(prov.log()["jwts_seen"] == n + 1, "a new provider token after the refresh interval")
    prov.script({"provider": "apns", "token": toks[1], "status": 403, "reason": "ExpiredProviderToken"})
    r = test_push(devs[1])
    expect(r.http_status == 403 and r.reason == "ExpiredProviderToken", "TestPush shows the provider's answer")
    expect(test_push(devs[1]).http_status == 200, "a new provider token after ExpiredProviderToken")
    expect(prov.log()["jwts_seen"] == n + 2, "exactly one more provider token")


def psql(sql, schema):
    """sql on the PostgreSQL server that holds schema."""
    for conninfo in os.environ["PARLEY_POSTGRES_SERVER"].split(";"):
        def q(text):
            return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo.strip(),
                                   "-c", text], check=True, capture_output=True, text=True).stdout.strip()
        if q("SELECT count(*) FROM pg_namespace WHERE nspname = '%s'" % schema) == "1":
            return q(sql)
    raise pp.Failure("no server holds " + schema)


def schema_of(some_id):
    return "shard_%04d" % ((some_id >> 12) & 1023)


def sc_preview(node, prov):
    """An encrypted preview rides in the push unless the account said no."""
    a, b = new_device(node), new_device(node)
    tok = apns_token(9)
    register_token(b, APNS, tok)
    chat = direct_chat(a, b)
    sealed = bytes(range(200))
    om = pp.messaging.OutgoingMessage(client_message_id="preview-1", chat_id=chat, payload=CANARY_TEXT,
                                      push_preview=sealed)
    a.call(a.msg, "Send", pp.messaging.SendRequest(message=om))
    reqs = wait_for("the push with a preview", lambda: prov.requests_for(tok))
    body = json.loads(reqs[0]["body"])
    import base64
    got = base64.urlsafe_b64decode(body["parley"]["p"] + "=" * (-len(body["parley"]["p"]) % 4))
    expect(got == sealed and len(reqs[0]["body"]) < 4096, "preview in the push: %s" % body)
    b.call(b.push, "SetPushSettings", pp.push.PushSettings(no_previews=True))
    time.sleep(ALERT_MS / 1000)
    om.client_message_id = "preview-2"
    a.call(a.msg, "Send", pp.messaging.SendRequest(message=om))
    reqs = wait_for("the second push", lambda: len(prov.requests_for(tok)) == 2 and prov.requests_for(tok))
    expect("p" not in json.loads(reqs[1]["body"])["parley"], "no preview with no_previews: %s" % reqs[1]["body"])
    try:
        om.client_message_id = "preview-3"
        om.push_preview = bytes(1025)
        a.call(a.msg, "Send", pp.messaging.SendRequest(message=om))
        raise pp.Failure("a 1025-byte preview was taken")
    except pp.grpc.RpcError as e:
        expect(e.code() == pp.grpc.StatusCode.INVALID_ARGUMENT, "oversized preview: %s" % e.code())


def sc_lifecycle(node, prov):
    """A token moves to the device that registers it; a removed device's
    tokens go; tokens not registered for [push] token_days go (checked at
    start); bad registrations are refused; parleyctl calls TestPush."""
    a = new_device(node)
    b1 = new_device(node)
    tok = apns_token(10)
    register_token(b1, APNS, tok)
    # same phone, a second device (say, the app reinstalled): the token moves
    b2 = pp.register(node.addr, b1.phone, "second")
    register_token(b2, APNS, tok)
    count = "SELECT count(*) FROM %s.push_tokens WHERE token = '%s'" % (schema_of(b2.account_id), tok)
    expect(psql(count, schema_of(b2.account_id)) == "1", "a token belongs to one device")
    b2.call(b2.acc, "RemoveDevice", pp.accounts.RemoveDeviceRequest(device_id=b1.device_id))
    c = new_device(node)
    register_token(c, FCM, "fcm-lifecycle-%d" % _phone[0])
    c_tokens = "SELECT count(*) FROM %s.push_tokens WHERE device_id = %d" % (schema_of(c.device_id), c.device_id)
    expect(psql(c_tokens, schema_of(c.device_id)) == "1", "c has a token")
    a2 = new_device(node)
    register_token(a2, APNS, apns_token(11))
    a2.call(a2.acc, "RemoveDevice", pp.accounts.RemoveDeviceRequest(device_id=a2.device_id))
    expect(psql("SELECT count(*) FROM %s.push_tokens WHERE device_id = %d" % (schema_of(a2.device_id),
                                                                            a2.device_id),
                schema_of(a2.device_id)) == "0",
           "a removed device's token is gone")
    # stale for 271 days: gone after the next start's expiry pass
    psql("UPDATE %s.push_tokens SET registered_at = now() - interval '271 days' WHERE device_id = %d" %
         (schema_of(c.device_id), c.device_id), schema_of(c.device_id))
    node.stop()
    node.start()
    wait_for("the stale token's expiry", lambda: psql(c_tokens, schema_of(c.device_id)) == "0")
    a = new_device(node)  # the restarted node listens on a new port
    # refused registrations
    for provider, token, app_id, code in ((APNS, "zz" * 32, TOPIC, "INVALID_ARGUMENT"),
                                          (APNS, apns_token(12), "", "INVALID_ARGUMENT"),
                                          (0, "x", TOPIC, "INVALID_ARGUMENT"),
                                          (FCM, "bad token with spaces", "", "INVALID_ARGUMENT")):
        try:
            register_token(a, provider, token, app_id)
            raise pp.Failure("registration of %r taken" % token)
        except pp.grpc.RpcError as e:
            expect(e.code().name == code, "%r: %s" % (token, e.code()))
    # parleyctl, the grpcurl of this project, calls TestPush through reflection
    register_token(a, APNS, apns_token(13))
    out = subprocess.run([PARLEYCTL[0], "-H", "authorization: Bearer " + a.token, "-d", "{}", node.addr,
                          "parley.v1.Push/TestPush"], capture_output=True, text=True, timeout=30)
    expect(out.returncode == 0 and '"httpStatus": 200' in out.stdout, "parleyctl TestPush: %s %s" %
           (out.stdout, out.stderr))


def sc_canary(node, prov):
    """No message content or sender name in any push that went out."""
    for r in prov.log()["requests"]:
        text = r["body"] + json.dumps(r["headers"])
        expect(CANARY_TEXT.decode() not in text and CANARY_NAME not in text, "canary in a push: %s" % r)


SCENARIOS = [("offline_burst", sc_offline_burst), ("online", sc_online), ("muted", sc_muted), ("call", sc_call),
             ("dead_tokens", sc_dead_tokens), ("storm", sc_storm), ("restart", sc_restart), ("jwt", sc_jwt),
             ("preview", sc_preview), ("lifecycle", sc_lifecycle), ("canary", sc_canary)]


PARLEYCTL = [None]


def main(argv):
    parleyd = argv[argv.index("--parleyd") + 1]
    PARLEYCTL[0] = argv[argv.index("--parleyctl") + 1]
    wanted = [a for a in argv if a not in ("--parleyd", parleyd, "--parleyctl", PARLEYCTL[0])]
    tmp = tempfile.mkdtemp(prefix="parley-push-")
    os.environ.setdefault("PARLEY_SMS_FILE", os.path.join(tmp, "sms.log"))
    prov = Providers(tmp)
    node = Node(parleyd, prov)
    failed = 0
    try:
        for name, fn in SCENARIOS:
            if wanted and name not in wanted:
                continue
            t0 = time.time()
            try:
                fn(node, prov)
                print("ok   %-14s %.1f s" % (name, time.time() - t0), flush=True)
            except (pp.Failure, pp.grpc.RpcError) as e:
                failed += 1
                print("FAIL %-14s %s" % (name, e), flush=True)
        node.stop()
    finally:
        if node.proc.poll() is None:
            node.kill()
        prov.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
