package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

func TestStaleQueued(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s, err := ledger.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		add := func(id string, forwarding ledger.ForwardingStatus, at time.Time, status ledger.Status) {
			k := ledger.Key{ControllerID: "acme", RequestID: id}
			if _, _, err := s.CreateRequest(ctx, ledger.Request{ControllerID: "acme", RequestID: id, Type: "erasure", Regulation: "gdpr"}); err != nil {
				t.Fatal(err)
			}
			if err := s.SetForwarding(ctx, []ledger.Key{k}, ledger.Forwarding{Destination: "mixpanel", Status: forwarding, UpdatedAt: at}); err != nil {
				t.Fatal(err)
			}
			if status != ledger.StatusPending {
				if err := s.SetStatus(ctx, k, status, "", at); err != nil {
					t.Fatal(err)
				}
			}
		}
		add("stale", ledger.ForwardingPending, now.Add(-3*time.Hour), ledger.StatusPending)
		add("fresh", ledger.ForwardingPending, now.Add(-time.Minute), ledger.StatusPending)
		add("sent", ledger.ForwardingSent, now.Add(-3*time.Hour), ledger.StatusInProgress)
		add("skipped", ledger.ForwardingSkipped, now.Add(-3*time.Hour), ledger.StatusPending)
		keys, err := s.StaleQueued(ctx, now.Add(-2*time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].RequestID != "stale" {
			t.Errorf("stale = %v, want only the request queued 3 hours ago", keys)
		}
	})
}
