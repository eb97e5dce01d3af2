package ledger_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

func TestExtend(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		r := mustCreate(t, s, newRequest("acme", "ext-1", base()))
		k := r.Key()
		if e, err := s.Extension(ctx, k); err != nil || e != nil {
			t.Fatalf("extension before extending: %v, %v", e, err)
		}
		due := r.DueTime.AddDate(0, 2, 0)
		ext := ledger.Extension{DueTime: due, ExtendedAt: base().Add(time.Hour), Reason: "complex request", Operator: "ops"}
		if err := s.Extend(ctx, k, ext); err != nil {
			t.Fatal(err)
		}
		if err := s.Extend(ctx, k, ext); err != nil {
			t.Fatalf("recording the same extension again: %v", err)
		}
		other := ext
		other.Reason = "again"
		if err := s.Extend(ctx, k, other); !errors.Is(err, ledger.ErrAlreadyExtended) {
			t.Fatalf("second extension: %v, want ErrAlreadyExtended", err)
		}
		got, err := s.Extension(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		want := &ledger.Extension{OriginalDueTime: r.DueTime, DueTime: us(due), ExtendedAt: us(ext.ExtendedAt), Reason: "complex request", Operator: "ops"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("extension = %+v, want %+v", got, want)
		}
		rec, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !rec.DueTime.Equal(us(due)) || !rec.ExpectedCompletionTime.Equal(us(due)) {
			t.Fatalf("due %s expected %s, want both %s", rec.DueTime, rec.ExpectedCompletionTime, due)
		}
		if err := s.Extend(ctx, ledger.Key{ControllerID: "acme", RequestID: "nope"}, ext); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("unknown request: %v", err)
		}
		if _, err := s.PurgeExpired(ctx, r.ExpiresAt.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, db, "extensions"); n != 0 {
			t.Fatalf("%d extension rows left after the purge", n)
		}
	})
}

func TestDeadlineCounts(t *testing.T) {
	each(t, func(t *testing.T, s *ledger.Store, db *sqldb.DB) {
		ctx := context.Background()
		now := base().Add(40 * 24 * time.Hour)
		day := 24 * time.Hour
		add := func(id, regulation string, due time.Time, status dsr.Status, reason string) {
			r := newRequest("acme", id, base())
			r.Regulation, r.DueTime = regulation, due
			mustCreate(t, s, r)
			if status != dsr.StatusPending || reason != "" {
				if err := s.SetStatus(ctx, r.Key(), status, reason, now.Add(-day)); err != nil {
					t.Fatal(err)
				}
			}
		}
		add("overdue", "gdpr", now.Add(-day), dsr.StatusInProgress, "sent")
		add("soon", "gdpr", now.Add(3*day), dsr.StatusPending, "ambiguous identity: 2 profiles match")
		add("fortnight", "ccpa", now.Add(10*day), dsr.StatusPending, "")
		add("later", "ccpa", now.Add(30*day), dsr.StatusPending, "")
		add("done", "gdpr", now.Add(-day), dsr.StatusCompleted, "deleted")
		add("failed", "ccpa", now.Add(2*day), dsr.StatusFailed, "credentials rejected")

		open, err := s.OpenByDue(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		wantOpen := []ledger.DeadlineCount{
			{Group: "ccpa", Due: ledger.DueLater, Count: 1}, {Group: "ccpa", Due: ledger.DueIn14d, Count: 1},
			{Group: "gdpr", Due: ledger.DueIn7d, Count: 1}, {Group: "gdpr", Due: ledger.DueOverdue, Count: 1},
		}
		if !reflect.DeepEqual(open, wantOpen) {
			t.Fatalf("open = %+v, want %+v", open, wantOpen)
		}
		held, err := s.HeldByDue(ctx, now, 30*day)
		if err != nil {
			t.Fatal(err)
		}
		wantHeld := []ledger.DeadlineCount{
			{Group: ledger.HoldAmbiguous, Due: ledger.DueIn7d, Count: 1},
			{Group: ledger.HoldRetry, Due: ledger.DueIn7d, Count: 1},
		}
		if !reflect.DeepEqual(held, wantHeld) {
			t.Fatalf("held = %+v, want %+v", held, wantHeld)
		}
		if held, err = s.HeldByDue(ctx, now.Add(40*day), 30*day); err != nil || len(held) != 1 || held[0].Group != ledger.HoldAmbiguous {
			t.Fatalf("after the retry window: %+v, %v (want only the ambiguous hold)", held, err)
		}

	})
}
