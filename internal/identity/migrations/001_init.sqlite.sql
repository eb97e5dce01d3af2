-- The identity store on SQLite: profiles, and the identities each is known by.
--
-- An identity keeps its value once, as given (trimmed): a customer id is the
-- Mixpanel distinct_id itself. Beside it are the binary SHA-256, SHA-1 and MD5
-- digests of its normalised value (emails trimmed and lowercased, other types
-- trimmed), each indexed, so that a request sending the identity hashed
-- matches without any other copy of the value. A raw query is matched through
-- the SHA-256 digest of its normalised value: there is no index on the value.
--
-- Identities refer to their profile by its integer key, which grows as
-- profiles are added: imports append to identity_values and its profile_key
-- index instead of scattering writes over them, whatever the profile ids.
-- updated_at is INTEGER Unix nanoseconds in UTC; attributes a JSON object.

CREATE TABLE identity_profiles (
    profile_key INTEGER PRIMARY KEY,
    profile_id  TEXT    NOT NULL UNIQUE,
    attributes  TEXT    NOT NULL DEFAULT '{}',
    updated_at  INTEGER NOT NULL
);

CREATE TABLE identity_values (
    id          INTEGER PRIMARY KEY,
    profile_key INTEGER NOT NULL, -- identity_profiles.profile_key; the store deletes both together
    type        TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    sha256      BLOB    NOT NULL,
    sha1        BLOB    NOT NULL,
    md5         BLOB    NOT NULL
);
CREATE INDEX identity_values_profile ON identity_values (profile_key);
-- The digest indexes. A bulk import drops them and builds them again at
-- its end; should it die before, the store builds them when it next opens.
CREATE INDEX identity_values_sha256 ON identity_values (sha256);
CREATE INDEX identity_values_sha1 ON identity_values (sha1);
CREATE INDEX identity_values_md5 ON identity_values (md5);

-- Bulk imports in progress (see bulk.go): while one heartbeats here, opening
-- the store leaves alone the digest indexes it dropped.
CREATE TABLE identity_bulk_imports (
    import_id TEXT    NOT NULL PRIMARY KEY,
    heartbeat INTEGER NOT NULL
);
