#!/usr/bin/env python3
"""client_word.py — nothing a client says may make the server skip a message
for it, and a bad request never ends the stream (issue 9, items 1-7), with
python3-grpcio and stubs built from idl/ only. One case per run:

  ack_beyond_end      delivered/read acks past the chat's end: an Error, the
                      device's stored cursor clamped, later messages arrive
                      live and on resume
  resume_beyond_end   a Resume cursor past the chat's end: an Error, and the
                      peer's next messages arrive
  false_gap           a Resume ahead of the stored cursor with 150 missed
                      messages, listed second or sent after the stream
                      loaded: every message, no Gap
  bad_fields          over-limit fields, undecodable bytes, bad cursors and
                      empty sends get Error events with the request id; the
                      stream goes on; a unary call with junk gets
                      INVALID_ARGUMENT
  sender_cursors      "read by all" reaches the sender's latest message
  no_probe            Send to a chat that does not exist and to someone
                      else's: the same NOT_FOUND
  own_messages        the sending device never gets its own messages back
                      (first message of a chat, unary Send, resume)

usage: client_word.py CASE   (under with_stack.sh and with_parleyd.py)
"""
import os
import random
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parley_py import Failure, chats, expect, messaging, register  # noqa: E402

ADDR = os.environ.get("PARLEY_ADDR", "")
OUT_OF_RANGE = 11
NOT_FOUND = 5
INVALID_ARGUMENT = 3


def phone():
    return "+1556%07d" % random.randrange(10 ** 7)


def step(name):
    print("--", name, flush=True)


def direct(a, b):
    return a.call(a.chats, "OpenDirectChat", chats.OpenDirectChatRequest(account_id=b.account_id)).chat_id


def group(a, members, name="g"):
    return a.call(a.chats, "CreateGroup", chats.CreateGroupRequest(
        name=name, member_ids=[m.account_id for m in members])).chat_id


def send(stream, chat, cid, payload=b"x"):
    ev = stream.answer(stream.send_message(chat, cid, payload))
    expect(ev.WhichOneof("event") == "accepted", "send %s: %s" % (cid, ev))
    return ev.accepted.seq


def unary_send(dev, chat, cid, payload=b"x"):
    return dev.call(dev.msg, "Send", messaging.SendRequest(message=messaging.OutgoingMessage(
        client_message_id=cid, chat_id=chat, payload=payload))).seq


def cursor_event(chat, seq, read=False):
    c = messaging.Cursor(chat_id=chat, seq=seq)
    return messaging.ClientEvent(read=c) if read else messaging.ClientEvent(delivered=c)


def error_for(stream, rid, timeout=10):
    ev = stream.answer(rid, timeout)
    expect(ev.WhichOneof("event") == "error", "request %d: want an Error, got %s" % (rid, ev))
    return ev.error


def no_gaps(stream, who):
    gaps = [e for e in stream.seen if e.WhichOneof("event") == "gap"]
    expect(not gaps, "%s got Gap events: %s" % (who, [(g.gap.chat_id, g.gap.from_seq, g.gap.to_seq) for g in gaps]))


def case_ack_beyond_end():
    a, b = register(ADDR, phone(), "A"), register(ADDR, phone(), "B")
    d = direct(a, b)
    sb = b.connect()
    sb.wait_ready()
    send(sb, d, "m1")
    sa = a.connect()
    sa.wait_ready()
    sa.wait_message(d, 1)

    step("delivered 1000 and read 2^63-1 in a chat whose last seq is 1: Errors naming the requests")
    rid = sa.send(cursor_event(d, 1000))
    err = error_for(sa, rid)
    expect(err.code == OUT_OF_RANGE, "delivered 1000: code %d (%s)" % (err.code, err.message))
    rid = sa.send(cursor_event(d, 2 ** 63 - 1, read=True))
    err = error_for(sa, rid)
    expect(err.code == OUT_OF_RANGE, "read 2^63-1: code %d (%s)" % (err.code, err.message))

    step("the next live messages still arrive")
    send(sb, d, "m2")
    sa.wait_message(d, 2)

    step("after a reconnect without cursors: what was missed arrives (the stored cursor was clamped)")
    sa.close()
    for i in range(3, 6):
        send(sb, d, "m%d" % i)
    sa = a.connect()
    sa.wait_ready()
    for seq in range(3, 6):
        sa.wait_message(d, seq, timeout=10)
    send(sb, d, "m6")
    sa.wait_message(d, 6)
    no_gaps(sa, "A")
    sa.close()
    sb.close()


def case_resume_beyond_end():
    a, b = register(ADDR, phone(), "A"), register(ADDR, phone(), "B")
    d = direct(a, b)
    sb = b.connect()
    sb.wait_ready()
    send(sb, d, "m1")

    step("A resumes with seq 41 in a chat whose last seq is 1 (the README's old example)")
    sa = a.connect(resume={d: 41})
    sa.wait_ready()
    # the Resume may reach the server before or after the stream loaded (and
    # so come before or after Ready): its Error either way
    errs = [e for e in sa.seen if e.WhichOneof("event") == "error"]
    if not errs:
        errs = [sa.next(10, kinds=("error",))]
    expect(any(e is not None and e.error.code == OUT_OF_RANGE for e in errs),
           "no OUT_OF_RANGE Error for the cursor: %s" % errs)

    step("B's next messages 2, 3, 4 reach A")
    for i in range(2, 5):
        send(sb, d, "m%d" % i)
    for seq in range(2, 5):
        sa.wait_message(d, seq)
    no_gaps(sa, "A")

    step("a Resume after Ready for a chat that is not A's: NOT_FOUND, and nothing else changes")
    c, e = register(ADDR, phone(), "C"), register(ADDR, phone(), "E")
    other = direct(c, e)
    rid = sa.send(messaging.ClientEvent(resume=messaging.Resume(cursors=[messaging.Cursor(chat_id=other, seq=0)])))
    err = error_for(sa, rid)
    expect(err.code == NOT_FOUND, "resume of someone else's chat: code %d" % err.code)
    send(sb, d, "m5")
    sa.wait_message(d, 5)
    sa.close()
    sb.close()


def case_false_gap():
    a, b = register(ADDR, phone(), "A"), register(ADDR, phone(), "B")
    d = direct(a, b)
    g = group(b, [a])
    sb = b.connect()
    sb.wait_ready()
    first = [send(sb, g, "g%d" % i) for i in range(8)]
    last_before = first[-1]

    step("A receives the group up to %d, acks only up to %d, and goes away" % (last_before, last_before - 3))
    sa = a.connect()
    sa.wait_ready()
    sa.wait_message(g, last_before)
    sa.send(cursor_event(g, last_before - 3))
    sa.drain(0.5)
    sa.close()

    step("150 more arrive while A is away")
    for i in range(150):
        send(sb, g, "h%d" % i)
    end = last_before + 150

    for variant in ("resume listed second", "resume after the load"):
        step("A resumes, %s: every message after its cursor, no Gap" % variant)
        if variant == "resume listed second":
            sa = a.connect(resume={d: 0, g: last_before})
        else:
            sa = a.connect()
            sa.send(messaging.ClientEvent(resume=messaging.Resume(cursors=[
                messaging.Cursor(chat_id=d, seq=0), messaging.Cursor(chat_id=g, seq=last_before)])))
        for seq in range(last_before + 1, end + 1):
            sa.wait_message(g, seq, timeout=20)
        sa.wait_ready()
        sa.drain(0.3)
        no_gaps(sa, "A (%s)" % variant)
        sa.close()
    sb.close()


def raw_stream(dev):
    """A Connect stream that can also send raw bytes (what protoc's bounds-free
    Python encoder makes of over-limit fields, or junk)."""
    ch = grpc.insecure_channel(ADDR)
    ser = (lambda x: x if isinstance(x, bytes) else x.SerializeToString())
    dev.msg["Connect"] = ch.stream_stream("/parley.v1.Messaging/Connect", request_serializer=ser,
                                          response_deserializer=messaging.ServerEvent.FromString)
    return dev.connect()


def case_bad_fields():
    a, b = register(ADDR, phone(), "A"), register(ADDR, phone(), "B")
    d = direct(a, b)
    sa = raw_stream(a)
    sa.wait_ready()
    sb = b.connect()
    sb.wait_ready()

    def om(**kw):
        base = dict(client_message_id="ok", chat_id=d, payload=b"x", content_type="text")
        base.update(kw)
        dps = base.pop("device_payloads", None)
        m = messaging.OutgoingMessage(**base)
        for dev, p in (dps or {}).items():
            m.device_payloads.add(device_id=dev, payload=p)
        return messaging.ClientEvent(send=m)

    bad = [
        ("65-byte client_message_id", om(client_message_id="c" * 65), INVALID_ARGUMENT),
        ("65-byte content_type", om(content_type="t" * 65), INVALID_ARGUMENT),
        ("65 device payloads", om(payload=b"", device_payloads={i + 1: b"p" for i in range(65)}), INVALID_ARGUMENT),
        ("a Resume with 65 cursors", messaging.ClientEvent(resume=messaging.Resume(
            cursors=[messaging.Cursor(chat_id=d, seq=0)] * 65)), INVALID_ARGUMENT),
        ("presence_subscribe with 129 accounts", messaging.ClientEvent(presence_subscribe=messaging.AccountList(
            account_ids=list(range(1, 130)))), INVALID_ARGUMENT),
        ("a send with neither payload", om(payload=b""), INVALID_ARGUMENT),
        ("a Resume cursor with a negative seq", messaging.ClientEvent(resume=messaging.Resume(
            cursors=[messaging.Cursor(chat_id=d, seq=-1)])), INVALID_ARGUMENT),
        ("a Resume cursor with chat 0", messaging.ClientEvent(resume=messaging.Resume(
            cursors=[messaging.Cursor(chat_id=0, seq=1)])), INVALID_ARGUMENT),
        ("presence for account 0", messaging.ClientEvent(presence_subscribe=messaging.AccountList(
            account_ids=[0])), INVALID_ARGUMENT),
    ]
    for what, ev, code in bad:
        step(what)
        rid = sa.send(ev)
        err = error_for(sa, rid)
        expect(err.code == code, "%s: code %d (%s), want %d" % (what, err.code, err.message, code))
        expect(err.message, "%s: an Error without a message" % what)

    step("undecodable bytes with a request id first: an Error carrying it")
    sa.out.put(bytes([0x08, 0x99, 0x07, 0x12, 0xff, 0xff]))  # request_id 921, then a truncated field
    err = error_for(sa, 921)
    expect(err.code == INVALID_ARGUMENT, "junk: code %d" % err.code)

    step("the stream still works both ways")
    send(sa, d, "after-bad")
    send(sb, d, "to-a")
    sa.wait_message(d, 2)
    expect(sa.status is None, "A's stream ended: %s" % (sa.status,))

    step("a unary call with junk bytes: INVALID_ARGUMENT, not INTERNAL")
    ch = grpc.insecure_channel(ADDR)
    junk = ch.unary_unary("/parley.v1.Messaging/Send", request_serializer=lambda x: x,
                          response_deserializer=messaging.SendResponse.FromString)
    try:
        junk(bytes([0x0a, 0xff, 0xff, 0xff]), metadata=a.md(), timeout=10)
        raise Failure("junk unary Send succeeded")
    except grpc.RpcError as e:
        expect(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "junk unary Send: %s %s" % (e.code(), e.details()))
    ch.close()
    sa.close()
    sb.close()


def case_sender_cursors():
    a, b, c = register(ADDR, phone(), "A"), register(ADDR, phone(), "B"), register(ADDR, phone(), "C")
    g = group(a, [b, c])
    sa, sb, sc = a.connect(), b.connect(), c.connect()
    for s in (sa, sb, sc):
        s.wait_ready()
    step("A sends three messages; B and C read them all")
    seqs = [send(sa, g, "a%d" % i) for i in range(3)]
    top = seqs[-1]
    for s in (sb, sc):
        s.wait_message(g, top)
        s.send(cursor_event(g, top, read=True))
    step("A hears read by all = %d (its own latest)" % top)
    end = time.time() + 15
    best = 0
    while time.time() < end and best < top:
        ev = sa.next(max(0.05, end - time.time()), kinds=("receipt",))
        if ev and ev.receipt.chat_id == g:
            best = max(best, ev.receipt.read_by_all_seq)
    expect(best == top, "read_by_all reached %d, want %d" % (best, top))
    chat = a.call(a.chats, "GetChat", chats.GetChatRequest(chat_id=g))
    mine = [m for m in chat.members if m.account_id == a.account_id][0]
    expect(mine.read_seq >= top and mine.delivered_seq >= top,
           "the sender's own cursors: delivered %d read %d, want %d" % (mine.delivered_seq, mine.read_seq, top))
    for s in (sa, sb, sc):
        s.close()


def case_no_probe():
    a, b, c = register(ADDR, phone(), "A"), register(ADDR, phone(), "B"), register(ADDR, phone(), "C")
    theirs = direct(b, c)
    mine = direct(a, b)
    missing = mine + (1 << 22)  # a well-formed id (same shard) that no chat has
    sa = a.connect()
    sa.wait_ready()
    answers = {}
    for what, chat in (("someone else's chat", theirs), ("no such chat", missing)):
        step("Send to %s" % what)
        err = error_for(sa, sa.send_message(chat, "probe-%d" % chat, b"x"))
        try:
            unary_send(a, chat, "uprobe-%d" % chat)
            raise Failure("unary Send to %s succeeded" % what)
        except grpc.RpcError as e:
            answers[what] = (err.code, err.message, e.code(), e.details())
    step("the same answer for both: %s" % (answers["no such chat"],))
    expect(answers["no such chat"] == answers["someone else's chat"], "answers differ: %s" % answers)
    expect(answers["no such chat"][0] == NOT_FOUND, "stream: %s" % (answers,))
    expect(answers["no such chat"][2] == grpc.StatusCode.NOT_FOUND, "unary: %s" % (answers,))
    sa.close()


def case_own_messages():
    pa = phone()
    a1, a2, b = register(ADDR, pa, "A phone"), register(ADDR, pa, "A laptop"), register(ADDR, phone(), "B")
    d = direct(a1, b)
    s1, s2, sb = a1.connect(), a2.connect(), b.connect()
    for s in (s1, s2, sb):
        s.wait_ready()
    step("the first message of a new chat, from A's phone: only the laptop and B get it")
    send(s1, d, "first")
    s2.wait_message(d, 1)
    sb.wait_message(d, 1)
    step("a unary Send from A's phone while its stream is open")
    unary_send(a1, d, "unary")
    s2.wait_message(d, 2)
    send(sb, d, "reply")
    s1.wait_message(d, 3)
    s1.drain(0.5)
    expect((d, 1) not in s1.messages and (d, 2) not in s1.messages,
           "A's phone got its own messages back: %s" % sorted(k[1] for k in s1.messages if k[0] == d))
    step("A's phone reconnects without cursors: not its own messages again")
    s1.close()
    send(sb, d, "later")
    s1 = a1.connect()
    s1.wait_ready()
    s1.wait_message(d, 4)
    s1.drain(0.3)
    own = [k[1] for k, m in s1.messages.items() if m.sender_device_id == a1.device_id]
    expect(not own, "A's phone got its own messages on resume: %s" % own)
    for s in (s1, s2, sb):
        s.close()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main(argv):
    names = argv[1:] or sorted(CASES)
    for name in names:
        if name not in CASES:
            print("unknown case %s; cases: %s" % (name, " ".join(sorted(CASES))), file=sys.stderr)
            return 2
    for name in names:
        print("== client_word.%s" % name, flush=True)
        try:
            CASES[name]()
        except (Failure, grpc.RpcError) as e:
            print("FAILED: client_word.%s: %s" % (name, e), flush=True)
            return 1
    print("%d passed, 0 failed" % len(names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
