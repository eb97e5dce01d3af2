package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (c *cli) extendCommand() *cobra.Command {
	var controller, reason string
	cmd := &cobra.Command{
		Use:   "extend ID --reason TEXT",
		Short: "Extend a request's statutory due time once (GDPR +2 months, CCPA +45 days), telling the controller why",
		Long: `Extend a request's statutory due time once, to the regulation's limit: GDPR
Art. 12(3) two further months, CCPA 45 further days. The reason is recorded in
the ledger and sent to the controller in a callback with the new
expected_completion_time. Refused a second time or once the request is final.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError{errors.New("--reason is required: the controller is told why the due time moves")}
			}
			key, err := c.key(controller, args[0])
			if err != nil {
				return err
			}
			svc, err := c.service(cmd.Context())
			if err != nil {
				return err
			}
			resp, oerr := svc.Extend(cmd.Context(), key, reason, cliOperator())
			if oerr != nil {
				return describe(oerr)
			}
			fmt.Fprintf(c.stdout, "extended %s: due %s\n", args[0], resp.ExpectedCompletionTime.UTC().Format(time.RFC3339))
			return nil
		},
	}
	c.controllerFlag(cmd, &controller)
	cmd.Flags().StringVar(&reason, "reason", "", "why the request needs more time (sent to the controller; required)")
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
