package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsrflow/dsrflow/internal/report"
)

func (c *cli) reportCommand() *cobra.Command {
	var month, out string
	cmd := &cobra.Command{
		Use:   "report --month YYYY-MM [-o FILE]",
		Short: "Write the monthly compliance report: one self-contained HTML page",
		Long: `Write the monthly compliance report of the requests received in a month (UTC):
requests by type, regulation and status; median and 95th percentile time to
complete against the statutory limits; overdue and extended requests; Mixpanel
task outcomes; charts as inline SVG. The page loads nothing from anywhere and
holds no identity values. Read from the ledger (DSR_DB).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if month == "" {
				return usageError{errors.New("--month YYYY-MM is required")}
			}
			if _, _, err := report.ParseMonth(month); err != nil {
				return usageError{err}
			}
			cfg, err := c.config()
			if err != nil {
				return err
			}
			store, err := c.ledger(cmd.Context())
			if err != nil {
				return err
			}
			r, err := report.Build(cmd.Context(), store, month, time.Now())
			if err != nil {
				return err
			}
			var page bytes.Buffer
			if err := report.Render(&page, r, cfg.ProcessorDomain); err != nil {
				return err
			}
			if out == "" {
				_, err = c.stdout.Write(page.Bytes())
				return err
			}
			if err := os.WriteFile(out, page.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "report for %s (%d requests) written to %s\n", month, r.Total, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&month, "month", "", "the month, YYYY-MM (UTC)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the page to this file instead of stdout")
	return cmd
}
