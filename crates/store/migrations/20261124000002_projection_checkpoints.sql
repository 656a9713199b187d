-- Where each read model (projection) stands in the log. The projector updates a row in the same
-- transaction as the read-model change it records, so a crash never loses or doubles an update.
-- `version` is the read model's table layout; a projector whose code expects another version
-- rebuilds that read model before serving it.
CREATE TABLE projection_checkpoints (
    name        text        PRIMARY KEY,
    position    bigint      NOT NULL CHECK (position >= 0),
    version     integer     NOT NULL,
    rebuilt_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
