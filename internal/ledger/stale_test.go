package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
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
		add := func(id string, forwarding dsr.ForwardingStatus, at time.Time, status dsr.Status) {
			k := ledger.Key{ControllerID: "acme", RequestID: id}
			if _, _, err := s.CreateRequest(ctx, ledger.Request{ControllerID: "acme", RequestID: id, Type: "erasure", Regulation: "gdpr"}); err != nil {
				t.Fatal(err)
			}
			if err := s.SetForwarding(ctx, []ledger.Key{k}, ledger.Forwarding{Destination: "mixpanel", Status: forwarding, UpdatedAt: at}); err != nil {
				t.Fatal(err)
			}
			if status != dsr.StatusPending {
				if err := s.SetStatus(ctx, k, status, "", at); err != nil {
					t.Fatal(err)
				}
			}
		}
		add("stale", dsr.ForwardingPending, now.Add(-3*time.Hour), dsr.StatusPending)
		add("fresh", dsr.ForwardingPending, now.Add(-time.Minute), dsr.StatusPending)
		add("sent", dsr.ForwardingSent, now.Add(-3*time.Hour), dsr.StatusInProgress)
		add("skipped", dsr.ForwardingSkipped, now.Add(-3*time.Hour), dsr.StatusPending)
		keys, err := s.StaleQueued(ctx, now.Add(-2*time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].RequestID != "stale" {
			t.Errorf("stale = %v, want only the request queued 3 hours ago", keys)
		}
	})
}
