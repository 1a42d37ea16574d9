-- send_message, the hot path of every message, in two statements instead of
-- five when the send is allowed and new: one UPDATE locks the chat row,
-- checks the sender (member, not blocked, admin where only admins send) and
-- takes the next seq; one INSERT stores the message unless this device already
-- sent this client id. Everything else (no such chat, refusals, a retry that
-- raced a membership change) goes to the full checks of 0002, renamed
-- send_message_checked, which decide exactly as before. Same signature and
-- results, so callers do not change.

ALTER FUNCTION send_message(bigint, bigint, bigint, text, text, bytea, bytea, bigint, bigint)
    RENAME TO send_message_checked;

CREATE FUNCTION send_message(p_chat bigint, p_account bigint, p_device bigint, p_client_id text,
                             p_content_type text, p_payload bytea, p_device_payloads bytea,
                             p_reply_to bigint, p_expires_in_ms bigint)
RETURNS TABLE (status smallint, seq bigint, created_ms bigint, duplicate boolean, kind smallint,
               members_version bigint, account_a bigint, account_b bigint, expires_ms bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    t timestamptz := now();
    exp timestamptz;
    stored bigint;
BEGIN
    -- the chat row lock serialises the chat's sequence numbers
    UPDATE chats c SET last_seq = c.last_seq + 1
      FROM members m
     WHERE c.id = p_chat AND m.chat_id = p_chat AND m.account_id = p_account AND m.removed_seq IS NULL
       AND NOT (c.kind = 1 AND (c.a_blocks_b OR c.b_blocks_a))
       AND (NOT c.only_admins_send OR m.role = 2)
    RETURNING c.last_seq, c.kind, c.members_version, c.account_a, c.account_b
      INTO seq, kind, members_version, account_a, account_b;
    IF NOT FOUND THEN
        -- not allowed (or no such chat): the full checks say which, and a
        -- retry of a message stored before a refusal still gets its original
        RETURN QUERY SELECT * FROM send_message_checked(p_chat, p_account, p_device, p_client_id, p_content_type,
                                                        p_payload, p_device_payloads, p_reply_to, p_expires_in_ms);
        RETURN;
    END IF;
    IF p_expires_in_ms > 0 THEN
        exp := t + p_expires_in_ms * interval '1 millisecond';
    END IF;
    INSERT INTO messages (chat_id, seq, sender_account, sender_device, client_msg_id, created_at, content_type,
                          payload, device_payloads, reply_to_seq, expires_at)
    VALUES (p_chat, seq, p_account, p_device, p_client_id, t, p_content_type, p_payload, p_device_payloads,
            p_reply_to, exp)
    ON CONFLICT (chat_id, sender_device, client_msg_id) DO NOTHING
    RETURNING messages.seq INTO stored;
    IF stored IS NULL THEN
        -- a retry: give the seq back (the row lock is still ours, so nobody
        -- took a later one) and answer with the original
        UPDATE chats SET last_seq = chats.last_seq - 1 WHERE id = p_chat;
        SELECT m.seq, (extract(epoch FROM m.created_at) * 1000)::bigint,
               (extract(epoch FROM m.expires_at) * 1000)::bigint
          INTO seq, created_ms, expires_ms
          FROM messages m
         WHERE m.chat_id = p_chat AND m.sender_device = p_device AND m.client_msg_id = p_client_id;
        status := 0;
        duplicate := true;
        RETURN NEXT;
        RETURN;
    END IF;
    status := 0;
    duplicate := false;
    created_ms := (extract(epoch FROM t) * 1000)::bigint;
    expires_ms := (extract(epoch FROM exp) * 1000)::bigint;
    RETURN NEXT;
END $$;
