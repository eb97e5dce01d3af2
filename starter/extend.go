package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/requests"
)

func (c *cli) extendCommand() *cobra.Command {
	var reason string
	cmd := c.requestAction("extend ID --reason TEXT", "Extend a request's statutory due time once (GDPR +2 months, CCPA +45 days), telling the controller why", "extended",
		func(ctx context.Context, svc *requests.Service, key ledger.Key) *opendsr.Error {
			_, err := svc.Extend(ctx, key, reason, cliOperator())
			return err
		})
	cmd.Flags().StringVar(&reason, "reason", "", "why the request needs more time (sent to the controller; required)")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if strings.TrimSpace(reason) == "" {
			return usageError{errors.New("--reason is required: the controller is told why the due time moves")}
		}
		return run(cmd, args)
	}
	return cmd
}

// withDueWithin narrows a visibility query to open requests (running
// workflows: pending, in progress, or failed awaiting a retry) whose
// DsrDueTime is before now+within; within is a Go duration or whole days
// ("7d"). An empty within leaves the query as it is.
func withDueWithin(query, within string, now time.Time) (string, error) {
	if within == "" {
		return query, nil
	}
	d, err := parseDays(within)
	if err != nil || d <= 0 {
		return "", fmt.Errorf("--due-within %q: want a positive duration such as 7d or 36h", within)
	}
	return query + fmt.Sprintf(" AND DsrDueTime < '%s' AND ExecutionStatus = 'Running'", now.Add(d).UTC().Format(time.RFC3339)), nil
}

// parseDays reads "Nd" as N days, anything else as a Go duration.
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
