-- 0011_push.sql — push tokens, mutes, and the durable push queue.
--
-- All on the account's shard, beside the devices they belong to. A job is
-- recorded (in the statement after a message commits) before any push is
-- attempted, so a restart loses none. One row per message and device,
-- inserted and never updated by the send path, so that recording takes no
-- row locks another transaction could hold; the dispatcher folds a
-- device's rows into one push. Delivery state comes from device_cursors: a
-- job whose message the device has acknowledged is dropped unsent.

-- One token per device and provider (an iPhone has an APNs token and a
-- PushKit one); registering again replaces it. provider: 1 APNs, 2 APNs
-- VoIP, 3 FCM (parley.v1.PushProvider).
CREATE TABLE push_tokens (
    device_id bigint NOT NULL,
    provider smallint NOT NULL,
    account_id bigint NOT NULL,
    token text NOT NULL,
    app_id text NOT NULL DEFAULT '',
    sandbox boolean NOT NULL DEFAULT false,
    registered_at timestamptz NOT NULL DEFAULT now(),
    last_alert_at timestamptz,      -- coalescing: one alert per [push] alert_interval_ms
    last_background_at timestamptz, -- one background push per [push] background_interval_ms
    PRIMARY KEY (device_id, provider)
);
CREATE INDEX push_tokens_by_account ON push_tokens (account_id);
CREATE INDEX push_tokens_by_age ON push_tokens (registered_at);
-- A token belongs to one device: registering it moves it.
CREATE INDEX push_tokens_by_token ON push_tokens (token);

-- until: 'infinity' for ever.
CREATE TABLE chat_mutes (
    account_id bigint NOT NULL,
    chat_id bigint NOT NULL,
    until timestamptz NOT NULL,
    PRIMARY KEY (account_id, chat_id)
);

ALTER TABLE accounts ADD COLUMN push_no_previews boolean NOT NULL DEFAULT false;

-- kind: 1 alert, 2 background (a muted chat), 3 call. due_at: when the
-- next attempt may run (a claim moves it a lease ahead, so a node that dies
-- mid-push leaves the job to the next sweep). preview: the message's
-- encrypted preview, if any.
CREATE TABLE push_jobs (
    device_id bigint NOT NULL,
    provider smallint NOT NULL,
    kind smallint NOT NULL,
    chat_id bigint NOT NULL,
    account_id bigint NOT NULL,
    seq bigint NOT NULL,
    preview bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL,
    attempts int NOT NULL DEFAULT 0,
    last_error text,
    PRIMARY KEY (device_id, provider, kind, chat_id, seq)
);
CREATE INDEX push_jobs_due ON push_jobs (due_at);

-- A revoked device's tokens and queued pushes go with it, whichever path
-- revoked it (RemoveDevice, a re-registration that replaces devices).
CREATE FUNCTION drop_revoked_device_push() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM push_tokens t WHERE t.device_id = NEW.id;
    DELETE FROM push_jobs j WHERE j.device_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER devices_revoked_push AFTER UPDATE OF revoked_at ON devices
    FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL)
    EXECUTE FUNCTION drop_revoked_device_push();
