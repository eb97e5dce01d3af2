package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsrflow/dsrflow/internal/identity"
)

func (c *cli) profilesCommand() *cobra.Command {
	profiles := &cobra.Command{Use: "profiles", Short: "Manage the profile store that identity resolution uses"}
	var format string
	var bulk bool
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import profiles from JSON Lines or CSV (upsert; safe to re-run)",
		Long: `Import profiles into the profile store (DSR_DB). Each profile replaces the stored
one with the same profile_id, so running the same file again changes nothing.

JSON Lines, one profile per line:
  {"profile_id":"p-1","identities":{"email":"ann@example.com","controller_customer_id":"c-1",
   "ios_vendor_id":["v1","v2"]},"attributes":{"plan":"pro"}}
CSV, a header of profile_id, identity types and attr:<name> columns; several values in a cell
separated by '|':
  profile_id,email,controller_customer_id,attr:plan

Bad lines are reported by line number (never with their values) and skipped; the good ones are
imported. --bulk speeds up a large import by rebuilding the lookup indexes once at the end
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
			if err := ledgerExists(cfg.DB); err != nil {
				return err
			}
			store, err := identity.Open(cmd.Context(), cfg.DB)
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
			report, err := store.Import(cmd.Context(), f, fmtKind, identity.ImportOptions{Bulk: bulk, Progress: func(done int) {
				for ; last < done; last++ {
					progress.add(outcomeRead)
				}
			}})
			progress.finish()
			for _, e := range report.Errors {
				fmt.Fprintln(c.stderr, e.String())
			}
			fmt.Fprintf(c.stdout, "%d profiles imported, %d lines rejected (of %d read)\n", report.Imported, report.Failed, report.Imported+report.Failed)
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
