package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// SuppressionPurpose is the key ring purpose of the suppression list's keyed
// hashes (keyring.Ring.Hash).
const SuppressionPurpose = "suppression"

// ErrNoKeys is returned (wrapped) by the calls that need the suppression
// list when the store has no key ring (see WithKeys).
var ErrNoKeys = errors.New("the profile store has no key ring for its suppression list")

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CheckOwner refuses an owner that is not a controller id
// ([A-Za-z0-9_-]{1,255}); in particular the empty owner of the profiles
// stored before tenancy, which nothing ever matches.
func CheckOwner(owner string) error {
	if owner == "" || len(owner) > 255 {
		return fmt.Errorf("%w: the controller id must be 1 to 255 characters", ErrInvalid)
	}
	for _, c := range owner {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: the controller id may hold letters, digits, '-' and '_' only", ErrInvalid)
		}
	}
	return nil
}

// suppressionValue is what a suppression hash is made of: the owner, the
// identity type and the normalised value, so that one person erased by two
// controllers leaves two unrelated hashes.
func suppressionValue(owner, typ, value string) string {
	return owner + "\x00" + typ + "\x00" + normalize(typ, value)
}

// lockOwner serialises, on PostgreSQL, the transactions that read or write
// owner's suppression list (an import batch, an erasure) until they end, so
// that an import running beside an erasure cannot miss its suppressions and
// write the person back. On SQLite every write transaction already holds the
// database's write lock from its start.
func (s *Store) lockOwner(ctx context.Context, q querier, owner string) error {
	if s.db.Dialect != sqldb.Postgres {
		return nil
	}
	if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('dsrflow-identity-owner'), hashtext($1))`, owner); err != nil {
		return fmt.Errorf("lock the controller's profiles: %w", err)
	}
	return nil
}

// suppressed returns the indexes (into batch) of the profiles that carry an
// identity on owner's suppression list. It reads nothing more when owner has
// no suppression at all, the usual case. It runs in the transaction that
// writes the batch, holding lockOwner.
func (s *Store) suppressed(ctx context.Context, q querier, owner string, batch []preparedProfile) (map[int]bool, error) {
	if s.keys == nil {
		return nil, ErrNoKeys
	}
	if err := s.lockOwner(ctx, q, owner); err != nil {
		return nil, err
	}
	var some bool
	if err := q.QueryRowContext(ctx, s.db.Rebind(`SELECT EXISTS (SELECT 1 FROM identity_suppressions WHERE owner = ?)`), owner).Scan(&some); err != nil {
		return nil, fmt.Errorf("read the suppression list: %w", err)
	}
	if !some {
		return nil, nil
	}
	byHash := map[string][]int{}
	for i, p := range batch {
		for _, id := range p.identities {
			for _, h := range s.keys.Hashes(SuppressionPurpose, suppressionValue(owner, id.typ, id.value)) {
				byHash[h] = append(byHash[h], i)
			}
		}
	}
	hashes := make([]any, 0, len(byHash))
	for h := range byHash {
		hashes = append(hashes, h)
	}
	out := map[int]bool{}
	for start := 0; start < len(hashes); start += chunk {
		part := hashes[start:min(start+chunk, len(hashes))]
		rows, err := q.QueryContext(ctx, s.db.Rebind(`SELECT hash FROM identity_suppressions
			WHERE owner = ? AND hash IN (`+placeholders(1, len(part))+`)`), append([]any{owner}, part...)...)
		if err != nil {
			return nil, fmt.Errorf("read the suppression list: %w", err)
		}
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read the suppression list: %w", err)
			}
			for _, i := range byHash[h] {
				out[i] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the suppression list: %w", err)
		}
	}
	return out, nil
}

// writeUnsuppressed writes the profiles of batch that are not suppressed
// and returns the suppressed ones.
func (s *Store) writeUnsuppressed(ctx context.Context, tx *sql.Tx, owner string, batch []preparedProfile) (written int, suppressed []preparedProfile, err error) {
	skip, err := s.suppressed(ctx, tx, owner, batch)
	if err != nil {
		return 0, nil, err
	}
	keep := batch
	if len(skip) > 0 {
		keep = make([]preparedProfile, 0, len(batch)-len(skip))
		for i, p := range batch {
			if skip[i] {
				suppressed = append(suppressed, p)
			} else {
				keep = append(keep, p)
			}
		}
	}
	if len(keep) > 0 {
		if err := s.write(ctx, tx, owner, keep); err != nil {
			return 0, nil, err
		}
	}
	return len(keep), suppressed, nil
}

// EraseInput names what Erase removes.
type EraseInput struct {
	// Owner is the controller whose profiles are erased.
	Owner string
	// RequestID is the erasure request: Erase does its work once per request.
	RequestID string
	// ProfileIDs are the profiles the request resolved to.
	ProfileIDs []string
	// Identities are further raw identities to put on the suppression list
	// (the request's own), whether or not a profile carries them.
	Identities []Identity
	// BundleRequests are the requests whose results bundles the caller
	// removed (BundleRequests): their links are forgotten.
	BundleRequests []string
}

// EraseResult is what Erase removed.
type EraseResult struct {
	// Rows counts the rows removed: profiles and their identities.
	Rows int `json:"rows"`
	// Profiles counts the profiles removed (0 when Repeated).
	Profiles int `json:"profiles,omitempty"`
	// Suppressed counts the keyed hashes put on the suppression list (0
	// when Repeated).
	Suppressed int `json:"suppressed,omitempty"`
	// Repeated is true when the request's erasure had already been done:
	// Rows is the count recorded then.
	Repeated bool `json:"repeated,omitempty"`
}

// Erase deletes owner's profiles in.ProfileIDs (identities and attributes)
// and puts a keyed hash of each of their identities, and of in.Identities,
// on owner's suppression list, in one transaction that also records the
// erasure under in.RequestID. Once recorded, calling it again for the request
// changes nothing and returns the recorded counts (Repeated): safe to retry.
//
// On SQLite the deletion runs with secure_delete on, so the removed values
// are overwritten in the database file rather than left in free space, and
// the write-ahead log is then checkpointed and truncated (best effort:
// another connection reading at that moment keeps it for its next
// checkpoint). On PostgreSQL removed rows stay in their pages until VACUUM
// (autovacuum) reclaims them.
func (s *Store) Erase(ctx context.Context, in EraseInput) (res EraseResult, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("identity: erase the local copy of request %s: %w", in.RequestID, err)
		}
	}()
	if err := CheckOwner(in.Owner); err != nil {
		return EraseResult{}, err
	}
	if s.keys == nil {
		return EraseResult{}, ErrNoKeys
	}
	for _, id := range in.Identities {
		if !KnownType(id.Type) {
			return EraseResult{}, fmt.Errorf("%w: unknown identity type", ErrInvalid)
		}
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return EraseResult{}, err
	}
	defer conn.Close()
	if s.db.Dialect == sqldb.SQLite {
		if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
			return EraseResult{}, fmt.Errorf("secure_delete: %w", err)
		}
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return EraseResult{}, err
	}
	defer func() { _ = tx.Rollback() }()
	res, err = s.erase(ctx, tx, in)
	if err != nil {
		return EraseResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return EraseResult{}, err
	}
	if s.db.Dialect == sqldb.SQLite && !res.Repeated {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	return res, nil
}

func (s *Store) erase(ctx context.Context, tx *sql.Tx, in EraseInput) (EraseResult, error) {
	db := s.db
	var res EraseResult
	if err := s.lockOwner(ctx, tx, in.Owner); err != nil {
		return res, err
	}
	var rows int
	err := tx.QueryRowContext(ctx, db.Rebind(`SELECT rows_removed FROM identity_erasures WHERE owner = ? AND request_id = ?`),
		in.Owner, in.RequestID).Scan(&rows)
	switch {
	case err == nil:
		return EraseResult{Rows: rows, Repeated: true}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return res, err
	}

	ids := make([]any, len(in.ProfileIDs))
	for i, id := range in.ProfileIDs {
		ids[i] = id
	}
	profiles, _, err := s.load(ctx, tx, in.Owner, "profile_id", ids)
	if err != nil {
		return res, err
	}
	hashes := map[string]bool{}
	for _, p := range profiles {
		for _, id := range p.Identities {
			hashes[s.keys.Hash(SuppressionPurpose, suppressionValue(in.Owner, id.Type, id.Value))] = true
		}
	}
	for _, id := range in.Identities {
		if valueProblem(id.Type, id.Value) == "" || valueProblem(id.Type, id.Value) == "not an email address" {
			hashes[s.keys.Hash(SuppressionPurpose, suppressionValue(in.Owner, id.Type, id.Value))] = true
		}
	}
	sorted := make([]string, 0, len(hashes))
	for h := range hashes {
		sorted = append(sorted, h)
	}
	sort.Strings(sorted)
	now := db.TimeArg(s.now())
	for _, h := range sorted {
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO identity_suppressions (owner, hash, created_at) VALUES (?, ?, ?)
			ON CONFLICT (owner, hash) DO NOTHING`), in.Owner, h, now); err != nil {
			return res, fmt.Errorf("write the suppression list: %w", err)
		}
	}
	res.Suppressed = len(sorted)
	profileRows, identityRows, err := deleteProfiles(ctx, db, tx, in.Owner, ids)
	if err != nil {
		return res, err
	}
	res.Profiles, res.Rows = profileRows, profileRows+identityRows
	for _, requestID := range in.BundleRequests {
		if _, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM identity_bundles WHERE owner = ? AND request_id = ?`),
			in.Owner, requestID); err != nil {
			return res, fmt.Errorf("forget results bundles: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO identity_erasures (owner, request_id, rows_removed, erased_at) VALUES (?, ?, ?, ?)`),
		in.Owner, in.RequestID, res.Rows, now); err != nil {
		return res, fmt.Errorf("record the erasure: %w", err)
	}
	return res, nil
}

// deleteProfiles deletes owner's profiles with the given ids and their
// identities, and returns how many rows of each it removed.
func deleteProfiles(ctx context.Context, db *sqldb.DB, q querier, owner string, ids []any) (profiles, identities int, err error) {
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := append([]any{owner}, part...)
		r, err := q.ExecContext(ctx, db.Rebind(`DELETE FROM identity_values WHERE profile_key IN
			(SELECT profile_key FROM identity_profiles WHERE owner = ? AND profile_id IN (`+placeholders(1, len(part))+`))`), args...)
		if err != nil {
			return 0, 0, fmt.Errorf("delete identities: %w", err)
		}
		n, _ := r.RowsAffected()
		identities += int(n)
		r, err = q.ExecContext(ctx, db.Rebind(`DELETE FROM identity_profiles WHERE owner = ? AND profile_id IN (`+
			placeholders(1, len(part))+`)`), args...)
		if err != nil {
			return 0, 0, fmt.Errorf("delete profiles: %w", err)
		}
		n, _ = r.RowsAffected()
		profiles += int(n)
	}
	return profiles, identities, nil
}

// BundlePurpose is the key ring purpose of the keyed hashes that link a
// results bundle to the raw identities of its request.
const BundlePurpose = "bundle-subject"

// bundleSubjects are the identity_bundles subjects of profiles and raw
// identities: "profile:<id>", and the keyed hash of each identity under
// every key of the ring (lookups across rotations; the first is the active
// key's, the one LinkBundle writes).
func (s *Store) bundleSubjects(owner string, profileIDs []string, ids []Identity, allKeys bool) []string {
	var out []string
	for _, id := range profileIDs {
		out = append(out, "profile:"+id)
	}
	for _, id := range ids {
		if !KnownType(id.Type) || strings.TrimSpace(id.Value) == "" {
			continue
		}
		v := suppressionValue(owner, id.Type, id.Value)
		if allKeys {
			out = append(out, s.keys.Hashes(BundlePurpose, v)...)
		} else {
			out = append(out, s.keys.Hash(BundlePurpose, v))
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// LinkBundle records that the results bundle of owner's request requestID
// holds the profiles profileIDs and the data of the raw identities ids, so
// that an erasure of one of them removes it (BundleRequests).
func (s *Store) LinkBundle(ctx context.Context, owner, requestID string, profileIDs []string, ids []Identity) error {
	if err := CheckOwner(owner); err != nil {
		return fmt.Errorf("identity: link results bundle: %w", err)
	}
	if s.keys == nil {
		return fmt.Errorf("identity: link results bundle: %w", ErrNoKeys)
	}
	db := s.db
	err := db.WithTx(ctx, func(tx *sql.Tx) error {
		for _, subject := range s.bundleSubjects(owner, profileIDs, ids, false) {
			if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO identity_bundles (owner, subject, request_id, created_at)
				VALUES (?, ?, ?, ?) ON CONFLICT (owner, subject, request_id) DO NOTHING`),
				owner, subject, requestID, db.TimeArg(s.now())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("identity: link results bundle: %w", err)
	}
	return nil
}

// BundleRequests returns, sorted, the requests of owner whose results
// bundle holds one of profileIDs, or data of one of their stored identities
// or of ids (see LinkBundle).
func (s *Store) BundleRequests(ctx context.Context, owner string, profileIDs []string, ids []Identity) ([]string, error) {
	if err := CheckOwner(owner); err != nil {
		return nil, fmt.Errorf("identity: results bundles: %w", err)
	}
	if s.keys == nil {
		return nil, fmt.Errorf("identity: results bundles: %w", ErrNoKeys)
	}
	keys := make([]any, len(profileIDs))
	for i, id := range profileIDs {
		keys[i] = id
	}
	profiles, _, err := s.load(ctx, s.db, owner, "profile_id", keys)
	if err != nil {
		return nil, fmt.Errorf("identity: results bundles: %w", err)
	}
	all := slices.Clone(ids)
	for _, p := range profiles {
		all = append(all, p.Identities...)
	}
	subjects := s.bundleSubjects(owner, profileIDs, all, true)
	seen := map[string]bool{}
	for start := 0; start < len(subjects); start += chunk {
		part := make([]any, 0, chunk)
		for _, sub := range subjects[start:min(start+chunk, len(subjects))] {
			part = append(part, sub)
		}
		rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT DISTINCT request_id FROM identity_bundles
			WHERE owner = ? AND subject IN (`+placeholders(1, len(part))+`)`), append([]any{owner}, part...)...)
		if err != nil {
			return nil, fmt.Errorf("identity: results bundles: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("identity: results bundles: %w", err)
			}
			seen[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("identity: results bundles: %w", err)
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

// ForgetBundle drops the links of the results bundle of owner's request
// requestID, once the bundle itself is gone (expired).
func (s *Store) ForgetBundle(ctx context.Context, owner, requestID string) error {
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM identity_bundles WHERE owner = ? AND request_id = ?`), owner, requestID); err != nil {
		return fmt.Errorf("identity: forget results bundle: %w", err)
	}
	return nil
}
