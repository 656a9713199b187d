-- The event log: the single source of truth and the audit history.
CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version > 0),
    type            text        NOT NULL,
    schema_version  integer     NOT NULL,
    recorded_at     timestamptz NOT NULL,
    actor           text        NOT NULL,
    command_id      uuid        NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    data            jsonb       NOT NULL,
    -- Optimistic concurrency: two writers cannot both append version N of a stream.
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
);

-- The log's head. Appends take this row's lock (UPDATE) first and hold it until they commit,
-- so positions are contiguous and committed in order: a reader following `position` never
-- sees position N+1 before position N is visible (gap-safe order).
CREATE TABLE log_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    position  bigint  NOT NULL
);
INSERT INTO log_head (singleton, position) VALUES (true, 0);

-- Every handled command, accepted or rejected, with the outcome it was answered with: a command
-- id is applied at most once, however late it is redelivered.
CREATE TABLE commands (
    command_id  uuid        PRIMARY KEY,
    type        text        NOT NULL,
    actor       text        NOT NULL,
    accepted    boolean     NOT NULL,
    outcome     jsonb       NOT NULL,
    handled_at  timestamptz NOT NULL
);

CREATE FUNCTION runledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'runledger: % on % is refused: the log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION runledger_refuse_change();
CREATE TRIGGER commands_append_only BEFORE UPDATE OR DELETE ON commands
    FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change();
CREATE TRIGGER commands_no_truncate BEFORE TRUNCATE ON commands
    FOR EACH STATEMENT EXECUTE FUNCTION runledger_refuse_change();

REVOKE UPDATE, DELETE, TRUNCATE ON events, commands FROM PUBLIC;
