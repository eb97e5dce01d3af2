package main

import (
	"context"
	"errors"
	"strings"

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
