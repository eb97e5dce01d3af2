package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Retention deletes ledger records past DSR_RECORD_RETENTION. A Temporal
// Schedule created by the worker runs it daily. (Results bundles expire in
// their own request's workflow, after DSR_RESULTS_TTL.)
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
