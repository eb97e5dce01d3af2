-- Results bundles in the database (a PostgreSQL ledger only): every API
-- replica serves every bundle, whichever worker wrote it. The content is
-- encrypted by the key ring before it is stored, in chunks of fixed size (the
-- last may be shorter), so a download reads one chunk at a time. A bundle is
-- named by the hex SHA-256 of its download token, never by the token.
-- On SQLite, bundles stay files in DSR_RESULTS_DIR: there is no 004 variant.
CREATE TABLE results_bundles (
    name       TEXT COLLATE "C" PRIMARY KEY,
    size       BIGINT      NOT NULL,
    chunk_size INTEGER     NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX results_bundles_created ON results_bundles (created_at);

CREATE TABLE results_chunks (
    name TEXT COLLATE "C" NOT NULL REFERENCES results_bundles (name) ON DELETE CASCADE,
    seq  INTEGER NOT NULL,
    data BYTEA   NOT NULL,
    PRIMARY KEY (name, seq)
);
