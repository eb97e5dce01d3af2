package identity

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// A bulk import heartbeats every bulkHeartbeat, within its batches.
func TestBulkHeartbeat(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, err := New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		s.now = func() time.Time { return now }
		load, err := s.beginBulk(ctx)
		if err != nil {
			t.Fatal(err)
		}
		heartbeat := func() time.Time {
			var hb sqldb.Time
			if err := db.QueryRowContext(ctx, db.Rebind(`SELECT heartbeat FROM identity_bulk_imports WHERE import_id = ?`), load.id).Scan(&hb); err != nil {
				t.Fatal(err)
			}
			return hb.Time
		}
		for _, step := range []struct {
			advance time.Duration
			want    time.Time
		}{
			{time.Second, now}, // too soon
			{bulkHeartbeat, now.Add(time.Second + bulkHeartbeat)}, // due
		} {
			now = now.Add(step.advance)
			if err := db.WithTx(ctx, func(tx *sql.Tx) error { return load.beat(ctx, tx) }); err != nil {
				t.Fatal(err)
			}
			if got := heartbeat(); !got.Equal(step.want) {
				t.Fatalf("heartbeat %v, want %v", got, step.want)
			}
		}
		// A live import keeps New from rebuilding what it dropped.
		if missing, err := s.missingDigestIndexes(ctx); err != nil || !missing {
			t.Fatalf("indexes missing %v (%v)", missing, err)
		}
		if err := load.end(ctx); err != nil {
			t.Fatal(err)
		}
		if missing, err := s.missingDigestIndexes(ctx); err != nil || missing {
			t.Fatalf("after end: indexes missing %v (%v)", missing, err)
		}
	})
}
