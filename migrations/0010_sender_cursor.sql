-- 0010_sender_cursor.sql — a sender has read what it sent.
--
-- Without this, a member's cursors moved only by its acks, and nobody acks
-- their own messages: "delivered to all" and "read by all" (minimums over
-- members) stopped just before the sender's latest message. After a send
-- commits, parleyd calls sender_cursor (a separate statement with the
-- member row's lock key, so group-commit batches keep their lock order);
-- members hear of it only when a chat-wide minimum moved, which happens
-- only when the sender alone held it.

CREATE FUNCTION sender_cursor(p_chat bigint, p_account bigint, p_seq bigint)
RETURNS TABLE (delivered_seq bigint, read_seq bigint, delivered_to_all bigint, read_by_all bigint,
               changed boolean, notify bigint[])
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    old_d bigint;
    old_r bigint;
BEGIN
    changed := false;
    notify := '{}';
    SELECT m.delivered_seq, m.read_seq INTO old_d, old_r FROM members m
     WHERE m.chat_id = p_chat AND m.account_id = p_account AND m.removed_seq IS NULL FOR UPDATE;
    IF NOT FOUND OR (old_d >= p_seq AND old_r >= p_seq) THEN
        RETURN NEXT; RETURN;
    END IF;
    delivered_seq := GREATEST(old_d, p_seq);
    read_seq := GREATEST(old_r, p_seq);
    UPDATE members m SET delivered_seq = sender_cursor.delivered_seq, read_seq = sender_cursor.read_seq
     WHERE m.chat_id = p_chat AND m.account_id = p_account;
    -- a minimum moved only if no other member is at or below the old value
    changed := (old_d < p_seq AND NOT EXISTS (
                    SELECT 1 FROM members m WHERE m.chat_id = p_chat AND m.removed_seq IS NULL
                       AND m.account_id <> p_account AND m.delivered_seq <= old_d))
            OR (old_r < p_seq AND NOT EXISTS (
                    SELECT 1 FROM members m WHERE m.chat_id = p_chat AND m.removed_seq IS NULL
                       AND m.account_id <> p_account AND m.read_seq <= old_r));
    IF changed THEN
        SELECT min(m.delivered_seq), min(m.read_seq), array_agg(m.account_id)
          INTO delivered_to_all, read_by_all, notify
          FROM members m WHERE m.chat_id = p_chat AND m.removed_seq IS NULL;
    END IF;
    RETURN NEXT;
END $$;
