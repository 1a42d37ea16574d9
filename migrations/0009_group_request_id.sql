-- CreateGroup made retryable: a group remembers its creator and the
-- creator's client_request_id, unique per creator, so a retry after a lost
-- reply finds the group the first call made instead of making a second.
-- The server puts such a group on a shard derived from (creator, request
-- id), so a retry looks on the shard where the first call wrote.

ALTER TABLE chats ADD COLUMN creator bigint, ADD COLUMN request_id text;
CREATE UNIQUE INDEX chats_group_request ON chats (creator, request_id) WHERE request_id IS NOT NULL;

-- As create_group of 0005, plus p_request (NULL: none) and the group's id
-- as a sixth column: the new one, or on a retry the one created before
-- (then nothing is written, and the rows are its members as they are now).
CREATE FUNCTION create_group(p_chat bigint, p_creator bigint, p_name text, p_description text,
                             p_only_admins_send boolean, p_members bigint[], p_event bytea, p_request text)
RETURNS TABLE (status smallint, event_seq bigint, account bigint, joined bigint, removed bigint, chat bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    s bigint;
    c bigint := p_chat;
BEGIN
    -- a concurrent first call with the same key: this waits for it, then
    -- inserts nothing and reads what it made
    INSERT INTO chats (id, kind, name, description, only_admins_send, creator, request_id)
    VALUES (p_chat, 2, p_name, p_description, p_only_admins_send, p_creator, p_request)
    ON CONFLICT (creator, request_id) WHERE request_id IS NOT NULL DO NOTHING;
    IF NOT FOUND THEN
        SELECT g.id INTO c FROM chats g WHERE g.creator = p_creator AND g.request_id = p_request;
        RETURN QUERY SELECT 0::smallint, 1::bigint, m.account_id, m.joined_seq, m.removed_seq, c
                       FROM members m WHERE m.chat_id = c;
        RETURN;
    END IF;
    s := append_system_message(p_chat, p_creator, p_event);
    INSERT INTO members (chat_id, account_id, role, joined_seq) VALUES (p_chat, p_creator, 2, s);
    INSERT INTO members (chat_id, account_id, role, joined_seq)
    SELECT p_chat, u.a, 1, s FROM unnest(p_members) AS u(a) WHERE u.a <> p_creator
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT 0::smallint, s, m.account_id, m.joined_seq, m.removed_seq, c
                   FROM members m WHERE m.chat_id = p_chat;
END $$;

-- The 0005 signature, for servers not yet upgraded: no request id.
CREATE OR REPLACE FUNCTION create_group(p_chat bigint, p_creator bigint, p_name text, p_description text,
                                        p_only_admins_send boolean, p_members bigint[], p_event bytea)
RETURNS TABLE (status smallint, event_seq bigint, account bigint, joined bigint, removed bigint)
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT g.status, g.event_seq, g.account, g.joined, g.removed
      FROM create_group(p_chat, p_creator, p_name, p_description, p_only_admins_send, p_members, p_event,
                        NULL::text) AS g;
$$;
