-- Failed logins, shared by every gateway process: one row per (username, client address), and
-- one per client address across usernames (username ''). Each attempt reserves itself in one
-- upsert before the password is checked, so a concurrent burst cannot pass a check-then-record
-- race; a success deletes its row. Rows untouched for the retention window are deleted.
CREATE TABLE gateway.login_attempts (
    username      text        NOT NULL,
    client        text        NOT NULL,
    failures      integer     NOT NULL,
    blocked_until timestamptz NOT NULL,
    last_allowed  uuid        NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (username, client)
);

CREATE INDEX login_attempts_updated_at ON gateway.login_attempts (updated_at);

-- The position of the user's last event the login saw: a later user_disabled, password_changed
-- or tokens_revoked in the user's stream makes the token invalid.
ALTER TABLE gateway.tokens ADD COLUMN user_position bigint NOT NULL DEFAULT 0;
CREATE INDEX tokens_username ON gateway.tokens (username);

-- Every gateway LISTENs here and drops the user's cached tokens when such an event commits,
-- whichever process (a gateway, the CLI over NATS) sent the command.
CREATE FUNCTION gateway.notify_user_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('runledger_user_sessions', NEW.stream_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER events_user_sessions AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.type IN ('user_disabled', 'password_changed', 'tokens_revoked'))
    EXECUTE FUNCTION gateway.notify_user_sessions();

-- The wait after `failures` failed logins: none for the first `free`, then `base_seconds`
-- doubling per failure up to `max_seconds`.
CREATE FUNCTION gateway.login_delay(failures integer, free integer, base_seconds double precision,
                                    max_seconds double precision)
    RETURNS interval LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN failures <= free THEN interval '0'
                ELSE make_interval(secs => least(max_seconds,
                                                 base_seconds * power(2, failures - free - 1)))
           END
$$;
