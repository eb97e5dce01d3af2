-- Tenancy and erasure of dsrflow's own copy (PostgreSQL).
--
-- Every profile belongs to a controller (owner): a request only ever
-- resolves to profiles of its own controller, and a profile id is unique per
-- controller. Profiles stored before this migration get the owner '' which
-- no controller id can be (ids are [A-Za-z0-9_-]+): they are never matched
-- until an operator re-imports them with --controller (or sets their owner).
ALTER TABLE identity_profiles ADD COLUMN owner TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE identity_profiles DROP CONSTRAINT identity_profiles_profile_id_key;
ALTER TABLE identity_profiles ADD CONSTRAINT identity_profiles_owner_profile_id_key UNIQUE (owner, profile_id);

-- The suppression list: keyed hashes (keyring.Ring.Hash, purpose
-- "suppression", over owner, identity type and normalised value) of the
-- identities of erased profiles. An import of a profile carrying one of them
-- is skipped and reported as suppressed. No identity value is kept.
CREATE TABLE identity_suppressions (
    owner      TEXT        NOT NULL,
    hash       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner, hash)
);

-- Erasures of the local copy, one per completed erasure request: makes the
-- erasure idempotent (a retry reports the same count) and says when it was
-- done. Holds ids and a count, no identity.
CREATE TABLE identity_erasures (
    owner        TEXT        NOT NULL,
    request_id   TEXT        NOT NULL,
    rows_removed INTEGER     NOT NULL,
    erased_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner, request_id)
);

-- Which access/portability requests' results bundles hold which subject, so
-- that an erasure also removes those bundles. subject is "profile:<id>" for a
-- profile in the bundle, or a keyed hash (purpose "bundle-subject") of a raw
-- identity the request carried: no identity value.
CREATE TABLE identity_bundles (
    owner      TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    request_id TEXT    NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner, subject, request_id)
);
