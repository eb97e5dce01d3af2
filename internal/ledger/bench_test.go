package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// benchStore opens a Store on a fresh SQLite file.
func benchStore(b *testing.B) *ledger.Store {
	b.Helper()
	s, err := ledger.Open(context.Background(), sqldbtest.SQLiteDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkCreateRequest measures the intake's ledger write on SQLite: the
// request row, its first transition and the read-back, in one transaction.
func BenchmarkCreateRequest(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, _, err := s.CreateRequest(ctx, newRequest("acme", fmt.Sprintf("req-%09d", i), base())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetForwarding2000 measures the update of a full Mixpanel task's
// members (2000 requests) on SQLite.
func BenchmarkSetForwarding2000(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	keys := make([]ledger.Key, 2000)
	for i := range keys {
		r, _, err := s.CreateRequest(ctx, newRequest("acme", fmt.Sprintf("req-%04d", i), base()))
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = r.Key()
	}
	f := ledger.Forwarding{Destination: "mixpanel", Status: dsr.ForwardingSent, TaskID: "task-1"}
	i := 0
	for b.Loop() {
		i++
		f.TaskStatus, f.UpdatedAt = dsr.TaskStatus(fmt.Sprintf("PENDING %d", i)), base().Add(time.Duration(i)*time.Second)
		if err := s.SetForwarding(ctx, keys, f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(keys)), "ns/request")
}
