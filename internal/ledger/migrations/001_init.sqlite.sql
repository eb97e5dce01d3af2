-- The ledger on SQLite. Times are INTEGER Unix nanoseconds in UTC (NULL when
-- unset); JSON documents are TEXT.

CREATE TABLE requests (
    controller_id            TEXT    NOT NULL,
    request_id               TEXT    NOT NULL,
    type                     TEXT    NOT NULL,
    regulation               TEXT    NOT NULL,
    status                   TEXT    NOT NULL
        CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled', 'failed')),
    status_reason            TEXT    NOT NULL DEFAULT '',
    api_version              TEXT    NOT NULL DEFAULT '',
    submitted_time           INTEGER,
    received_time            INTEGER NOT NULL,
    expected_completion_time INTEGER,
    due_time                 INTEGER,
    body_hash                TEXT    NOT NULL DEFAULT '',
    identities               TEXT    NOT NULL DEFAULT '[]', -- [{"type","format","sha256"}]
    callback_urls            TEXT    NOT NULL DEFAULT '[]',
    skip_waiting_period      INTEGER NOT NULL DEFAULT 0,
    results_token_hash       TEXT,                          -- hex SHA-256 of the token
    results_url              TEXT    NOT NULL DEFAULT '',        -- the link given to the controller
    results_count            INTEGER NOT NULL DEFAULT 0,
    results_expires_at       INTEGER,
    resolution               TEXT,
    updated_at               INTEGER NOT NULL,
    expires_at               INTEGER NOT NULL,
    PRIMARY KEY (controller_id, request_id)
);
CREATE INDEX requests_status ON requests (status, controller_id, request_id);
CREATE INDEX requests_due_time ON requests (due_time);
CREATE INDEX requests_expires_at ON requests (expires_at);
CREATE UNIQUE INDEX requests_results_token_hash ON requests (results_token_hash);

CREATE TABLE transitions (
    id            INTEGER PRIMARY KEY,
    controller_id TEXT    NOT NULL,
    request_id    TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    from_status   TEXT    NOT NULL,
    to_status     TEXT    NOT NULL,
    reason        TEXT    NOT NULL DEFAULT '',
    FOREIGN KEY (controller_id, request_id) REFERENCES requests (controller_id, request_id) ON DELETE CASCADE
);
CREATE INDEX transitions_request ON transitions (controller_id, request_id, at);

CREATE TABLE forwarding (
    controller_id  TEXT    NOT NULL,
    request_id     TEXT    NOT NULL,
    destination    TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('pending', 'skipped', 'sent', 'failed')),
    status_message TEXT    NOT NULL DEFAULT '',
    task_id        TEXT    NOT NULL DEFAULT '',
    task_status    TEXT    NOT NULL DEFAULT '',
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (controller_id, request_id, destination),
    FOREIGN KEY (controller_id, request_id) REFERENCES requests (controller_id, request_id) ON DELETE CASCADE
);

CREATE TABLE callback_attempts (
    id             INTEGER PRIMARY KEY,
    controller_id  TEXT    NOT NULL,
    request_id     TEXT    NOT NULL,
    url_hash       TEXT    NOT NULL, -- hex SHA-256 of the URL
    host           TEXT    NOT NULL DEFAULT '',
    request_status TEXT    NOT NULL,
    attempt        INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    http_status    INTEGER NOT NULL DEFAULT 0,
    error_message  TEXT    NOT NULL DEFAULT '',
    delivered      INTEGER NOT NULL DEFAULT 0,
    permanent      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (controller_id, request_id, url_hash, request_status, attempt),
    FOREIGN KEY (controller_id, request_id) REFERENCES requests (controller_id, request_id) ON DELETE CASCADE
);
