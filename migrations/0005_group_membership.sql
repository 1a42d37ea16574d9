-- 0005_group_membership.sql — groups: creation, settings and membership,
-- each change one function call on the chat's shard.
--
-- Every change locks the chat row (which also serialises the chat's
-- sequence numbers with send_message), checks the caller's rights, applies
-- the change, bumps chats.members_version and appends a system message to
-- the log: sender_account the actor, sender_device 0, client_msg_id
-- 'sys:<seq>', no payload, chat_event the encoded parley.v1.ChatEvent the
-- server built (server/chats/chat_events.c). Devices thus see membership
-- changes in order with the messages.
--
-- Functions that depend on the membership the event was built from take
-- the members_version the caller read (p_version) and refuse with status 5
-- when it moved; the caller reads again and retries.
--
-- Every function returns rows (status, event_seq, account, joined, removed):
-- one row per account whose membership changed (for the account's chat
-- list, account_chats on the account's shard), or a single row with a NULL
-- account. status:
--   0 done                1 no such chat, or the caller is not a member
--   2 not a group         3 the caller is not an admin
--   4 the target account is not a member
--   5 members_version moved (read again, retry)
--   6 the group would exceed p_max members
--   7 the last admin cannot be demoted
--   8 nothing changed (event_seq 0, no system message)

-- Appends a system message as the chat's next seq and returns it. The caller
-- holds the chat row lock.
CREATE FUNCTION append_system_message(p_chat bigint, p_actor bigint, p_event bytea)
RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    s bigint;
BEGIN
    UPDATE chats c SET last_seq = c.last_seq + 1, members_version = c.members_version + 1
     WHERE c.id = p_chat RETURNING c.last_seq INTO s;
    INSERT INTO messages (chat_id, seq, sender_account, sender_device, client_msg_id, chat_event)
    VALUES (p_chat, s, p_actor, 0, 'sys:' || s, p_event);
    RETURN s;
END $$;

-- Locks the chat and checks the actor: status 0 (and the members_version
-- and the actor's role), 1, 2 or 3 as above.
CREATE FUNCTION lock_group(p_chat bigint, p_actor bigint, p_need_admin boolean,
                           OUT status smallint, OUT version bigint, OUT actor_role smallint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    k smallint;
BEGIN
    SELECT c.kind, c.members_version INTO k, version FROM chats c WHERE c.id = p_chat FOR UPDATE;
    IF NOT FOUND THEN
        status := 1; RETURN;
    END IF;
    SELECT m.role INTO actor_role FROM members m
     WHERE m.chat_id = p_chat AND m.account_id = p_actor AND m.removed_seq IS NULL;
    IF NOT FOUND THEN
        status := 1; RETURN;
    END IF;
    IF k <> 2 THEN
        status := 2; RETURN;
    END IF;
    IF p_need_admin AND actor_role <> 2 THEN
        status := 3; RETURN;
    END IF;
    status := 0;
END $$;

-- A new group: the creator (admin) and p_members (members), all joined at
-- the CREATED system message, seq 1, so that they all see it. The server
-- checked that the members exist, are distinct, did not block the creator
-- and fit the size limit.
CREATE FUNCTION create_group(p_chat bigint, p_creator bigint, p_name text, p_description text,
                             p_only_admins_send boolean, p_members bigint[], p_event bytea)
RETURNS TABLE (status smallint, event_seq bigint, account bigint, joined bigint, removed bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    s bigint;
BEGIN
    INSERT INTO chats (id, kind, name, description, only_admins_send)
    VALUES (p_chat, 2, p_name, p_description, p_only_admins_send);
    s := append_system_message(p_chat, p_creator, p_event);
    INSERT INTO members (chat_id, account_id, role, joined_seq) VALUES (p_chat, p_creator, 2, s);
    INSERT INTO members (chat_id, account_id, role, joined_seq)
    SELECT p_chat, u.a, 1, s FROM unnest(p_members) AS u(a) WHERE u.a <> p_creator
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT 0::smallint, s, m.account_id, m.joined_seq, m.removed_seq
                   FROM members m WHERE m.chat_id = p_chat;
END $$;

-- Admins: new settings (the full set: the server merged the request into
-- what it read at p_version).
CREATE FUNCTION update_group(p_chat bigint, p_actor bigint, p_version bigint, p_name text, p_description text,
                             p_only_admins_send boolean, p_event bytea)
RETURNS TABLE (status smallint, event_seq bigint, account bigint, joined bigint, removed bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    g record;
BEGIN
    SELECT * INTO g FROM lock_group(p_chat, p_actor, true);
    status := g.status;
    IF status = 0 AND g.version <> p_version THEN
        status := 5;
    END IF;
    IF status <> 0 THEN
        RETURN NEXT; RETURN;
    END IF;
    UPDATE chats c SET name = p_name, description = p_description, only_admins_send = p_only_admins_send
     WHERE c.id = p_chat;
    event_seq := append_system_message(p_chat, p_actor, p_event);
    RETURN NEXT;
END $$;

-- Admins: adds p_accounts (none of them a current member at p_version).
-- A removed member comes back with a new joined_seq; every added member's
-- cursors start just before the MEMBERS_ADDED message, the first they see.
CREATE FUNCTION add_members(p_chat bigint, p_actor bigint, p_version bigint, p_accounts bigint[], p_max bigint,
                            p_event bytea)
RETURNS TABLE (status smallint, event_seq bigint, account bigint, joined bigint, removed bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    g record;
    n bigint;
    s bigint;
BEGIN
    SELECT * INTO g FROM lock_group(p_chat, p_actor, true);
    status := g.status;
    IF status = 0 AND g.version <> p_version THEN
        status := 5;
    END IF;
    IF status <> 0 THEN
        RETURN NEXT; RETURN;
    END IF;
    SELECT count(*) INTO n FROM members m WHERE m.chat_id = p_chat AND m.removed_seq IS NULL;
    IF n + cardinality(p_accounts) > p_max THEN
        status := 6; RETURN NEXT; RETURN;
    END IF;
    s := append_system_message(p_chat, p_actor, p_event);
    INSERT INTO members AS m (chat_id, account_id, role, joined_seq, delivered_seq, read_seq)
    SELECT p_chat, u.a, 1, s, s - 1, s - 1 FROM unnest(p_accounts) AS u(a)
    ON CONFLICT (chat_id, account_id) DO UPDATE
       SET role = 1, joined_seq = s, removed_seq = NULL, joined_at = now(),
           delivered_seq = GREATEST(m.delivered_seq, s - 1), read_seq = GREATEST(m.read_seq, s - 1)
     WHERE m.removed_seq IS NOT NULL;
    RETURN QUERY SELECT 0::smallint, s, m.account_id, m.joined_seq, m.removed_seq
                   FROM members m WHERE m.chat_id = p_chat AND m.account_id = ANY (p_accounts);
END $$;

-- Admins: removes p_target (any current member but the actor, who leaves
-- instead); removed_seq is the MEMBER_REMOVED message, the last they see.
CREATE FUNCTION remove_member(p_chat bigint, p_actor bigint, p_target bigint, p_event bytea)
RETURNS TABLE (status smallint, event_seq bigint, account bigint, joined bigint, removed bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    g record;
    j bigint;
BEGIN
    SELECT * INTO g FROM lock_group(p_chat, p_actor, true);
    status := g.status;
    IF status <> 0 THEN
        RETURN NEXT; RETURN;
    END IF;
    SELECT m.joined_seq INTO j FROM members m
     WHERE m.chat_id = p_chat AND m.account_id = p_target AND m.removed_seq IS NULL;
    IF NOT FOUND OR p_target = p_actor THEN
        status := 4; RETURN NEXT; RETURN;
    END IF;
    event_seq := append_system_message(p_chat, p_actor, p_event);
    UPDATE members m SET removed_seq = event_seq WHERE m.chat_id = p_chat AND m.account_id = p_target;
    account := p_target;
    joined := j;
    removed := event_seq;
    RETURN NEXT;
END $$;

-- Admins: p_target's role (1 member, 2 admin). The last admin cannot be
-- demoted; an unchanged role changes nothing (status 8).
CREATE FUNCTION set_role(p_chat bigint, p_actor bigint, p_target bigint, p_role bigint, p_event bytea)
RETURNS TABLE (status smallint, event_seq bigint, account bigint, joined bigint, removed bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    g record;
    r smallint;
    admins bigint;
BEGIN
    SELECT * INTO g FROM lock_group(p_chat, p_actor, true);
    status := g.status;
    IF status <> 0 THEN
        RETURN NEXT; RETURN;
    END IF;
    SELECT m.role INTO r FROM members m
     WHERE m.chat_id = p_chat AND m.account_id = p_target AND m.removed_seq IS NULL;
    IF NOT FOUND THEN
        status := 4; RETURN NEXT; RETURN;
    END IF;
    IF r = p_role THEN
        status := 8; event_seq := 0; RETURN NEXT; RETURN;
    END IF;
    IF r = 2 THEN
        SELECT count(*) INTO admins FROM members m
         WHERE m.chat_id = p_chat AND m.role = 2 AND m.removed_seq IS NULL;
        IF admins <= 1 THEN
            status := 7; RETURN NEXT; RETURN;
        END IF;
    END IF;
    event_seq := append_system_message(p_chat, p_actor, p_event);
    UPDATE members m SET role = p_role::smallint WHERE m.chat_id = p_chat AND m.account_id = p_target;
    RETURN NEXT;
END $$;

-- Any member leaves (MEMBER_LEFT; removed_seq is that message). When the
-- server saw at p_version that the actor is the last admin and others
-- remain, it names the longest-standing remaining member in p_promote
-- (0: none), who becomes admin in a second system message (ROLE_CHANGED,
-- p_promote_event) right after. event_seq is the MEMBER_LEFT message.
CREATE FUNCTION leave_group(p_chat bigint, p_actor bigint, p_version bigint, p_event bytea, p_promote bigint,
                            p_promote_event bytea)
RETURNS TABLE (status smallint, event_seq bigint, account bigint, joined bigint, removed bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    g record;
    j bigint;
    s bigint;
BEGIN
    SELECT * INTO g FROM lock_group(p_chat, p_actor, false);
    status := g.status;
    IF status = 0 AND g.version <> p_version THEN
        status := 5;
    END IF;
    IF status <> 0 THEN
        RETURN NEXT; RETURN;
    END IF;
    s := append_system_message(p_chat, p_actor, p_event);
    UPDATE members m SET removed_seq = s WHERE m.chat_id = p_chat AND m.account_id = p_actor
    RETURNING m.joined_seq INTO j;
    IF p_promote <> 0 THEN
        UPDATE members m SET role = 2
         WHERE m.chat_id = p_chat AND m.account_id = p_promote AND m.removed_seq IS NULL;
        PERFORM append_system_message(p_chat, p_actor, p_promote_event);
    END IF;
    event_seq := s;
    account := p_actor;
    joined := j;
    removed := s;
    RETURN NEXT;
END $$;
