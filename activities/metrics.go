package activities

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsrflow/dsrflow/internal/mixpanel"
)

// Metrics are the worker's Prometheus counters. A nil *Metrics records nothing.
type Metrics struct {
	statuses   *prometheus.CounterVec
	mixpanel   *prometheus.CounterVec
	callbacks  *prometheus.CounterVec
	forwarding *prometheus.CounterVec
}

// NewMetrics registers the worker's counters.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		statuses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsrflow_request_status_changes_total", Help: "Request status changes, by new status.",
		}, []string{"status"}),
		mixpanel: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsrflow_mixpanel_calls_total", Help: "Mixpanel GDPR API calls, by destination, call and outcome (ok or the error kind).",
		}, []string{"destination", "call", "outcome"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsrflow_callback_attempts_total", Help: "Status callback attempts, by outcome.",
		}, []string{"outcome"}),
		forwarding: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsrflow_forwarding_outcomes_total", Help: "Per-destination forwarding outcomes of requests.",
		}, []string{"destination", "status"}),
	}
	reg.MustRegister(m.statuses, m.mixpanel, m.callbacks, m.forwarding)
	return m
}

func (m *Metrics) statusChanged(status string) {
	if m != nil {
		m.statuses.WithLabelValues(status).Inc()
	}
}

func (m *Metrics) mixpanelCall(destination, call string, err error) {
	if m != nil {
		m.mixpanel.WithLabelValues(destination, call, outcome(err)).Inc()
	}
}

func (m *Metrics) callbackAttempt(outcome string) {
	if m != nil {
		m.callbacks.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) forwarded(destination, status string, n int) {
	if m != nil {
		m.forwarding.WithLabelValues(destination, status).Add(float64(n))
	}
}

// outcome names a Mixpanel error by kind, never by message.
func outcome(err error) string {
	var (
		unauthorized *mixpanel.UnauthorizedError
		limited      *mixpanel.RateLimitedError
		conflict     *mixpanel.ConflictError
		badRequest   *mixpanel.BadRequestError
	)
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &unauthorized):
		return "unauthorized"
	case errors.As(err, &limited):
		return "rate_limited"
	case errors.As(err, &conflict):
		return "conflict"
	case errors.As(err, &badRequest):
		return "bad_request"
	case errors.Is(err, mixpanel.ErrTaskNotFound):
		return "not_found"
	}
	return "transient"
}
