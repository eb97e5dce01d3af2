-- Keyed hashes and sealed callback URLs (issue 11). Rows written before this
-- migration hold unkeyed SHA-256 hashes and clear callback URLs: they are
-- marked, never mixed with keyed ones. Their hashes become "sha256:<hex>"
-- (identities' field "sha256" becomes "hash") and hash_scheme says 'sha256';
-- Store.UpgradeLegacy (the hourly sweep, which has the key ring) later keys
-- them and seals their callback URLs, and sets hash_scheme to 'hmac'.
-- New rows: hash_scheme 'hmac', hashes "hmac:<key id>:<hex>", callback URLs
-- "enc:v1:<key id>:...".

ALTER TABLE requests ADD COLUMN hash_scheme TEXT NOT NULL DEFAULT 'hmac'
    CHECK (hash_scheme IN ('hmac', 'sha256'));

UPDATE requests SET
    hash_scheme = 'sha256',
    body_hash = CASE WHEN body_hash = '' THEN '' ELSE 'sha256:' || body_hash END,
    identities = (
        SELECT COALESCE(json_group_array(json_object(
            'type', json_extract(e.value, '$.type'),
            'format', json_extract(e.value, '$.format'),
            'hash', 'sha256:' || json_extract(e.value, '$.sha256'))), '[]')
        FROM (SELECT value FROM json_each(requests.identities) ORDER BY key) AS e);

CREATE INDEX requests_legacy ON requests (controller_id, request_id) WHERE hash_scheme = 'sha256';

-- Nothing new unkeyed or in clear, whoever writes (an older binary during a
-- rolling upgrade included): rows not marked 'sha256' hold keyed hashes and
-- sealed callback URLs only.
CREATE TRIGGER requests_keyed_insert BEFORE INSERT ON requests
WHEN NEW.hash_scheme <> 'sha256' AND (
    (NEW.body_hash <> '' AND NEW.body_hash NOT LIKE 'hmac:%')
    OR EXISTS (SELECT 1 FROM json_each(NEW.identities)
               WHERE json_type(value, '$.hash') IS NOT 'text' OR json_extract(value, '$.hash') NOT LIKE 'hmac:%')
    OR EXISTS (SELECT 1 FROM json_each(NEW.callback_urls) WHERE type <> 'text' OR value NOT LIKE 'enc:%'))
BEGIN
    SELECT RAISE(ABORT, 'ledger: hashes must be keyed and callback URLs sealed (migration 002)');
END;
CREATE TRIGGER requests_keyed_update BEFORE UPDATE OF body_hash, identities, callback_urls, hash_scheme ON requests
WHEN NEW.hash_scheme <> 'sha256' AND (
    (NEW.body_hash <> '' AND NEW.body_hash NOT LIKE 'hmac:%')
    OR EXISTS (SELECT 1 FROM json_each(NEW.identities)
               WHERE json_type(value, '$.hash') IS NOT 'text' OR json_extract(value, '$.hash') NOT LIKE 'hmac:%')
    OR EXISTS (SELECT 1 FROM json_each(NEW.callback_urls) WHERE type <> 'text' OR value NOT LIKE 'enc:%'))
BEGIN
    SELECT RAISE(ABORT, 'ledger: hashes must be keyed and callback URLs sealed (migration 002)');
END;

-- Callback attempts: a row per attempt, keyed by the request's status change
-- (seq, from 1; 0 for attempts made before this migration), never replaced.
-- SQLite cannot drop the old UNIQUE constraint: the table is rebuilt.
CREATE TABLE callback_attempts_002 (
    id             INTEGER PRIMARY KEY,
    controller_id  TEXT    NOT NULL,
    request_id     TEXT    NOT NULL,
    url_hash       TEXT    NOT NULL  -- keyed hash of the URL ("sha256:<hex>" before 002)
        CHECK (url_hash LIKE 'hmac:%' OR url_hash LIKE 'sha256:%'),
    host           TEXT    NOT NULL DEFAULT '',
    seq            INTEGER NOT NULL DEFAULT 0,
    request_status TEXT    NOT NULL,
    attempt        INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    http_status    INTEGER NOT NULL DEFAULT 0,
    error_message  TEXT    NOT NULL DEFAULT '',
    delivered      INTEGER NOT NULL DEFAULT 0,
    permanent      INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (controller_id, request_id) REFERENCES requests (controller_id, request_id) ON DELETE CASCADE
);
INSERT INTO callback_attempts_002
    (id, controller_id, request_id, url_hash, host, seq, request_status, attempt, at, http_status, error_message, delivered, permanent)
SELECT id, controller_id, request_id, 'sha256:' || url_hash, host, 0, request_status, attempt, at, http_status, error_message, delivered, permanent
FROM callback_attempts;
DROP TABLE callback_attempts;
ALTER TABLE callback_attempts_002 RENAME TO callback_attempts;
CREATE INDEX callback_attempts_request ON callback_attempts (controller_id, request_id, seq);
