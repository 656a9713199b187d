-- The log's identity: made once, when the schema is created, and never changed. The NATS
-- streams this log publishes to carry it (in their description) and so does every event the
-- relay publishes (header `Runledger-Log`): a database dropped and created again, or a second
-- lab on the same NATS, has another identity, and no component acts on the other's events.
CREATE TABLE log_identity (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    log_id     uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO log_identity (singleton, log_id) VALUES (true, gen_random_uuid());

CREATE TRIGGER log_identity_fixed BEFORE INSERT OR UPDATE OR DELETE ON log_identity
    FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change();
CREATE TRIGGER log_identity_no_truncate BEFORE TRUNCATE ON log_identity
    FOR EACH STATEMENT EXECUTE FUNCTION runledger_refuse_change();

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON log_identity FROM PUBLIC;
