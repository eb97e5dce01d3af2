// Command api serves dsrflow's OpenDSR HTTP API on API_ADDR. It takes no
// arguments: configuration is the environment.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/httpapi"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/requests"
)

func main() { app.Main("api", run) }

func run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if len(cfg.APITokens) == 0 {
		return errors.New("API_TOKENS is empty: set it to token:controller_id pairs (comma-separated)")
	}
	signer, err := app.Signer(cfg)
	if err != nil {
		return err
	}
	ring, err := app.KeyRing(cfg)
	if err != nil {
		return err
	}
	bundles, err := app.ResultsStore(cfg, ring)
	if err != nil {
		return err
	}
	store, err := app.OpenLedger(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	profiles, err := identity.Open(ctx, cfg.DB, identity.WithKeys(ring))
	if err != nil {
		return fmt.Errorf("opening the profile store: %w", err)
	}
	defer profiles.Close()
	registry := app.Registry()
	tc, err := app.DialTemporal(ctx, cfg, logger, registry)
	if err != nil {
		return err
	}
	defer tc.Close()

	server := httpapi.New(httpapi.Options{
		Settings: httpapi.SettingsFrom(cfg), Signer: signer, Logger: logger, Registry: registry, Results: bundles, Ledger: store, Keys: ring,
		Profiles: profiles,
		Requests: &requests.Service{Settings: requests.SettingsFrom(cfg), Ledger: store, Temporal: tc, Keys: ring, Logger: logger},
	})
	logger.Info("api listening", "addr", cfg.APIAddr, "controllers", len(cfg.APITokens))
	return app.Serve(ctx, &http.Server{
		Addr: cfg.APIAddr, Handler: server.Handler(),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 10 * time.Minute, IdleTimeout: 2 * time.Minute,
	})
}
