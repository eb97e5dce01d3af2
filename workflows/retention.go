package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Retention deletes ledger records (and expired results) past their
// retention. A Temporal Schedule created by the worker runs it daily.
func Retention(ctx workflow.Context) (int64, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             "purge expired records",
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	var purged int64
	err := workflow.ExecuteActivity(ctx, a.PurgeExpired).Get(ctx, &purged)
	return purged, err
}
