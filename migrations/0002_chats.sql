-- 0002_chats.sql — chats, members and their cursors, the per-chat message
-- log, each account's chat list and each device's cursors, and the send
-- and cursor functions the hot path calls (one statement each).
--
-- A chat's rows live on the chat's shard: sending is a single-shard
-- transaction. An account's chat list and its devices' cursors live on the
-- account's shard.

CREATE TABLE chats (
    id bigint PRIMARY KEY,
    kind smallint NOT NULL,                -- 1 direct, 2 group
    name text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    only_admins_send boolean NOT NULL DEFAULT false,
    last_seq bigint NOT NULL DEFAULT 0,    -- the log's last sequence number
    members_version bigint NOT NULL DEFAULT 0, -- bumped by every membership change
    -- direct chats: the two accounts (account_a < account_b), and blocking
    account_a bigint,
    account_b bigint,
    a_blocks_b boolean NOT NULL DEFAULT false,
    b_blocks_a boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One direct chat per pair, ever.
CREATE UNIQUE INDEX chats_direct_pair ON chats (account_a, account_b) WHERE kind = 1;

-- Receipts are cursors: per (chat, member) the highest delivered and read seq.
CREATE TABLE members (
    chat_id bigint NOT NULL REFERENCES chats (id),
    account_id bigint NOT NULL,
    role smallint NOT NULL DEFAULT 1,      -- 1 member, 2 admin
    joined_seq bigint NOT NULL,            -- sees messages from here
    removed_seq bigint,                    -- NULL while a member; sees nothing after this
    delivered_seq bigint NOT NULL DEFAULT 0,
    read_seq bigint NOT NULL DEFAULT 0,
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, account_id)
);

-- The log. payload: one payload for all recipients; device_payloads: the
-- encoded repeated parley.v1.DevicePayload, one per recipient device;
-- chat_event: the encoded parley.v1.ChatEvent of a system message.
CREATE TABLE messages (
    chat_id bigint NOT NULL,
    seq bigint NOT NULL,
    sender_account bigint NOT NULL,
    sender_device bigint NOT NULL,
    client_msg_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    content_type text NOT NULL DEFAULT '',
    payload bytea,
    device_payloads bytea,
    reply_to_seq bigint NOT NULL DEFAULT 0,
    expires_at timestamptz,
    chat_event bytea,
    PRIMARY KEY (chat_id, seq)
);
-- Idempotent sends: a retry finds the original.
CREATE UNIQUE INDEX messages_by_client_id ON messages (chat_id, sender_device, client_msg_id);
CREATE INDEX messages_expiring ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- Each account's chats, on the account's shard. membership_seq orders
-- updates that arrive from the chat's shard out of order.
CREATE TABLE account_chats (
    account_id bigint NOT NULL,
    chat_id bigint NOT NULL,
    kind smallint NOT NULL,
    peer_account bigint,                   -- direct chats
    joined_seq bigint NOT NULL,
    removed_seq bigint,
    membership_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, chat_id)
);

-- What each device has been delivered, per chat (resume starts here).
CREATE TABLE device_cursors (
    device_id bigint NOT NULL,
    chat_id bigint NOT NULL,
    delivered_seq bigint NOT NULL,
    PRIMARY KEY (device_id, chat_id)
);

-- Stores one message, atomically assigning the chat's next seq; a retry
-- (same device and client id) returns the original. status: 0 stored or
-- duplicate, 1 no such chat, 2 not a member, 3 blocked, 4 only admins send.
CREATE FUNCTION send_message(p_chat bigint, p_account bigint, p_device bigint, p_client_id text,
                             p_content_type text, p_payload bytea, p_device_payloads bytea,
                             p_reply_to bigint, p_expires_in_ms bigint)
RETURNS TABLE (status smallint, seq bigint, created_ms bigint, duplicate boolean, kind smallint,
               members_version bigint, account_a bigint, account_b bigint, expires_ms bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    c chats%ROWTYPE;
    r smallint;
    t timestamptz := now();
    exp timestamptz;
BEGIN
    -- the chat row lock serialises the chat's sequence numbers
    SELECT * INTO c FROM chats WHERE id = p_chat FOR UPDATE;
    IF NOT FOUND THEN
        status := 1; RETURN NEXT; RETURN;
    END IF;
    kind := c.kind; members_version := c.members_version; account_a := c.account_a; account_b := c.account_b;
    -- after the lock, so a concurrent retry of the same message sees the first
    SELECT m.seq, (extract(epoch FROM m.created_at) * 1000)::bigint,
           (extract(epoch FROM m.expires_at) * 1000)::bigint
      INTO seq, created_ms, expires_ms
      FROM messages m
     WHERE m.chat_id = p_chat AND m.sender_device = p_device AND m.client_msg_id = p_client_id;
    IF FOUND THEN
        status := 0; duplicate := true; RETURN NEXT; RETURN;
    END IF;
    SELECT m.role INTO r FROM members m
     WHERE m.chat_id = p_chat AND m.account_id = p_account AND m.removed_seq IS NULL;
    IF NOT FOUND THEN
        status := 2; RETURN NEXT; RETURN;
    END IF;
    IF c.kind = 1 AND (c.a_blocks_b OR c.b_blocks_a) THEN
        status := 3; RETURN NEXT; RETURN;
    END IF;
    IF c.only_admins_send AND r <> 2 THEN
        status := 4; RETURN NEXT; RETURN;
    END IF;
    UPDATE chats SET last_seq = chats.last_seq + 1 WHERE id = p_chat RETURNING chats.last_seq INTO seq;
    IF p_expires_in_ms > 0 THEN
        exp := t + p_expires_in_ms * interval '1 millisecond';
    END IF;
    INSERT INTO messages (chat_id, seq, sender_account, sender_device, client_msg_id, created_at, content_type,
                          payload, device_payloads, reply_to_seq, expires_at)
    VALUES (p_chat, seq, p_account, p_device, p_client_id, t, p_content_type, p_payload, p_device_payloads,
            p_reply_to, exp);
    status := 0;
    duplicate := false;
    created_ms := (extract(epoch FROM t) * 1000)::bigint;
    expires_ms := (extract(epoch FROM exp) * 1000)::bigint;
    RETURN NEXT;
END $$;

-- Moves a member's cursors forward (never back, never past the log), and
-- returns them with the chat-wide minimums and the previous values.
-- status: 0 ok, 1 not a member.
CREATE FUNCTION update_cursor(p_chat bigint, p_account bigint, p_delivered bigint, p_read bigint)
RETURNS TABLE (status smallint, delivered_seq bigint, read_seq bigint, old_delivered bigint, old_read bigint,
               delivered_to_all bigint, read_by_all bigint, kind smallint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    last bigint;
BEGIN
    SELECT c.last_seq, c.kind INTO last, kind FROM chats c WHERE c.id = p_chat;
    SELECT m.delivered_seq, m.read_seq INTO old_delivered, old_read FROM members m
     WHERE m.chat_id = p_chat AND m.account_id = p_account AND m.removed_seq IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        status := 1; RETURN NEXT; RETURN;
    END IF;
    read_seq := GREATEST(old_read, LEAST(p_read, last));
    delivered_seq := GREATEST(old_delivered, LEAST(GREATEST(p_delivered, p_read), last));
    IF read_seq <> old_read OR delivered_seq <> old_delivered THEN
        UPDATE members m SET delivered_seq = update_cursor.delivered_seq, read_seq = update_cursor.read_seq
         WHERE m.chat_id = p_chat AND m.account_id = p_account;
    END IF;
    SELECT min(m.delivered_seq), min(m.read_seq) INTO delivered_to_all, read_by_all FROM members m
     WHERE m.chat_id = p_chat AND m.removed_seq IS NULL;
    status := 0;
    RETURN NEXT;
END $$;
