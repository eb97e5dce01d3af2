-- Tenancy and erasure of dsrflow's own copy (SQLite).
--
-- Every profile belongs to a controller (owner): a request only ever
-- resolves to profiles of its own controller, and a profile id is unique per
-- controller. Profiles stored before this migration get the owner '' which
-- no controller id can be (ids are [A-Za-z0-9_-]+): they are never matched
-- until an operator re-imports them with --controller (or sets their owner).
-- SQLite cannot drop the old UNIQUE (profile_id) in place, so the table is
-- rebuilt with the same profile keys (identity_values refer to them).
CREATE TABLE identity_profiles_new (
    profile_key INTEGER PRIMARY KEY,
    owner       TEXT    NOT NULL DEFAULT '',
    profile_id  TEXT    NOT NULL,
    attributes  TEXT    NOT NULL DEFAULT '{}',
    updated_at  INTEGER NOT NULL,
    UNIQUE (owner, profile_id)
);
INSERT INTO identity_profiles_new (profile_key, owner, profile_id, attributes, updated_at)
    SELECT profile_key, '', profile_id, attributes, updated_at FROM identity_profiles;
DROP TABLE identity_profiles;
ALTER TABLE identity_profiles_new RENAME TO identity_profiles;

-- The suppression list: keyed hashes (keyring.Ring.Hash, purpose
-- "suppression", over owner, identity type and normalised value) of the
-- identities of erased profiles. An import of a profile carrying one of them
-- is skipped and reported as suppressed. No identity value is kept.
CREATE TABLE identity_suppressions (
    owner      TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner, hash)
);

-- Erasures of the local copy, one per completed erasure request: makes the
-- erasure idempotent (a retry reports the same count) and says when it was
-- done. Holds ids and a count, no identity.
CREATE TABLE identity_erasures (
    owner        TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    rows_removed INTEGER NOT NULL,
    erased_at    INTEGER NOT NULL,
    PRIMARY KEY (owner, request_id)
);

-- Which access/portability requests' results bundles hold which subject, so
-- that an erasure also removes those bundles. subject is "profile:<id>" for a
-- profile in the bundle, or a keyed hash (purpose "bundle-subject") of a raw
-- identity the request carried: no identity value.
CREATE TABLE identity_bundles (
    owner      TEXT NOT NULL,
    subject    TEXT NOT NULL,
    request_id TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner, subject, request_id)
);
