package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/receipt"
)

func (c *cli) receiptCommand() *cobra.Command {
	var controller, out string
	cmd := &cobra.Command{
		Use:   "receipt ID",
		Short: "Write the signed receipt of a finished request (a JWS; check it with: dsr receipt verify)",
		Long: `Write the signed receipt of a request that reached a final status: a JWS in the
flattened JSON serialization (RS256, the key of /v1/cert.pem) whose payload says
what was asked, when, which Mixpanel tasks carried it and how they ended, and
which callbacks the controller received. It holds identity hashes, never values.

Built from the ledger and signed with DSR_SIGNING_KEY (default
.data/signing-key.pem from the checkout root); with DSR_API_URL and
DSR_API_TOKEN set it is fetched from the API instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			jws, err := c.fetchReceipt(cmd, controller, args[0])
			if err != nil {
				return err
			}
			if out == "" {
				_, err = fmt.Fprintf(c.stdout, "%s\n", jws)
				return err
			}
			if err := os.WriteFile(out, jws, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "receipt of %s written to %s\n", args[0], out)
			return nil
		},
	}
	c.controllerFlag(cmd, &controller)
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the receipt to this file instead of stdout")
	cmd.AddCommand(c.receiptVerifyCommand())
	return cmd
}

// fetchReceipt issues the receipt from the ledger, or gets it from the API
// (DSR_API_URL).
func (c *cli) fetchReceipt(cmd *cobra.Command, controller, id string) ([]byte, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	if cfg.APIURL != "" {
		b, err := c.backend(cmd.Context())
		if err != nil {
			return nil, err
		}
		jws, err := b.(*apiBackend).Receipt(cmd.Context(), ledger.Key{RequestID: id})
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("request %s has no receipt: it is unknown or has not reached a final status", id)
		}
		return jws, err
	}
	key, err := c.key(controller, id)
	if err != nil {
		return nil, err
	}
	store, err := c.ledger(cmd.Context())
	if err != nil {
		return nil, err
	}
	signer, err := app.Signer(withDevSigningKey(cfg))
	if err != nil {
		return nil, err
	}
	is := &receipt.Issuer{Ledger: store, Signer: signer, ProcessorDomain: cfg.ProcessorDomain, WaitingPeriod: cfg.WaitingPeriod}
	jws, err := is.Issue(cmd.Context(), key)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nil, fmt.Errorf("no request %s for controller %s (check --controller)", key.RequestID, key.ControllerID)
	case errors.Is(err, receipt.ErrNotFinal):
		return nil, fmt.Errorf("request %s has no receipt yet: it has not reached a final status", id)
	}
	return jws, err
}

// withDevSigningKey falls back to the key pair `make dev` writes into .data/
// when DSR_SIGNING_KEY and DSR_SIGNING_CERT are unset.
func withDevSigningKey(cfg config.Config) config.Config {
	if cfg.SigningKeyFile == "" && cfg.SigningCertFile == "" {
		if _, err := os.Stat(".data/signing-key.pem"); err == nil {
			cfg.SigningKeyFile, cfg.SigningCertFile = ".data/signing-key.pem", ".data/signing-cert.pem"
		}
	}
	return cfg
}

func (c *cli) receiptVerifyCommand() *cobra.Command {
	var certFile string
	cmd := &cobra.Command{
		Use:   "verify FILE --cert PEM",
		Short: "Check a receipt offline against the processor certificate; exit 0 only when the signature holds",
		Long: `Check a receipt written by 'dsr receipt' (or fetched from
GET /v1/requests/{id}/receipt) against the processor's certificate, as served at
/v1/cert.pem. Nothing is fetched: the check is offline. Exit status 0 means the
signature holds and the document is unchanged; any change exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if certFile == "" {
				return usageError{errors.New("--cert is required (the processor certificate, from /v1/cert.pem)")}
			}
			certPEM, err := os.ReadFile(certFile)
			if err != nil {
				return err
			}
			doc, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			r, err := receipt.Verify(certPEM, trimFinalNewline(doc))
			if err != nil {
				if errors.Is(err, opendsr.ErrBadJWS) {
					return fmt.Errorf("%s: the signature does not hold (the receipt was changed or not signed by this certificate): %w", args[0], err)
				}
				return err
			}
			fmt.Fprintf(c.stdout, "valid: receipt of %s request %s for controller %s, %s at %s, signed by %s\n",
				r.Type, r.RequestID, r.ControllerID, r.Status, r.CompletedTime.Format(time.RFC3339), r.ProcessorDomain)
			for _, d := range r.Destinations {
				fmt.Fprintf(c.stdout, "  %s: tasks %s %s (reported %s)\n", d.Project, strings.Join(d.TaskIDs, ","), dash(d.TaskStatus), d.ReportedAt.Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&certFile, "cert", "", "the processor certificate (PEM), as served at /v1/cert.pem")
	return cmd
}

// trimFinalNewline drops the one newline `dsr receipt` adds on stdout.
func trimFinalNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}
