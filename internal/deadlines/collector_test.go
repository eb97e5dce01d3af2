package deadlines_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dsrflow/dsrflow/internal/deadlines"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

func TestCollectorCountsFromTheLedger(t *testing.T) {
	ctx := context.Background()
	store, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC()
	day := 24 * time.Hour
	add := func(id, regulation string, due time.Duration, status dsr.Status, reason string) {
		r := ledger.Request{ControllerID: "acme", RequestID: id, Type: "erasure", Regulation: regulation, ReceivedTime: now.Add(-day), DueTime: now.Add(due)}
		if _, _, err := store.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		if reason != "" {
			if err := store.SetStatus(ctx, r.Key(), status, reason, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("a", "gdpr", -day, dsr.StatusInProgress, "sent")
	add("b", "gdpr", -2*day, dsr.StatusPending, "ambiguous identity: 2 profiles match")
	add("c", "ccpa", 5*day, dsr.StatusPending, "")
	add("d", "ccpa", 40*day, dsr.StatusFailed, "mixpanel: credentials rejected")
	add("e", "gdpr", 3*day, dsr.StatusCompleted, "deleted")

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(deadlines.NewCollector(store, 30*day))
	want := `
# HELP dsrflow_open_requests Open requests (pending or in progress) by regulation and time to their statutory due time: overdue, lt_7d, lt_14d, later. From the ledger at scrape time.
# TYPE dsrflow_open_requests gauge
dsrflow_open_requests{due="later",regulation="ccpa"} 0
dsrflow_open_requests{due="later",regulation="gdpr"} 0
dsrflow_open_requests{due="lt_14d",regulation="ccpa"} 0
dsrflow_open_requests{due="lt_14d",regulation="gdpr"} 0
dsrflow_open_requests{due="lt_7d",regulation="ccpa"} 1
dsrflow_open_requests{due="lt_7d",regulation="gdpr"} 0
dsrflow_open_requests{due="overdue",regulation="ccpa"} 0
dsrflow_open_requests{due="overdue",regulation="gdpr"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), deadlines.OpenRequestsMetric); err != nil {
		t.Error(err)
	}
	held := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != deadlines.HeldRequestsMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			held[labels["reason"]+"/"+labels["due"]] = m.GetGauge().GetValue()
		}
	}
	if len(held) != 8 || held["ambiguous_identity/overdue"] != 1 || held["failed_awaiting_retry/later"] != 1 || held["ambiguous_identity/lt_7d"] != 0 {
		t.Errorf("held = %v", held)
	}
}
