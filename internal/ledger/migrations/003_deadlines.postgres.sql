-- Extensions of the statutory due time (GDPR Art. 12(3): two further months;
-- CCPA: 45 further days): at most one per request, with the operator's reason.
-- requests.due_time holds the extended due time; the original is kept here.
CREATE TABLE extensions (
    controller_id     TEXT        NOT NULL,
    request_id        TEXT        NOT NULL,
    original_due_time TIMESTAMPTZ NOT NULL,
    due_time          TIMESTAMPTZ NOT NULL,
    extended_at       TIMESTAMPTZ NOT NULL,
    reason            TEXT        NOT NULL,
    operator          TEXT        NOT NULL DEFAULT '',
    PRIMARY KEY (controller_id, request_id),
    FOREIGN KEY (controller_id, request_id) REFERENCES requests (controller_id, request_id) ON DELETE CASCADE
);
CREATE INDEX requests_received_time ON requests (received_time);
