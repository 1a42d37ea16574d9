-- 0001_accounts.sql — accounts, devices, registration codes, contacts, blocks.
--
-- Applied to every shard schema (parley-migrate sets search_path). An
-- account lives on the shard of its phone number, which is also the shard
-- its id carries; its devices, contacts and blocks live with it.

CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    phone text NOT NULL UNIQUE,
    display_name text NOT NULL DEFAULT '',
    about text NOT NULL DEFAULT '',
    -- Visibility: 1 everyone, 2 contacts, 3 nobody
    last_seen_visibility smallint NOT NULL DEFAULT 1,
    online_visibility smallint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A device's token is "<device id><32 random bytes>" (base64url); only a
-- hash of the random part is stored.
CREATE TABLE devices (
    id bigint PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    name text NOT NULL DEFAULT '',
    token_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_active_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX devices_by_account ON devices (account_id) WHERE revoked_at IS NULL;

-- One pending code per phone number; the code is stored hashed.
CREATE TABLE verification_codes (
    phone text PRIMARY KEY,
    code_hash bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contacts (
    account_id bigint NOT NULL,
    contact_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, contact_id)
);

-- On the blocker's shard (for listing); direct chats carry the same fact
-- for the send path (chats.a_blocks_b / b_blocks_a).
CREATE TABLE blocks (
    account_id bigint NOT NULL,
    blocked_id bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, blocked_id)
);
