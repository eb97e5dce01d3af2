// Command worker runs dsrflow's Temporal worker: the DSR, Batch, MixpanelTask
// and Retention workflows, their activities, and one rate-limited worker per
// Mixpanel destination. It takes no arguments: configuration is the environment.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/callback"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/deadlines"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
	"github.com/dsrflow/dsrflow/internal/requests"
	"github.com/dsrflow/dsrflow/workflows"
)

func main() { app.Main("worker", run) }

func run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	store, err := app.OpenLedger(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	ring, err := app.KeyRing(cfg)
	if err != nil {
		return err
	}
	profiles, err := identity.Open(ctx, cfg.DB, identity.WithKeys(ring))
	if err != nil {
		return fmt.Errorf("opening the profile store: %w", err)
	}
	defer profiles.Close()
	bundles, err := app.ResultsStore(cfg, ring)
	if err != nil {
		return err
	}
	signer, err := app.Signer(cfg)
	if err != nil {
		return err
	}
	mixpanels, err := mixpanelClients(cfg)
	if err != nil {
		return err
	}
	registry := app.Registry()
	registry.MustRegister(deadlines.NewCollector(store, requests.RetryWindow))
	tc, err := app.DialTemporal(ctx, cfg, logger, registry)
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := app.RegisterSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
		return err
	}
	if err := ensureRetentionSchedule(ctx, tc, cfg); err != nil {
		return err
	}

	callbacks, err := callback.New(callback.Options{Signer: signer, ProcessorDomain: cfg.ProcessorDomain, AllowPrivate: cfg.CallbackAllowPrivate})
	if err != nil {
		return err
	}
	var finder identity.Finder = profiles
	if cfg.IdentityResolverURL != "" {
		if finder, err = identity.NewHTTPFinder(cfg.IdentityResolverURL, cfg.IdentityResolverHeader, identity.HTTPFinderOptions{}); err != nil {
			return fmt.Errorf("DSR_IDENTITY_RESOLVER_URL: %w", err)
		}
	}
	acts := &activities.Activities{
		Settings: activities.SettingsFrom(cfg), Ledger: store, Temporal: tc, Mixpanel: mixpanels, Finder: finder,
		Callbacks: callbacks, Profiles: profiles, Results: bundles, Keys: ring, Metrics: activities.NewMetrics(registry),
	}

	// Open requests wait for days: keep a bounded number in memory, replay the rest.
	worker.SetStickyWorkflowCacheSize(cfg.WorkerCacheSize)
	workers := []worker.Worker{mainWorker(tc, cfg, acts)}
	for _, d := range cfg.ActiveDestinations() {
		opts := worker.Options{}
		if cfg.MixpanelRateLimit > 0 {
			// Enforced by the server for all workers of this queue together.
			opts.TaskQueueActivitiesPerSecond = cfg.MixpanelRateLimit
		}
		w := worker.New(tc, dsr.MixpanelTaskQueue(cfg.TaskQueue, d.Name), opts)
		w.RegisterActivity(acts)
		workers = append(workers, w)
	}
	for _, w := range workers {
		if err := w.Start(); err != nil {
			return fmt.Errorf("starting a worker: %w", err)
		}
		defer w.Stop()
	}
	logger.Info("worker started", "task_queue", cfg.TaskQueue, "destinations", len(cfg.ActiveDestinations()), "metrics", cfg.WorkerMetricsAddr)
	return app.Serve(ctx, &http.Server{Addr: cfg.WorkerMetricsAddr, Handler: metricsMux(registry), ReadHeaderTimeout: 5 * time.Second})
}

func mainWorker(tc client.Client, cfg config.Config, acts *activities.Activities) worker.Worker {
	w := worker.New(tc, cfg.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.DSR, workflow.RegisterOptions{Name: dsr.WorkflowDSR})
	w.RegisterWorkflowWithOptions(workflows.Batch, workflow.RegisterOptions{Name: dsr.WorkflowBatch})
	w.RegisterWorkflowWithOptions(workflows.MixpanelTask, workflow.RegisterOptions{Name: dsr.WorkflowMixpanelTask})
	w.RegisterWorkflowWithOptions(workflows.Retention, workflow.RegisterOptions{Name: dsr.WorkflowRetention})
	w.RegisterActivity(acts)
	return w
}

func metricsMux(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}

// ensureRetentionSchedule creates the hourly purge-and-sweep schedule if it does not exist.
func ensureRetentionSchedule(ctx context.Context, tc client.Client, cfg config.Config) error {
	_, err := tc.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   "dsrflow-retention",
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action: &client.ScheduleWorkflowAction{
			ID: "dsrflow-retention", Workflow: dsr.WorkflowRetention, TaskQueue: cfg.TaskQueue,
			WorkflowRunTimeout: time.Hour,
		},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("creating the retention schedule: %w", err)
	}
	return nil
}

// mixpanelClients builds one GDPR API client per configured destination.
func mixpanelClients(cfg config.Config) (map[string]*mixpanel.Client, error) {
	out := map[string]*mixpanel.Client{}
	for _, d := range cfg.Destinations {
		c, err := mixpanel.New(mixpanel.Options{
			BaseURL: d.APIURL, ProjectToken: d.ProjectToken, OAuthToken: d.OAuthToken,
			UserAgent: "dsrflow/" + app.Version + " (+https://github.com/dsrflow/dsrflow)",
		})
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.Name, err)
		}
		out[d.Name] = c
	}
	return out, nil
}
