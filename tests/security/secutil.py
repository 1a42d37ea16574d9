"""secutil — helpers shared by the security tests (tests/security/*.py).

Builds on tests/e2e/parley_py.py (imported, not copied): every method of
Accounts, Chats and Messaging as a stub on any channel with any metadata,
a recorder of failed checks that lets a test go on after a failure (so one
run reports every broken case, not only the first), and small helpers for
status codes, streams and presence.
"""
import base64
import os
import random
import sys
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from parley_py import Failure, accounts, chats, common, messaging, register  # noqa: E402,F401

SC = grpc.StatusCode
MODULES = {"Accounts": accounts, "Chats": chats, "Messaging": messaging}


# ---------------------------------------------------------------- reporting

class Checks:
    """Records failed checks; a test prints them all and exits 1 at the end."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.passed = 0

    def step(self, what):
        print("--", what, flush=True)

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)
            print("   FAIL:", what, flush=True)
        return bool(cond)

    def finish(self):
        if self.failures:
            print("%s: %d check(s) failed, %d passed:" % (self.name, len(self.failures), self.passed),
                  file=sys.stderr)
            for f in self.failures:
                print("  -", f, file=sys.stderr)
            return 1
        print("%s: all %d checks passed" % (self.name, self.passed))
        return 0


def run(name, body):
    """Runs body(checks); a Failure (or any exception) is a failed check."""
    ck = Checks(name)
    try:
        body(ck)
    except Failure as e:
        ck.check(False, "aborted: %s" % e)
    except grpc.RpcError as e:
        ck.check(False, "aborted by an unexpected RPC error: %s %s" % (e.code(), e.details()))
    return ck.finish()


# ---------------------------------------------------------------- stubs

def _message_class(desc):
    for mod in (common, accounts, chats, messaging):
        cls = getattr(mod, desc.name, None)
        if cls is not None and cls.DESCRIPTOR.full_name == desc.full_name:
            return cls
    raise KeyError(desc.full_name)


def stubs(channel):
    """{service: {method: (callable, request class, response class, streaming)}} for every method."""
    out = {}
    for service, mod in MODULES.items():
        sd = mod.DESCRIPTOR.services_by_name[service]
        table = {}
        for m in sd.methods:
            req, resp = _message_class(m.input_type), _message_class(m.output_type)
            path = "/parley.v1.%s/%s" % (service, m.name)
            if m.client_streaming or m.server_streaming:
                fn = channel.stream_stream(path, request_serializer=req.SerializeToString,
                                           response_deserializer=resp.FromString)
            else:
                fn = channel.unary_unary(path, request_serializer=req.SerializeToString,
                                         response_deserializer=resp.FromString)
            table[m.name] = (fn, req, resp, m.client_streaming or m.server_streaming)
        out[service] = table
    return out


class Client:
    """A registered device (parley_py.Device) with every method at hand."""

    def __init__(self, dev, phone, name):
        self.dev = dev
        self.phone = phone
        self.name = name
        self.account_id = dev.account_id
        self.device_id = dev.device_id
        self.token = dev.token
        self.addr = dev.addr
        self.all = stubs(dev.channel)

    def md(self):
        return self.dev.md()

    def rpc(self, service, method, req=None, metadata=None, timeout=10, with_call=False):
        fn, reqcls, _, _ = self.all[service][method]
        if req is None:
            req = reqcls()
        md = self.md() if metadata is None else metadata
        if with_call:
            return fn.with_call(req, metadata=md, timeout=timeout)
        return fn(req, metadata=md, timeout=timeout)

    def connect(self, resume=None):
        return self.dev.connect(resume)

    def close(self):
        self.dev.close()


def phone():
    return "+1555%07d" % random.randrange(10 ** 7)


def new_client(addr, name, number=None):
    number = number or phone()
    return Client(register(addr, number, name), number, name)


def second_device(addr, first, name):
    c = Client(register(addr, first.phone, name), first.phone, name)
    if c.account_id != first.account_id:
        raise Failure("%s is not a device of %s's account" % (name, first.name))
    return c


def addrs(nodes):
    if nodes <= 1:
        return [os.environ["PARLEY_ADDR"]]
    return [os.environ["PARLEY_ADDR_%d" % i] for i in range(nodes)]


def nodes_arg(argv):
    return int(argv[argv.index("--nodes") + 1]) if "--nodes" in argv else 1


# ---------------------------------------------------------------- status helpers

def call_code(fn):
    """(code, error or result) of a unary call: StatusCode.OK and the result on success."""
    try:
        return SC.OK, fn()
    except grpc.RpcError as e:
        return e.code(), e


def expect_code(ck, fn, codes, what):
    """Checks that fn() fails with one of codes; returns the RpcError (or None)."""
    if isinstance(codes, SC):
        codes = (codes,)
    code, res = call_code(fn)
    detail = res.details() if isinstance(res, grpc.RpcError) else str(res).replace("\n", " ")[:200]
    ck.check(code in codes, "%s: expected %s, got %s (%s)" % (what, "/".join(c.name for c in codes), code.name,
                                                               detail))
    return res if isinstance(res, grpc.RpcError) else None


def expect_ok(ck, fn, what):
    code, res = call_code(fn)
    ck.check(code == SC.OK, "%s: expected OK, got %s (%s)" % (
        what, code.name, res.details() if isinstance(res, grpc.RpcError) else ""))
    return res if code == SC.OK else None


def code_value(code):
    return code.value[0]


def is_error(ev, code):
    return ev is not None and ev.WhichOneof("event") == "error" and ev.error.code == code_value(code)


def stream_answer(stream, request_id, timeout=10):
    """The Accepted or Error answering request_id, or None if none came."""
    try:
        return stream.answer(request_id, timeout)
    except Failure:
        return None


def describe(ev):
    if ev is None:
        return "no answer"
    kind = ev.WhichOneof("event")
    if kind == "error":
        mm = ev.error.device_mismatch
        extra = ""
        if ev.error.HasField("device_mismatch"):
            extra = " missing=%s stale=%s" % ({a.account_id: list(a.device_ids) for a in mm.missing},
                                              list(mm.stale_device_ids))
        return "error %d %r%s" % (ev.error.code, ev.error.message, extra)
    return "%s %s" % (kind, str(getattr(ev, kind)).replace("\n", " "))


def wait_end(stream, timeout=10):
    """Reads until the stream ends; its (code, details) or None if it did not end."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            if stream.next(max(0.05, end - time.time())) is None:
                return stream.status
        except Failure:
            break
    return None


def events_for(stream, seconds, kinds=None):
    """Everything of kinds that arrives in the next few seconds (stops early if the stream ends)."""
    out = []
    end = time.time() + seconds
    while time.time() < end:
        try:
            ev = stream.next(max(0.05, end - time.time()), kinds=kinds)
        except Failure:
            break
        if ev is None:
            break
        out.append(ev)
    return out


def send_unary(client, chat_id, cid, payload=b"", device_payloads=None, timeout=10):
    om = messaging.OutgoingMessage(client_message_id=cid, chat_id=chat_id, payload=payload, content_type="text")
    for dev, p in (device_payloads or {}).items():
        om.device_payloads.add(device_id=dev, payload=p)
    return client.rpc("Messaging", "Send", messaging.SendRequest(message=om), timeout=timeout, with_call=True)


def history(client, chat_id, after_seq=0, before_seq=0, limit=200):
    return client.rpc("Messaging", "GetHistory", messaging.GetHistoryRequest(
        chat_id=chat_id, after_seq=after_seq, before_seq=before_seq, limit=limit))


def heartbeat(stream):
    return stream.send(messaging.ClientEvent(heartbeat=messaging.Heartbeat()))


def subscribe(stream, ids, on=True):
    lst = messaging.AccountList(account_ids=list(ids))
    if on:
        return stream.send(messaging.ClientEvent(presence_subscribe=lst))
    return stream.send(messaging.ClientEvent(presence_unsubscribe=lst))


def typing(stream, chat_id, on=True):
    return stream.send(messaging.ClientEvent(typing=messaging.TypingUpdate(chat_id=chat_id, typing=on)))


# ---------------------------------------------------------------- tokens

def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token_parts(token):
    """(device id, secret) of a token: base64url of the 8-byte big-endian device id and the secret."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return int.from_bytes(raw[:8], "big"), raw[8:]


def make_token(device_id, secret):
    return b64url(device_id.to_bytes(8, "big") + secret)
