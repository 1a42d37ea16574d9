#!/usr/bin/python3
"""Authorization: who may do what, checked against parleyd with
python3-grpcio and nothing but idl/.

  tokens      every authenticated method of Accounts, Chats and Messaging
              (Connect included) refuses, with UNAUTHENTICATED, a missing
              authorization header, other schemes, malformed, truncated and
              over-long tokens, a token whose secret has one byte changed,
              another device's id (of another account, or of the same
              account) with a real secret, an all-zero secret; the real
              token works (so the probes can fail).
  non-member  GetHistory, GetChat, Send (stream, unary, per-device
              payloads — refused without a DeviceMismatch that would list
              the members' devices) and typing are NOT_FOUND, as for a chat
              that does not exist; receipts on the chat are refused; the
              group's messages and typing never reach its stream; a direct
              chat of two others (whose id is derived from their account
              ids) can be neither read nor written; the group is not in its
              ListChats; admin operations are refused and change nothing.
  admin-only  a plain member's UpdateGroup, AddMembers, RemoveMember and
              SetRole are PERMISSION_DENIED and change nothing.
  removed     a removed member's last delivered message is the
              MEMBER_REMOVED system message: later messages (stream, unary,
              per-device) and typing do not reach its stream, not even
              after a reconnect with Resume; GetHistory still returns
              everything up to the removal and nothing after it; it can
              neither send (stream, unary) nor type (NOT_FOUND).
  blocking    a blocked account cannot message the blocker (stream, unary,
              per-device: PERMISSION_DENIED, nothing delivered), its typing
              does not reach the blocker, OpenDirectChat is refused, it sees
              the blocker offline with last_seen 0 while the blocker is
              online (on an existing subscription, a new one and across the
              blocker's reconnect), and cannot put the blocker in a group
              (CreateGroup, AddMembers); after Unblock all of it works again.
  devices     RenameDevice/RemoveDevice of another account's device are
              refused and change nothing; UpdateProfile and UpdatePrivacy
              change only the caller; GetProfile of another account hides
              the phone number and privacy settings.
  revocation  a device that removed itself (revoked token) and a device
              removed by another device of the account are refused on the
              next call of every service (UNAUTHENTICATED), cannot open a
              stream, and their open streams end with UNAUTHENTICATED; a
              removed device is no longer a recipient (stale).

  authorization.py [--nodes N]   devices spread over PARLEY_ADDR_0..N-1

Run under tests/harness/with_stack.sh and with_parleyd.py.
"""
import sys
import time

import grpc

import secutil as su
from secutil import SC, Failure, accounts, chats, messaging

ChatEvent = messaging.ChatEvent


def chat_members(chat):
    return {m.account_id: m.role for m in chat.members}


def get_chat(cl, chat_id):
    return cl.rpc("Chats", "GetChat", chats.GetChatRequest(chat_id=chat_id))


def probe_requests(ctx):
    """One request per authenticated method, naming real objects."""
    a1, b, g, d = ctx["a1"], ctx["b"], ctx["group"], ctx["direct"]
    A, C, M = accounts, chats, messaging
    return {
        ("Accounts", "GetProfile"): A.GetProfileRequest(account_id=0),
        ("Accounts", "UpdateProfile"): A.UpdateProfileRequest(display_name="forged", about="forged"),
        ("Accounts", "UpdatePrivacy"): A.UpdatePrivacyRequest(online=su.common.VISIBILITY_NOBODY),
        ("Accounts", "ListDevices"): A.ListDevicesRequest(),
        ("Accounts", "RenameDevice"): A.RenameDeviceRequest(device_id=a1.device_id, name="forged"),
        ("Accounts", "RemoveDevice"): A.RemoveDeviceRequest(device_id=a1.device_id),
        ("Accounts", "GetDevices"): A.GetDevicesRequest(account_ids=[b.account_id]),
        ("Accounts", "AddContacts"): A.AddContactsRequest(account_ids=[b.account_id]),
        ("Accounts", "RemoveContact"): A.RemoveContactRequest(account_id=b.account_id),
        ("Accounts", "ListContacts"): A.ListContactsRequest(),
        ("Accounts", "LookupPhones"): A.LookupPhonesRequest(phone_numbers=[b.phone]),
        ("Accounts", "Block"): A.BlockRequest(account_id=b.account_id),
        ("Accounts", "Unblock"): A.UnblockRequest(account_id=b.account_id),
        ("Accounts", "ListBlocked"): A.ListBlockedRequest(),
        ("Chats", "OpenDirectChat"): C.OpenDirectChatRequest(account_id=b.account_id),
        ("Chats", "CreateGroup"): C.CreateGroupRequest(name="forged", member_ids=[b.account_id]),
        ("Chats", "UpdateGroup"): C.UpdateGroupRequest(chat_id=g, name="forged"),
        ("Chats", "AddMembers"): C.AddMembersRequest(chat_id=g, account_ids=[ctx["n"].account_id]),
        ("Chats", "RemoveMember"): C.RemoveMemberRequest(chat_id=g, account_id=b.account_id),
        ("Chats", "SetRole"): C.SetRoleRequest(chat_id=g, account_id=b.account_id, role=su.common.ROLE_ADMIN),
        ("Chats", "LeaveGroup"): C.LeaveGroupRequest(chat_id=g),
        ("Chats", "GetChat"): C.GetChatRequest(chat_id=g),
        ("Chats", "ListChats"): C.ListChatsRequest(),
        ("Messaging", "Send"): M.SendRequest(message=M.OutgoingMessage(
            client_message_id="forged", chat_id=d, payload=b"forged")),
        ("Messaging", "GetHistory"): M.GetHistoryRequest(chat_id=d, limit=10),
    }


def connect_status(cl, md, timeout=10):
    """Opens Connect with md, sends a heartbeat and half-closes: (code, events received)."""
    fn = cl.all["Messaging"]["Connect"][0]
    events = []
    try:
        for ev in fn(iter([messaging.ClientEvent(request_id=1, heartbeat=messaging.Heartbeat())]),
                     metadata=md, timeout=timeout):
            events.append(ev)
    except grpc.RpcError as e:
        return e.code(), events
    return SC.OK, events


def check_token_refused(ck, cl, md, what, reqs):
    """Every authenticated method (and Connect) refuses md with UNAUTHENTICATED."""
    bad = []
    for (service, method), req in reqs.items():
        code, res = su.call_code(lambda: cl.rpc(service, method, req, metadata=md))
        if code != SC.UNAUTHENTICATED:
            bad.append("%s.%s -> %s" % (service, method, code.name))
    code, events = connect_status(cl, md)
    if code != SC.UNAUTHENTICATED or events:
        bad.append("Messaging.Connect -> %s after %d event(s)" % (code.name, len(events)))
    missing = {(s, m) for s in su.MODULES for m in cl.all[s]} - set(reqs) - {
        ("Accounts", "RequestCode"), ("Accounts", "Verify"), ("Messaging", "Connect")}
    ck.check(not missing, "methods without a token probe: %s" % sorted(missing))
    ck.check(not bad, "%s accepted or mis-refused by: %s" % (what, "; ".join(bad)))


def section_tokens(ck, ctx):
    ck.step("tokens: missing, malformed, truncated and forged tokens are UNAUTHENTICATED on every method")
    a1, a2, b = ctx["a1"], ctx["a2"], ctx["b"]
    tok = a1.token
    dev, secret = su.token_parts(tok)
    if not ck.check(dev == a1.device_id and len(secret) >= 16,
                    "token layout assumption (8-byte device id + secret) does not hold; forged cases skipped"):
        return
    flipped = bytearray(secret)
    flipped[len(flipped) // 2] ^= 0x01
    mid = len(tok) * 2 // 3
    char_changed = tok[:mid] + ("A" if tok[mid] != "A" else "B") + tok[mid + 1:]
    bearer = lambda t: [("authorization", "Bearer " + t)]  # noqa: E731
    variants = [
        ("no metadata", []),
        ("the token without 'Bearer '", [("authorization", tok)]),
        ("another scheme (Basic)", [("authorization", "Basic " + tok)]),
        ("an empty bearer token", [("authorization", "Bearer")]),
        ("an empty authorization value", [("authorization", "")]),
        ("a token in another header", [("x-authorization", "Bearer " + tok), ("token", tok)]),
        ("garbage", bearer("not-a-token")),
        ("characters outside base64url", bearer(tok[:-2] + "+/")),
        ("the token truncated by one character", bearer(tok[:-1])),
        ("the token truncated to half", bearer(tok[:len(tok) // 2])),
        ("the token with a character appended", bearer(tok + "A")),
        ("the token with one character changed", bearer(char_changed)),
        ("the token with one secret byte changed", bearer(su.make_token(dev, bytes(flipped)))),
        ("another account's device id with a real secret", bearer(su.make_token(b.device_id, secret))),
        ("the same account's other device id with a real secret", bearer(su.make_token(a2.device_id, secret))),
        ("a device id that does not exist with a real secret", bearer(su.make_token(dev + 1, secret))),
        ("an all-zero secret", bearer(su.make_token(dev, bytes(len(secret))))),
    ]
    reqs = probe_requests(ctx)
    for what, md in variants:
        check_token_refused(ck, a1, md, what, reqs)
    # values ending in whitespace are malformed HTTP/2 field values (RFC 9113 8.2.1): the stream may be
    # reset before gRPC sees it (INTERNAL on the client); any refusal will do, never OK
    for what, md in (("'Bearer ' with nothing after it", [("authorization", "Bearer ")]),
                     ("the real token with a trailing space", [("authorization", "Bearer " + tok + " ")])):
        bad = []
        for (service, method), req in reqs.items():
            code, _ = su.call_code(lambda: a1.rpc(service, method, req, metadata=md))
            if code == SC.OK:
                bad.append("%s.%s" % (service, method))
        code, events = connect_status(a1, md)
        if code == SC.OK or events:
            bad.append("Messaging.Connect")
        ck.check(not bad, "%s accepted by: %s" % (what, "; ".join(bad)))
    # the probes can fail: the real token passes authentication
    code, res = su.call_code(lambda: a1.rpc("Accounts", "GetProfile", accounts.GetProfileRequest()))
    ck.check(code == SC.OK, "the real token is refused: %s" % code.name)
    code, events = connect_status(ctx["a3"], ctx["a3"].md())  # a device without a stream yet
    ck.check(code == SC.OK and any(e.WhichOneof("event") == "heartbeat_ack" for e in events),
             "Connect with the real token: %s, %d events" % (code.name, len(events)))


def section_non_member(ck, ctx):
    ck.step("non-member: no history, no chat, no sending, no typing, no receipts, nothing delivered")
    a1, b, n = ctx["a1"], ctx["b"], ctx["n"]
    g, d = ctx["group"], ctx["direct"]
    sa1, sb, sc, sn = ctx["sa1"], ctx["sb"], ctx["sc"], ctx["sn"]
    for chat, name in ((g, "group"), (d, "A-B direct chat")):
        su.expect_code(ck, lambda: su.history(n, chat), SC.NOT_FOUND, "non-member GetHistory of the %s" % name)
        su.expect_code(ck, lambda: su.history(n, chat, before_seq=1 << 40), SC.NOT_FOUND,
                       "non-member GetHistory(before_seq) of the %s" % name)
        su.expect_code(ck, lambda: get_chat(n, chat), SC.NOT_FOUND, "non-member GetChat of the %s" % name)
        ev = su.stream_answer(sn, sn.send_message(chat, "n-%d" % chat, b"intruder"))
        ck.check(su.is_error(ev, SC.NOT_FOUND), "non-member stream send to the %s: %s" % (
            name, su.describe(ev)))
        su.expect_code(ck, lambda: su.send_unary(n, chat, "nu-%d" % chat, b"intruder"), SC.NOT_FOUND,
                       "non-member unary Send to the %s" % name)
        err = su.expect_code(ck, lambda: su.send_unary(n, chat, "npd-%d" % chat,
                                                       device_payloads={b.device_id: b"x", 12345: b"y"}),
                             SC.NOT_FOUND, "non-member unary Send with device payloads to the %s" % name)
        if err is not None:
            trailers = dict(err.trailing_metadata() or ())
            ck.check("parley-device-mismatch-bin" not in trailers,
                     "a non-member learned the %s's devices from a DeviceMismatch" % name)
        ev = su.stream_answer(sn, sn.send_message(chat, "npds-%d" % chat,
                                                  device_payloads={b.device_id: b"x", 12345: b"y"}))
        ck.check(su.is_error(ev, SC.NOT_FOUND) and not ev.error.HasField("device_mismatch"),
                 "non-member stream send with device payloads to the %s: %s" % (name, su.describe(ev)))
        rid = su.typing(sn, chat, True)
        ev = su.stream_answer(sn, rid, timeout=5)
        ck.check(su.is_error(ev, SC.NOT_FOUND), "non-member typing in the %s: %s" % (name,
                                                                                          su.describe(ev)))
        for kind in ("delivered", "read"):
            rid = sn.send(messaging.ClientEvent(**{kind: messaging.Cursor(chat_id=chat, seq=1)}))
            ev = su.stream_answer(sn, rid, timeout=5)
            ck.check(ev is not None and ev.WhichOneof("event") == "error" and
                     ev.error.code in (su.code_value(SC.PERMISSION_DENIED), su.code_value(SC.NOT_FOUND)),
                     "non-member %s cursor on the %s: %s" % (kind, name, su.describe(ev)))
    listed = [ch.chat_id for ch in n.rpc("Chats", "ListChats", chats.ListChatsRequest()).chats]
    ck.check(g not in listed and d not in listed, "the non-member's ListChats shows others' chats: %s" % listed)

    # members talk and type; the outsider's stream must see none of it
    rid = sa1.send_message(g, "g-live-1", b"members only")
    acc = sa1.answer(rid)
    ck.check(acc.WhichOneof("event") == "accepted", "member send: %s" % su.describe(acc))
    seq = acc.accepted.seq
    sb.wait_message(g, seq)
    su.typing(sb, g, True)
    ev = sc.next(10, kinds=("typing",))
    ck.check(ev is not None and ev.typing.chat_id == g, "members do not see each other typing: %s" % ev)
    su.typing(sb, g, False)
    leaked = [e for e in su.events_for(sn, 1.0)
              if (e.WhichOneof("event") == "message" and e.message.chat_id in (g, d)) or
              (e.WhichOneof("event") == "typing" and e.typing.chat_id in (g, d)) or
              (e.WhichOneof("event") == "receipt" and e.receipt.chat_id in (g, d))]
    ck.check(not leaked, "the non-member's stream got the group's events: %s" % [su.describe(e) for e in leaked])
    leaked = [e for e in sa1.seen + su.events_for(sa1, 0.3) if
              (e.WhichOneof("event") == "typing" and e.typing.account_id == n.account_id) or
              (e.WhichOneof("event") == "receipt" and e.receipt.account_id == n.account_id)]
    ck.check(not leaked, "the non-member's typing/receipts reached a member: %s" % [su.describe(e) for e in leaked])

    # admin operations by an outsider: refused (NOT_FOUND hides the chat), nothing changes
    before = get_chat(a1, g)
    for method, req in (
            ("UpdateGroup", chats.UpdateGroupRequest(chat_id=g, name="taken over")),
            ("AddMembers", chats.AddMembersRequest(chat_id=g, account_ids=[n.account_id])),
            ("RemoveMember", chats.RemoveMemberRequest(chat_id=g, account_id=b.account_id)),
            ("SetRole", chats.SetRoleRequest(chat_id=g, account_id=n.account_id, role=su.common.ROLE_ADMIN)),
            ("LeaveGroup", chats.LeaveGroupRequest(chat_id=g))):
        su.expect_code(ck, lambda: n.rpc("Chats", method, req), (SC.NOT_FOUND, SC.PERMISSION_DENIED),
                       "non-member %s" % method)
    after = get_chat(a1, g)
    ck.check(after.name == before.name and chat_members(after) == chat_members(before) and
             after.last_seq == before.last_seq,
             "a non-member changed the group: %s -> %s" % (before, after))


def section_admin_only(ck, ctx):
    ck.step("admin-only operations: a plain member is PERMISSION_DENIED and nothing changes")
    a1, b, c, n = ctx["a1"], ctx["b"], ctx["c"], ctx["n"]
    g = ctx["group"]
    before = get_chat(a1, g)
    for method, req in (
            ("UpdateGroup", chats.UpdateGroupRequest(chat_id=g, name="mine now")),
            ("UpdateGroup", chats.UpdateGroupRequest(chat_id=g, only_admins_send=True)),
            ("AddMembers", chats.AddMembersRequest(chat_id=g, account_ids=[n.account_id])),
            ("RemoveMember", chats.RemoveMemberRequest(chat_id=g, account_id=c.account_id)),
            ("RemoveMember", chats.RemoveMemberRequest(chat_id=g, account_id=a1.account_id)),
            ("SetRole", chats.SetRoleRequest(chat_id=g, account_id=b.account_id, role=su.common.ROLE_ADMIN)),
            ("SetRole", chats.SetRoleRequest(chat_id=g, account_id=c.account_id, role=su.common.ROLE_ADMIN)),
            ("SetRole", chats.SetRoleRequest(chat_id=g, account_id=a1.account_id, role=su.common.ROLE_MEMBER))):
        su.expect_code(ck, lambda: b.rpc("Chats", method, req), SC.PERMISSION_DENIED,
                       "member %s %s" % (method, str(req).replace("\n", " ")))
    after = get_chat(a1, g)
    ck.check(after.name == before.name and after.only_admins_send == before.only_admins_send and
             chat_members(after) == chat_members(before) and after.last_seq == before.last_seq,
             "a plain member changed the group: %s -> %s" % (before, after))
    # the operations themselves work for the admin (so the refusals above can fail)
    r = su.expect_ok(ck, lambda: a1.rpc("Chats", "UpdateGroup", chats.UpdateGroupRequest(
        chat_id=g, description="set by the admin")), "admin UpdateGroup")
    ck.check(r is not None and r.description == "set by the admin", "admin UpdateGroup had no effect: %s" % r)


def section_removed_member(ck, ctx):
    ck.step("removed member: nothing after the removal, history up to it, cannot send or type")
    a1, a2, b, c = ctx["a1"], ctx["a2"], ctx["b"], ctx["c"]
    g = ctx["group"]
    sa1, sb, sc = ctx["sa1"], ctx["sb"], ctx["sc"]
    rid = sa1.send_message(g, "pre-removal", b"before the removal")
    pre = sa1.answer(rid).accepted.seq
    sc.wait_message(g, pre)

    su.expect_ok(ck, lambda: a1.rpc("Chats", "RemoveMember", chats.RemoveMemberRequest(
        chat_id=g, account_id=c.account_id)), "admin RemoveMember")
    h = su.history(a1, g, before_seq=1 << 50, limit=5)
    removal = next((m.seq for m in h.messages if m.chat_event.type == ChatEvent.MEMBER_REMOVED and
                    c.account_id in m.chat_event.account_ids), 0)
    if not ck.check(removal > pre, "no MEMBER_REMOVED message for C in the admin's history"):
        return
    m = sc.wait_message(g, removal)
    ck.check(m.chat_event.type == ChatEvent.MEMBER_REMOVED, "C's copy of the removal: %s" % m)

    # after the removal: a stream send, a unary send, a per-device send, typing
    posts = []
    rid = sa1.send_message(g, "post-1", b"after the removal (stream)")
    ev = sa1.answer(rid)
    ck.check(ev.WhichOneof("event") == "accepted", "post-removal stream send: %s" % su.describe(ev))
    posts.append(ev.accepted.seq)
    resp, _ = su.send_unary(b, g, "post-2", b"after the removal (unary)")
    posts.append(resp.seq)
    dps = {a2.device_id: b"for a2", ctx["a3"].device_id: b"for a3", b.device_id: b"for b"}
    rid = sa1.send_message(g, "post-3", device_payloads=dps)
    ev = sa1.answer(rid)
    ck.check(ev.WhichOneof("event") == "accepted",
             "per-device send covering the remaining members was refused (is the removed member still a "
             "recipient?): %s" % su.describe(ev))
    if ev.WhichOneof("event") == "accepted":
        posts.append(ev.accepted.seq)
    su.typing(sa1, g, True)
    for s in posts:
        ctx["sa2"].wait_message(g, s)
    late = [e for e in su.events_for(sc, 1.5)
            if (e.WhichOneof("event") == "message" and e.message.chat_id == g and e.message.seq > removal) or
            (e.WhichOneof("event") == "typing" and e.typing.chat_id == g)]
    ck.check(not late, "the removed member's stream got: %s" % [su.describe(e) for e in late])
    got = sorted(s for (ch, s) in sc.messages if ch == g)
    ck.check(got and got[-1] == removal,
             "the removed member's last delivered message is %s, not the removal %d" % (got[-1:], removal))

    # history: everything up to the removal, nothing after
    h = su.history(c, g, after_seq=0)
    seqs = [m.seq for m in h.messages]
    ck.check(pre in seqs and removal in seqs, "the removed member lost history up to the removal: %s" % seqs)
    ck.check(all(s <= removal for s in seqs), "GetHistory(after) shows the removed member later messages: %s" % [
        s for s in seqs if s > removal])
    h = su.history(c, g, before_seq=1 << 50, limit=10)
    ck.check(h.messages and h.messages[0].seq == removal and all(m.seq <= removal for m in h.messages),
             "GetHistory(before) newest for the removed member: %s" % [m.seq for m in h.messages])
    code, h = su.call_code(lambda: su.history(c, g, after_seq=removal))
    ck.check(code != SC.OK or not h.messages, "GetHistory(after the removal) returned %s" % (
        [m.seq for m in h.messages] if code == SC.OK else code))

    # cannot send or type
    ev = su.stream_answer(sc, sc.send_message(g, "removed-1", b"still here?"))
    ck.check(su.is_error(ev, SC.NOT_FOUND), "removed member stream send: %s" % su.describe(ev))
    su.expect_code(ck, lambda: su.send_unary(c, g, "removed-2", b"still here?"), SC.NOT_FOUND,
                   "removed member unary Send")
    su.expect_code(ck, lambda: su.send_unary(c, g, "removed-3", device_payloads={a2.device_id: b"x"}),
                   SC.NOT_FOUND, "removed member unary Send with device payloads")
    ev = su.stream_answer(sc, su.typing(sc, g, True), timeout=5)
    ck.check(su.is_error(ev, SC.NOT_FOUND), "removed member typing: %s" % su.describe(ev))
    leaked = [e for e in su.events_for(sa1, 0.5) + su.events_for(sb, 0.5)
              if (e.WhichOneof("event") == "typing" and e.typing.account_id == c.account_id) or
              (e.WhichOneof("event") == "message" and e.message.sender_account_id == c.account_id and
               e.message.seq > removal)]
    ck.check(not leaked, "the removed member's typing or messages reached members: %s" % leaked)

    # a new stream resuming from the start gets nothing after the removal
    sc.cancel()
    for resume in ({g: 0}, {g: removal}, None):
        s2 = c.connect(resume=resume)
        s2.wait_ready()
        rid = sa1.send_message(g, "post-reconnect-%s" % (resume and resume[g]), b"after the reconnect")
        after = sa1.answer(rid).accepted.seq
        sb.wait_message(g, after)
        su.events_for(s2, 1.0)
        late = sorted(s for (ch, s) in s2.messages if ch == g and s > removal)
        ck.check(not late, "a reconnected removed member (resume %s) got messages %s" % (resume, late))
        s2.cancel()
    ctx["removal"] = removal


def presence_events(stream, target, seconds):
    return [e.presence for e in su.events_for(stream, seconds, kinds=("presence",))
            if e.presence.account_id == target]


def wait_presence(stream, target, pred, timeout=8):
    """Presence events for target until one satisfies pred: (matched or None, every event seen)."""
    seen = []
    end = time.time() + timeout
    while time.time() < end:
        try:
            ev = stream.next(max(0.05, end - time.time()), kinds=("presence",))
        except Failure:
            break
        if ev is None:
            break
        if ev.presence.account_id != target:
            continue
        seen.append(ev.presence)
        if pred(ev.presence):
            return ev.presence, seen
    return None, seen


def hidden(p):
    return not p.online and p.last_seen_ms == 0


def section_blocking(ck, ctx):
    ck.step("blocking: no messages, typing, presence or groups from the blocked account")
    k, x, b = ctx["k"], ctx["x"], ctx["b"]
    sk, sx = k.connect(), x.connect()
    sk.wait_ready()
    sx.wait_ready()
    direct = x.rpc("Chats", "OpenDirectChat", chats.OpenDirectChatRequest(account_id=k.account_id)).chat_id
    su.subscribe(sx, [k.account_id])
    p, _ = wait_presence(sx, k.account_id, lambda p: p.online)
    ck.check(p is not None, "before the block X does not see K online (so the block cannot be tested)")

    k.rpc("Accounts", "Block", accounts.BlockRequest(account_id=x.account_id))
    p, seen = wait_presence(sx, k.account_id, hidden)
    ck.check(p is not None, "after the block, X's existing subscription still shows K: %s" % seen)
    su.heartbeat(sk)
    seen = presence_events(sx, k.account_id, 1.0)
    ck.check(all(hidden(p) for p in seen), "the blocked account sees the blocker's presence: %s" % seen)
    # a new subscription (X's second device), and the blocker reconnecting
    sx2 = ctx["x2"].connect()
    sx2.wait_ready()
    su.subscribe(sx2, [k.account_id])
    p, seen = wait_presence(sx2, k.account_id, lambda p: True)
    ck.check(p is not None and hidden(p), "a new subscription of the blocked account: %s" % seen)
    sk.close()
    sk = k.connect()
    sk.wait_ready()
    su.heartbeat(sk)
    seen = presence_events(sx, k.account_id, 1.5) + presence_events(sx2, k.account_id, 0.5)
    ck.check(all(hidden(p) for p in seen), "the blocked account sees the blocker reconnect: %s" % seen)

    # messages: stream, unary, per-device with a correct device list; typing
    ev = su.stream_answer(sx, sx.send_message(direct, "blocked-1", b"hello?"))
    ck.check(su.is_error(ev, SC.PERMISSION_DENIED), "blocked stream send: %s" % su.describe(ev))
    su.expect_code(ck, lambda: su.send_unary(x, direct, "blocked-2", b"hello?"), SC.PERMISSION_DENIED,
                   "blocked unary Send")
    kdevs = x.rpc("Accounts", "GetDevices", accounts.GetDevicesRequest(account_ids=[k.account_id]))
    dps = {dv: b"for k" for ad in kdevs.accounts for dv in ad.device_ids}
    dps[ctx["x2"].device_id] = b"for x2"  # exactly the recipients: the blocked state is the only obstacle
    su.expect_code(ck, lambda: su.send_unary(x, direct, "blocked-3", device_payloads=dps), SC.PERMISSION_DENIED,
                   "blocked unary Send with device payloads")
    su.typing(sx, direct, True)
    got = [e for e in su.events_for(sk, 1.5) if e.WhichOneof("event") in ("message", "typing")]
    ck.check(not got, "the blocker received from the blocked account: %s" % [su.describe(e) for e in got])
    ck.check(not su.history(k, direct, after_seq=0).messages or all(
        m.sender_account_id != x.account_id for m in su.history(k, direct, after_seq=0).messages),
        "a blocked account's message is in the blocker's history")
    su.expect_code(ck, lambda: x.rpc("Chats", "OpenDirectChat", chats.OpenDirectChatRequest(
        account_id=k.account_id)), SC.PERMISSION_DENIED, "blocked OpenDirectChat")

    # groups
    su.expect_code(ck, lambda: x.rpc("Chats", "CreateGroup", chats.CreateGroupRequest(
        name="with K", member_ids=[k.account_id])), SC.PERMISSION_DENIED, "blocked CreateGroup with the blocker")
    su.expect_code(ck, lambda: x.rpc("Chats", "CreateGroup", chats.CreateGroupRequest(
        name="with B and K", member_ids=[b.account_id, k.account_id])), SC.PERMISSION_DENIED,
        "blocked CreateGroup with the blocker and another")
    gx = x.rpc("Chats", "CreateGroup", chats.CreateGroupRequest(name="X's group", member_ids=[b.account_id]))
    su.expect_code(ck, lambda: x.rpc("Chats", "AddMembers", chats.AddMembersRequest(
        chat_id=gx.chat_id, account_ids=[k.account_id])), SC.PERMISSION_DENIED, "blocked AddMembers of the blocker")
    members = chat_members(get_chat(x, gx.chat_id))
    ck.check(k.account_id not in members, "the blocker was put in the blocked account's group")
    kchats = [ch.chat_id for ch in k.rpc("Chats", "ListChats", chats.ListChatsRequest()).chats]
    ck.check(kchats == [direct], "the blocker's chats: %s (expected only the direct chat %d)" % (kchats, direct))

    # after Unblock everything works again (so the refusals above can fail)
    k.rpc("Accounts", "Unblock", accounts.UnblockRequest(account_id=x.account_id))
    su.heartbeat(sk)
    p, seen = wait_presence(sx, k.account_id, lambda p: p.online)
    ck.check(p is not None, "after Unblock X still does not see K online: %s" % seen)
    ev = su.stream_answer(sx, sx.send_message(direct, "unblocked-1", b"hello again"))
    ck.check(ev is not None and ev.WhichOneof("event") == "accepted", "send after Unblock: %s" % su.describe(ev))
    if ev is not None and ev.WhichOneof("event") == "accepted":
        sk.wait_message(direct, ev.accepted.seq)
    su.expect_ok(ck, lambda: x.rpc("Chats", "AddMembers", chats.AddMembersRequest(
        chat_id=gx.chat_id, account_ids=[k.account_id])), "AddMembers after Unblock")
    for s in (sk, sx, sx2):
        s.close()


def section_devices_profile(ck, ctx):
    ck.step("devices and profiles: one account cannot touch another's")
    a1, b = ctx["a1"], ctx["b"]
    sb = ctx["sb"]
    b.rpc("Accounts", "UpdateProfile", accounts.UpdateProfileRequest(display_name="Bee", about="B's about"))
    su.expect_code(ck, lambda: a1.rpc("Accounts", "RenameDevice", accounts.RenameDeviceRequest(
        device_id=b.device_id, name="renamed by A")), (SC.PERMISSION_DENIED, SC.NOT_FOUND),
        "RenameDevice of another account's device")
    su.expect_code(ck, lambda: a1.rpc("Accounts", "RemoveDevice", accounts.RemoveDeviceRequest(
        device_id=b.device_id)), (SC.PERMISSION_DENIED, SC.NOT_FOUND), "RemoveDevice of another account's device")
    devs = b.rpc("Accounts", "ListDevices").devices
    ck.check([(d.device_id, d.name) for d in devs] == [(b.device_id, "B")],
             "B's devices after A's attempts: %s" % [(d.device_id, d.name) for d in devs])
    code, _ = su.call_code(lambda: b.rpc("Accounts", "GetProfile"))
    ck.check(code == SC.OK, "B's token stopped working after A's RemoveDevice attempt: %s" % code.name)
    rid = su.heartbeat(sb)
    got = False
    for _ in range(50):
        ev = sb.next(5, kinds=("heartbeat_ack",))
        if ev is None or ev.request_id == rid:
            got = ev is not None
            break
    ck.check(got, "B's stream ended after A's RemoveDevice attempt: %s" % (sb.status,))
    mine = {d.device_id for d in a1.rpc("Accounts", "ListDevices").devices}
    ck.check(b.device_id not in mine, "A's ListDevices shows B's device")

    a1.rpc("Accounts", "UpdateProfile", accounts.UpdateProfileRequest(display_name="A renamed", about="A's"))
    a1.rpc("Accounts", "UpdatePrivacy", accounts.UpdatePrivacyRequest(
        last_seen=su.common.VISIBILITY_NOBODY, online=su.common.VISIBILITY_CONTACTS))
    own_b = b.rpc("Accounts", "GetProfile")
    ck.check(own_b.display_name == "Bee" and own_b.about == "B's about",
             "A's UpdateProfile changed B's profile: %s" % own_b)
    ck.check(own_b.privacy.last_seen in (su.common.VISIBILITY_UNSPECIFIED, su.common.VISIBILITY_EVERYONE) and
             own_b.privacy.online in (su.common.VISIBILITY_UNSPECIFIED, su.common.VISIBILITY_EVERYONE),
             "A's UpdatePrivacy changed B's settings: %s" % own_b.privacy)
    seen_by_a = a1.rpc("Accounts", "GetProfile", accounts.GetProfileRequest(account_id=b.account_id))
    ck.check(seen_by_a.account_id == b.account_id and seen_by_a.display_name == "Bee",
             "B's public profile: %s" % seen_by_a)
    ck.check(seen_by_a.phone_number == "", "another account's phone number is exposed: %r" % seen_by_a.phone_number)
    ck.check(not seen_by_a.HasField("privacy"), "another account's privacy settings are exposed: %s" %
             seen_by_a.privacy)
    own_a = a1.rpc("Accounts", "GetProfile")
    ck.check(own_a.phone_number == a1.phone and own_a.HasField("privacy") and own_a.display_name == "A renamed",
             "the caller's own profile lacks its phone or privacy (so the hiding check can fail): %s" % own_a)
    seen_by_b = b.rpc("Accounts", "GetProfile", accounts.GetProfileRequest(account_id=a1.account_id))
    ck.check(seen_by_b.phone_number == "" and not seen_by_b.HasField("privacy") and
             seen_by_b.display_name == "A renamed", "A's public profile as B sees it: %s" % seen_by_b)
    a1.rpc("Accounts", "UpdatePrivacy", accounts.UpdatePrivacyRequest(
        last_seen=su.common.VISIBILITY_EVERYONE, online=su.common.VISIBILITY_EVERYONE))


def check_dead(ck, cl, what):
    for service, method, req in (("Accounts", "GetProfile", None), ("Accounts", "ListDevices", None),
                                 ("Chats", "ListChats", None),
                                 ("Messaging", "GetHistory", messaging.GetHistoryRequest(chat_id=1))):
        su.expect_code(ck, lambda: cl.rpc(service, method, req), SC.UNAUTHENTICATED,
                       "%s: %s.%s" % (what, service, method))
    code, events = connect_status(cl, cl.md())
    ck.check(code == SC.UNAUTHENTICATED and not events, "%s: Connect -> %s after %d events" % (
        what, code.name, len(events)))


def section_revocation(ck, ctx):
    ck.step("revocation: a revoked token and a removed device are refused and their streams end")
    a1, a2, a3, b = ctx["a1"], ctx["a2"], ctx["a3"], ctx["b"]
    sa2 = ctx["sa2"]
    sa3 = a3.connect()
    sa3.wait_ready()
    # a device revoking its own token
    su.expect_ok(ck, lambda: a3.rpc("Accounts", "RemoveDevice", accounts.RemoveDeviceRequest(
        device_id=a3.device_id)), "a device removing itself")
    st = su.wait_end(sa3)
    ck.check(st is not None and st[0] == SC.UNAUTHENTICATED, "the revoked device's stream: %s" % (st,))
    check_dead(ck, a3, "revoked token")
    # a device removed by another device of the account (its stream on another node when --nodes 2)
    su.expect_ok(ck, lambda: a1.rpc("Accounts", "RemoveDevice", accounts.RemoveDeviceRequest(
        device_id=a2.device_id)), "removing another device of the account")
    st = su.wait_end(sa2)
    ck.check(st is not None and st[0] == SC.UNAUTHENTICATED, "the removed device's stream: %s" % (st,))
    check_dead(ck, a2, "removed device")
    devs = [d.device_id for d in a1.rpc("Accounts", "ListDevices").devices]
    ck.check(devs == [a1.device_id], "A's devices after the removals: %s" % devs)
    # no longer a recipient
    err = su.expect_code(ck, lambda: su.send_unary(a1, ctx["direct"], "after-removal", device_payloads={
        b.device_id: b"for b", a2.device_id: b"for the removed a2"}), SC.FAILED_PRECONDITION,
        "per-device send still covering the removed device")
    if err is not None:
        raw = dict(err.trailing_metadata() or ()).get("parley-device-mismatch-bin")
        mm = su.common.DeviceMismatch.FromString(raw) if raw else None
        ck.check(mm is not None and list(mm.stale_device_ids) == [a2.device_id],
                 "the removed device is not reported stale: %s" % mm)
    code, _ = su.call_code(lambda: a1.rpc("Accounts", "GetProfile"))
    ck.check(code == SC.OK, "the remaining device was refused: %s" % code.name)


def body(ck, nodes):
    where = su.addrs(nodes)
    at = lambda i: where[i % len(where)]  # noqa: E731
    ck.step("register A (three devices), B, C, N (outsider), K and X (two devices)")
    a1 = su.new_client(at(0), "A phone")
    a2 = su.second_device(at(1), a1, "A laptop")
    a3 = su.second_device(at(0), a1, "A tablet")
    b = su.new_client(at(1), "B")
    c = su.new_client(at(0), "C")
    n = su.new_client(at(1), "N")
    k = su.new_client(at(0), "K")
    x = su.new_client(at(1), "X")
    x2 = su.second_device(at(0), x, "X laptop")
    ctx = dict(a1=a1, a2=a2, a3=a3, b=b, c=c, n=n, k=k, x=x, x2=x2)
    ctx["direct"] = a1.rpc("Chats", "OpenDirectChat", chats.OpenDirectChatRequest(account_id=b.account_id)).chat_id
    g = a1.rpc("Chats", "CreateGroup", chats.CreateGroupRequest(name="friends", member_ids=[b.account_id,
                                                                                            c.account_id]))
    ctx["group"] = g.chat_id
    for name, cl in (("sa1", a1), ("sa2", a2), ("sb", b), ("sc", c), ("sn", n)):
        ctx[name] = cl.connect()
    for name in ("sa1", "sa2", "sb", "sc", "sn"):
        ctx[name].wait_ready()

    section_tokens(ck, ctx)
    section_non_member(ck, ctx)
    section_admin_only(ck, ctx)
    section_removed_member(ck, ctx)
    section_blocking(ck, ctx)
    section_devices_profile(ck, ctx)
    section_revocation(ck, ctx)
    for name in ("sa1", "sb", "sn"):
        ctx[name].close()


if __name__ == "__main__":
    nodes = su.nodes_arg(sys.argv[1:])
    sys.exit(su.run("authorization", lambda ck: body(ck, nodes)))
