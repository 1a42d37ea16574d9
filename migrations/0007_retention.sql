-- 0007_retention.sql — finding what the retention sweeper deletes: messages
-- past the retention period (a BRIN index: rows arrive in time order, so it
-- is tiny and nearly free to maintain) and expired disappearing messages
-- (messages_expiring, from 0002).
CREATE INDEX messages_created_brin ON messages USING brin (created_at);
