-- 0006_receipts.sql — cursor updates that also say whom to tell.
--
-- Receipts go to the member's own account (its other devices), and to the
-- senders of the messages the cursors now cover; when the chat-wide
-- minimum moves ("delivered to all", "read by all"), to every member. In a
-- direct chat that is always both accounts.

CREATE FUNCTION move_cursor(p_chat bigint, p_account bigint, p_delivered bigint, p_read bigint)
RETURNS TABLE (status smallint, delivered_seq bigint, read_seq bigint, delivered_to_all bigint,
               read_by_all bigint, changed boolean, notify bigint[])
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    u record;
    old_all_d bigint;
    old_all_r bigint;
BEGIN
    SELECT min(m.delivered_seq), min(m.read_seq) INTO old_all_d, old_all_r FROM members m
     WHERE m.chat_id = p_chat AND m.removed_seq IS NULL;
    SELECT * INTO u FROM update_cursor(p_chat, p_account, p_delivered, p_read);
    status := u.status;
    IF u.status <> 0 THEN
        RETURN NEXT; RETURN;
    END IF;
    delivered_seq := u.delivered_seq;
    read_seq := u.read_seq;
    delivered_to_all := u.delivered_to_all;
    read_by_all := u.read_by_all;
    changed := u.delivered_seq <> u.old_delivered OR u.read_seq <> u.old_read;
    IF NOT changed THEN
        notify := '{}';
    ELSIF u.kind = 1 OR u.delivered_to_all <> old_all_d OR u.read_by_all <> old_all_r THEN
        SELECT array_agg(m.account_id) INTO notify FROM members m
         WHERE m.chat_id = p_chat AND m.removed_seq IS NULL;
    ELSE
        SELECT array_agg(DISTINCT x) INTO notify FROM (
            SELECT p_account AS x
            UNION
            SELECT msg.sender_account FROM messages msg
             WHERE msg.chat_id = p_chat AND msg.sender_device <> 0
               AND msg.seq > LEAST(u.old_delivered, u.old_read) AND msg.seq <= GREATEST(u.delivered_seq, u.read_seq)
        ) s;
    END IF;
    RETURN NEXT;
END $$;
