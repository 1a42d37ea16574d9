#!/usr/bin/python3
"""Privacy: presence visibility (everyone / contacts / nobody), for online
status and last-seen separately, as subscribed viewers see it.

O owns the presence; V1 is in O's contacts, V2 is not. Both subscribe once
and keep their subscriptions while O changes settings, goes offline and
comes back, so every change must apply to the existing subscriptions:

  - hidden means hidden: a viewer not allowed to see O's online status
    never gets online=true, one not allowed to see last-seen never gets a
    non-zero last_seen_ms, whatever happens meanwhile;
  - visible means visible: an allowed viewer sees O online while O is
    connected, and O's last-seen (non-zero) once O has gone offline;
  - contacts: only accounts in O's contacts (not accounts that have O in
    theirs) see what is set to contacts;
  - the owner's contact list changing (RemoveContact / AddContacts) applies
    to existing subscriptions too: at once, and for every later change of
    the owner's presence (a removed contact must not keep seeing O come
    and go);
  - a new subscription (another device of the viewer) gets the same
    answer as an existing one;
  - after presence_unsubscribe nothing more arrives.

  privacy.py [--nodes N]   devices spread over PARLEY_ADDR_0..N-1

Run under tests/harness/with_stack.sh and with_parleyd.py.
"""
import sys
import time

import secutil as su
from secutil import Failure, accounts

EVERYONE, CONTACTS, NOBODY = (su.common.VISIBILITY_EVERYONE, su.common.VISIBILITY_CONTACTS,
                              su.common.VISIBILITY_NOBODY)
NAMES = {EVERYONE: "everyone", CONTACTS: "contacts", NOBODY: "nobody"}


class Viewer:
    """A viewer's stream and every Presence event it got for the owner."""

    def __init__(self, name, client, owner_id):
        self.name = name
        self.client = client
        self.owner = owner_id
        self.stream = client.connect()
        self.stream.wait_ready()
        self.events = []
        self.latest = None  # the last Presence of the owner this stream got

    def subscribe(self):
        su.subscribe(self.stream, [self.owner])

    def pump(self, seconds):
        """Reads presence events for the owner for a while; returns them."""
        got = []
        end = time.time() + seconds
        while time.time() < end:
            try:
                ev = self.stream.next(max(0.05, end - time.time()), kinds=("presence",))
            except Failure:
                break
            if ev is None:
                break
            if ev.presence.account_id == self.owner:
                got.append(ev.presence)
                self.latest = ev.presence
        self.events += got
        return got

    def wait(self, pred, timeout=8):
        """Reads until an event satisfies pred: (event or None, events read)."""
        got = []
        end = time.time() + timeout
        while time.time() < end:
            try:
                ev = self.stream.next(max(0.05, end - time.time()), kinds=("presence",))
            except Failure:
                break
            if ev is None:
                break
            if ev.presence.account_id != self.owner:
                continue
            got.append(ev.presence)
            self.latest = ev.presence
            if pred(ev.presence):
                break
        self.events += got
        return (got[-1] if got and pred(got[-1]) else None), got


def fmt(events):
    return ["online=%s last_seen=%d" % (p.online, p.last_seen_ms) for p in events]


class Scenario:
    def __init__(self, ck, owner, viewers):
        self.ck = ck
        self.owner = owner
        self.viewers = viewers
        self.ostream = None
        self.online_vis = EVERYONE
        self.last_seen_vis = EVERYONE
        self.contacts = set()

    def allowed(self, vis, viewer):
        return vis == EVERYONE or (vis == CONTACTS and viewer.client.account_id in self.contacts)

    def set_privacy(self, online=None, last_seen=None):
        req = accounts.UpdatePrivacyRequest(online=online or 0, last_seen=last_seen or 0)
        r = self.owner.rpc("Accounts", "UpdatePrivacy", req)
        self.online_vis = online or self.online_vis
        self.last_seen_vis = last_seen or self.last_seen_vis
        self.ck.check(r.online == self.online_vis and r.last_seen == self.last_seen_vis,
                      "UpdatePrivacy answered %s" % str(r).replace("\n", " "))

    def go_online(self):
        self.ostream = self.owner.connect()
        self.ostream.wait_ready()

    def go_offline(self):
        self.ostream.close()
        self.ostream = None

    def verify(self, what, viewers=None, settle=1.0):
        """Each viewer: the events since the change respect what it may see, and it ends up
        seeing what it should."""
        online = self.ostream is not None
        if online:
            su.heartbeat(self.ostream)
        for v in viewers or self.viewers:
            see_online = self.allowed(self.online_vis, v)
            see_last = self.allowed(self.last_seen_vis, v)
            if online and see_online:
                goal = lambda p: p.online  # noqa: E731
                goal_what = "online"
            elif not online and see_last:
                goal = lambda p: not p.online and p.last_seen_ms > 0  # noqa: E731
                goal_what = "offline with a last-seen"
            else:
                goal = lambda p: not p.online and (see_last or p.last_seen_ms == 0)  # noqa: E731
                goal_what = "offline" + ("" if see_last else " without a last-seen")
            if v.latest is not None and goal(v.latest):
                # nothing changes for this viewer: no event is needed, a contrary one is wrong
                hit, got = v.latest, []
            else:
                hit, got = v.wait(goal)
            got += v.pump(settle)
            label = "%s: %s (online %s, last-seen %s, O %s, %s)" % (
                what, v.name, NAMES[self.online_vis], NAMES[self.last_seen_vis], "connected" if online else "away",
                "a contact" if v.client.account_id in self.contacts else "not a contact")
            self.ck.check(hit is not None, "%s should see O %s; got %s" % (label, goal_what, fmt(got)))
            if not see_online:
                self.ck.check(not any(p.online for p in got), "%s saw O online: %s" % (label, fmt(got)))
            if not see_last:
                self.ck.check(all(p.last_seen_ms == 0 for p in got), "%s saw O's last-seen: %s" % (label, fmt(got)))
            if hit is not None:
                self.ck.check(goal(v.latest), "%s: the latest event contradicts the settings: %s" % (label,
                                                                                                    fmt(got)))


def body(ck, nodes):
    where = su.addrs(nodes)
    at = lambda i: where[i % len(where)]  # noqa: E731
    ck.step("register O (owner), V1 (O's contact), V2, V3 (has O as a contact, is not O's); "
            "V1 and V2 have second devices")
    o = su.new_client(at(0), "O")
    v1c = su.new_client(at(1), "V1")
    v2c = su.new_client(at(0), "V2")
    v3c = su.new_client(at(1), "V3")
    v1d = su.second_device(at(0), v1c, "V1'")
    v2d = su.second_device(at(1), v2c, "V2'")
    o.rpc("Accounts", "AddContacts", accounts.AddContactsRequest(account_ids=[v1c.account_id]))
    v3c.rpc("Accounts", "AddContacts", accounts.AddContactsRequest(account_ids=[o.account_id]))
    sc = Scenario(ck, o, [])
    sc.contacts = {v1c.account_id}
    sc.go_online()
    v1 = Viewer("V1", v1c, o.account_id)
    v2 = Viewer("V2", v2c, o.account_id)
    v3 = Viewer("V3", v3c, o.account_id)
    sc.viewers = [v1, v2, v3]
    for v in sc.viewers:
        v.subscribe()

    ck.step("defaults (everyone): every viewer sees O online")
    sc.verify("default")

    ck.step("online: contacts — only V1 sees O online (existing subscriptions)")
    sc.set_privacy(online=CONTACTS)
    sc.verify("online=contacts")

    ck.step("online: nobody — nobody sees O online")
    sc.set_privacy(online=NOBODY)
    sc.verify("online=nobody")

    ck.step("O goes away: last-seen everyone — everyone sees a last-seen, nobody sees O online")
    sc.go_offline()
    sc.verify("O away")

    ck.step("last-seen: contacts — only V1 keeps O's last-seen")
    sc.set_privacy(last_seen=CONTACTS)
    sc.verify("last_seen=contacts")

    ck.step("last-seen: nobody — nobody sees it")
    sc.set_privacy(last_seen=NOBODY)
    sc.verify("last_seen=nobody")

    ck.step("online everyone, last-seen nobody; O comes back, then goes away")
    sc.set_privacy(online=EVERYONE)
    sc.verify("online=everyone while away")
    sc.go_online()
    sc.verify("back online, last_seen=nobody")
    sc.go_offline()
    sc.verify("away again, last_seen=nobody")

    ck.step("online and last-seen contacts; O comes back")
    sc.set_privacy(online=CONTACTS, last_seen=CONTACTS)
    sc.verify("both contacts while away")
    sc.go_online()
    sc.verify("both contacts, back online")

    ck.step("a new subscription gets what an existing one gets")
    v2b = Viewer("V2 (second device)", v2d, o.account_id)
    v2b.subscribe()
    sc.verify("new subscription", viewers=[v2b])
    v2b.stream.close()

    ck.step("last-seen everyone, online contacts; O goes away — V2 gets a last-seen but never online")
    sc.set_privacy(last_seen=EVERYONE)
    sc.verify("online=contacts, last_seen=everyone, connected")
    sc.go_offline()
    sc.verify("online=contacts, last_seen=everyone, away")

    ck.step("unsubscribed: nothing more arrives")
    su.subscribe(v3.stream, [o.account_id], on=False)
    v3.pump(0.5)
    sc.viewers = [v1, v2]
    sc.go_online()
    sc.set_privacy(online=EVERYONE)
    sc.verify("online=everyone after V3 unsubscribed")
    late = v3.pump(1.0)
    ck.check(not late, "V3 unsubscribed and still got O's presence: %s" % fmt(late))

    ck.step("the owner's contact list changes apply to existing subscriptions")
    sc.set_privacy(online=CONTACTS, last_seen=CONTACTS)
    sc.verify("both contacts, connected")
    o.rpc("Accounts", "RemoveContact", accounts.RemoveContactRequest(account_id=v1c.account_id))
    sc.contacts.discard(v1c.account_id)
    sc.verify("after RemoveContact(V1)", viewers=[v1])
    o.rpc("Accounts", "AddContacts", accounts.AddContactsRequest(account_ids=[v2c.account_id]))
    sc.contacts.add(v2c.account_id)
    sc.verify("after AddContacts(V2)", viewers=[v2])
    ck.step("... and O's next reconnect on those same subscriptions follows the new contact list")
    sc.go_offline()
    sc.verify("away after the contact changes", viewers=[v1, v2])
    sc.go_online()
    sc.verify("back after the contact changes", viewers=[v1, v2])
    ck.step("... and new subscriptions see the new contact list")
    v1n = Viewer("V1 (second device)", v1d, o.account_id)
    v2n = Viewer("V2 (second device)", v2d, o.account_id)
    for v in (v1n, v2n):
        v.subscribe()
    sc.verify("new subscriptions after the contact changes", viewers=[v1n, v2n])

    for v in (v1, v2, v3, v1n, v2n):
        v.stream.close()
    if sc.ostream:
        sc.go_offline()


if __name__ == "__main__":
    nodes = su.nodes_arg(sys.argv[1:])
    sys.exit(su.run("privacy", lambda ck: body(ck, nodes)))
