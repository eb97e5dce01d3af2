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
    identities = COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
            'type', e.value ->> 'type',
            'format', e.value ->> 'format',
            'hash', 'sha256:' || (e.value ->> 'sha256')) ORDER BY e.ord)
        FROM jsonb_array_elements(requests.identities) WITH ORDINALITY AS e(value, ord)), '[]'::jsonb);

CREATE INDEX requests_legacy ON requests (controller_id, request_id) WHERE hash_scheme = 'sha256';

-- Nothing new unkeyed or in clear, whoever writes (an older binary during a
-- rolling upgrade included): rows not marked 'sha256' hold keyed hashes and
-- sealed callback URLs only.
ALTER TABLE requests ADD CONSTRAINT requests_keyed CHECK (
    hash_scheme = 'sha256' OR (
        (body_hash = '' OR body_hash LIKE 'hmac:%')
        AND NOT (identities @? '$[*] ? (!exists(@.hash) || !(@.hash starts with "hmac:"))')
        AND NOT (callback_urls @? '$[*] ? (!(@ starts with "enc:"))')));

-- Callback attempts: a row per attempt, keyed by the request's status change
-- (seq, from 1; 0 for attempts made before this migration), never replaced.
ALTER TABLE callback_attempts ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE callback_attempts SET url_hash = 'sha256:' || url_hash;
DO $$
DECLARE c name;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'callback_attempts'::regclass AND contype = 'u' LOOP
        EXECUTE format('ALTER TABLE callback_attempts DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
ALTER TABLE callback_attempts ADD CONSTRAINT callback_attempts_keyed
    CHECK (url_hash LIKE 'hmac:%' OR url_hash LIKE 'sha256:%');
CREATE INDEX callback_attempts_request ON callback_attempts (controller_id, request_id, seq);
