#!/usr/bin/env python3
"""test_migrate.py — parley-migrate and pl_cluster_verify() against real
PostgreSQL servers.

Each case runs under tests/harness/with_stack.sh (two servers, 16 shards by
default; PARLEY_POSTGRES_SERVER, PARLEY_POSTGRES_SHARDS and PARLEY_STACK_DIR
come from it), except `cli`, which needs no database. Every case writes its
own migration files into a temporary directory and checks the databases with
psql.

  test_migrate.py --migrate BIN --verify BIN --root REPO CASE
"""
import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

PSQL = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"


class TestFailure(Exception):
    pass


def check(cond, what, *detail):
    if not cond:
        raise TestFailure(what + "".join("\n--- " + str(d) for d in detail))


class Result:
    def __init__(self, args, proc):
        self.args, self.rc, self.out, self.err = args, proc.returncode, proc.stdout, proc.stderr

    def __str__(self):
        return f"$ {' '.join(self.args)}\nexit {self.rc}\nstdout:\n{self.out}\nstderr:\n{self.err}"


class Cluster:
    def __init__(self, opts):
        self.opts = opts
        self.tmp = tempfile.mkdtemp(prefix="parley-migrate-test.")
        self.dir = os.path.join(self.tmp, "migrations")
        os.mkdir(self.dir)
        servers = os.environ.get("PARLEY_POSTGRES_SERVER", "")
        self.servers = [s for s in servers.split(";") if s.strip()]
        self.shards = int(os.environ.get("PARLEY_POSTGRES_SHARDS", "16"))

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- files
    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def remove(self, name):
        os.remove(os.path.join(self.dir, name))

    def sha256(self, name):
        with open(os.path.join(self.dir, name), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    # --- programs
    def migrate(self, *args, rc=0, migrations=True, env=None):
        argv = [self.opts.migrate] + (["--migrations", self.dir] if migrations else []) + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        r = Result(argv, proc)
        check(rc is None or r.rc == rc, f"expected exit {rc}", r)
        return r

    def spawn(self, *args):
        argv = [self.opts.migrate, "--migrations", self.dir] + list(args)
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def verify(self, *args):
        argv = [self.opts.verify] + list(args)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        r = Result(argv, proc)
        check(r.rc in (0, 1), "cluster_verify crashed or was misused", r)
        return r

    # --- databases
    def sql(self, server, query):
        """Rows of a query on physical server `server`, as lists of strings."""
        proc = subprocess.run([PSQL, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-F", "\x1f",
                               "-d", self.servers[server], "-c", query],
                              capture_output=True, text=True, timeout=60)
        check(proc.returncode == 0, f"psql failed on server {server}: {query}", proc.stderr)
        return [line.split("\x1f") for line in proc.stdout.splitlines() if line != ""]

    def value(self, server, query):
        rows = self.sql(server, query)
        check(len(rows) == 1 and len(rows[0]) == 1, f"expected one value from {query}", rows)
        return rows[0][0]

    def server_of(self, shard):
        return shard * len(self.servers) // self.shards

    def port(self, server):
        return re.search(r"port=(\d+)", self.servers[server]).group(1)

    def label(self, server):
        return f"server {server} (host=127.0.0.1 port={self.port(server)})"

    def versions(self, shard):
        """The versions recorded in a shard's schema_migrations."""
        rows = self.sql(self.server_of(shard), f"SELECT version FROM shard_{shard:04d}.schema_migrations ORDER BY 1")
        return [int(r[0]) for r in rows]

    def has_table(self, shard, table, server=None):
        server = self.server_of(shard) if server is None else server
        return self.value(server, f"SELECT to_regclass('shard_{shard:04d}.{table}') IS NOT NULL") == "t"

    def stack(self, *args):
        root = self.opts.root
        subprocess.run([os.path.join(root, "tools", "stack"), *args, "--dir", os.environ["PARLEY_STACK_DIR"]],
                       check=True, timeout=120)


USERS = """-- the first migration: unqualified names land in the shard's schema
CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL);
CREATE FUNCTION user_count() RETURNS bigint LANGUAGE sql STABLE
    SET search_path FROM CURRENT AS $$ SELECT count(*) FROM users $$;
"""
RECEIPTS = """CREATE TABLE receipts (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id));
CREATE INDEX receipts_user ON receipts (user_id);
"""


def case_fresh(c):
    c.write("0001_users.sql", USERS)
    c.write("0002_receipts.sql", RECEIPTS)
    c.write("README.md", "not a migration: skipped\n")
    c.migrate("init")
    r = c.migrate("up")
    check("server 1: shard_0012: applied 0002_receipts (5/8 shards" in r.out, "progress line with counts", r)
    check(len(re.findall(r": applied ", r.out)) == 2 * c.shards, "one progress line per shard and file", r)
    ids = set()
    for server in range(len(c.servers)):
        check(c.sql(server, "SELECT shards FROM parley_meta.cluster") == [[str(c.shards)]], "shard count recorded")
        ids.add(c.value(server, "SELECT cluster_id FROM parley_meta.cluster"))
        mine = [s for s in range(c.shards) if c.server_of(s) == server]
        held = [int(r[0]) for r in c.sql(server, "SELECT shard FROM parley_meta.shards ORDER BY 1")]
        check(held == mine, f"parley_meta.shards on server {server}", held, mine)
        schemas = [r[0] for r in c.sql(server, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'shard_%' ORDER BY 1")]
        check(schemas == [f"shard_{s:04d}" for s in mine], f"shard schemas on server {server}", schemas)
        check(c.value(server, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0",
              "nothing created in public")
    check(len(ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", ids.pop()), "one cluster id on every server")
    for s in range(c.shards):
        srv = c.server_of(s)
        tables = [r[0] for r in c.sql(srv, f"SELECT tablename FROM pg_tables WHERE schemaname = 'shard_{s:04d}' ORDER BY 1")]
        check(tables == ["receipts", "schema_migrations", "users"], f"tables of shard {s}", tables)
        rows = c.sql(srv, f"SELECT version, name, checksum FROM shard_{s:04d}.schema_migrations ORDER BY 1")
        check(rows == [["1", "0001_users.sql", c.sha256("0001_users.sql")],
                       ["2", "0002_receipts.sql", c.sha256("0002_receipts.sql")]], f"schema_migrations of shard {s}", rows)
    # SET search_path FROM CURRENT captured each shard's own schema
    c.sql(0, "INSERT INTO shard_0003.users VALUES (1, 'a'), (2, 'b')")
    check(c.value(0, "SELECT shard_0003.user_count()") == "2", "function sees its shard's table")
    check(c.value(0, "SELECT shard_0004.user_count()") == "0", "function of another shard sees its own table")
    cfg = c.value(0, "SELECT array_to_string(proconfig, ',') FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                     " WHERE n.nspname = 'shard_0003' AND p.proname = 'user_count'")
    check(cfg == "search_path=shard_0003", "function search_path", cfg)
    r = c.migrate("status")
    check("all at 0002_receipts" in r.out and "up to date: 16 shards on 2 servers" in r.out, "status after up", r)


def case_rerun(c):
    c.write("0001_users.sql", USERS)
    c.migrate("init")
    c.migrate("up")
    before = {s: c.sql(c.server_of(s), f"SELECT version, applied_at FROM shard_{s:04d}.schema_migrations") for s in range(c.shards)}
    r = c.migrate("init")
    check("all 8 of its shards exist" in r.out and "created" not in r.out, "second init creates nothing", r)
    r = c.migrate("up")
    check("up to date: 16 shards on 2 servers at 0001_users" in r.out and "applied" not in r.out, "second up is a no-op", r)
    after = {s: c.sql(c.server_of(s), f"SELECT version, applied_at FROM shard_{s:04d}.schema_migrations") for s in range(c.shards)}
    check(before == after, "nothing re-applied", before, after)
    # a new file is applied, quietly
    c.write("0002_receipts.sql", RECEIPTS)
    r = c.migrate("--quiet", "up")
    check(r.out == "" and r.err == "", "--quiet prints nothing on success", r)
    for s in range(c.shards):
        check(c.versions(s) == [1, 2], f"shard {s} got the new file", c.versions(s))
        check(c.has_table(s, "receipts"), f"shard {s} has receipts")
    check(after == {s: [row for row in c.sql(c.server_of(s), f"SELECT version, applied_at FROM shard_{s:04d}.schema_migrations")
                        if row[0] == "1"] for s in range(c.shards)}, "old rows untouched")
    c.migrate("status", rc=0)


def case_drift(c):
    c.write("0001_users.sql", USERS)
    c.migrate("init")
    c.migrate("up")
    # a changed file is refused, and the new file after it is not applied anywhere
    c.write("0001_users.sql", USERS + "-- an afterthought\n")
    c.write("0002_receipts.sql", RECEIPTS)
    r = c.migrate("up", rc=1)
    check("0001_users.sql was changed after it was applied" in r.err and f"shard_0000 of {c.label(0)} and 15 more shards" in r.err,
          "drift names file, shard and server", r)
    check("nothing was changed" in r.err, "says nothing was changed", r)
    check(all(c.versions(s) == [1] for s in range(c.shards)), "0002 not applied anywhere")
    r = c.migrate("status", rc=1)
    check("0001_users.sql was changed" in r.err, "status reports drift", r)
    # drift on one shard of the last server stops the run before the first server is touched
    c.write("0001_users.sql", USERS)
    c.sql(1, "UPDATE shard_0012.schema_migrations SET checksum = repeat('0', 64) WHERE version = 1")
    r = c.migrate("up", rc=1)
    check(f"0001_users.sql was changed after it was applied (on shard_0012 of {c.label(1)})" in r.err,
          "drift on one shard names that shard and server", r)
    check(all(not c.has_table(s, "receipts") for s in range(c.shards)), "no shard migrated")
    check(all(c.versions(s) == [1] for s in range(c.shards)), "0002 recorded nowhere")
    c.sql(1, f"UPDATE shard_0012.schema_migrations SET checksum = '{c.sha256('0001_users.sql')}' WHERE version = 1")
    c.migrate("up")
    check(all(c.versions(s) == [1, 2] for s in range(c.shards)), "applies once the drift is gone")


def case_missing(c):
    c.write("0001_users.sql", USERS)
    c.write("0002_receipts.sql", RECEIPTS)
    c.migrate("init")
    c.migrate("up")
    c.remove("0001_users.sql")
    r = c.migrate("up", rc=1)
    check(f"0001_users.sql was applied (on shard_0000 of {c.label(0)} and 15 more shards)" in r.err and "is missing" in r.err,
          "missing file named with shard and server", r)
    c.migrate("status", rc=1)
    # renamed
    c.write("0001_people.sql", USERS)
    r = c.migrate("up", rc=1)
    check("migration 0001 was applied as 0001_users.sql" in r.err and "0001_people.sql" in r.err, "rename refused", r)
    c.write("0001_people.sql", RECEIPTS)
    r = c.migrate("up", rc=1)
    check(f"migration 0001 was applied as 0001_users.sql (on shard_0000 of {c.label(0)} and 15 more shards) but "
          f"{c.dir}/0001_people.sql is another file with that number" in r.err, "replaced file refused", r)
    c.remove("0001_people.sql")
    c.write("0001_users.sql", USERS)
    # a file numbered below what the shards have is refused, not applied out of order
    c.write("0004_later.sql", "CREATE TABLE later (id int);\n")
    c.migrate("up")
    c.write("0003_between.sql", "CREATE TABLE between_ (id int);\n")
    r = c.migrate("up", rc=1)
    check("0003_between.sql is not applied on shard_0000" in r.err and "already has the later 0004_later.sql" in r.err,
          "out-of-order file refused", r)
    check(all(not c.has_table(s, "between_") for s in range(c.shards)), "out-of-order file not applied")


def case_badname(c):
    for bad in ["1_short.sql", "0001-dash.sql", "0001_.sql", "0000_zero.sql", "0001_x.sql.orig", "0001_sp ace.sql", "abc.sql"]:
        d = tempfile.mkdtemp(dir=c.tmp)
        with open(os.path.join(d, bad), "w") as f:
            f.write("SELECT 1;\n")
        r = c.migrate("--migrations", d, "up", rc=1, migrations=False)
        check(f"{d}/{bad}: bad file name" in r.err, f"bad name {bad!r} refused", r)
        r = c.migrate("--migrations", d, "status", rc=1, migrations=False)
        check("bad file name" in r.err, f"status refuses {bad!r} too", r)
    c.write("0001_a.sql", "SELECT 1;\n")
    c.write("0001_b.sql", "SELECT 2;\n")
    r = c.migrate("up", rc=1)
    check("0001_a.sql and" in r.err and "0001_b.sql have the same number 0001" in r.err, "duplicate number refused", r)
    r = c.migrate("--migrations", os.path.join(c.tmp, "nope"), "up", rc=1, migrations=False)
    check("cannot open directory" in r.err and "nope" in r.err, "missing directory", r)
    # nothing was created by any of this
    for server in range(len(c.servers)):
        check(c.value(server, "SELECT to_regnamespace('parley_meta') IS NULL") == "t", "nothing created")


def case_concurrent(c):
    c.write("0001_slow.sql", "SELECT pg_sleep(0.2);\nCREATE TABLE slow (id int);\n")
    c.migrate("init")
    a, b = c.spawn("up"), c.spawn("up")
    outs = [p.communicate(timeout=120) for p in (a, b)]
    check(a.returncode == 0 and b.returncode == 0, "both runners succeed", outs)
    applied = [len(re.findall(r": applied 0001_slow", o[0])) for o in outs]
    check(sorted(applied) == [0, c.shards], "one runner applied everything, the other nothing", applied, outs)
    check(any("waiting for it to finish" in o[0] for o in outs), "the second runner waited", outs)
    check(any("up to date" in o[0] for o in outs), "the second runner found nothing to do", outs)
    for s in range(c.shards):
        check(c.versions(s) == [1], f"shard {s}: recorded exactly once", c.versions(s))
    # --no-wait fails instead of waiting
    c.write("0002_slower.sql", "SELECT pg_sleep(0.3);\nCREATE TABLE slower (id int);\n")
    first = c.spawn("up")
    deadline = time.time() + 30
    while c.value(0, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == "0":
        check(time.time() < deadline, "first runner never took the lock")
        time.sleep(0.05)
    r = c.migrate("--no-wait", "up", rc=4)
    check(f"{c.label(0)}: another parley-migrate is running (held by pid" in r.err and "--no-wait" in r.err,
          "--no-wait names the server and the holder", r)
    out = first.communicate(timeout=120)
    check(first.returncode == 0, "first runner finished", out)
    for s in range(c.shards):
        check(c.versions(s) == [1, 2], f"shard {s}: 0002 recorded once", c.versions(s))


def case_status(c):
    c.write("0001_users.sql", USERS)
    c.write("0002_receipts.sql", RECEIPTS)
    r = c.migrate("status", rc=3)
    check(f"{c.label(0)}: not initialised (run parley-migrate init)" in r.out, "uninitialised server", r)
    c.migrate("init")
    r = c.migrate("status", rc=3)
    check(f"{c.label(1)}: 8 shards, all at none" in r.out and "pending: 16 shards are behind 0002_receipts" in r.out,
          "everything pending after init", r)
    c.migrate("up")
    r = c.migrate("status", rc=0)
    check(f"{c.label(0)}: 8 shards, all at 0002_receipts" in r.out and f"{c.label(1)}: 8 shards, all at 0002_receipts" in r.out,
          "all at the latest", r)
    check("migrations: 2 in " in r.out and "latest 0002_receipts" in r.out, "names the migrations", r)
    # one shard behind
    c.sql(1, "DELETE FROM shard_0009.schema_migrations WHERE version = 2")
    r = c.migrate("status", rc=3)
    check(f"{c.label(1)}: 8 shards: 7 at 0002_receipts, shard_0009 at 0001_users" in r.out, "lagging shard listed", r)
    check("pending: 1 shard is behind 0002_receipts: run parley-migrate up" in r.out, "pending summary", r)
    r = c.migrate("--quiet", "status", rc=3)
    check(r.out == "" and r.err == "", "--quiet status: the exit status only", r)
    # a missing shard
    c.sql(0, "DROP SCHEMA shard_0003 CASCADE")
    r = c.migrate("status", rc=3)
    check(f"{c.label(0)}: 8 shards: 7 at 0002_receipts, shard_0003 missing (run parley-migrate init)" in r.out,
          "missing shard listed", r)
    r = c.migrate("up", rc=1)
    check(f"{c.label(0)}: 1 of its 8 shards missing (shard_0003): run parley-migrate init" in r.err, "up refuses", r)
    c.migrate("init")
    c.sql(1, "DROP TABLE shard_0009.receipts")
    c.migrate("up")
    r = c.migrate("status", rc=0)
    check("up to date" in r.out, "fixed", r)


def case_unreachable(c):
    c.write("0001_users.sql", USERS)
    c.migrate("init")
    c.migrate("up")
    c.stack("pg-stop", "1")
    for cmd, rc in (("status", 1), ("up", 1), ("init", 1)):
        r = c.migrate(cmd, rc=rc)
        check(f"{c.label(1)}: cannot connect" in r.err and "refused" in r.err.lower(), f"{cmd} names the server", r)
    r = c.migrate("status", rc=1)
    check(f"{c.label(0)}: 8 shards, all at 0001_users" in r.out and f"{c.label(1)}: unreachable" in r.out,
          "status still reports the reachable server", r)
    c.stack("pg-start", "1")
    c.migrate("status", rc=0)


def case_dryrun(c):
    c.write("0001_users.sql", USERS)
    c.write("0002_receipts.sql", RECEIPTS)
    r = c.migrate("--dry-run", "init")
    check(f"{c.label(0)}: would create parley_meta (a new cluster id, 16 logical shards)" in r.out
          and f"{c.label(1)}: would create 8 of its 8 shards: shard_0008-0015" in r.out, "init --dry-run", r)
    for server in range(len(c.servers)):
        check(c.value(server, "SELECT count(*) FROM pg_namespace WHERE nspname = 'parley_meta' OR nspname LIKE 'shard%'") == "0",
              "init --dry-run created nothing")
    c.migrate("init")
    r = c.migrate("up", "--dry-run")
    check(f"would apply 0001_users to 8 shards on {c.label(0)}: shard_0000-0007" in r.out
          and f"would apply 0002_receipts to 8 shards on {c.label(1)}: shard_0008-0015" in r.out
          and "dry run: nothing was changed" in r.out, "up --dry-run lists the work", r)
    for s in range(c.shards):
        check(c.versions(s) == [] and not c.has_table(s, "users"), f"shard {s} untouched by --dry-run")
    c.migrate("up")
    r = c.migrate("up", "--dry-run")
    check("up to date" in r.out, "dry run when up to date", r)


def case_shardcount(c):
    c.migrate("init", migrations=False)
    r = c.migrate("--postgres.shards=32", "init", rc=1, migrations=False)
    check(f"{c.label(0)}: the cluster was created with 16 logical shards but [postgres] shards is 32" in r.err
          and "configure shards = 16" in r.err and "init refused: nothing was changed" in r.err, "init refuses 32", r)
    env = dict(os.environ, PARLEY_POSTGRES_SHARDS="8")
    r = c.migrate("init", rc=1, migrations=False, env=env)
    check("created with 16 logical shards but [postgres] shards is 8" in r.err, "init refuses 8 from the environment", r)
    r = c.migrate("up", rc=1, env=env)
    check("created with 16 logical shards but [postgres] shards is 8" in r.err, "up refuses too", r)
    for server in range(len(c.servers)):
        check(c.value(server, "SELECT shards FROM parley_meta.cluster") == "16", "count unchanged")
        check(c.value(server, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'shard%'") == "8", "no shard added")


def case_shardmap(c):
    c.write("0001_users.sql", USERS)
    os.environ["PARLEY_POSTGRES_SHARD_MAP"] = "0-3=1,4-15=0"
    c.migrate("init")
    c.migrate("up")
    on = {srv: [r[0] for r in c.sql(srv, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'shard%' ORDER BY 1")]
          for srv in range(2)}
    check(on[1] == [f"shard_{s:04d}" for s in range(4)] and on[0] == [f"shard_{s:04d}" for s in range(4, 16)],
          "schemas follow the shard map", on)
    check(c.verify("verify", "1").out.strip() == "ok", "verify with the map")
    r = c.verify("--postgres.shard_map=", "verify", "1")
    check(f"fail: shard 0 missing on {c.label(0)} (4 shards missing there: 0, 1, 2, 3): run parley-migrate init" in r.out,
          "verify with the default map finds the shards elsewhere", r)
    r = c.migrate("status", rc=3, env=dict(os.environ, PARLEY_POSTGRES_SHARD_MAP=""))
    check(f"{c.label(0)}: 8 shards: 4 at 0001_users, shard_0000-0003 missing (run parley-migrate init)" in r.out,
          "status with the default map", r)


def case_verify(c):
    r = c.verify("verify", "0")
    check(r.rc == 1 and f"fail: {c.label(0)}: no parley_meta schema" in r.out and "run parley-migrate init" in r.out,
          "uninitialised cluster refused", r)
    c.write("0001_users.sql", USERS)
    c.write("0002_receipts.sql", RECEIPTS)
    c.migrate("init")
    r = c.verify("verify", "2")
    check(r.rc == 1 and f"fail: shard 0 on {c.label(0)} is at migration 0 but this build needs 2" in r.out, "before up", r)
    c.migrate("up")
    r = c.verify("verify", "2")
    check(r.rc == 0 and r.out == "ok\n", "good cluster verifies", r)
    check(c.verify("verify", "1").rc == 0, "newer than needed is fine")
    r = c.verify("verify", "3")
    check(r.rc == 1 and f"shard 0 on {c.label(0)} is at migration 2 but this build needs 3 (8 shards are behind there: "
          "0, 1, 2, 3, 4, 5, 6, 7): run parley-migrate up" in r.out, "behind", r)
    c.sql(1, "DELETE FROM shard_0013.schema_migrations WHERE version = 2")
    r = c.verify("verify", "2")
    check(r.rc == 1 and f"shard 13 on {c.label(1)} is at migration 1 but this build needs 2 (1 shard is behind there: 13)" in r.out,
          "one shard behind", r)
    c.sql(1, "DROP TABLE shard_0013.receipts")
    c.migrate("up")
    c.sql(1, "DROP SCHEMA shard_0011 CASCADE")
    r = c.verify("verify", "2")
    check(r.rc == 1 and f"fail: shard 11 missing on {c.label(1)}: run parley-migrate init" in r.out, "dropped shard", r)
    c.migrate("init")
    c.migrate("up")
    check(c.verify("verify", "2").rc == 0, "repaired")
    r = c.verify("--postgres.shards=32", "verify", "2")
    check(r.rc == 1 and "the cluster was created with 16 logical shards but [postgres] shards is 32" in r.out,
          "different shard count", r)
    c.sql(1, "UPDATE parley_meta.cluster SET cluster_id = repeat('0', 32)")
    r = c.verify("verify", "2")
    check(r.rc == 1 and f"{c.label(1)} belongs to another Parley cluster (id {'0' * 32})" in r.out, "mixed clusters", r)
    r = c.migrate("status", rc=1)
    check("belongs to another Parley cluster" in r.err, "status sees it too", r)
    c.sql(1, f"UPDATE parley_meta.cluster SET cluster_id = '{c.value(0, 'SELECT cluster_id FROM parley_meta.cluster')}'")
    check(c.verify("verify", "2").rc == 0, "same cluster again")
    c.stack("pg-stop", "1")
    r = c.verify("verify", "2")
    check(r.rc == 1 and f"fail: {c.label(1)}: cannot connect:" in r.out, "unreachable server", r)
    c.stack("pg-start", "1")


def case_failure(c):
    c.write("0001_base.sql", "CREATE TABLE block (reason text);\n")
    c.migrate("init")
    c.migrate("up")
    c.sql(0, "INSERT INTO shard_0005.block VALUES ('test')")
    c.write("0002_guarded.sql", """CREATE TABLE t2 (id int);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM block) THEN
        RAISE EXCEPTION 'blocked in %', current_schema();
    END IF;
END $$;
""")
    r = c.migrate("up", rc=1)
    check(f"{c.label(0)}: shard_0005: 0002_guarded.sql failed; the shard stays at 0001_base.sql:" in r.err
          and "ERROR:  blocked in shard_0005" in r.err, "failure names file, shard, server and error", r)
    check("5 shards have applied 0002_guarded.sql already, so do not edit it" in r.err, "advice", r)
    for s in range(c.shards):
        want = [1, 2] if s < 5 else [1]
        check(c.versions(s) == want, f"shard {s} versions", c.versions(s))
        check(c.has_table(s, "t2") == (s < 5), f"shard {s}: t2 only where 0002 committed")
    r = c.migrate("status", rc=3)
    check(f"{c.label(0)}: 8 shards: 5 at 0002_guarded, shard_0005-0007 at 0001_base" in r.out, "status after failure", r)
    c.sql(0, "DELETE FROM shard_0005.block")
    c.migrate("up")
    check(all(c.versions(s) == [1, 2] for s in range(c.shards)), "resumed after the cause is fixed")
    # a syntax error is reported with its line, and nothing is applied
    c.write("0003_typo.sql", "CREATE TABLE t3 (id int);\n\nSELEC 1;\n")
    r = c.migrate("up", rc=1)
    check(f"{c.label(0)}: shard_0000: 0003_typo.sql failed" in r.err and "LINE 3: SELEC 1;" in r.err
          and "no shard has applied 0003_typo.sql yet: fix the file" in r.err, "syntax error with line", r)
    check(all(not c.has_table(s, "t3") and c.versions(s) == [1, 2] for s in range(c.shards)), "typo applied nowhere")
    # transaction control in a file is detected
    c.write("0003_typo.sql", "CREATE TABLE t3 (id int);\nCOMMIT;\n")
    r = c.migrate("up", rc=1)
    check("0003_typo.sql failed" in r.err and "ended the runner's transaction" in r.err, "COMMIT in a file", r)
    check(c.versions(0) == [1, 2], "not recorded")


def case_real(c):
    """The repository's own migrations (the default directory), as parleyd would see them."""
    files = [f for f in os.listdir(os.path.join(c.opts.root, "migrations")) if re.match(r"^\d{4}_.*\.sql$", f)]
    latest = max((int(f[:4]) for f in files), default=0)
    r = c.verify("schema-version")
    check(r.out.strip() == str(latest), "pl_cluster_schema_version() is the newest file at build time", r, latest)
    r = c.migrate("status", migrations=False)
    check("up to date" in r.out, "with_stack --migrate left the cluster up to date", r)
    r = c.verify("verify", str(latest))
    check(r.out == "ok\n", "pl_cluster_verify accepts it", r)


def case_cli(c):
    r = c.migrate("--help", migrations=False)
    for text in ("Usage: parley-migrate [OPTIONS] init|up|status", "--migrations DIR", "--dry-run", "--no-wait",
                 "--quiet", "Exit status:", "3  status: something to do", "4  --no-wait", "[postgres]"):
        check(text in r.out, f"--help mentions {text!r}", r)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env["PARLEY_POSTGRES_SERVER"] = "host=127.0.0.1 port=1 connect_timeout=2"
    for args, text in ((["up", "status"], "one command expected"), (["bogus"], "unknown command 'bogus'"),
                       ([], "no command"), (["--bogus", "up"], "unknown flag --bogus"),
                       (["--dry-run", "status"], "--dry-run is for init and up"), (["--migrations"], "needs a directory"),
                       (["--postgres.shard_map=0-3=0", "up"], "shard_map")):
        r = c.migrate(*args, rc=2, migrations=False, env=env)
        check(text in r.err, f"usage error for {args}", r)
    r = c.migrate("up", rc=2, migrations=False, env={k: v for k, v in env.items() if k != "PARLEY_POSTGRES_SERVER"})
    check("no PostgreSQL server configured" in r.err, "no server", r)
    # file names are checked before any connection
    c.write("1_bad.sql", "SELECT 1;\n")
    r = c.migrate("up", rc=1, env=env)
    check("1_bad.sql: bad file name" in r.err and "connect" not in r.err, "bad name before connecting", r)
    c.remove("1_bad.sql")
    r = c.migrate("up", rc=1, env=env)
    check("server 0 (host=127.0.0.1 port=1): cannot connect" in r.err, "connection failure names the server", r)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--migrate", required=True, help="the parley-migrate binary")
    ap.add_argument("--verify", required=True, help="the cluster_verify test program")
    ap.add_argument("--root", required=True, help="the repository")
    ap.add_argument("case", choices=sorted(CASES))
    opts = ap.parse_args()
    c = Cluster(opts)
    try:
        CASES[opts.case](c)
    except TestFailure as e:
        print(f"FAIL {opts.case}: {e}", file=sys.stderr)
        return 1
    finally:
        c.close()
    print(f"ok {opts.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
