package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/identity"
)

func (c *cli) profilesCommand() *cobra.Command {
	profiles := &cobra.Command{Use: "profiles", Short: "Manage the profile store that identity resolution uses"}
	var format, controller string
	var bulk bool
	imp := &cobra.Command{
		Use:   "import [--controller ID] FILE",
		Short: "Import a controller's profiles from JSON Lines or CSV (upsert; safe to re-run)",
		Long: `Import profiles into the profile store (DSR_DB) as the profiles of one controller
(--controller, default DSR_CONTROLLER, else dev): only that controller's requests ever resolve
to them. Each profile replaces the stored one of that controller with the same profile_id, so
running the same file again changes nothing.

JSON Lines, one profile per line:
  {"profile_id":"p-1","identities":{"email":"ann@example.com","controller_customer_id":"c-1",
   "ios_vendor_id":["v1","v2"]},"attributes":{"plan":"pro"}}
CSV, a header of profile_id, identity types and attr:<name> columns; several values in a cell
separated by '|':
  profile_id,email,controller_customer_id,attr:plan

Bad lines are reported by line number (never with their values) and skipped; the good ones are
imported. A profile carrying an identity of a person whose erasure dsrflow completed (the
suppression list) is not imported and is reported as suppressed, by line number. --bulk speeds up a large import by rebuilding the lookup indexes once at the end
(lookups are slow meanwhile); it is used by itself when the store is empty.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			fmtKind, err := importFormat(format, args[0])
			if err != nil {
				return usageError{err}
			}
			if controller == "" {
				controller = cfg.Controller
			}
			if err := identity.CheckOwner(controller); err != nil {
				return usageError{fmt.Errorf("--controller: %w", err)}
			}
			if err := ledgerExists(cfg.DB); err != nil {
				return err
			}
			ring, err := app.KeyRing(cfg)
			if err != nil {
				return err
			}
			store, err := identity.Open(cmd.Context(), cfg.DB, identity.WithKeys(ring))
			if err != nil {
				return fmt.Errorf("opening the profile store at DSR_DB=%s: %w", cfg.DB, err)
			}
			defer store.Close()
			total, err := countRows(f)
			if err != nil {
				return err
			}
			if fmtKind == identity.JSONL {
				total++ // no header line
			}
			if _, err := f.Seek(0, 0); err != nil {
				return err
			}
			progress := newProgress(c.stderr, max(total, 1), "importing", "lines")
			var last int
			report, err := store.Import(cmd.Context(), controller, f, fmtKind, identity.ImportOptions{Bulk: bulk, Progress: func(done int) {
				for ; last < done; last++ {
					progress.add(outcomeRead)
				}
			}})
			progress.finish()
			for _, e := range report.Errors {
				fmt.Fprintln(c.stderr, e.String())
			}
			for _, line := range report.SuppressedLines {
				fmt.Fprintf(c.stderr, "line %d: suppressed: an identity of an erased person\n", line)
			}
			fmt.Fprintf(c.stdout, "%d profiles imported for controller %s, %d suppressed (erased people), %d lines rejected (of %d read)\n",
				report.Imported, controller, report.Suppressed, report.Failed, report.Imported+report.Suppressed+report.Failed)
			if err != nil {
				return err
			}
			if report.Failed > 0 {
				return fmt.Errorf("%d lines were rejected: fix them and run the same command again", report.Failed)
			}
			return nil
		},
	}
	imp.Flags().StringVar(&format, "format", "", "jsonl or csv (default: from the file name)")
	imp.Flags().BoolVar(&bulk, "bulk", false, "rebuild lookup indexes once at the end (large imports)")
	c.controllerFlag(imp, &controller)
	profiles.AddCommand(imp)
	return profiles
}

func importFormat(flag, path string) (identity.Format, error) {
	switch strings.ToLower(flag) {
	case "jsonl", "json":
		return identity.JSONL, nil
	case "csv":
		return identity.CSV, nil
	case "":
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			return identity.CSV, nil
		case ".jsonl", ".ndjson", ".json":
			return identity.JSONL, nil
		}
	}
	return "", errors.New("say --format jsonl or --format csv")
}

func (c *cli) resolveCommand() *cobra.Command {
	var controller, profile string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "resolve ID --profile PROFILE_ID",
		Short: "Settle an ambiguous identity: choose which matching profile the request is about",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if profile == "" {
				return usageError{errors.New("--profile is required: one of the candidates `dsr status ID` lists")}
			}
			key, err := c.key(controller, args[0])
			if err != nil {
				return err
			}
			b, err := c.backend(cmd.Context())
			if err != nil {
				return err
			}
			resp, err := b.Resolve(cmd.Context(), key, profile)
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(c.stdout, resp)
			}
			fmt.Fprintf(c.stdout, "resolved %s to profile %s\n", args[0], profile)
			return nil
		},
	}
	c.controllerFlag(cmd, &controller)
	cmd.Flags().StringVar(&profile, "profile", "", "the chosen profile id")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the request afterwards as JSON, in the API's shape")
	return cmd
}
