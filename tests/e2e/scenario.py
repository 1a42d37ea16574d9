#!/usr/bin/python3
"""The end-to-end scenario, as an app would live it, with python3-grpcio
and nothing but idl/: three accounts (one with two devices), a direct chat
and a group; messages, delivered and read receipts, typing; a device goes
away while messages arrive and resumes with nothing lost, repeated or out of
order; a retried send is deduplicated; per-device payloads are checked; a
non-member can neither send to nor read the group; a blocked account cannot
message; a removed device's stream ends.

  scenario.py            one node: PARLEY_ADDR
  scenario.py --nodes 2  devices spread over PARLEY_ADDR_0 and PARLEY_ADDR_1

Run under tests/harness/with_stack.sh and with_parleyd.py (or against the
local stack: PARLEY_ADDR=127.0.0.1:7443 PARLEY_SMS_FILE=.parley/sms.log).
"""
import os
import random
import sys

import grpc

sys.path.insert(0, os.path.dirname(__file__))
from parley_py import Failure, accounts, chats, expect, messaging, register  # noqa: E402


def addrs(nodes):
    if nodes == 1:
        return [os.environ["PARLEY_ADDR"]] * 4
    a = [os.environ["PARLEY_ADDR_%d" % i] for i in range(nodes)]
    return [a[i % nodes] for i in range(4)]


def phone():
    return "+1555%07d" % random.randrange(10 ** 7)


def step(name):
    print("--", name, flush=True)


def deliver_in_order(stream, chat_id, seqs):
    for s in seqs:
        stream.wait_message(chat_id, s)
    got = [s for s in stream.order.get(chat_id, []) if s in seqs]
    expect(got == sorted(got), "chat %d arrived out of order: %s" % (chat_id, got))


def main(argv):
    nodes = int(argv[argv.index("--nodes") + 1]) if "--nodes" in argv else 1
    where = addrs(nodes)

    step("register: A (two devices), B, C; D stays outside")
    pa = phone()
    a1 = register(where[0], pa, "A phone")
    a2 = register(where[1], pa, "A laptop")
    expect(a1.account_id == a2.account_id and a1.device_id != a2.device_id, "A's second device is not A's")
    b = register(where[2], phone(), "B phone")
    c = register(where[3], phone(), "C phone")
    d = register(where[0], phone(), "D phone")
    devs = a1.call(a1.acc, "ListDevices", accounts.ListDevicesRequest())
    expect(len(devs.devices) == 2, "A has %d devices" % len(devs.devices))

    step("a direct chat and a group")
    direct = a1.call(a1.chats, "OpenDirectChat", chats.OpenDirectChatRequest(account_id=b.account_id))
    again = b.call(b.chats, "OpenDirectChat", chats.OpenDirectChatRequest(account_id=a1.account_id))
    expect(direct.chat_id == again.chat_id, "two direct chats for one pair")
    group = a1.call(a1.chats, "CreateGroup", chats.CreateGroupRequest(
        name="friends", member_ids=[b.account_id, c.account_id]))
    expect(len(group.members) == 3, "group has %d members" % len(group.members))

    step("streams")
    sa1, sa2, sb, sc = a1.connect(), a2.connect(), b.connect(), c.connect()
    for s in (sa1, sa2, sb, sc):
        s.wait_ready()

    step("direct messages: A -> B, sent only after durable, delivered to B and A's other device")
    rid = sa1.send_message(direct.chat_id, "m1", b"hello B")
    acc = sa1.answer(rid)
    expect(acc.WhichOneof("event") == "accepted", "send refused: %s" % acc)
    seq1 = acc.accepted.seq
    expect(seq1 >= 1 and not acc.accepted.duplicate, "bad accepted %s" % acc.accepted)
    m = sb.wait_message(direct.chat_id, seq1)
    expect(m.payload == b"hello B" and m.sender_account_id == a1.account_id, "B got %s" % m)
    m2 = sa2.wait_message(direct.chat_id, seq1)
    expect(m2.payload == b"hello B", "A's other device got %s" % m2)

    step("a retried send is deduplicated")
    rid = sa1.send_message(direct.chat_id, "m1", b"hello B")
    dup = sa1.answer(rid)
    expect(dup.accepted.seq == seq1 and dup.accepted.duplicate, "retry was not deduplicated: %s" % dup)
    resp = a1.call(a1.msg, "Send", messaging.SendRequest(message=messaging.OutgoingMessage(
        client_message_id="m1", chat_id=direct.chat_id, payload=b"hello B")))
    expect(resp.seq == seq1 and resp.duplicate, "unary retry was not deduplicated: %s" % resp)

    step("receipts: B's delivered and read reach A's devices")
    sb.send(messaging.ClientEvent(delivered=messaging.Cursor(chat_id=direct.chat_id, seq=seq1)))
    sb.send(messaging.ClientEvent(read=messaging.Cursor(chat_id=direct.chat_id, seq=seq1)))
    for s in (sa1, sa2):
        while True:
            ev = s.next(10, kinds=("receipt",))
            expect(ev is not None, "no receipt")
            r = ev.receipt
            if r.account_id == b.account_id and r.read_seq >= seq1:
                expect(r.delivered_seq >= seq1, "read but not delivered: %s" % r)
                break

    step("typing reaches the other member, and stops")
    sb.send(messaging.ClientEvent(typing=messaging.TypingUpdate(chat_id=direct.chat_id, typing=True)))
    ev = sa1.next(10, kinds=("typing",))
    expect(ev.typing.account_id == b.account_id and ev.typing.typing, "typing: %s" % ev)
    sb.send(messaging.ClientEvent(typing=messaging.TypingUpdate(chat_id=direct.chat_id, typing=False)))
    ev = sa1.next(10, kinds=("typing",))
    expect(not ev.typing.typing, "typing did not stop: %s" % ev)

    step("group: everyone's devices get every message in order")
    seqs = []
    for i in range(5):
        sender = (sa1, sb, sc)[i % 3]
        rid = sender.send_message(group.chat_id, "g%d" % i, b"group %d" % i)
        ev = sender.answer(rid)
        expect(ev.WhichOneof("event") == "accepted", "group send refused: %s" % ev)
        seqs.append(ev.accepted.seq)
    for s in (sa1, sa2, sb, sc):
        others = [q for i, q in enumerate(seqs) if (sa1, sb, sc)[i % 3] is not s]
        deliver_in_order(s, group.chat_id, others)

    step("B goes away; messages arrive meanwhile; B resumes with nothing lost or repeated, in order")
    last_seen = max(sb.order.get(direct.chat_id, [0]))
    sb.cancel()
    missed = []
    for i in range(7):
        rid = sa1.send_message(direct.chat_id, "off%d" % i, b"while away %d" % i)
        missed.append(sa1.answer(rid).accepted.seq)
    rid = sc.send_message(group.chat_id, "off-g", b"group while away")
    missed_g = sc.answer(rid).accepted.seq
    sb2 = b.connect(resume={direct.chat_id: last_seen})
    sb2.wait_ready()
    deliver_in_order(sb2, direct.chat_id, missed)
    sb2.wait_message(group.chat_id, missed_g)
    sb2.drain(0.5)
    expect(len(sb2.order[direct.chat_id]) == len(set(sb2.order[direct.chat_id])), "repeats on resume")
    expect(min(sb2.order[direct.chat_id]) > last_seen, "resume re-sent what B had seen")

    step("per-device payloads: exactly the recipients' current devices")
    rid = sa1.send_message(direct.chat_id, "pd1", device_payloads={b.device_id: b"for B"})
    ev = sa1.answer(rid)
    expect(ev.WhichOneof("event") == "error" and ev.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0],
           "incomplete device payloads accepted: %s" % ev)
    missing = {dv for ad in ev.error.device_mismatch.missing for dv in ad.device_ids}
    expect(missing == {a2.device_id}, "missing should be A's other device, got %s" % missing)
    rid = sa1.send_message(direct.chat_id, "pd2",
                           device_payloads={b.device_id: b"for B", a2.device_id: b"for A2", 12345: b"x"})
    ev = sa1.answer(rid)
    expect(ev.WhichOneof("event") == "error" and list(ev.error.device_mismatch.stale_device_ids) == [12345],
           "stale device not reported: %s" % ev)
    rid = sa1.send_message(direct.chat_id, "pd3", device_payloads={b.device_id: b"for B", a2.device_id: b"for A2"})
    ev = sa1.answer(rid)
    expect(ev.WhichOneof("event") == "accepted", "per-device send refused: %s" % ev)
    expect(sb2.wait_message(direct.chat_id, ev.accepted.seq).payload == b"for B", "B got the wrong payload")
    expect(sa2.wait_message(direct.chat_id, ev.accepted.seq).payload == b"for A2", "A2 got the wrong payload")

    step("a non-member can neither send to nor read the group")
    sd = d.connect()
    sd.wait_ready()
    ev = sd.answer(sd.send_message(group.chat_id, "x", b"intruder"))
    expect(ev.WhichOneof("event") == "error" and ev.error.code == grpc.StatusCode.NOT_FOUND.value[0],
           "non-member send (NOT_FOUND, as for no such chat): %s" % ev)
    try:
        d.call(d.msg, "GetHistory", messaging.GetHistoryRequest(chat_id=group.chat_id))
        raise Failure("non-member read the group's history")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.NOT_FOUND, "non-member history: %s" % e.code())
    hist = c.call(c.msg, "GetHistory", messaging.GetHistoryRequest(chat_id=group.chat_id, limit=50))
    expect(len(hist.messages) >= len(seqs), "member history has %d messages" % len(hist.messages))

    step("a blocked account cannot message")
    b.call(b.acc, "Block", accounts.BlockRequest(
        account_id=a1.account_id))
    ev = sa1.answer(sa1.send_message(direct.chat_id, "blocked1", b"let me in"))
    expect(ev.WhichOneof("event") == "error" and ev.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0],
           "blocked send: %s" % ev)

    step("a removed device's stream ends")
    a1.call(a1.acc, "RemoveDevice", accounts.RemoveDeviceRequest(
        device_id=a2.device_id))
    while sa2.next(10) is not None:
        pass
    expect(sa2.status and sa2.status[0] == grpc.StatusCode.UNAUTHENTICATED, "removed stream: %s" % (sa2.status,))
    try:
        a2.call(a2.msg, "GetHistory", messaging.GetHistoryRequest(chat_id=direct.chat_id))
        raise Failure("a removed device's token still works")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.UNAUTHENTICATED, "removed token: %s" % e.code())

    for s in (sa1, sb2, sc, sd):
        s.close()
    for dev in (a1, a2, b, c, d):
        dev.close()
    print("scenario passed (%d node%s)" % (nodes, "" if nodes == 1 else "s"))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Failure as e:
        print("FAILED:", e, file=sys.stderr)
        sys.exit(1)
