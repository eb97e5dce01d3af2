package ledger

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// purgeChunk is how many requests one statement of PurgeExpired deletes, so
// that no purge holds the write lock for long.
const purgeChunk = 500

// Store is the ledger on a SQLite or PostgreSQL database. It is safe for
// concurrent use, also by several processes sharing one database.
type Store struct {
	db        *sqldb.DB
	ownsDB    bool
	retention time.Duration
}

// Option configures a Store.
type Option func(*Store)

// WithRetention sets how long after it was received a request's record is
// kept (DSR_RECORD_RETENTION); DefaultRetention otherwise.
func WithRetention(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.retention = d
		}
	}
}

// Open opens the database dsn names (see sqldb.Open), brings the ledger's
// schema up to date and returns a Store that closes the database on Close.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	s, err := New(ctx, db, opts...)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.ownsDB = true
	return s, nil
}

// New brings the ledger's schema in db up to date and returns a Store on it.
// The caller keeps db: Close leaves it open.
func New(ctx context.Context, db *sqldb.DB, opts ...Option) (*Store, error) {
	s := &Store{db: db, retention: DefaultRetention}
	for _, o := range opts {
		o(s)
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("ledger: migrations: %w", err)
	}
	if err := db.Migrate(ctx, "ledger", files); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return s, nil
}

// Close closes the database if Open opened it.
func (s *Store) Close() error {
	if !s.ownsDB {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("ledger: close: %w", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// requestColumns are the columns scanRequest reads, in its order.
const requestColumns = `controller_id, request_id, type, regulation, status, status_reason, api_version,
	submitted_time, received_time, expected_completion_time, due_time,
	body_hash, identities, callback_urls, skip_waiting_period,
	results_url, results_count, results_expires_at, resolution, updated_at, expires_at`

// CreateRequest records a new request with status pending and its first
// transition ("" -> pending, reason "received"), and returns it as stored
// with created true. If the ledger already has a request with the same key it
// is returned unchanged with created false: the caller compares BodyHash to
// tell a retried submission from a conflicting one.
//
// Status and StatusReason of r are ignored. A zero ReceivedTime means now; a
// zero ExpiresAt means ReceivedTime plus the retention period.
func (s *Store) CreateRequest(ctx context.Context, r Request) (stored Request, created bool, err error) {
	k := r.Key()
	defer wrap(&err, "create request %s", k)
	if err := checkKey(k); err != nil {
		return Request{}, false, err
	}
	if r.Type == "" || r.Regulation == "" {
		return Request{}, false, errors.New("type and regulation are required")
	}
	if err := checkSecured(r); err != nil {
		return Request{}, false, err
	}
	if r.ReceivedTime.IsZero() {
		r.ReceivedTime = time.Now()
	}
	if r.ExpiresAt.IsZero() {
		r.ExpiresAt = r.ReceivedTime.Add(s.retention)
	}
	identities, err := jsonArray(r.Identities)
	if err != nil {
		return Request{}, false, err
	}
	callbacks, err := jsonArray(r.CallbackURLs)
	if err != nil {
		return Request{}, false, err
	}
	resolution, err := jsonDocument(r.Resolution)
	if err != nil {
		return Request{}, false, err
	}

	db := s.db
	err = db.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO requests (`+requestColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (controller_id, request_id) DO NOTHING`),
			r.ControllerID, r.RequestID, r.Type, r.Regulation, string(dsr.StatusPending), "received", r.APIVersion,
			db.TimeArg(r.SubmittedTime), db.TimeArg(r.ReceivedTime), db.TimeArg(r.ExpectedCompletionTime), db.TimeArg(r.DueTime),
			r.BodyHash, identities, callbacks, r.SkipWaitingPeriod,
			r.ResultsURL, r.ResultsCount, db.TimeArg(r.ResultsExpiresAt), resolution, db.TimeArg(r.ReceivedTime), db.TimeArg(r.ExpiresAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if created = n == 1; created {
			if err := s.insertTransition(ctx, tx, k, r.ReceivedTime, "", dsr.StatusPending, "received"); err != nil {
				return err
			}
		}
		stored, err = s.get(ctx, tx, k)
		return err
	})
	if err != nil {
		return Request{}, false, err
	}
	return stored, created, nil
}

// Get returns the request with key k, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, k Key) (_ Request, err error) {
	defer wrap(&err, "get request %s", k)
	return s.get(ctx, s.db, k)
}

func (s *Store) get(ctx context.Context, q querier, k Key) (Request, error) {
	row := q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+requestColumns+`
		FROM requests WHERE controller_id = ? AND request_id = ?`), k.ControllerID, k.RequestID)
	r, err := scanRequest(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, ErrNotFound
	}
	return r, err
}

// ByResultsToken returns the request whose results the token unlocks, or an
// error wrapping ErrNotFound. The ledger holds only the token's SHA-256, so
// the lookup is by hash. The caller checks ResultsExpiresAt.
func (s *Store) ByResultsToken(ctx context.Context, token string) (_ Request, err error) {
	defer wrap(&err, "look up results token")
	if token == "" {
		return Request{}, ErrNotFound
	}
	row := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+requestColumns+`
		FROM requests WHERE results_token_hash = ?`), HashHex(token))
	r, err := scanRequest(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, ErrNotFound
	}
	return r, err
}

// SetStatus moves the request to status to, recording the transition from
// its current status with reason, at time at (now when zero). It does nothing
// when the request already has status to with the same reason, so a retry
// records nothing twice. Any transition is allowed (failed -> in_progress
// happens on retry); each one is recorded.
func (s *Store) SetStatus(ctx context.Context, k Key, to dsr.Status, reason string, at time.Time) (err error) {
	defer wrap(&err, "set status of %s to %s", k, to)
	if !to.Valid() {
		return fmt.Errorf("unknown status %q", to)
	}
	if at.IsZero() {
		at = time.Now()
	}
	db := s.db
	return db.WithTx(ctx, func(tx *sql.Tx) error {
		var from dsr.Status
		var fromReason string
		err := tx.QueryRowContext(ctx, db.Rebind(`SELECT status, status_reason FROM requests
			WHERE controller_id = ? AND request_id = ?`+db.ForUpdate()),
			k.ControllerID, k.RequestID).Scan(&from, &fromReason)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if from == to && fromReason == reason {
			return nil
		}
		if err := s.insertTransition(ctx, tx, k, at, from, to, reason); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.Rebind(`UPDATE requests SET status = ?, status_reason = ?, updated_at = ?
			WHERE controller_id = ? AND request_id = ?`),
			string(to), reason, db.TimeArg(at), k.ControllerID, k.RequestID)
		return err
	})
}

func (s *Store) insertTransition(ctx context.Context, tx *sql.Tx, k Key, at time.Time, from, to dsr.Status, reason string) error {
	_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO transitions
		(controller_id, request_id, at, from_status, to_status, reason) VALUES (?, ?, ?, ?, ?, ?)`),
		k.ControllerID, k.RequestID, s.db.TimeArg(at), string(from), string(to), reason)
	if err != nil {
		return fmt.Errorf("record transition: %w", err)
	}
	return nil
}

// Transitions returns the status transitions of a request in time order
// (none for an unknown request).
func (s *Store) Transitions(ctx context.Context, k Key) (_ []Transition, err error) {
	defer wrap(&err, "read transitions of %s", k)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT at, from_status, to_status, reason
		FROM transitions WHERE controller_id = ? AND request_id = ? ORDER BY at, id`),
		k.ControllerID, k.RequestID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (Transition, error) {
		var t Transition
		var at sqldb.Time
		err := rows.Scan(&at, &t.From, &t.To, &t.Reason)
		t.At = at.Time
		return t, err
	})
}

// SetForwarding records f as the state at f.Destination of every request in
// keys, replacing what was recorded there before, in one statement (a
// Mixpanel task holds up to 1999 requests). A zero f.UpdatedAt means now.
// Keys of requests the ledger does not have are left out and reported by an
// error wrapping ErrNotFound; the others are recorded all the same.
func (s *Store) SetForwarding(ctx context.Context, keys []Key, f Forwarding) (err error) {
	defer wrap(&err, "set forwarding to %s of %d requests", f.Destination, len(keys))
	if f.Destination == "" {
		return errors.New("empty destination")
	}
	if !f.Status.Valid() {
		return fmt.Errorf("unknown forwarding status %q", f.Status)
	}
	if f.UpdatedAt.IsZero() {
		f.UpdatedAt = time.Now()
	}
	seen := make(map[Key]bool, len(keys))
	pairs := make([][2]string, 0, len(keys))
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
		if !seen[k] {
			seen[k] = true
			pairs = append(pairs, [2]string{k.ControllerID, k.RequestID})
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	keysJSON, err := json.Marshal(pairs)
	if err != nil {
		return err
	}

	// The keys travel as one JSON array of [controller, request] pairs that
	// the database unpacks into a table.
	db := s.db
	keyTable := `(SELECT value ->> 0 AS controller_id, value ->> 1 AS request_id FROM json_each(?))`
	timeType := "INTEGER"
	if db.Dialect == sqldb.Postgres {
		keyTable = `(SELECT value ->> 0 AS controller_id, value ->> 1 AS request_id FROM jsonb_array_elements(CAST(? AS jsonb)))`
		timeType = "TIMESTAMPTZ"
	}
	res, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO forwarding
			(controller_id, request_id, destination, status, status_message, task_id, task_status, updated_at)
		SELECT r.controller_id, r.request_id, ?, ?, ?, ?, ?, CAST(? AS `+timeType+`)
		FROM `+keyTable+` AS k
		JOIN requests AS r ON r.controller_id = k.controller_id AND r.request_id = k.request_id
		WHERE true
		ON CONFLICT (controller_id, request_id, destination) DO UPDATE SET
			status = excluded.status, status_message = excluded.status_message,
			task_id = excluded.task_id, task_status = excluded.task_status, updated_at = excluded.updated_at`),
		f.Destination, string(f.Status), f.StatusMessage, f.TaskID, f.TaskStatus, db.TimeArg(f.UpdatedAt),
		string(keysJSON))
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if missing := int64(len(pairs)) - n; missing > 0 {
		return fmt.Errorf("%d of %d requests (the others were recorded): %w", missing, len(pairs), ErrNotFound)
	}
	return nil
}

// Forwardings returns the state of a request at each destination, sorted by
// destination (none for an unknown request).
func (s *Store) Forwardings(ctx context.Context, k Key) (_ []Forwarding, err error) {
	defer wrap(&err, "read forwarding of %s", k)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT destination, status, status_message, task_id, task_status, updated_at
		FROM forwarding WHERE controller_id = ? AND request_id = ? ORDER BY destination`),
		k.ControllerID, k.RequestID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (Forwarding, error) {
		var f Forwarding
		var updated sqldb.Time
		err := rows.Scan(&f.Destination, &f.Status, &f.StatusMessage, &f.TaskID, &f.TaskStatus, &updated)
		f.UpdatedAt = updated.Time
		return f, err
	})
}

// SetResults records the results of an access or portability request: the
// token of its download link (looked up by SHA-256 only; "" records none),
// the link as given to the controller (url, sealed by the caller), the number
// of records and when the link expires.
func (s *Store) SetResults(ctx context.Context, k Key, token, url string, count int, expires time.Time) (err error) {
	defer wrap(&err, "set results of %s", k)
	var tokenHash any
	if token != "" {
		tokenHash = HashHex(token)
	}
	return s.update(ctx, k, `results_token_hash = ?, results_url = ?, results_count = ?, results_expires_at = ?`,
		tokenHash, url, count, s.db.TimeArg(expires))
}

// ClearResults marks a request's results as expired: ResultsExpiresAt moves
// to now if it was later, so the link answers 410 Gone from now on.
// ResultsCount stays, as the record of what was delivered.
func (s *Store) ClearResults(ctx context.Context, k Key) (err error) {
	defer wrap(&err, "clear results of %s", k)
	now := s.db.TimeArg(time.Now())
	return s.update(ctx, k, `results_expires_at = CASE WHEN results_expires_at > ? THEN ? ELSE results_expires_at END`, now, now)
}

// SetResolution records the identity resolution trace of a request, a JSON
// document (nil records none).
func (s *Store) SetResolution(ctx context.Context, k Key, trace json.RawMessage) (err error) {
	defer wrap(&err, "set resolution of %s", k)
	doc, err := jsonDocument(trace)
	if err != nil {
		return err
	}
	return s.update(ctx, k, `resolution = ?`, doc)
}

// update sets columns (with args) and updated_at of one request.
func (s *Store) update(ctx context.Context, k Key, set string, args ...any) error {
	args = append(args, s.db.TimeArg(time.Now()), k.ControllerID, k.RequestID)
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE requests SET `+set+`, updated_at = ?
		WHERE controller_id = ? AND request_id = ?`), args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// RecordCallbackAttempt appends one attempt to deliver a status callback:
// every attempt is a row of its own, nothing is overwritten. A zero a.At
// means now.
func (s *Store) RecordCallbackAttempt(ctx context.Context, k Key, a CallbackAttempt) (err error) {
	defer wrap(&err, "record callback attempt %d of change %d (%s) for %s", a.Attempt, a.Seq, a.RequestStatus, k)
	if !keyring.IsHash(a.URLHash) {
		return errors.New("URL hash is not a keyed hash")
	}
	if a.Seq < 0 {
		return fmt.Errorf("negative sequence number %d", a.Seq)
	}
	if !a.RequestStatus.Valid() {
		return fmt.Errorf("unknown status %q", a.RequestStatus)
	}
	if a.At.IsZero() {
		a.At = time.Now()
	}
	db := s.db
	return db.WithTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM requests
			WHERE controller_id = ? AND request_id = ?`), k.ControllerID, k.RequestID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO callback_attempts
				(controller_id, request_id, url_hash, host, seq, request_status, attempt, at, http_status, error_message, delivered, permanent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			k.ControllerID, k.RequestID, a.URLHash, a.Host, a.Seq, string(a.RequestStatus), a.Attempt,
			db.TimeArg(a.At), a.HTTPStatus, a.Error, a.Delivered, a.Permanent)
		return err
	})
}

// CallbackAttempts returns the callback attempts of a request in time order
// (none for an unknown request).
func (s *Store) CallbackAttempts(ctx context.Context, k Key) (_ []CallbackAttempt, err error) {
	defer wrap(&err, "read callback attempts of %s", k)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT url_hash, host, seq, request_status, attempt, at, http_status, error_message, delivered, permanent
		FROM callback_attempts WHERE controller_id = ? AND request_id = ? ORDER BY at, id`),
		k.ControllerID, k.RequestID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (CallbackAttempt, error) {
		var a CallbackAttempt
		var at sqldb.Time
		err := rows.Scan(&a.URLHash, &a.Host, &a.Seq, &a.RequestStatus, &a.Attempt, &at, &a.HTTPStatus, &a.Error, &a.Delivered, &a.Permanent)
		a.At = at.Time
		return a, err
	})
}

// PurgeExpired deletes the requests whose ExpiresAt is before now, with their
// transitions, forwarding and callback attempts, a bounded chunk per
// statement, and returns how many requests it deleted.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) (total int64, err error) {
	defer wrap(&err, "purge expired requests")
	q := s.db.Rebind(`DELETE FROM requests WHERE (controller_id, request_id) IN (
		SELECT controller_id, request_id FROM requests WHERE expires_at < ? ORDER BY expires_at LIMIT ?)`)
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		res, err := s.db.ExecContext(ctx, q, s.db.TimeArg(now), purgeChunk)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < purgeChunk {
			return total, nil
		}
	}
}

// Stats counts the requests in each status; every Status has an entry.
func (s *Store) Stats(ctx context.Context) (_ map[dsr.Status]int, err error) {
	defer wrap(&err, "count requests by status")
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM requests GROUP BY status`)
	if err != nil {
		return nil, err
	}
	type count struct {
		status dsr.Status
		n      int
	}
	counts, err := collect(rows, func(rows *sql.Rows) (count, error) {
		var c count
		return c, rows.Scan(&c.status, &c.n)
	})
	if err != nil {
		return nil, err
	}
	stats := make(map[dsr.Status]int, len(counts))
	for _, st := range dsr.Statuses() {
		stats[st] = 0
	}
	for _, c := range counts {
		stats[c.status] = c.n
	}
	return stats, nil
}

// scanRequest reads the requestColumns of one row.
func scanRequest(row interface{ Scan(...any) error }) (Request, error) {
	var r Request
	var submitted, received, expected, due, resultsExpires, updated, expires sqldb.Time
	var identities, callbacks, resolution []byte
	if err := row.Scan(&r.ControllerID, &r.RequestID, &r.Type, &r.Regulation, &r.Status, &r.StatusReason, &r.APIVersion,
		&submitted, &received, &expected, &due,
		&r.BodyHash, &identities, &callbacks, &r.SkipWaitingPeriod,
		&r.ResultsURL, &r.ResultsCount, &resultsExpires, &resolution, &updated, &expires); err != nil {
		return Request{}, err
	}
	r.SubmittedTime, r.ReceivedTime = submitted.Time, received.Time
	r.ExpectedCompletionTime, r.DueTime = expected.Time, due.Time
	r.ResultsExpiresAt, r.UpdatedAt, r.ExpiresAt = resultsExpires.Time, updated.Time, expires.Time
	if err := json.Unmarshal(identities, &r.Identities); err != nil {
		return Request{}, fmt.Errorf("decode identities: %w", err)
	}
	if err := json.Unmarshal(callbacks, &r.CallbackURLs); err != nil {
		return Request{}, fmt.Errorf("decode callback URLs: %w", err)
	}
	if len(r.Identities) == 0 {
		r.Identities = nil
	}
	if len(r.CallbackURLs) == 0 {
		r.CallbackURLs = nil
	}
	if resolution != nil {
		r.Resolution = json.RawMessage(resolution)
	}
	return r, nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// jsonArray encodes a slice as a JSON array, [] for nil.
func jsonArray[T any](v []T) (string, error) {
	if v == nil {
		v = []T{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %T: %w", v, err)
	}
	return string(b), nil
}

// jsonDocument checks an opaque JSON document and returns it as the value
// stored: its text, or NULL when empty.
func jsonDocument(doc json.RawMessage) (any, error) {
	if len(doc) == 0 {
		return nil, nil
	}
	if !json.Valid(doc) {
		return nil, errors.New("resolution is not valid JSON")
	}
	return string(doc), nil
}

func checkKey(k Key) error {
	if k.ControllerID == "" || k.RequestID == "" {
		return fmt.Errorf("incomplete key %q", k.String())
	}
	return nil
}

// wrap prefixes a non-nil *err with "ledger: " and what failed.
func wrap(err *error, format string, args ...any) {
	if *err != nil {
		*err = fmt.Errorf("ledger: "+format+": %w", append(args, *err)...)
	}
}

// StaleQueued returns requests that have waited in a batch (a pending
// forwarding row, the request still pending) since before olderThan: a
// healthy batch sends them within DSR_BATCH_MAX_WAIT, so these are for the
// sweep to nudge. At most limit keys.
func (s *Store) StaleQueued(ctx context.Context, olderThan time.Time, limit int) (_ []Key, err error) {
	defer wrap(&err, "list stale queued requests")
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT DISTINCT r.controller_id, r.request_id
		FROM requests r JOIN forwarding f ON f.controller_id = r.controller_id AND f.request_id = r.request_id
		WHERE r.status = 'pending' AND f.status = 'pending' AND f.updated_at < ?
		ORDER BY r.controller_id, r.request_id LIMIT ?`), s.db.TimeArg(olderThan), limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (Key, error) {
		var k Key
		err := rows.Scan(&k.ControllerID, &k.RequestID)
		return k, err
	})
}
