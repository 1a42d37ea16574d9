-- 0004_accounts_functions.sql — the accounts service's multi-step writes,
-- one function each so that each is one statement and one transaction
-- (server/accounts: request_code.c, verify.c, devices.c).
--
-- Verification codes never reach the database in clear: code_hash is a
-- 16-byte salt followed by a keyed BLAKE2b MAC of the number and the code
-- (server/accounts/otp.c), and the comparison happens in parleyd.

-- Purging expired codes walks this index.
CREATE INDEX verification_codes_by_expiry ON verification_codes (expires_at);

-- Stores a new code for the number, replacing any earlier one (and its
-- attempt count), and purges a few codes that expired over an hour ago, so
-- numbers that never verify do not pile up.
CREATE FUNCTION store_code(p_phone text, p_code_hash bytea, p_ttl_ms bigint)
RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO verification_codes AS v (phone, code_hash, expires_at, attempts, created_at)
    VALUES (p_phone, p_code_hash, now() + p_ttl_ms * interval '1 millisecond', 0, now())
    ON CONFLICT (phone) DO UPDATE
       SET code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at, attempts = 0,
           created_at = EXCLUDED.created_at;
    DELETE FROM verification_codes v
     WHERE v.phone IN (SELECT e.phone FROM verification_codes e
                        WHERE e.expires_at < now() - interval '1 hour'
                        ORDER BY e.expires_at LIMIT 16 FOR UPDATE SKIP LOCKED);
END $$;

-- Counts one Verify attempt on the number's code and returns the sealed
-- code to compare. status: 0 attempt counted (stored_hash, attempts_left
-- after this one), 1 no code pending, 2 expired, 3 no attempts left.
CREATE FUNCTION take_code_attempt(p_phone text, p_max_attempts int)
RETURNS TABLE (status smallint, stored_hash bytea, attempts_left int)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v verification_codes%ROWTYPE;
BEGIN
    SELECT * INTO v FROM verification_codes c WHERE c.phone = p_phone FOR UPDATE;
    IF NOT FOUND THEN
        status := 1; RETURN NEXT; RETURN;
    END IF;
    IF v.expires_at <= now() THEN
        status := 2; RETURN NEXT; RETURN;
    END IF;
    IF v.attempts >= p_max_attempts THEN
        status := 3; RETURN NEXT; RETURN;
    END IF;
    UPDATE verification_codes c SET attempts = c.attempts + 1 WHERE c.phone = p_phone;
    status := 0;
    stored_hash := v.code_hash;
    attempts_left := p_max_attempts - v.attempts - 1;
    RETURN NEXT;
END $$;

-- After parleyd matched the code: consumes exactly the row it checked
-- (p_code_hash; a concurrent Verify with the same code, or a newer code,
-- makes this one status 1), creates the account on first verification,
-- enforces the device limit (status 2; the code is kept for a retry) and
-- adds the device. status 0: account (the existing one, or p_new_account
-- when created is true).
CREATE FUNCTION complete_verification(p_phone text, p_code_hash bytea, p_new_account bigint, p_device bigint,
                                      p_device_name text, p_token_hash bytea, p_max_devices int)
RETURNS TABLE (status smallint, account bigint, created boolean)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n int;
BEGIN
    -- the code row's lock serialises every verification of this number
    PERFORM 1 FROM verification_codes c WHERE c.phone = p_phone AND c.code_hash = p_code_hash FOR UPDATE;
    IF NOT FOUND THEN
        status := 1; RETURN NEXT; RETURN;
    END IF;
    INSERT INTO accounts (id, phone) VALUES (p_new_account, p_phone) ON CONFLICT (phone) DO NOTHING;
    created := FOUND;
    SELECT a.id INTO account FROM accounts a WHERE a.phone = p_phone FOR UPDATE;
    SELECT count(*) INTO n FROM devices d WHERE d.account_id = account AND d.revoked_at IS NULL;
    IF n >= p_max_devices THEN
        status := 2; RETURN NEXT; RETURN;
    END IF;
    DELETE FROM verification_codes c WHERE c.phone = p_phone;
    INSERT INTO devices (id, account_id, name, token_hash) VALUES (p_device, account, p_device_name, p_token_hash);
    status := 0;
    RETURN NEXT;
END $$;

-- Renames p_account's device p_device. status: 0 renamed (with the
-- device's times in Unix ms), 1 no such device (or one of p_account's,
-- removed), 2 another account's device.
CREATE FUNCTION rename_device(p_device bigint, p_account bigint, p_name text)
RETURNS TABLE (status smallint, device_name text, created_ms bigint, last_active_ms bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    d devices%ROWTYPE;
BEGIN
    SELECT * INTO d FROM devices x WHERE x.id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 1; RETURN NEXT; RETURN;
    END IF;
    IF d.account_id <> p_account THEN
        status := 2; RETURN NEXT; RETURN;
    END IF;
    IF d.revoked_at IS NOT NULL THEN
        status := 1; RETURN NEXT; RETURN;
    END IF;
    UPDATE devices x SET name = p_name WHERE x.id = p_device;
    status := 0;
    device_name := p_name;
    created_ms := (extract(epoch FROM d.created_at) * 1000)::bigint;
    last_active_ms := (extract(epoch FROM d.last_active_at) * 1000)::bigint;
    RETURN NEXT;
END $$;

-- Revokes p_account's device p_device (its token stops working). Removing
-- an already removed own device succeeds, so a retry is harmless.
-- status: 0 revoked, 1 no such device, 2 another account's device.
CREATE FUNCTION revoke_device(p_device bigint, p_account bigint)
RETURNS TABLE (status smallint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    d devices%ROWTYPE;
BEGIN
    SELECT * INTO d FROM devices x WHERE x.id = p_device FOR UPDATE;
    IF NOT FOUND THEN
        status := 1; RETURN NEXT; RETURN;
    END IF;
    IF d.account_id <> p_account THEN
        status := 2; RETURN NEXT; RETURN;
    END IF;
    IF d.revoked_at IS NULL THEN
        UPDATE devices x SET revoked_at = now() WHERE x.id = p_device;
    END IF;
    status := 0;
    RETURN NEXT;
END $$;
