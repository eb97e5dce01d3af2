-- The ledger on PostgreSQL. Keys compare bytewise (COLLATE "C"), as on SQLite,
-- so that both backends list and paginate in the same order.

CREATE TABLE requests (
    controller_id            TEXT COLLATE "C" NOT NULL,
    request_id               TEXT COLLATE "C" NOT NULL,
    type                     TEXT        NOT NULL,
    regulation               TEXT        NOT NULL,
    status                   TEXT        NOT NULL
        CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled', 'failed')),
    status_reason            TEXT        NOT NULL DEFAULT '',
    api_version              TEXT        NOT NULL DEFAULT '',
    submitted_time           TIMESTAMPTZ,
    received_time            TIMESTAMPTZ NOT NULL,
    expected_completion_time TIMESTAMPTZ,
    due_time                 TIMESTAMPTZ,
    body_hash                TEXT        NOT NULL DEFAULT '',
    identities               JSONB       NOT NULL DEFAULT '[]', -- [{"type","format","sha256"}]
    callback_urls            JSONB       NOT NULL DEFAULT '[]',
    skip_waiting_period      BOOLEAN     NOT NULL DEFAULT FALSE,
    results_token_hash       TEXT,                              -- hex SHA-256 of the token
    results_url              TEXT    NOT NULL DEFAULT '',        -- the link given to the controller
    results_count            INTEGER     NOT NULL DEFAULT 0,
    results_expires_at       TIMESTAMPTZ,
    resolution               JSONB,
    updated_at               TIMESTAMPTZ NOT NULL,
    expires_at               TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (controller_id, request_id)
);
CREATE INDEX requests_status ON requests (status, controller_id, request_id);
CREATE INDEX requests_due_time ON requests (due_time);
CREATE INDEX requests_expires_at ON requests (expires_at);
CREATE UNIQUE INDEX requests_results_token_hash ON requests (results_token_hash);

CREATE TABLE transitions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    controller_id TEXT COLLATE "C" NOT NULL,
    request_id    TEXT COLLATE "C" NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    from_status   TEXT        NOT NULL,
    to_status     TEXT        NOT NULL,
    reason        TEXT        NOT NULL DEFAULT '',
    FOREIGN KEY (controller_id, request_id) REFERENCES requests (controller_id, request_id) ON DELETE CASCADE
);
CREATE INDEX transitions_request ON transitions (controller_id, request_id, at);

CREATE TABLE forwarding (
    controller_id  TEXT COLLATE "C" NOT NULL,
    request_id     TEXT COLLATE "C" NOT NULL,
    destination    TEXT        NOT NULL,
    status         TEXT        NOT NULL CHECK (status IN ('pending', 'skipped', 'sent', 'failed')),
    status_message TEXT        NOT NULL DEFAULT '',
    task_id        TEXT        NOT NULL DEFAULT '',
    task_status    TEXT        NOT NULL DEFAULT '',
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (controller_id, request_id, destination),
    FOREIGN KEY (controller_id, request_id) REFERENCES requests (controller_id, request_id) ON DELETE CASCADE
);

CREATE TABLE callback_attempts (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    controller_id  TEXT COLLATE "C" NOT NULL,
    request_id     TEXT COLLATE "C" NOT NULL,
    url_hash       TEXT        NOT NULL, -- hex SHA-256 of the URL
    host           TEXT        NOT NULL DEFAULT '',
    request_status TEXT        NOT NULL,
    attempt        INTEGER     NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    http_status    INTEGER     NOT NULL DEFAULT 0,
    error_message  TEXT        NOT NULL DEFAULT '',
    delivered      BOOLEAN     NOT NULL DEFAULT FALSE,
    permanent      BOOLEAN     NOT NULL DEFAULT FALSE,
    UNIQUE (controller_id, request_id, url_hash, request_status, attempt),
    FOREIGN KEY (controller_id, request_id) REFERENCES requests (controller_id, request_id) ON DELETE CASCADE
);
