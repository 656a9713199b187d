-- Bearer tokens the gateway issues (POST /api/v1/tokens). Session state, not lab history: kept
-- beside the log, never in it. Only the SHA-256 of a token is stored.
CREATE SCHEMA IF NOT EXISTS gateway;

CREATE TABLE gateway.tokens (
    token_hash  bytea       PRIMARY KEY,
    username    text        NOT NULL,
    role        text        NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

CREATE INDEX tokens_expires_at ON gateway.tokens (expires_at);
