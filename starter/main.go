// Command dsr is dsrflow's CLI: it submits requests (one, or thousands from a
// CSV) through the same request service as the HTTP API, talking to Temporal
// and the ledger directly as a Temporal starter does (or through the HTTP API
// when DSR_API_URL is set); it cancels, retries, shows and lists requests,
// downloads results, imports profiles, generates signing keys and runs the
// Mixpanel emulator.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/requests"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ error }

// run executes the CLI and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cli := &cli{stdout: stdout, stderr: stderr}
	root := cli.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	cli.close()
	if err == nil {
		return exitOK
	}
	var oerr *opendsr.Error
	if errors.As(err, &oerr) {
		err = describe(oerr)
	}
	if errors.Is(err, errNotFound) {
		err = fmt.Errorf("%w (check the id and --controller, or DSR_API_TOKEN's controller)", err)
	}
	fmt.Fprintln(stderr, "dsr:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ") {
		fmt.Fprintln(stderr, "Run 'dsr --help' for usage.")
		return exitUsage
	}
	return exitFailure
}

// cli holds what subcommands share, opened on first use.
type cli struct {
	stdout, stderr io.Writer
	cfg            *config.Config
	store          *ledger.Store
	temporal       client.Client
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "dsr",
		Short: "dsrflow's CLI: submit and follow data subject requests",
		Long: `dsr submits GDPR and CCPA data subject requests to dsrflow and follows them.

It reads the same environment as the worker and the API (TEMPORAL_ADDRESS,
DSR_DB, ...). Run from the checkout root with no extra environment, it reaches
the stack that 'make dev' started. With DSR_API_URL and DSR_API_TOKEN set, it
reads and changes requests through the HTTP API instead, from any directory.
It never creates a database: a DSR_DB that does not exist is an error.

Exit codes: 0 success, 1 failure, 2 usage error.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("dsr {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	defer usageArgs(root)
	root.AddCommand(c.submitCommand(), c.cancelCommand(), c.retryCommand(), c.statusCommand(),
		c.listCommand(), c.watchCommand(), c.resolveCommand(), c.profilesCommand(), c.emulatorCommand(), c.keysCommand(), c.resultsCommand())
	root.AddCommand(c.receiptCommand(), c.extendCommand(), c.reportCommand())
	return root
}

// usageArgs makes wrong positional arguments usage errors, in cmd and below.
func usageArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		usageArgs(sub)
	}
}

func (c *cli) config() (config.Config, error) {
	if c.cfg == nil {
		cfg, err := config.FromEnv()
		if err != nil {
			return config.Config{}, fmt.Errorf("configuration: %w", err)
		}
		c.cfg = &cfg
	}
	return *c.cfg, nil
}

func (c *cli) ledger(ctx context.Context) (*ledger.Store, error) {
	if c.store == nil {
		cfg, err := c.config()
		if err != nil {
			return nil, err
		}
		if err := ledgerExists(cfg.DB); err != nil {
			return nil, err
		}
		s, err := app.OpenLedger(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("%w (run from the checkout root, or set DSR_DB or DSR_API_URL)", err)
		}
		c.store = s
	}
	return c.store, nil
}

func (c *cli) temporalClient(ctx context.Context) (client.Client, error) {
	if c.temporal == nil {
		cfg, err := c.config()
		if err != nil {
			return nil, err
		}
		tc, err := app.DialTemporal(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		if err != nil {
			return nil, err
		}
		c.temporal = tc
	}
	return c.temporal, nil
}

// localService is the request service without Temporal: what reads the
// ledger (and opens its sealed fields) needs no workflow.
func (c *cli) localService(ctx context.Context) (*requests.Service, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	store, err := c.ledger(ctx)
	if err != nil {
		return nil, err
	}
	ring, err := app.KeyRing(cfg)
	if err != nil {
		return nil, err
	}
	return &requests.Service{Settings: requests.SettingsFrom(cfg), Ledger: store, Keys: ring, NameBasedIDs: true}, nil
}

// service opens the request service with Temporal, for what changes a request.
func (c *cli) service(ctx context.Context) (*requests.Service, error) {
	svc, err := c.localService(ctx)
	if err != nil {
		return nil, err
	}
	if svc.Temporal, err = c.temporalClient(ctx); err != nil {
		return nil, err
	}
	svc.Logger = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return svc, nil
}

// ledgerExists refuses a SQLite DSR_DB that does not exist: the CLI reads
// and changes requests other processes recorded, so a new, empty database in
// the wrong directory would only hide them.
func ledgerExists(db string) error {
	if sqldb.IsPostgres(db) {
		return nil
	}
	if _, err := os.Stat(db); err == nil {
		return nil
	}
	abs, _ := filepath.Abs(db)
	return fmt.Errorf("no ledger at DSR_DB=%s (%s): run dsr from the checkout root where `make dev` keeps .data/, "+
		"set DSR_DB to the ledger the worker and the API use, or set DSR_API_URL and DSR_API_TOKEN to work through the API", db, abs)
}

func (c *cli) close() {
	if c.temporal != nil {
		c.temporal.Close()
	}
	if c.store != nil {
		_ = c.store.Close()
	}
}
