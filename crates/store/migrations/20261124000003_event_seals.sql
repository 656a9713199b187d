-- Tamper evidence for the event log: a hash chain over every committed event.
--
-- The seal of position n holds
--     chain_hash(n) = SHA-256( chain_hash(n-1) || encoding(event n) )
-- with chain_hash(0) = 32 zero bytes, and encoding(event) = every column of the event as read back
-- from Postgres (data as `data::text`), each written as an 8-byte big-endian length followed by
-- its bytes (runledger_store::chain_hash documents the exact layout). Changing, removing or moving
-- any sealed event therefore breaks the chain from that position on, and `runledger audit verify`
-- names the first bad position. The handler's sealer appends seals shortly after events commit,
-- one transaction per page, so seals always cover a prefix 1..n of the log.
CREATE TABLE event_seals (
    position    bigint      PRIMARY KEY CHECK (position > 0),
    chain_hash  bytea       NOT NULL CHECK (octet_length(chain_hash) = 32),
    sealed_at   timestamptz NOT NULL DEFAULT now()
);

-- Append-only like the log itself.
CREATE TRIGGER event_seals_append_only BEFORE UPDATE OR DELETE ON event_seals
    FOR EACH ROW EXECUTE FUNCTION runledger_refuse_change();
CREATE TRIGGER event_seals_no_truncate BEFORE TRUNCATE ON event_seals
    FOR EACH STATEMENT EXECUTE FUNCTION runledger_refuse_change();

REVOKE UPDATE, DELETE, TRUNCATE ON event_seals FROM PUBLIC;
