package ledger

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dsrflow/dsrflow/internal/keyring"
)

// Purposes of the ledger's keyed hashes (keyring.Ring.Hash): a hash made for
// one purpose never matches a value of another.
const (
	PurposeIdentity    = "ledger/identity"
	PurposeBody        = "ledger/body"
	PurposeCallbackURL = "ledger/callback-url"
)

// LegacyPrefix marks an unkeyed hash: migration 002 turned every hex SHA-256
// the ledger held (identities, body_hash, callback_attempts.url_hash) into
// "sha256:<hex>", and set those rows' hash_scheme to "sha256".
const LegacyPrefix = "sha256:"

// Keyed hashes are taken of a value's digest, its hex SHA-256: HashHex of a
// callback URL, of the request's canonical content, and
// opendsr.HashIdentity for an identity. That digest is what the ledger kept
// unkeyed before migration 002, so UpgradeLegacy can key a legacy hash
// without knowing the value.

// Matches reports whether stored is the hash for purpose of the value whose
// digest is given: keyed with any key of keys (so a hash made before a key
// rotation still matches), or a legacy "sha256:" hash.
func Matches(keys *keyring.Ring, purpose, digest, stored string) bool {
	if legacy, ok := strings.CutPrefix(stored, LegacyPrefix); ok {
		return subtle.ConstantTimeCompare([]byte(legacy), []byte(digest)) == 1
	}
	for _, h := range keys.Hashes(purpose, digest) {
		if subtle.ConstantTimeCompare([]byte(h), []byte(stored)) == 1 {
			return true
		}
	}
	return false
}

// checkSecured refuses to write what would put a hash or a callback URL in
// the ledger in a weaker form than keyed hashes and sealed values. Its
// errors never hold the values.
func checkSecured(r Request) error {
	if r.BodyHash != "" && !keyring.IsHash(r.BodyHash) {
		return fmt.Errorf("body hash is not a keyed hash")
	}
	for i, id := range r.Identities {
		if !keyring.IsHash(id.Hash) {
			return fmt.Errorf("identity %d: not a keyed hash", i+1)
		}
	}
	for i, u := range r.CallbackURLs {
		if !keyring.IsSealed(u) {
			return fmt.Errorf("callback URL %d: not sealed with the key ring", i+1)
		}
	}
	return nil
}

// UpgradeLegacy rewrites up to limit of the rows migration 002 marked
// (hash_scheme 'sha256'), in one transaction: their unkeyed hashes become
// keyed hashes with the active key (also those of their callback attempts)
// and their clear callback URLs are sealed. It returns how many requests it
// upgraded: call it again while that is limit. With none left it costs one
// indexed query. Safe to run from several processes at once.
func (s *Store) UpgradeLegacy(ctx context.Context, keys *keyring.Ring, limit int) (upgraded int, err error) {
	defer wrap(&err, "upgrade legacy rows")
	if keys == nil {
		return 0, errors.New("no key ring")
	}
	db := s.db
	err = db.WithTx(ctx, func(tx *sql.Tx) error {
		upgraded = 0
		rows, err := tx.QueryContext(ctx, db.Rebind(`SELECT controller_id, request_id, body_hash, identities, callback_urls
			FROM requests WHERE hash_scheme = 'sha256' ORDER BY controller_id, request_id LIMIT ?`+db.ForUpdate()), limit)
		if err != nil {
			return err
		}
		type legacyRow struct {
			k          Key
			body       string
			identities []byte
			callbacks  []byte
		}
		legacy, err := collect(rows, func(rows *sql.Rows) (legacyRow, error) {
			var l legacyRow
			err := rows.Scan(&l.k.ControllerID, &l.k.RequestID, &l.body, &l.identities, &l.callbacks)
			return l, err
		})
		if err != nil {
			return err
		}
		for _, l := range legacy {
			if err := s.upgradeRow(ctx, tx, keys, l.k, l.body, l.identities, l.callbacks); err != nil {
				return fmt.Errorf("%s: %w", l.k, err)
			}
			upgraded++
		}
		return nil
	})
	return upgraded, err
}

// upgradeRow keys and seals one legacy request row and its callback attempts.
func (s *Store) upgradeRow(ctx context.Context, tx *sql.Tx, keys *keyring.Ring, k Key, body string, identitiesJSON, callbacksJSON []byte) error {
	var ids []IdentityHash
	var urls []string
	if err := json.Unmarshal(identitiesJSON, &ids); err != nil {
		return fmt.Errorf("decode identities: %w", err)
	}
	if err := json.Unmarshal(callbacksJSON, &urls); err != nil {
		return fmt.Errorf("decode callback URLs: %w", err)
	}
	for i := range ids {
		ids[i].Hash = rekey(keys, PurposeIdentity, ids[i].Hash)
	}
	for i, u := range urls {
		if !keyring.IsSealed(u) {
			sealed, err := keys.Seal(u)
			if err != nil {
				return err
			}
			urls[i] = sealed
		}
	}
	identities, err := jsonArray(ids)
	if err != nil {
		return err
	}
	callbacks, err := jsonArray(urls)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE requests SET body_hash = ?, identities = ?, callback_urls = ?, hash_scheme = 'hmac'
		WHERE controller_id = ? AND request_id = ?`),
		rekey(keys, PurposeBody, body), identities, callbacks, k.ControllerID, k.RequestID); err != nil {
		return err
	}
	return s.rekeyAttempts(ctx, tx, keys, k)
}

// rekeyAttempts keys the legacy URL hashes of a request's callback attempts.
func (s *Store) rekeyAttempts(ctx context.Context, tx *sql.Tx, keys *keyring.Ring, k Key) error {
	rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT DISTINCT url_hash FROM callback_attempts
		WHERE controller_id = ? AND request_id = ? AND url_hash LIKE 'sha256:%'`), k.ControllerID, k.RequestID)
	if err != nil {
		return err
	}
	hashes, err := collect(rows, func(rows *sql.Rows) (string, error) {
		var h string
		return h, rows.Scan(&h)
	})
	if err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE callback_attempts SET url_hash = ?
			WHERE controller_id = ? AND request_id = ? AND url_hash = ?`),
			rekey(keys, PurposeCallbackURL, h), k.ControllerID, k.RequestID, h); err != nil {
			return err
		}
	}
	return nil
}

// rekey returns the keyed hash of a legacy "sha256:<digest>" hash, and any
// other value unchanged.
func rekey(keys *keyring.Ring, purpose, stored string) string {
	if digest, ok := strings.CutPrefix(stored, LegacyPrefix); ok {
		return keys.Hash(purpose, digest)
	}
	return stored
}
