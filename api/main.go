// Command api serves dsrflow's OpenDSR HTTP API on API_ADDR. It takes no
// arguments: configuration is the environment.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/httpapi"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/requests"
	"github.com/dsrflow/dsrflow/internal/results"
)

func main() {
	logger := app.Logger("api")
	if err := run(logger); err != nil {
		logger.Error("api stopped", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	if len(cfg.APITokens) == 0 {
		return errors.New("API_TOKENS is empty: set it to token:controller_id pairs (comma-separated)")
	}
	signer, err := app.Signer(cfg)
	if err != nil {
		return err
	}
	store, err := ledger.Open(ctx, cfg.DB)
	if err != nil {
		return fmt.Errorf("opening the ledger: %w", err)
	}
	defer store.Close()
	ring, err := app.KeyRing(cfg)
	if err != nil {
		return err
	}
	bundles, err := results.OpenStore(cfg.ResultsDir, results.StoreOptions{Wrap: ring.WrapWriter, Unwrap: ring.UnwrapReader})
	if err != nil {
		return fmt.Errorf("opening the results directory: %w", err)
	}
	tc, err := app.DialTemporal(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer tc.Close()

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	server := httpapi.New(httpapi.Options{
		Config: cfg, Signer: signer, Logger: logger, Registry: registry, Results: bundles, Ledger: store, Keys: ring,
		Requests: &requests.Service{Config: cfg, Ledger: store, Temporal: tc, Keys: ring, Logger: logger},
	})
	srv := &http.Server{
		Addr: cfg.APIAddr, Handler: server.Handler(),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("api listening", "addr", cfg.APIAddr, "controllers", len(cfg.APITokens))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("api stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
