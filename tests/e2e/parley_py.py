"""parley_py — a small Python client for Parley's gRPC API, built only from
the .proto files in idl/ (protoc --python_out at import) and python3-grpcio:
what an app developer with nothing but our protos would write. Used by the
end-to-end scenarios."""
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time

import grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IDL = os.path.join(ROOT, "idl")


def _compile():
    out = tempfile.mkdtemp(prefix="parley-py-")
    protos = ["parley/v1/common.proto", "parley/v1/accounts.proto", "parley/v1/chats.proto",
              "parley/v1/messaging.proto", "parley/v1/push.proto"]
    subprocess.run(["protoc", "-I" + IDL, "--python_out=" + out] + protos, check=True)
    sys.path.insert(0, out)


_compile()
from parley.v1 import accounts_pb2 as accounts  # noqa: E402
from parley.v1 import chats_pb2 as chats  # noqa: E402
from parley.v1 import common_pb2 as common  # noqa: E402
from parley.v1 import messaging_pb2 as messaging  # noqa: E402
from parley.v1 import push_pb2 as push  # noqa: E402


class Failure(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failure(what)


def _methods(channel, service, table):
    stubs = {}
    for name, (req, resp, shape) in table.items():
        path = "/parley.v1.%s/%s" % (service, name)
        ser, de = req.SerializeToString, resp.FromString
        if shape == "unary":
            stubs[name] = channel.unary_unary(path, request_serializer=ser, response_deserializer=de)
        else:
            stubs[name] = channel.stream_stream(path, request_serializer=ser, response_deserializer=de)
    return stubs


def sms_code(phone, timeout=5):
    """The latest code the file SMS provider wrote for phone."""
    path = os.environ["PARLEY_SMS_FILE"]
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path) as f:
                codes = [line.split()[1] for line in f if line.split()[:1] == [phone]]
            if codes:
                return codes[-1]
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise Failure("no code for %s in %s" % (phone, path))


class Device:
    """One registered device: its token and unary stubs."""

    def __init__(self, addr, account_id, device_id, token):
        self.addr = addr
        self.account_id = account_id
        self.device_id = device_id
        self.token = token
        self.channel = grpc.insecure_channel(addr)
        a = accounts
        self.acc = _methods(self.channel, "Accounts", {
            "GetProfile": (a.GetProfileRequest, a.Profile, "unary"),
            "UpdateProfile": (a.UpdateProfileRequest, a.Profile, "unary"),
            "UpdatePrivacy": (a.UpdatePrivacyRequest, a.PrivacySettings, "unary"),
            "ListDevices": (a.ListDevicesRequest, a.ListDevicesResponse, "unary"),
            "RemoveDevice": (a.RemoveDeviceRequest, a.RemoveDeviceResponse, "unary"),
            "GetDevices": (a.GetDevicesRequest, a.GetDevicesResponse, "unary"),
            "AddContacts": (a.AddContactsRequest, a.AddContactsResponse, "unary"),
            "Block": (a.BlockRequest, a.BlockResponse, "unary"),
            "Unblock": (a.UnblockRequest, a.UnblockResponse, "unary"),
        })
        c = chats
        self.chats = _methods(self.channel, "Chats", {
            "OpenDirectChat": (c.OpenDirectChatRequest, c.Chat, "unary"),
            "CreateGroup": (c.CreateGroupRequest, c.Chat, "unary"),
            "AddMembers": (c.AddMembersRequest, c.Chat, "unary"),
            "RemoveMember": (c.RemoveMemberRequest, c.Chat, "unary"),
            "GetChat": (c.GetChatRequest, c.Chat, "unary"),
            "ListChats": (c.ListChatsRequest, c.ListChatsResponse, "unary"),
        })
        m = messaging
        self.msg = _methods(self.channel, "Messaging", {
            "Send": (m.SendRequest, m.SendResponse, "unary"),
            "GetHistory": (m.GetHistoryRequest, m.GetHistoryResponse, "unary"),
            "Connect": (m.ClientEvent, m.ServerEvent, "stream"),
        })
        p = push
        self.push = _methods(self.channel, "Push", {
            "RegisterPushToken": (p.RegisterPushTokenRequest, p.PushTokenResponse, "unary"),
            "UnregisterPushToken": (p.UnregisterPushTokenRequest, p.UnregisterPushTokenResponse, "unary"),
            "MuteChat": (p.MuteChatRequest, p.MuteChatResponse, "unary"),
            "SetPushSettings": (p.PushSettings, p.PushSettings, "unary"),
            "TestPush": (p.TestPushRequest, p.TestPushResponse, "unary"),
        })

    def md(self):
        return [("authorization", "Bearer " + self.token)]

    def call(self, table, name, req, timeout=10):
        return table[name](req, metadata=self.md(), timeout=timeout)

    def connect(self, resume=None):
        return Stream(self, resume)

    def close(self):
        self.channel.close()


def register(addr, phone, device_name="test device"):
    channel = grpc.insecure_channel(addr)
    a = accounts
    st = _methods(channel, "Accounts", {
        "RequestCode": (a.RequestCodeRequest, a.RequestCodeResponse, "unary"),
        "Verify": (a.VerifyRequest, a.VerifyResponse, "unary"),
    })
    st["RequestCode"](a.RequestCodeRequest(phone_number=phone), timeout=10)
    code = sms_code(phone)
    resp = st["Verify"](a.VerifyRequest(phone_number=phone, code=code, device_name=device_name), timeout=10)
    channel.close()
    return Device(addr, resp.account_id, resp.device_id, resp.token)


class Stream:
    """A Connect stream: events go out through send(), come in on a queue
    read by a background thread."""
    _END = object()

    def __init__(self, device, resume=None):
        self.device = device
        self.out = queue.Queue()
        self.events = queue.Queue()
        self.next_id = 1
        self.status = None
        self.messages = {}  # (chat, seq) -> Message, for dedup and checks
        self.order = {}     # chat -> [seq...] in arrival order (first arrivals only)
        self.seen = []      # every event read, in order
        if resume is not None:
            self.send(messaging.ClientEvent(resume=messaging.Resume(
                cursors=[messaging.Cursor(chat_id=c, seq=s) for c, s in resume.items()])))
        self.call = device.msg["Connect"](self._requests(), metadata=device.md())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _requests(self):
        while True:
            item = self.out.get()
            if item is self._END:
                return
            yield item

    def _read(self):
        try:
            for ev in self.call:
                self.events.put(ev)
        except grpc.RpcError as e:
            self.status = (e.code(), e.details())
        else:
            self.status = (grpc.StatusCode.OK, "")
        self.events.put(self._END)

    def send(self, ev):
        if not ev.request_id:
            ev.request_id = self.next_id
            self.next_id += 1
        self.out.put(ev)
        return ev.request_id

    def next(self, timeout=10, kinds=None):
        """The next event (of one of kinds, skipping others); None at the end."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                raise Failure("no %s event within %.1f s" % (kinds or "", timeout))
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev is self._END:
                self.events.put(ev)
                return None
            kind = ev.WhichOneof("event")
            self.seen.append(ev)
            if kind == "message":
                key = (ev.message.chat_id, ev.message.seq)
                if key not in self.messages:
                    self.messages[key] = ev.message
                    self.order.setdefault(ev.message.chat_id, []).append(ev.message.seq)
            if kinds is None or kind in kinds:
                return ev

    def wait_ready(self, timeout=10):
        ev = self.next(timeout, kinds=("ready",))
        expect(ev is not None, "stream ended before Ready: %s" % (self.status,))

    def send_message(self, chat_id, client_id, payload=b"", device_payloads=None, **kw):
        om = messaging.OutgoingMessage(client_message_id=client_id, chat_id=chat_id, payload=payload,
                                       content_type=kw.get("content_type", "text"))
        for dev, p in (device_payloads or {}).items():
            om.device_payloads.add(device_id=dev, payload=p)
        return self.send(messaging.ClientEvent(send=om))

    def answer(self, request_id, timeout=10):
        """The Accepted or Error for request_id."""
        end = time.time() + timeout
        while time.time() < end:
            ev = self.next(end - time.time(), kinds=("accepted", "error"))
            if ev is None:
                raise Failure("stream ended: %s" % (self.status,))
            if ev.request_id == request_id:
                return ev
        raise Failure("no answer to request %d" % request_id)

    def wait_message(self, chat_id, seq, timeout=10):
        end = time.time() + timeout
        while (chat_id, seq) not in self.messages:
            if self.next(max(0.01, end - time.time()), kinds=("message",)) is None:
                raise Failure("stream ended before message %d/%d: %s" % (chat_id, seq, self.status))
        return self.messages[(chat_id, seq)]

    def drain(self, seconds=0.3):
        """Reads (and records) whatever arrives in the next few moments."""
        end = time.time() + seconds
        while time.time() < end:
            try:
                if self.next(max(0.01, end - time.time())) is None:
                    return
            except Failure:
                return

    def close(self):
        self.out.put(self._END)
        self.thread.join(timeout=10)

    def cancel(self):
        self.call.cancel()
        self.thread.join(timeout=10)
