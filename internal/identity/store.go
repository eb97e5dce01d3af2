package identity

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MaxMatches is the most profiles one Find may return. More means that an
// identity is shared too widely to resolve anything (a test device, a shared
// email): Find fails rather than truncate, which could miss a profile.
const MaxMatches = 1000

// MaxAttributesSize is the largest a profile's attributes may be, as JSON.
const MaxAttributesSize = 64 << 10

// chunk is how many rows one multi-row statement writes or reads at most:
// 500 rows of 6 parameters stay far below both backends' parameter limits.
const chunk = 500

// ErrNotFound is returned (wrapped) by Get for an unknown profile.
var ErrNotFound = errors.New("profile not found")

// Store is the profile store on a SQLite or PostgreSQL database, usually the
// ledger's. It is safe for concurrent use, also by several processes sharing
// one database.
type Store struct {
	db     *sqldb.DB
	ownsDB bool
	now    func() time.Time
	// keys make the suppression list's keyed hashes (WithKeys).
	keys *keyring.Ring

	// stmts are the full-chunk writing statements, by query, prepared by
	// New: preparing them later, inside a transaction, would take a second
	// connection from the pool while holding one.
	stmts map[string]*sql.Stmt
}

// Option configures a Store.
type Option func(*Store)

// WithKeys gives the store the key ring its suppression list is hashed with.
// Without one, imports, upserts and erasures fail: the store cannot tell
// whether a profile was erased.
func WithKeys(ring *keyring.Ring) Option { return func(s *Store) { s.keys = ring } }

// Open opens the database dsn names (see sqldb.Open), brings the store's
// schema up to date and returns a Store that closes the database on Close.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s, err := New(ctx, db, opts...)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.ownsDB = true
	return s, nil
}

// New brings the store's schema in db up to date (migrations of component
// "identity") and returns a Store on it. The caller keeps db: Close leaves it
// open.
func New(ctx context.Context, db *sqldb.DB, opts ...Option) (*Store, error) {
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("identity: migrations: %w", err)
	}
	if err := db.Migrate(ctx, "identity", files); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s := &Store{db: db, now: time.Now, stmts: map[string]*sql.Stmt{}}
	for _, o := range opts {
		o(s)
	}
	if err := s.repairIndexes(ctx); err != nil {
		return nil, err
	}
	for _, build := range []func(int) string{upsertProfilesSQL, deleteIdentitiesSQL, insertIdentitiesSQL} {
		query := db.Rebind(build(chunk))
		st, err := db.PrepareContext(ctx, query)
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("identity: prepare statements: %w", err)
		}
		s.stmts[query] = st
	}
	return s, nil
}

// empty reports whether the store holds no profile.
func (s *Store) empty(ctx context.Context) (bool, error) {
	var exists bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM identity_profiles)`).Scan(&exists); err != nil {
		return false, fmt.Errorf("identity: %w", err)
	}
	return !exists, nil
}

// Close releases the store's prepared statements, and closes the database
// if Open opened it. The store is not usable afterwards.
func (s *Store) Close() error {
	for _, st := range s.stmts {
		_ = st.Close()
	}
	if !s.ownsDB {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("identity: close: %w", err)
	}
	return nil
}

// preparedProfile is a validated profile ready to write: identities
// deduplicated and hashed, attributes encoded.
type preparedProfile struct {
	// line is the record's line in an imported file (0 for Upsert).
	line       int
	id         string
	attributes string
	identities []preparedIdentity
}

type preparedIdentity struct {
	typ, value string
	digests
}

// prepare validates p and computes what the store writes. The attributes are
// rawAttributes, a JSON object as read from a file, when not nil, and
// p.Attributes otherwise. The problem it returns names the fault, never an
// identity value.
func prepare(p Profile, rawAttributes []byte) (preparedProfile, string) {
	if problem := profileIDProblem(p.ID); problem != "" {
		return preparedProfile{}, problem
	}
	out := preparedProfile{id: p.ID, identities: make([]preparedIdentity, 0, len(p.Identities))}
	seen := make(map[[2]string]bool, len(p.Identities))
	for _, id := range p.Identities {
		if !KnownType(id.Type) {
			return preparedProfile{}, "unknown identity type"
		}
		if problem := valueProblem(id.Type, id.Value); problem != "" {
			return preparedProfile{}, id.Type + ": " + problem
		}
		key := [2]string{id.Type, normalize(id.Type, id.Value)}
		if seen[key] {
			continue
		}
		seen[key] = true
		value := strings.TrimSpace(id.Value)
		out.identities = append(out.identities, preparedIdentity{typ: id.Type, value: value, digests: digestsOf(id.Type, value)})
	}
	var attrs, problem string
	if rawAttributes != nil {
		attrs, problem = compactAttributes(rawAttributes)
	} else {
		attrs, problem = encodeAttributes(p.Attributes)
	}
	if problem != "" {
		return preparedProfile{}, problem
	}
	out.attributes = attrs
	return out, ""
}

func encodeAttributes(attrs map[string]any) (string, string) {
	if len(attrs) == 0 {
		return "{}", ""
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		return "", "attributes cannot be encoded as JSON"
	}
	if len(b) > MaxAttributesSize {
		return "", fmt.Sprintf("attributes larger than %d bytes as JSON", MaxAttributesSize)
	}
	return string(b), ""
}

// compactAttributes checks that raw is a JSON object (or null) and returns
// it compacted.
func compactAttributes(raw []byte) (string, string) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "{}", ""
	case raw[0] != '{':
		return "", "attributes must be a JSON object"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", "attributes: malformed JSON"
	}
	if buf.Len() > MaxAttributesSize {
		return "", fmt.Sprintf("attributes larger than %d bytes as JSON", MaxAttributesSize)
	}
	return buf.String(), ""
}

func decodeAttributes(s string) (map[string]any, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var attrs map[string]any
	if err := d.Decode(&attrs); err != nil {
		return nil, fmt.Errorf("decode attributes: %w", err)
	}
	return attrs, nil
}

// Upsert stores owner's profiles, each replacing any profile of owner with
// its id: its identities and attributes become exactly the given ones.
// Identities repeated within a profile (same type and normalised value) are
// kept once. When an id appears twice, the last one wins. A profile carrying
// an identity on owner's suppression list (an erased person) is not written:
// suppressed holds the indexes of those. It is idempotent, and all or
// nothing: an invalid profile (error wrapping ErrInvalid, naming its index
// and the problem) writes none.
func (s *Store) Upsert(ctx context.Context, owner string, profiles []Profile) (suppressed []int, err error) {
	if err := CheckOwner(owner); err != nil {
		return nil, fmt.Errorf("identity: upsert: %w", err)
	}
	batch := make([]preparedProfile, 0, len(profiles))
	for i, p := range profiles {
		pp, problem := prepare(p, nil)
		if problem != "" {
			return nil, fmt.Errorf("identity: upsert: profile %d: %w: %s", i, ErrInvalid, problem)
		}
		pp.line = i
		batch = append(batch, pp)
	}
	err = s.db.WithTx(ctx, func(tx *sql.Tx) error {
		_, skipped, err := s.writeUnsuppressed(ctx, tx, owner, batch)
		for _, p := range skipped {
			suppressed = append(suppressed, p.line)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("identity: upsert: %w", err)
	}
	return suppressed, nil
}

// Statements writing or deleting n rows at once.
func upsertProfilesSQL(n int) string {
	return `INSERT INTO identity_profiles (owner, profile_id, attributes, updated_at) VALUES ` + placeholders(4, n) + `
		ON CONFLICT (owner, profile_id) DO UPDATE SET attributes = excluded.attributes, updated_at = excluded.updated_at
		RETURNING profile_key, profile_id`
}

func deleteIdentitiesSQL(n int) string {
	return `DELETE FROM identity_values WHERE profile_key IN (` + placeholders(1, n) + `)`
}

func insertIdentitiesSQL(n int) string {
	return `INSERT INTO identity_values (profile_key, type, value, sha256, sha1, md5) VALUES ` + placeholders(6, n)
}

// stmt returns the statement of n rows built by build, on tx. A full
// chunk's statement is the one New prepared, reused: parsing a statement of
// hundreds of rows costs about as much as running it.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, build func(int) string, n int) (*sql.Stmt, error) {
	query := s.db.Rebind(build(n))
	if st, ok := s.stmts[query]; ok {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, query)
}

// exec runs the statement of n rows built by build on tx.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, build func(int) string, n int, args []any) error {
	st, err := s.stmt(ctx, tx, build, n)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.ExecContext(ctx, args...)
	return err
}

// write replaces owner's profiles of batch inside tx: it upserts the
// profile rows, learning their keys, then replaces their identities.
func (s *Store) write(ctx context.Context, tx *sql.Tx, owner string, batch []preparedProfile) error {
	// In id order, so that concurrent writers lock rows in the same order.
	batch = lastByID(batch)
	sort.Slice(batch, func(i, j int) bool { return batch[i].id < batch[j].id })
	now := s.db.TimeArg(s.now())
	keys := make(map[string]int64, len(batch))
	args := make([]any, 0, 6*chunk)
	for start := 0; start < len(batch); start += chunk {
		part := batch[start:min(start+chunk, len(batch))]
		args = args[:0]
		for _, p := range part {
			args = append(args, owner, p.id, p.attributes, now)
		}
		if err := s.upsertProfiles(ctx, tx, len(part), args, keys); err != nil {
			return fmt.Errorf("write profiles: %w", err)
		}
		args = args[:0]
		for _, p := range part {
			args = append(args, keys[p.id])
		}
		if err := s.exec(ctx, tx, deleteIdentitiesSQL, len(part), args); err != nil {
			return fmt.Errorf("delete replaced identities: %w", err)
		}
	}

	args = args[:0]
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := s.exec(ctx, tx, insertIdentitiesSQL, n, args)
		args, n = args[:0], 0
		if err != nil {
			return fmt.Errorf("write identities: %w", err)
		}
		return nil
	}
	for _, p := range batch {
		key, ok := keys[p.id]
		if !ok {
			return fmt.Errorf("write profiles: no key returned for profile %s", p.id)
		}
		for _, id := range p.identities {
			args = append(args, key, id.typ, id.value, id.sha256, id.sha1, id.md5)
			if n++; n == chunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// upsertProfiles writes n profile rows and records their keys.
func (s *Store) upsertProfiles(ctx context.Context, tx *sql.Tx, n int, args []any, keys map[string]int64) error {
	st, err := s.stmt(ctx, tx, upsertProfilesSQL, n)
	if err != nil {
		return err
	}
	defer st.Close()
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key int64
		var id string
		if err := rows.Scan(&key, &id); err != nil {
			return err
		}
		keys[id] = key
	}
	return rows.Err()
}

// lastByID keeps the last profile of each id.
func lastByID(batch []preparedProfile) []preparedProfile {
	at := make(map[string]int, len(batch))
	out := batch[:0:0]
	for _, p := range batch {
		if i, dup := at[p.id]; dup {
			out[i] = p
			continue
		}
		at[p.id] = len(out)
		out = append(out, p)
	}
	return out
}

// placeholders returns n comma-separated groups of width '?': "?" when width
// is 1, "(?, ?)" groups otherwise.
func placeholders(width, n int) string {
	group := strings.Repeat("?, ", width)
	group = group[:len(group)-2]
	if width > 1 {
		group = "(" + group + ")"
	}
	var b strings.Builder
	b.Grow(n * (len(group) + 2))
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(group)
	}
	return b.String()
}

// Get returns owner's profile with id, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, owner, id string) (Profile, error) {
	if err := CheckOwner(owner); err != nil {
		return Profile{}, fmt.Errorf("identity: get profile %s: %w", id, err)
	}
	ps, _, err := s.load(ctx, s.db, owner, "profile_id", []any{id})
	if err != nil {
		return Profile{}, fmt.Errorf("identity: get profile %s: %w", id, err)
	}
	if len(ps) == 0 {
		return Profile{}, fmt.Errorf("identity: get profile %s: %w", id, ErrNotFound)
	}
	return ps[0], nil
}

// load reads owner's profiles whose column (profile_id or profile_key) is one
// of values, with their identities in the order they were given, sorted by
// profile id, and their keys. Values matching no profile are left out.
func (s *Store) load(ctx context.Context, q querier, owner, column string, values []any) (profiles []Profile, keys []int64, err error) {
	byKey := make(map[int64]*Profile, len(values))
	type keyed struct {
		key int64
		*Profile
	}
	var out []keyed
	for start := 0; start < len(values); start += chunk {
		part := values[start:min(start+chunk, len(values))]
		// column is one of two constants, never input.
		rows, err := q.QueryContext(ctx, s.db.Rebind(`SELECT profile_key, profile_id, attributes FROM identity_profiles
			WHERE owner = ? AND `+column+` IN (`+placeholders(1, len(part))+`)`), append([]any{owner}, part...)...)
		if err != nil {
			return nil, nil, fmt.Errorf("read profiles: %w", err)
		}
		var found []any
		for rows.Next() {
			var key int64
			var p Profile
			var attrs string
			if err := rows.Scan(&key, &p.ID, &attrs); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("read profiles: %w", err)
			}
			if p.Attributes, err = decodeAttributes(attrs); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("profile %s: %w", p.ID, err)
			}
			byKey[key] = &p
			out = append(out, keyed{key, &p})
			found = append(found, key)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("read profiles: %w", err)
		}
		if len(found) == 0 {
			continue
		}

		rows, err = q.QueryContext(ctx, s.db.Rebind(`SELECT profile_key, type, value FROM identity_values
			WHERE profile_key IN (`+placeholders(1, len(found))+`) ORDER BY id`), found...)
		if err != nil {
			return nil, nil, fmt.Errorf("read identities: %w", err)
		}
		for rows.Next() {
			var key int64
			var id Identity
			if err := rows.Scan(&key, &id.Type, &id.Value); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("read identities: %w", err)
			}
			if p := byKey[key]; p != nil {
				p.Identities = append(p.Identities, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("read identities: %w", err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	profiles, keys = make([]Profile, len(out)), make([]int64, len(out))
	for i, p := range out {
		profiles[i], keys[i] = *p.Profile, p.key
	}
	return profiles, keys, nil
}

// Find looks up owner's profiles that carry any of queries, and returns them
// sorted by profile id, each with the indexes of the queries it matched.
//
// A raw query matches an identity of its type with the same normalised value
// (emails trimmed and lowercased, other types trimmed); a sha256, sha1 or md5
// query matches an identity of its type whose normalised value has that
// digest (hex, any case). An invalid query fails the call with an error
// wrapping ErrInvalid that names its index, type and format; more than
// MaxMatches profiles fail it too. The queries are read one by one, not in
// one snapshot: a profile replaced meanwhile is returned as it is at the end.
// Profiles of other owners are never read.
func (s *Store) Find(ctx context.Context, owner string, queries []Query) ([]Match, error) {
	if err := CheckOwner(owner); err != nil {
		return nil, fmt.Errorf("identity: find: %w", err)
	}
	lookups := make([]lookup, len(queries))
	for i, q := range queries {
		l, err := lookupOf(q)
		if err != nil {
			return nil, fmt.Errorf("identity: find: identity %d: %w", i, err)
		}
		lookups[i] = l
	}
	inputs := map[int64][]int{}
	for i, l := range lookups {
		keys, err := s.profilesWith(ctx, owner, l)
		if err != nil {
			return nil, fmt.Errorf("identity: find: identity %d (%s): %w", i, queries[i], err)
		}
		for _, k := range keys {
			inputs[k] = append(inputs[k], i)
		}
		if len(inputs) > MaxMatches {
			return nil, fmt.Errorf("identity: find: the identities match more than %d profiles", MaxMatches)
		}
	}
	if len(inputs) == 0 {
		return nil, nil
	}
	keys := make([]any, 0, len(inputs))
	for k := range inputs {
		keys = append(keys, k)
	}
	profiles, profileKeys, err := s.load(ctx, s.db, owner, "profile_key", keys)
	if err != nil {
		return nil, fmt.Errorf("identity: find: %w", err)
	}
	matches := make([]Match, len(profiles))
	for i, p := range profiles {
		matches[i] = Match{Profile: p, Inputs: inputs[profileKeys[i]]}
	}
	return matches, nil
}

// profilesWith returns the keys of owner's profiles with an identity l finds.
func (s *Store) profilesWith(ctx context.Context, owner string, l lookup) ([]int64, error) {
	// l.column is one of three constants, never input. The digest index
	// finds the identities; the join keeps those of owner's profiles.
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT DISTINCT v.profile_key FROM identity_values v
		JOIN identity_profiles p ON p.profile_key = v.profile_key
		WHERE v.`+l.column+` = ? AND v.type = ? AND p.owner = ? LIMIT ?`), l.digest, l.typ, owner, MaxMatches+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []int64
	for rows.Next() {
		var k int64
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// Delete removes owner's profile with id and its identities. Deleting an
// unknown profile is not an error. It adds nothing to the suppression list
// (Erase does).
func (s *Store) Delete(ctx context.Context, owner, id string) error {
	if err := CheckOwner(owner); err != nil {
		return fmt.Errorf("identity: delete profile %s: %w", id, err)
	}
	db := s.db
	err := db.WithTx(ctx, func(tx *sql.Tx) error {
		_, _, err := deleteProfiles(ctx, db, tx, owner, []any{id})
		return err
	})
	if err != nil {
		return fmt.Errorf("identity: delete profile %s: %w", id, err)
	}
	return nil
}

// Count returns how many profiles the store holds.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM identity_profiles`).Scan(&n); err != nil {
		return 0, fmt.Errorf("identity: count profiles: %w", err)
	}
	return n, nil
}
