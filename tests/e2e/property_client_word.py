#!/usr/bin/env python3
"""property_client_word.py — a stateful property test: nothing a client says
may make the server skip a message for it (issue 9).

Four devices (A's phone and laptop, B, C) in a group and two direct chats.
For STEPS random steps, a random device does a random thing — valid or not:
sends; delivered and read acks at, below, past the end of, or far past a
chat's last seq, negative, or for chats that are not its own; Resumes with
arbitrary cursors; bytes that are not protobuf; reconnects, politely or by
vanishing. Every device keeps what it received (as an app's local store
would, across reconnects). At the end every device resumes cleanly (its
contiguous prefix per chat) and must then hold every message of its chats
(its own sends aside) exactly once as the app sees it, the final stream in
order (one restart allowed: the server may start from its record before the
Resume takes effect), and no device may ever have seen a Gap. Before that,
every device reconnects without cursors and must get, live, messages sent
after the random phase (a cursor poisoned by an ack would drop them).

usage: property_client_word.py [--steps N] [--seed S]   (under with_parleyd.py)
"""
import argparse
import os
import random
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parley_py import Failure, chats, expect, messaging, register  # noqa: E402

ADDR = os.environ.get("PARLEY_ADDR", "")


class Actor:
    def __init__(self, name, dev):
        self.name = name
        self.dev = dev
        self.stream = None
        self.store = set()     # (chat, seq) received, over all streams
        self.own = set()       # (chat, seq) this device sent
        self.gaps = []
        self.events = 0
        self.next_cid = 0
        self.pending = {}      # client id -> chat: sent, not answered yet (an app sends them again)
        self.ended = []        # streams the server ended on its own

    def connect(self, resume=None):
        ch = grpc.insecure_channel(ADDR)
        ser = (lambda x: x if isinstance(x, bytes) else x.SerializeToString())
        self.dev.msg["Connect"] = ch.stream_stream("/parley.v1.Messaging/Connect", request_serializer=ser,
                                                   response_deserializer=messaging.ServerEvent.FromString)
        self.stream = self.dev.connect(resume)

    def absorb(self):
        """Moves what the current stream read into the store."""
        s = self.stream
        if s is None:
            return
        s.drain(0.05)
        for ev in s.seen[self.events_seen(s):]:
            kind = ev.WhichOneof("event")
            if kind == "gap":
                self.gaps.append((ev.gap.chat_id, ev.gap.from_seq, ev.gap.to_seq))
            elif kind == "message":
                self.store.add((ev.message.chat_id, ev.message.seq))
            elif kind == "accepted":
                self.own.add((ev.accepted.chat_id, ev.accepted.seq))
                self.pending.pop(ev.accepted.client_message_id, None)
            elif kind == "error" and ev.error.client_message_id:
                self.pending.pop(ev.error.client_message_id, None)
        s.absorbed = len(s.seen)

    @staticmethod
    def events_seen(s):
        return getattr(s, "absorbed", 0)

    def send(self, chat, cid, payload):
        self.pending[cid] = chat
        self.stream.send_message(chat, cid, payload)

    def resend_pending(self):
        """What an app does after reconnecting: sends again what got no answer."""
        for cid, chat in list(self.pending.items()):
            self.stream.send_message(chat, cid, b"again")

    def leave(self, polite):
        if self.stream is None:
            return
        self.absorb()
        if self.stream.status is not None:
            self.ended.append(self.stream.status)
        self.events += len(self.stream.seen)
        if polite:
            self.stream.close()
        else:
            self.stream.cancel()
        self.absorb()
        self.stream = None

    def highest(self, chat):
        seqs = [q for c, q in self.store | self.own if c == chat]
        return max(seqs) if seqs else 0

    def prefix(self, chat):
        have = {q for c, q in self.store | self.own if c == chat}
        n = 0
        while n + 1 in have:
            n += 1
        return n


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args(argv[1:])
    rng = random.Random(args.seed)
    print("seed %d, %d steps" % (args.seed, args.steps), flush=True)

    def phone():
        return "+1557%07d" % rng.randrange(10 ** 7)

    pa = phone()
    a1, a2 = register(ADDR, pa, "A phone"), register(ADDR, pa, "A laptop")
    b, c = register(ADDR, phone(), "B"), register(ADDR, phone(), "C")
    g = a1.call(a1.chats, "CreateGroup", chats.CreateGroupRequest(name="prop", member_ids=[b.account_id,
                                                                                           c.account_id])).chat_id
    dab = a1.call(a1.chats, "OpenDirectChat", chats.OpenDirectChatRequest(account_id=b.account_id)).chat_id
    dbc = b.call(b.chats, "OpenDirectChat", chats.OpenDirectChatRequest(account_id=c.account_id)).chat_id
    actors = [Actor("A1", a1), Actor("A2", a2), Actor("B", b), Actor("C", c)]
    member_of = {"A1": [g, dab], "A2": [g, dab], "B": [g, dab, dbc], "C": [g, dbc]}
    all_chats = [g, dab, dbc]
    for act in actors:
        act.connect()
    counts = {}
    sent = 0

    def count(what):
        counts[what] = counts.get(what, 0) + 1

    def any_seq(act, chat):
        top = act.highest(chat)
        return rng.choice([0, max(0, top - rng.randrange(5)), top, top + 1 + rng.randrange(50), 1000,
                           2 ** 63 - 1, -1 - rng.randrange(5)])

    for step_no in range(args.steps):
        act = rng.choice(actors)
        if act.stream is None or act.stream.status is not None:
            act.leave(True)
            act.connect()
            act.resend_pending()
            count("reconnect (stream had ended)")
            continue
        s = act.stream
        r = rng.random()
        if r < 0.40:
            chat = rng.choice(member_of[act.name])
            act.next_cid += 1
            act.send(chat, "%s-%d" % (act.name, act.next_cid), b"p%d" % step_no)
            sent += 1
            count("send")
        elif r < 0.60:
            chat = rng.choice(all_chats + [g + (1 << 22)])
            is_read = rng.random() < 0.5
            cur = messaging.Cursor(chat_id=chat, seq=any_seq(act, chat))
            s.send(messaging.ClientEvent(read=cur) if is_read else messaging.ClientEvent(delivered=cur))
            count("read ack" if is_read else "delivered ack")
        elif r < 0.72:
            cursors = [messaging.Cursor(chat_id=ch, seq=any_seq(act, ch))
                       for ch in rng.sample(all_chats, rng.randrange(1, 4))]
            s.send(messaging.ClientEvent(resume=messaging.Resume(cursors=cursors)))
            count("resume with arbitrary cursors")
        elif r < 0.76:
            s.out.put(bytes([0x08, rng.randrange(1, 127), 0x12, 0xff]))
            count("junk bytes")
        elif r < 0.82:
            act.leave(rng.random() < 0.5)
            resume = None
            if rng.random() < 0.5:
                resume = {ch: any_seq(act, ch) for ch in rng.sample(all_chats, 2)}
                resume = {ch: q for ch, q in resume.items() if q >= 0}
            act.connect(resume)
            act.resend_pending()
            count("reconnect")
        else:
            time.sleep(0.02)
            count("pause")
        if step_no % 20 == 0:
            for x in actors:
                x.absorb()

    print("steps: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())), flush=True)
    for act in actors:
        act.leave(True)
    step_end = time.time() + 30
    for act in actors:  # every send answered, as an app's retries make sure
        act.connect()
        act.resend_pending()
        while act.pending and time.time() < step_end:
            act.absorb()
        expect(not act.pending, "%s: sends never answered: %s" % (act.name, act.pending))
        act.leave(True)

    failures = []
    # Streams resumed from the server's record alone (no cursors): whatever
    # the acks said, messages sent now must reach every other device live.
    for act in actors:
        act.connect()
        act.stream.wait_ready(timeout=30)
    posts = []
    for act in actors:
        for ch in member_of[act.name]:
            act.next_cid += 1
            ev = act.stream.answer(act.stream.send_message(ch, "%s-post-%d" % (act.name, act.next_cid), b"post"))
            expect(ev.WhichOneof("event") == "accepted", "%s: post refused: %s" % (act.name, ev))
            posts.append((act.name, ch, ev.accepted.seq))
    for act in actors:
        for sender, ch, seq in posts:
            if sender == act.name or ch not in member_of[act.name]:
                continue
            try:
                act.stream.wait_message(ch, seq, timeout=10)
            except Failure:
                failures.append("%s: chat %d seq %d (sent after the random phase) never arrived live"
                                % (act.name, ch, seq))
        act.leave(True)
    print("after the random phase: %d messages sent to streams resumed from the server's cursors" % len(posts))

    last = {}
    for ch in all_chats:
        owner = a1 if ch != dbc else b
        last[ch] = owner.call(owner.chats, "GetChat", chats.GetChatRequest(chat_id=ch)).last_seq

    checked_msgs = 0
    total_events = 0
    for act in actors:
        act.connect({ch: act.prefix(ch) for ch in member_of[act.name]})
        s = act.stream
        s.wait_ready(timeout=30)
        want_end = time.time() + 30
        for ch in member_of[act.name]:
            for seq in range(act.prefix(ch) + 1, last[ch] + 1):
                if (ch, seq) in act.own:
                    continue
                try:
                    s.wait_message(ch, seq, timeout=max(0.1, want_end - time.time()))
                except Failure as e:
                    failures.append("%s: chat %d seq %d never arrived (%s)" % (act.name, ch, seq, e))
                    break
        s.drain(0.5)
        final = [ev.message for ev in s.seen if ev.WhichOneof("event") == "message"]
        for ch in member_of[act.name]:
            seqs = [m.seq for m in final if m.chat_id == ch]
            # In order: ascending runs, and at most one restart — the server
            # may start from its own record of the device before the Resume
            # (sent first, but racing the stream's load) takes effect.
            runs = [[]]
            for q in seqs:
                if runs[-1] and q <= runs[-1][-1]:
                    runs.append([])
                runs[-1].append(q)
            if len(runs) > 2:
                failures.append("%s: final stream, chat %d out of order: %s" % (act.name, ch, seqs))
            mine = [m.seq for m in final if m.chat_id == ch and m.sender_device_id == act.dev.device_id]
            if mine:
                failures.append("%s: got its own messages back: chat %d %s" % (act.name, ch, mine))
        act.absorb()
        total_events += act.events + len(s.seen)
        for ch in member_of[act.name]:
            have = {q for c2, q in act.store | act.own if c2 == ch}
            missing = sorted(set(range(1, last[ch] + 1)) - have)
            checked_msgs += last[ch]
            if missing:
                failures.append("%s: chat %d misses %s" % (act.name, ch, missing[:20]))
        if act.gaps:
            failures.append("%s: Gap events for messages that exist: %s" % (act.name, act.gaps[:5]))
        if act.ended:
            failures.append("%s: the server ended its stream: %s" % (act.name, act.ended[:3]))
        s.close()

    print("checked: %d client steps (%d sends), %d server events read, %d (device, chat, seq) deliveries "
          "over %d messages in 3 chats" % (args.steps, sent, total_events, checked_msgs, sum(last.values())))
    for f in failures:
        print("FAILED:", f)
    expect(not failures, "%d failures (seed %d)" % (len(failures), args.seed))
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (Failure, grpc.RpcError) as e:
        print("FAILED:", e)
        sys.exit(1)
