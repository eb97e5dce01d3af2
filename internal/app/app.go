// Package app wires dsrflow's shared dependencies (logger, Temporal client,
// Mixpanel clients, signer, search attributes) from a Config, for the worker,
// the API and the dsr CLI.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/results"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Version is dsrflow's version, sent in the Mixpanel User-Agent.
const Version = "0.1.0"

// Logger returns the JSON logger every binary writes to stderr.
func Logger(component string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", component)
}

// KeyRing parses DSR_ENCRYPTION_KEYS.
func KeyRing(cfg config.Config) (*keyring.Ring, error) {
	if !cfg.EncryptionKeys.IsSet() {
		return nil, errors.New("DSR_ENCRYPTION_KEYS (or DSR_ENCRYPTION_KEYS_FILE) is empty: create a key with `dsr keys generate` " +
			"and point DSR_ENCRYPTION_KEYS_FILE at .data/encryption-keys")
	}
	ring, err := keyring.Parse(cfg.EncryptionKeys.Reveal())
	if err != nil {
		return nil, fmt.Errorf("DSR_ENCRYPTION_KEYS: %w", err)
	}
	return ring, nil
}

// TemporalOptions are the client options for cfg: address, namespace, TLS or an
// API key for a Temporal cluster or Temporal Cloud, and the key ring's codec,
// so that no payload or failure message reaches Temporal in clear.
func TemporalOptions(cfg config.Config, logger *slog.Logger) (client.Options, error) {
	ring, err := KeyRing(cfg)
	if err != nil {
		return client.Options{}, err
	}
	opts := client.Options{
		HostPort:         cfg.TemporalAddress,
		Namespace:        cfg.TemporalNamespace,
		Logger:           tlog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
		DataConverter:    keyring.DataConverter(ring),
		FailureConverter: keyring.FailureConverter(ring),
	}
	if cfg.TemporalTLS || cfg.TemporalAPIKey.IsSet() || cfg.TemporalTLSCertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TemporalTLSServerName}
		if cfg.TemporalTLSCertFile != "" {
			pair, err := tls.LoadX509KeyPair(cfg.TemporalTLSCertFile, cfg.TemporalTLSKeyFile)
			if err != nil {
				return client.Options{}, fmt.Errorf("TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		if cfg.TemporalTLSCAFile != "" {
			pem, err := os.ReadFile(cfg.TemporalTLSCAFile)
			if err != nil {
				return client.Options{}, fmt.Errorf("TEMPORAL_TLS_CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return client.Options{}, errors.New("TEMPORAL_TLS_CA: no certificate found in the file")
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	if cfg.TemporalAPIKey.IsSet() {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey.Reveal())
	}
	return opts, nil
}

// DialTemporal connects to Temporal with TemporalOptions. With a registry,
// the SDK's own metrics (workflow and activity task latencies, poller and
// cache counts, request failures) are exported there too.
func DialTemporal(ctx context.Context, cfg config.Config, logger *slog.Logger, metrics prometheus.Registerer) (client.Client, error) {
	opts, err := TemporalOptions(cfg, logger)
	if err != nil {
		return nil, err
	}
	if metrics != nil {
		exporter, err := otelprom.New(otelprom.WithRegisterer(metrics))
		if err != nil {
			return nil, fmt.Errorf("Temporal SDK metrics: %w", err)
		}
		provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
		opts.MetricsHandler = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
			Meter:   provider.Meter("temporal-sdk"),
			OnError: func(err error) { logger.Warn("Temporal SDK metric not recorded", "error", err) },
		})
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to Temporal at %s (is it running? `make dev` starts one): %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// Signer loads the response and callback signing key named by DSR_SIGNING_KEY / DSR_SIGNING_CERT.
func Signer(cfg config.Config) (*opendsr.Signer, error) {
	if cfg.SigningKeyFile == "" || cfg.SigningCertFile == "" {
		return nil, errors.New("DSR_SIGNING_KEY and DSR_SIGNING_CERT must name PEM files: create a pair with `dsr keys generate`")
	}
	return opendsr.LoadSigner(cfg.SigningKeyFile, cfg.SigningCertFile)
}

// RegisterSearchAttributes adds dsrflow's search attributes that the namespace lacks.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	ops := c.OperatorService()
	have, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("listing search attributes: %w", err)
	}
	want := dsr.SearchAttributes()
	missing := &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: map[string]enums.IndexedValueType{}}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing.SearchAttributes[name] = want[name]
		}
	}
	if len(missing.SearchAttributes) == 0 {
		return nil
	}
	_, err = ops.AddSearchAttributes(ctx, missing)
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("registering search attributes: %w", err)
	}
	return nil
}

// Main runs a binary's body with the logger, a context cancelled by SIGINT or
// SIGTERM, and the configuration from the environment, and exits 1 on error.
func Main(component string, run func(ctx context.Context, cfg config.Config, logger *slog.Logger) error) {
	logger := Logger(component)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cfg, err := config.FromEnv()
	if err == nil {
		err = run(ctx, cfg, logger)
	}
	stop()
	if err != nil {
		logger.Error(component+" stopped", "error", err)
		os.Exit(1)
	}
}

// OpenLedger opens the ledger at DSR_DB, keeping records for DSR_RECORD_RETENTION.
func OpenLedger(ctx context.Context, cfg config.Config) (*ledger.Store, error) {
	s, err := ledger.Open(ctx, cfg.DB, ledger.WithRetention(cfg.RecordRetention))
	if err != nil {
		return nil, fmt.Errorf("opening the ledger at DSR_DB=%s: %w", sqldb.Redact(cfg.DB), err)
	}
	return s, nil
}

// ResultsStore opens where results bundles are kept, encrypted by the key
// ring: with a PostgreSQL DSR_DB, its database (results.DBStore), so that any
// API replica serves any bundle, still reading DSR_RESULTS_DIR for the
// bundles written there before; otherwise the directory DSR_RESULTS_DIR.
// Either way the directory exists (mode 0700): the worker downloads exports
// into it while it builds a bundle.
func ResultsStore(cfg config.Config, ring *keyring.Ring) (results.Bundles, error) {
	opts := results.StoreOptions{Wrap: ring.WrapWriter, Unwrap: ring.UnwrapReader}
	dir, err := results.OpenStore(cfg.ResultsDir, opts)
	if err != nil {
		return nil, fmt.Errorf("opening the results directory: %w", err)
	}
	if !sqldb.IsPostgres(cfg.DB) {
		return dir, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqldb.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("opening the results store: %w", err)
	}
	return results.NewDBStore(db, opts, dir)
}

// Registry is a Prometheus registry with the Go and process collectors.
func Registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Serve runs srv until ctx ends, then shuts it down gracefully.
func Serve(ctx context.Context, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
