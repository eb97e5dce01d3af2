package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// ErrAlreadyExtended is returned (wrapped) when a request's due time was
// already extended with another reason: the statutes allow one extension.
var ErrAlreadyExtended = errors.New("the due time was already extended")

// Extension is the one extension of a request's statutory due time.
type Extension struct {
	OriginalDueTime time.Time `json:"original_due_time"`
	DueTime         time.Time `json:"due_time"`
	ExtendedAt      time.Time `json:"extended_at"`
	Reason          string    `json:"reason"`
	Operator        string    `json:"operator,omitempty"`
}

// Extend records the extension of a request's due time and moves its
// due_time and expected_completion_time to e.DueTime, in one transaction.
// Recording the same extension again does nothing (activities retry); a
// different one gives an error wrapping ErrAlreadyExtended.
func (s *Store) Extend(ctx context.Context, k Key, e Extension) (err error) {
	defer wrap(&err, "extend the due time of %s", k)
	if e.Reason == "" || e.DueTime.IsZero() {
		return errors.New("an extension needs a reason and a due time")
	}
	db := s.db
	return db.WithTx(ctx, func(tx *sql.Tx) error {
		var due sqldb.Time
		err := tx.QueryRowContext(ctx, db.Rebind(`SELECT due_time FROM requests
			WHERE controller_id = ? AND request_id = ?`+db.ForUpdate()), k.ControllerID, k.RequestID).Scan(&due)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		existing, err := s.extension(ctx, tx, k)
		if err != nil {
			return err
		}
		if existing != nil {
			if existing.Reason == e.Reason && existing.DueTime.Equal(e.DueTime.UTC().Truncate(time.Microsecond)) {
				return nil
			}
			return ErrAlreadyExtended
		}
		if e.OriginalDueTime.IsZero() {
			e.OriginalDueTime = due.Time
		}
		if e.ExtendedAt.IsZero() {
			e.ExtendedAt = time.Now()
		}
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO extensions
				(controller_id, request_id, original_due_time, due_time, extended_at, reason, operator)
			VALUES (?, ?, ?, ?, ?, ?, ?)`),
			k.ControllerID, k.RequestID, db.TimeArg(e.OriginalDueTime), db.TimeArg(e.DueTime),
			db.TimeArg(e.ExtendedAt), e.Reason, e.Operator); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.Rebind(`UPDATE requests SET due_time = ?, expected_completion_time = ?, updated_at = ?
			WHERE controller_id = ? AND request_id = ?`),
			db.TimeArg(e.DueTime), db.TimeArg(e.DueTime), db.TimeArg(e.ExtendedAt), k.ControllerID, k.RequestID)
		return err
	})
}

// Extension returns the extension of a request's due time, nil when there is none.
func (s *Store) Extension(ctx context.Context, k Key) (_ *Extension, err error) {
	defer wrap(&err, "read the extension of %s", k)
	return s.extension(ctx, s.db, k)
}

func (s *Store) extension(ctx context.Context, q querier, k Key) (*Extension, error) {
	var e Extension
	var original, due, at sqldb.Time
	err := q.QueryRowContext(ctx, s.db.Rebind(`SELECT original_due_time, due_time, extended_at, reason, operator
		FROM extensions WHERE controller_id = ? AND request_id = ?`), k.ControllerID, k.RequestID).
		Scan(&original, &due, &at, &e.Reason, &e.Operator)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e.OriginalDueTime, e.DueTime, e.ExtendedAt = original.Time, due.Time, at.Time
	return &e, nil
}

// Due buckets: how far an open request is from its statutory due time.
const (
	DueOverdue = "overdue"
	DueIn7d    = "lt_7d"
	DueIn14d   = "lt_14d"
	DueLater   = "later"
)

// DueBuckets lists the due buckets, nearest first.
func DueBuckets() []string { return []string{DueOverdue, DueIn7d, DueIn14d, DueLater} }

// Reasons a request waits for a person.
const (
	// HoldAmbiguous: several profiles match; an operator chooses one (dsr resolve).
	HoldAmbiguous = "ambiguous_identity"
	// HoldRetry: failed for a cause an operator can fix, within the retry window (dsr retry).
	HoldRetry = "failed_awaiting_retry"
)

// DeadlineCount is how many requests share a regulation (or hold reason) and due bucket.
type DeadlineCount struct {
	// Group is the regulation for open requests, the hold reason for held ones.
	Group string
	Due   string
	Count int
}

// OpenByDue counts the open requests (pending or in progress) by regulation
// and due bucket at now.
func (s *Store) OpenByDue(ctx context.Context, now time.Time) (_ []DeadlineCount, err error) {
	defer wrap(&err, "count open requests by due time")
	return s.countByDue(ctx, now, `regulation`, `status IN ('pending', 'in_progress')`)
}

// HeldByDue counts the requests waiting for a person, by hold reason and due
// bucket at now: held on an ambiguous identity, or failed (for an operator's
// retry) within retryWindow.
func (s *Store) HeldByDue(ctx context.Context, now time.Time, retryWindow time.Duration) (_ []DeadlineCount, err error) {
	defer wrap(&err, "count held requests by due time")
	return s.countByDue(ctx, now,
		`CASE WHEN status = 'pending' THEN '`+HoldAmbiguous+`' ELSE '`+HoldRetry+`' END`,
		`((status = 'pending' AND status_reason LIKE 'ambiguous identity%') OR (status = 'failed' AND updated_at >= ?))`,
		s.db.TimeArg(now.Add(-retryWindow)))
}

func (s *Store) countByDue(ctx context.Context, now time.Time, group, where string, whereArgs ...any) ([]DeadlineCount, error) {
	db := s.db
	args := []any{db.TimeArg(now), db.TimeArg(now.Add(7 * 24 * time.Hour)), db.TimeArg(now.Add(14 * 24 * time.Hour))}
	args = append(args, whereArgs...)
	rows, err := db.QueryContext(ctx, db.Rebind(`SELECT grp, due, COUNT(*) FROM (
			SELECT `+group+` AS grp,
				CASE WHEN due_time < ? THEN '`+DueOverdue+`' WHEN due_time < ? THEN '`+DueIn7d+`'
				     WHEN due_time < ? THEN '`+DueIn14d+`' ELSE '`+DueLater+`' END AS due
			FROM requests WHERE `+where+`) AS t
		GROUP BY grp, due ORDER BY grp, due`), args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(rows *sql.Rows) (DeadlineCount, error) {
		var c DeadlineCount
		return c, rows.Scan(&c.Group, &c.Due, &c.Count)
	})
}

// MonthRecord is one request received in a month, for the monthly report.
type MonthRecord struct {
	Request
	// FinalTime is when the request last entered its current status if that
	// status is final (completed, cancelled, failed); zero while it is open.
	FinalTime   time.Time
	Forwardings []Forwarding
	Extension   *Extension
}

// ReceivedBetween returns every request received in [from, to), oldest
// first, with the time it reached its final status, its forwarding rows and
// its extension.
func (s *Store) ReceivedBetween(ctx context.Context, from, to time.Time) (_ []MonthRecord, err error) {
	defer wrap(&err, "read requests received from %s to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	db := s.db
	window := []any{db.TimeArg(from), db.TimeArg(to)}
	rows, err := db.QueryContext(ctx, db.Rebind(`SELECT `+requestColumns+` FROM requests
		WHERE received_time >= ? AND received_time < ? ORDER BY received_time, controller_id, request_id`), window...)
	if err != nil {
		return nil, err
	}
	reqs, err := collect(rows, func(rows *sql.Rows) (Request, error) { return scanRequest(rows) })
	if err != nil {
		return nil, err
	}
	out := make([]MonthRecord, len(reqs))
	index := make(map[Key]int, len(reqs))
	for i, r := range reqs {
		out[i] = MonthRecord{Request: r}
		index[r.Key()] = i
	}

	rows, err = db.QueryContext(ctx, db.Rebind(`SELECT t.controller_id, t.request_id, t.to_status, MAX(t.at)
		FROM transitions t JOIN requests r ON r.controller_id = t.controller_id AND r.request_id = t.request_id
		WHERE r.received_time >= ? AND r.received_time < ? AND t.to_status = r.status AND t.from_status <> t.to_status
		  AND r.status IN ('completed', 'cancelled', 'failed')
		GROUP BY t.controller_id, t.request_id, t.to_status`), window...)
	if err != nil {
		return nil, err
	}
	if err := eachRow(rows, func(rows *sql.Rows) error {
		var k Key
		var st string
		var at sqldb.Time
		if err := rows.Scan(&k.ControllerID, &k.RequestID, &st, &at); err != nil {
			return err
		}
		if i, ok := index[k]; ok {
			out[i].FinalTime = at.Time
		}
		return nil
	}); err != nil {
		return nil, err
	}

	rows, err = db.QueryContext(ctx, db.Rebind(`SELECT f.controller_id, f.request_id, f.destination, f.status, f.status_message, f.task_id, f.task_status, f.updated_at
		FROM forwarding f JOIN requests r ON r.controller_id = f.controller_id AND r.request_id = f.request_id
		WHERE r.received_time >= ? AND r.received_time < ? ORDER BY f.destination`), window...)
	if err != nil {
		return nil, err
	}
	if err := eachRow(rows, func(rows *sql.Rows) error {
		var k Key
		var f Forwarding
		var updated sqldb.Time
		if err := rows.Scan(&k.ControllerID, &k.RequestID, &f.Destination, &f.Status, &f.StatusMessage, &f.TaskID, &f.TaskStatus, &updated); err != nil {
			return err
		}
		f.UpdatedAt = updated.Time
		if i, ok := index[k]; ok {
			out[i].Forwardings = append(out[i].Forwardings, f)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	rows, err = db.QueryContext(ctx, db.Rebind(`SELECT e.controller_id, e.request_id, e.original_due_time, e.due_time, e.extended_at, e.reason, e.operator
		FROM extensions e JOIN requests r ON r.controller_id = e.controller_id AND r.request_id = e.request_id
		WHERE r.received_time >= ? AND r.received_time < ?`), window...)
	if err != nil {
		return nil, err
	}
	if err := eachRow(rows, func(rows *sql.Rows) error {
		var k Key
		var e Extension
		var original, due, at sqldb.Time
		if err := rows.Scan(&k.ControllerID, &k.RequestID, &original, &due, &at, &e.Reason, &e.Operator); err != nil {
			return err
		}
		e.OriginalDueTime, e.DueTime, e.ExtendedAt = original.Time, due.Time, at.Time
		if i, ok := index[k]; ok {
			out[i].Extension = &e
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// eachRow calls fn for every row and closes rows.
func eachRow(rows *sql.Rows, fn func(*sql.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
	}
	return rows.Err()
}
