#!/usr/bin/python3
"""checker.py — the no-loss proof over a fault_driver run.

  checker.py [--no-db] [--examples N] DIR

Reads DIR/setup.tsv and DIR/dev<i>.tsv (fault_driver's records; the record
format is in device.c) and, unless --no-db, each chat's log from its
PostgreSQL shard (PARLEY_POSTGRES_SERVER: the servers, ';'-separated;
PARLEY_POSTGRES_SHARDS: the shard count; a chat's shard is
(chat_id >> 12) & 1023 and the servers hold equal contiguous ranges of
shards, schema shard_NNNN). Asserts:

  answers     every queued send got exactly one answer, and the one its
              chat called for: accepted when the sender's account is a
              member, refused (SEND_FAILED) when it is not; none pending at
              the end; no (chat, seq) accepted for two client ids, no client
              id accepted at two seqs
  durable     every accepted seq is in PostgreSQL with the same sender
              (account and device) and client id; no refused client id is
              stored; every stored message of this run was accepted
  no loss     every stored message (system messages aside) reached every
              recipient device: the devices of every other member and the
              sender's other devices, with the same sender and client id
              and the payload the sender sent
  exactly once  no device's app saw a (chat, seq) twice (two MESSAGE
              events, or a MESSAGE for its own accepted send)
  order       per device and chat, MESSAGE seqs strictly increase; at
              each (chat, seq) every device saw the same client id
  refused     no refused message reached any device
  no gaps     no GAP event (nothing here is past retention)

Prints a report with counts and, for each failed assertion, examples.
Exit status: 0 all hold, 1 something failed, 2 unreadable input.
"""
import argparse
import collections
import os
import subprocess
import sys


def load_setup(d):
    s = {"accounts": {}, "devices": {}, "chats": {}, "params": {}}
    with open(os.path.join(d, "setup.tsv")) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "run":
                s["tag"] = p[1]
            elif p[0] == "param":
                s["params"][p[1]] = p[2]
            elif p[0] == "account":
                s["accounts"][int(p[1])] = {"id": int(p[2]), "phone": p[3]}
            elif p[0] == "device":
                s["devices"][int(p[1])] = {"account": int(p[3]), "device_id": int(p[4]), "server": p[5]}
            elif p[0] == "chat":
                members = set(int(x) for x in p[4].split(",") if x)
                s["chats"][int(p[2])] = {"index": int(p[1]), "kind": int(p[3]), "members": members}
    return s


def load_device(d, i):
    rec = collections.defaultdict(list)
    path = os.path.join(d, "dev%d.tsv" % i)
    if not os.path.exists(path):
        return rec
    with open(path) as f:
        for n, line in enumerate(f):
            p = line.rstrip("\n").split("\t")
            rec[p[0]].append((n, p[1:]))
    return rec


def db_logs(setup, chats):
    """{chat_id: {seq: (sender_account, sender_device, client_id, is_system)}}, last_seq per chat."""
    servers = [s for s in os.environ.get("PARLEY_POSTGRES_SERVER", "").split(";") if s.strip()]
    shards = int(os.environ.get("PARLEY_POSTGRES_SHARDS", "256"))
    if not servers:
        raise RuntimeError("PARLEY_POSTGRES_SERVER is not set (or pass --no-db)")
    by_server = collections.defaultdict(list)
    for chat in chats:
        shard = (chat >> 12) & 1023
        if shard >= shards:
            raise RuntimeError("chat %d is on shard %d, but the cluster has %d" % (chat, shard, shards))
        by_server[shard * len(servers) // shards].append((chat, shard))
    logs, last = {c: {} for c in chats}, {}
    for srv, items in by_server.items():
        parts = []
        for chat, shard in items:
            schema = "shard_%04d" % shard
            parts.append("SELECT chat_id, seq, sender_account, sender_device, client_msg_id, "
                         "(chat_event IS NOT NULL)::int, 0 FROM %s.messages WHERE chat_id = %d" % (schema, chat))
            parts.append("SELECT id, last_seq, 0, 0, '', 0, 1 FROM %s.chats WHERE id = %d" % (schema, chat))
        sql = " UNION ALL ".join(parts)
        r = subprocess.run(["psql", servers[srv], "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql on server %d: %s" % (srv, r.stderr.strip()))
        for line in r.stdout.splitlines():
            if not line:
                continue
            chat, seq, acc, dev, cid, system, is_chat_row = line.split("\t")
            if is_chat_row == "1":
                last[int(chat)] = int(seq)
            else:
                logs[int(chat)][int(seq)] = (int(acc), int(dev), cid, system == "1")
    return logs, last


class Report:
    def __init__(self, examples):
        self.examples = examples
        self.failures = collections.OrderedDict()  # assertion -> [examples], count
        self.counts = collections.OrderedDict()

    def fail(self, what, example):
        lst = self.failures.setdefault(what, [0, []])
        lst[0] += 1
        if len(lst[1]) < self.examples:
            lst[1].append(example)


def check(d, use_db, examples):
    setup = load_setup(d)
    rep = Report(examples)
    tag = setup.get("tag", "")
    dev_index = {v["device_id"]: i for i, v in setup["devices"].items()}
    devices_of_acct = collections.defaultdict(list)
    for i, v in setup["devices"].items():
        devices_of_acct[v["account"]].append(i)
    chats = setup["chats"]
    recs = {i: load_device(d, i) for i in setup["devices"]}

    # ---- sends and their answers ----
    queued = {}  # (dev, local) -> (chat, cid, expect_refused)
    queued_ms = {}  # cid -> when it was queued (the records share one clock)
    sent = 0
    for i, r in recs.items():
        for _, p in r["Q"]:
            queued[(i, int(p[1]))] = (int(p[2]), p[3], p[4] == "1")
            queued_ms[p[3]] = int(p[0])
            sent += 1
        for _, p in r["X"]:
            rep.fail("a send could not be queued", "dev%d chat %s %s: %s" % (i, p[1], p[2], p[3]))
        for _, p in r["P"]:
            rep.fail("sends still pending when the driver stopped", "dev%d: %s pending" % (i, p[1]))
    answers = collections.defaultdict(list)  # (dev, local) -> [("A", chat, seq, cid, dup) | ("F", chat, cid, code, msg)]
    answer_ms = []  # queued -> answered, per send
    for i, r in recs.items():
        for _, p in r["A"]:
            answers[(i, int(p[1]))].append(("A", int(p[2]), int(p[3]), p[4], p[5] == "1"))
            if p[4] in queued_ms:
                answer_ms.append(int(p[0]) - queued_ms[p[4]])
        for _, p in r["F"]:
            answers[(i, int(p[1]))].append(("F", int(p[2]), p[3], p[4], p[5] if len(p) > 5 else ""))
            if p[3] in queued_ms:
                answer_ms.append(int(p[0]) - queued_ms[p[3]])
    accepted = {}  # (chat, seq) -> (dev, cid)
    accepted_at = {}  # cid -> (chat, seq)
    refused = {}  # cid -> (dev, chat, code, msg)
    dup_answers = unexpected_refusals = 0
    for key, (chat, cid, expect_refused) in sorted(queued.items()):
        got = answers.get(key, [])
        if not got:
            rep.fail("a send was never answered", "dev%d %s to chat %d" % (key[0], cid, chat))
            continue
        if len(got) > 1:
            rep.fail("a send was answered more than once (the app saw it twice)",
                     "dev%d %s: %s" % (key[0], cid, got))
        a = got[0]
        if a[0] == "A":
            if a[1] != chat or a[3] != cid:
                rep.fail("an answer names another send", "dev%d local %d: queued %s/%d, answer %s" %
                         (key[0], key[1], cid, chat, a))
            if expect_refused:
                rep.fail("a send to a chat the sender is not in was accepted",
                         "dev%d %s chat %d seq %d" % (key[0], cid, chat, a[2]))
            if a[4]:
                dup_answers += 1
            other = accepted.get((chat, a[2]))
            if other and other[1] != cid:
                rep.fail("two client ids accepted at one (chat, seq)",
                         "chat %d seq %d: %s (dev%d) and %s (dev%d)" % (chat, a[2], other[1], other[0], cid, key[0]))
            if cid in accepted_at and accepted_at[cid] != (chat, a[2]):
                rep.fail("one client id accepted at two seqs", "%s: %s and %s" % (cid, accepted_at[cid], (chat, a[2])))
            accepted[(chat, a[2])] = (key[0], cid)
            accepted_at[cid] = (chat, a[2])
        else:
            refused[cid] = (key[0], chat, a[3], a[4])
            if not expect_refused:
                unexpected_refusals += 1
                rep.fail("a send that should have been accepted was refused",
                         "dev%d %s chat %d: %s %s" % (key[0], cid, chat, a[3], a[4]))
    for key, got in answers.items():
        if key not in queued:
            rep.fail("an answer to a send never queued", "dev%d local %d: %s" % (key[0], key[1], got))

    # ---- the logs in PostgreSQL ----
    if use_db:
        logs, last_seq = db_logs(setup, list(chats))
        for (chat, seq), (dev, cid) in sorted(accepted.items()):
            row = logs[chat].get(seq)
            want = (setup["devices"][dev]["account"], setup["devices"][dev]["device_id"], cid)
            if row is None:
                rep.fail("an accepted message is not in PostgreSQL", "chat %d seq %d %s" % (chat, seq, cid))
            elif row[:3] != want:
                rep.fail("PostgreSQL holds another message at an accepted seq",
                         "chat %d seq %d: accepted %s, stored %s" % (chat, seq, want, row[:3]))
        for chat, log in logs.items():
            for seq, (acc, dev, cid, system) in log.items():
                if cid in refused:
                    rep.fail("a refused message is in PostgreSQL", "chat %d seq %d %s" % (chat, seq, cid))
                elif not system and cid.startswith(tag + "-") and (chat, seq) not in accepted:
                    rep.fail("a stored message was never accepted", "chat %d seq %d %s" % (chat, seq, cid))
            seqs = sorted(log)
            if seqs and (seqs != list(range(1, len(seqs) + 1)) or last_seq.get(chat) != seqs[-1]):
                rep.fail("a chat's log has holes or disagrees with its last_seq",
                         "chat %d: %d rows, max seq %d, last_seq %s" % (chat, len(seqs), seqs[-1], last_seq.get(chat)))
        universe = {(c, s): v for c, log in logs.items() for s, v in log.items()}
    else:
        universe = {k: (setup["devices"][dev]["account"], setup["devices"][dev]["device_id"], cid, False)
                    for k, (dev, cid) in accepted.items()}

    # ---- what each device's app saw ----
    delivered = out_of_order = repeats = bad_payloads = gaps = errors = streams_lost = connects_failed = 0
    seen = collections.defaultdict(dict)  # dev -> {(chat, seq): (acc, devid, cid)}
    delivery_ms = []  # queued at the sender -> taken by a recipient's app
    cid_at = {}  # (chat, seq) -> (cid, first device that saw it)
    for i, r in recs.items():
        own = {}
        for _, p in r["A"]:
            own[(int(p[2]), int(p[3]))] = p[4]
        last = {}
        for _, p in r["M"]:
            chat, seq, acc, dev, cid, system, ok = int(p[1]), int(p[2]), int(p[3]), int(p[4]), p[5], p[6], p[7]
            if system == "0":
                delivered += 1
                if cid in queued_ms:
                    delivery_ms.append(int(p[0]) - queued_ms[cid])
            if ok != "1":
                bad_payloads += 1
                rep.fail("a message carried the wrong payload", "dev%d chat %d seq %d %s" % (i, chat, seq, cid))
            if (chat, seq) in seen[i] or (chat, seq) in own:
                repeats += 1
                rep.fail("a device's app saw a (chat, seq) twice", "dev%d chat %d seq %d %s%s" %
                         (i, chat, seq, cid, " (its own accepted send)" if (chat, seq) in own else ""))
            elif seq <= last.get(chat, 0):
                out_of_order += 1
                rep.fail("per-chat order broken on a device", "dev%d chat %d: seq %d after %d" %
                         (i, chat, seq, last[chat]))
            last[chat] = max(seq, last.get(chat, 0))
            seen[i][(chat, seq)] = (acc, dev, cid)
            prev = cid_at.setdefault((chat, seq), (cid, i))
            if prev[0] != cid:
                rep.fail("devices saw different messages at one (chat, seq)",
                         "chat %d seq %d: dev%d %s, dev%d %s" % (chat, seq, prev[1], prev[0], i, cid))
            if cid in refused:
                rep.fail("a refused message was delivered", "dev%d chat %d seq %d %s" % (i, chat, seq, cid))
            if chat not in chats:
                rep.fail("a message of a chat this run did not make", "dev%d chat %d seq %d" % (i, chat, seq))
        for _, p in r["G"]:
            gaps += 1
            rep.fail("a gap was announced", "dev%d chat %s seqs %s..%s" % (i, p[1], p[2], p[3]))
        for _, p in r["E"]:
            errors += 1
            rep.fail("an ERROR event reached the app", "dev%d %s" % (i, "\t".join(p)))
        prev = None
        for _, p in r["S"]:
            if p[1] == "disconnected":
                if prev in ("catching up", "ready"):
                    streams_lost += 1
                else:
                    connects_failed += 1
            prev = p[1]

    # ---- no loss: every stored message at every recipient device ----
    expected = lost = 0
    for (chat, seq), (acc, devid, cid, system) in sorted(universe.items()):
        if system or chat not in chats:
            continue
        sender = dev_index.get(devid)
        for member in chats[chat]["members"]:
            for i in devices_of_acct.get(member, []):
                if i == sender:
                    continue
                expected += 1
                got = seen[i].get((chat, seq))
                if got is None:
                    lost += 1
                    rep.fail("an accepted message did not reach a recipient device (LOSS)",
                             "dev%d chat %d seq %d %s from dev%s" % (i, chat, seq, cid, sender))
                elif got != (acc, devid, cid):
                    rep.fail("a device got another message than the one stored",
                             "dev%d chat %d seq %d: got %s, stored %s" % (i, chat, seq, got, (acc, devid, cid)))

    c = rep.counts
    c["devices"] = len(setup["devices"])
    c["chats"] = len(chats)
    c["sent (sends queued)"] = sent
    c["accepted"] = len(accepted)
    c["refused (to chats the sender is not in)"] = len(refused) - unexpected_refusals
    c["refused unexpectedly"] = unexpected_refusals
    c["retried (answered as duplicates)"] = dup_answers
    c["delivered (MESSAGE events)"] = delivered
    c["deliveries expected"] = expected
    c["duplicates reaching the app"] = repeats
    c["duplicates suppressed by the library"] = "not observable through parley.h"
    c["lost"] = lost
    c["out of order"] = out_of_order
    c["bad payloads"] = bad_payloads
    c["gaps"] = gaps
    c["error events"] = errors
    c["streams lost (devices disconnected)"] = streams_lost
    c["connection attempts failed"] = connects_failed
    if use_db:
        c["messages in PostgreSQL (this run's chats)"] = len(universe)
    c["send latency ms, queued -> answered"] = spread(answer_ms)
    c["delivery latency ms, queued -> recipient app"] = spread(delivery_ms)
    return rep


def spread(values):
    """"p50 / p99 / max" of a list of numbers (not asserted: for reading)."""
    if not values:
        return "-"
    v = sorted(values)
    return "p50 %d / p99 %d / max %d" % (v[len(v) // 2], v[min(len(v) - 1, len(v) * 99 // 100)], v[-1])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--no-db", action="store_true", help="skip the PostgreSQL checks")
    ap.add_argument("--examples", type=int, default=5, help="examples printed per failed assertion")
    args = ap.parse_args(argv)
    try:
        rep = check(args.dir, not args.no_db, args.examples)
    except (OSError, RuntimeError, ValueError, IndexError) as e:
        print("checker: cannot check %s: %s" % (args.dir, e))
        return 2
    print("checker: report for %s" % args.dir)
    for k, v in rep.counts.items():
        print("  %-46s %s" % (k, v))
    if not rep.failures:
        print("checker: PASSED")
        return 0
    print("checker: FAILED")
    for what, (n, ex) in rep.failures.items():
        print("  %s: %d" % (what, n))
        for e in ex:
            print("      " + e)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
