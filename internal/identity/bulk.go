package identity

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// A bulk import drops the indexes on the identities' digests, loads, and
// builds them again at the end: inserting random keys into those indexes
// batch after batch is what limits a large import, while building an index
// once, sorted, is cheap. Meanwhile it heartbeats in identity_bulk_imports,
// so that a process opening the store leaves the indexes alone; should the
// import die before rebuilding them, the next Open or import does.
const (
	// bulkHeartbeat is how often a bulk import records that it is alive.
	bulkHeartbeat = 10 * time.Second
	// bulkStale is how long after its last heartbeat a bulk import is
	// presumed dead.
	bulkStale = 5 * time.Minute
)

// digestColumns are the indexed digest columns of identity_values; the
// index on column c is identity_values_<c>.
var digestColumns = []string{"sha256", "sha1", "md5"}

// bulkLoad is one bulk import in progress.
type bulkLoad struct {
	s        *Store
	id       string
	lastBeat time.Time
}

// beginBulk records a bulk import and drops the digest indexes.
func (s *Store) beginBulk(ctx context.Context) (*bulkLoad, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("identity: bulk import id: %w", err)
	}
	load := &bulkLoad{s: s, id: hex.EncodeToString(b), lastBeat: s.now()}
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO identity_bulk_imports (import_id, heartbeat) VALUES (?, ?)`),
			load.id, s.db.TimeArg(load.lastBeat)); err != nil {
			return err
		}
		for _, c := range digestColumns {
			if _, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS identity_values_`+c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("identity: begin bulk import: %w", err)
	}
	return load, nil
}

// beat records in q that the import is alive, at most every bulkHeartbeat.
func (b *bulkLoad) beat(ctx context.Context, q execer) error {
	now := b.s.now()
	if now.Sub(b.lastBeat) < bulkHeartbeat {
		return nil
	}
	if _, err := q.ExecContext(ctx, b.s.db.Rebind(`UPDATE identity_bulk_imports SET heartbeat = ? WHERE import_id = ?`),
		b.s.db.TimeArg(now), b.id); err != nil {
		return fmt.Errorf("bulk import heartbeat: %w", err)
	}
	b.lastBeat = now
	return nil
}

// end builds the digest indexes again, heartbeating between them (each
// takes seconds per million identities), and forgets the import. It goes on
// when ctx is done: the store must not stay without its indexes.
func (b *bulkLoad) end(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	db := b.s.db
	for _, c := range digestColumns {
		if err := b.beat(ctx, db); err != nil {
			return fmt.Errorf("identity: end bulk import: %w", err)
		}
		if err := createDigestIndex(ctx, db, c); err != nil {
			return fmt.Errorf("identity: rebuild indexes after the bulk import: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, db.Rebind(`DELETE FROM identity_bulk_imports WHERE import_id = ?`), b.id); err != nil {
		return fmt.Errorf("identity: end bulk import: %w", err)
	}
	return nil
}

// execer is what *sql.DB and *sql.Tx have in common for DDL.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// createDigestIndex creates the index on digest column c unless it exists.
func createDigestIndex(ctx context.Context, q execer, c string) error {
	if _, err := q.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS identity_values_`+c+` ON identity_values (`+c+`)`); err != nil {
		return fmt.Errorf("create index on %s: %w", c, err)
	}
	return nil
}

// repairIndexes creates the digest indexes a dead bulk import left missing
// (New and every import that is not a bulk one call it). It does nothing
// while a bulk import is alive, and, in the usual case where every index is
// there, writes nothing.
func (s *Store) repairIndexes(ctx context.Context) error {
	missing, err := s.missingDigestIndexes(ctx)
	if err != nil || !missing {
		return err
	}
	db := s.db
	err = db.WithTx(ctx, func(tx *sql.Tx) error {
		var last sqldb.Time
		if err := tx.QueryRowContext(ctx, `SELECT MAX(heartbeat) FROM identity_bulk_imports`).Scan(&last); err != nil {
			return err
		}
		if !last.IsZero() && s.now().Sub(last.Time) < bulkStale {
			return nil // a bulk import is loading; it rebuilds them
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM identity_bulk_imports`); err != nil {
			return err
		}
		for _, c := range digestColumns {
			if err := createDigestIndex(ctx, tx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("identity: repair indexes: %w", err)
	}
	return nil
}

// missingDigestIndexes reports whether a digest index is missing.
func (s *Store) missingDigestIndexes(ctx context.Context) (bool, error) {
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN (?, ?, ?)`
	if s.db.Dialect == sqldb.Postgres {
		q = `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN (?, ?, ?)`
	}
	args := make([]any, len(digestColumns))
	for i, c := range digestColumns {
		args[i] = "identity_values_" + c
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.db.Rebind(q), args...).Scan(&n); err != nil {
		return false, fmt.Errorf("identity: list indexes: %w", err)
	}
	return n < len(digestColumns), nil
}
