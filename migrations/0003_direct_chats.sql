-- 0003_direct_chats.sql — one-to-one chats and blocking on them.
--
-- A direct chat lives on the shard derived from its two accounts
-- (app/direct.h), and the unique index chats_direct_pair makes a second
-- one for the same pair impossible, whoever creates it and however often.

-- The pair's chat, created (with both members, joined at seq 0) if it does
-- not exist yet; p_new_id is used only then.
CREATE FUNCTION ensure_direct_chat(p_new_id bigint, p_x bigint, p_y bigint)
RETURNS TABLE (chat_id bigint, created boolean, account_a bigint, account_b bigint,
               a_blocks_b boolean, b_blocks_a boolean, last_seq bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    lo bigint := LEAST(p_x, p_y);
    hi bigint := GREATEST(p_x, p_y);
BEGIN
    INSERT INTO chats (id, kind, account_a, account_b) VALUES (p_new_id, 1, lo, hi)
    ON CONFLICT (account_a, account_b) WHERE kind = 1 DO NOTHING;
    created := FOUND;
    IF created THEN
        INSERT INTO members (chat_id, account_id, joined_seq) VALUES (p_new_id, lo, 0), (p_new_id, hi, 0);
    END IF;
    SELECT c.id, c.account_a, c.account_b, c.a_blocks_b, c.b_blocks_a, c.last_seq
      INTO chat_id, account_a, account_b, a_blocks_b, b_blocks_a, last_seq
      FROM chats c WHERE c.kind = 1 AND c.account_a = lo AND c.account_b = hi;
    RETURN NEXT;
END $$;

-- Records that p_blocker blocks (p_on) or unblocks p_blocked on their
-- direct chat, creating the chat if needed, so the send path sees it.
CREATE FUNCTION set_direct_block(p_new_id bigint, p_blocker bigint, p_blocked bigint, p_on boolean)
RETURNS TABLE (chat_id bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_chat bigint;
BEGIN
    SELECT e.chat_id INTO v_chat FROM ensure_direct_chat(p_new_id, p_blocker, p_blocked) e;
    IF p_blocker < p_blocked THEN
        UPDATE chats SET a_blocks_b = p_on WHERE chats.id = v_chat;
    ELSE
        UPDATE chats SET b_blocks_a = p_on WHERE chats.id = v_chat;
    END IF;
    chat_id := v_chat;
    RETURN NEXT;
END $$;
