// Package deadlines exports the statutory deadlines of open requests as
// Prometheus gauges, computed from the ledger on each scrape: open requests
// by regulation and time to their due time, and requests that wait for a
// person (an ambiguous identity hold, a failure awaiting an operator's retry).
package deadlines

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// Metric names.
const (
	OpenRequestsMetric = "dsrflow_open_requests"
	HeldRequestsMetric = "dsrflow_requests_awaiting_operator"
)

// scrapeTimeout bounds the ledger queries of one scrape.
const scrapeTimeout = 10 * time.Second

// Collector is a prometheus.Collector over the ledger. Every regulation, hold
// reason and due bucket is exported, 0 when empty, so alerts see the series.
type Collector struct {
	ledger      *ledger.Store
	retryWindow time.Duration
	now         func() time.Time
	open, held  *prometheus.Desc
}

// NewCollector returns the collector; retryWindow is how long a failed
// request waits for an operator's retry.
func NewCollector(store *ledger.Store, retryWindow time.Duration) *Collector {
	return &Collector{
		ledger: store, retryWindow: retryWindow, now: time.Now,
		open: prometheus.NewDesc(OpenRequestsMetric,
			"Open requests (pending or in progress) by regulation and time to their statutory due time: overdue, lt_7d, lt_14d, later. From the ledger at scrape time.",
			[]string{"regulation", "due"}, nil),
		held: prometheus.NewDesc(HeldRequestsMetric,
			"Requests that wait for a person, by reason (ambiguous_identity: choose a profile with dsr resolve; failed_awaiting_retry: fix the cause and dsr retry) and time to their due time. From the ledger at scrape time.",
			[]string{"reason", "due"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	ch <- c.held
}

// Collect implements prometheus.Collector. A ledger error fails the scrape
// (an invalid metric) rather than reporting zeros.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := c.now()
	open, err := c.ledger.OpenByDue(ctx, now)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.open, err)
		return
	}
	held, err := c.ledger.HeldByDue(ctx, now, c.retryWindow)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.held, err)
		return
	}
	emit(ch, c.open, dsr.Regulations(), open)
	emit(ch, c.held, []string{ledger.HoldAmbiguous, ledger.HoldRetry}, held)
}

// emit sends one gauge per group and due bucket, filling the absent ones with 0.
func emit(ch chan<- prometheus.Metric, desc *prometheus.Desc, groups []string, counts []ledger.DeadlineCount) {
	type cell struct{ group, due string }
	values := map[cell]int{}
	for _, g := range groups {
		for _, d := range ledger.DueBuckets() {
			values[cell{g, d}] = 0
		}
	}
	for _, c := range counts {
		values[cell{c.Group, c.Due}] += c.Count
	}
	for k, v := range values {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v), k.group, k.due)
	}
}
