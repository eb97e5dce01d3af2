package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// Retention deletes ledger records past DSR_RECORD_RETENTION, then nudges
// requests stuck in a batch (a safety net: none should be), then records as
// failed every open request whose workflow was terminated or ended without
// an outcome (ReconcileEnded). A Temporal Schedule created by the worker
// runs it every hour. (Results bundles expire in
// their own request's workflow, after DSR_RESULTS_TTL.)
func Retention(ctx workflow.Context) (int64, error) {
	var purged int64
	if err := workflow.ExecuteActivity(withSweepOptions(ctx, "purge expired records", 30*time.Minute), a.PurgeExpired).Get(ctx, &purged); err != nil {
		return purged, err
	}
	var nudged int
	err := workflow.ExecuteActivity(withSweepOptions(ctx, "nudge requests stuck in a batch", 10*time.Minute), a.RequeueStale).Get(ctx, &nudged)
	if err != nil || workflow.GetVersion(ctx, changeLifecycle, workflow.DefaultVersion, lifecycleV1) < lifecycleV1 {
		return purged, err
	}
	var reconciled int
	err = workflow.ExecuteActivity(withSweepOptions(ctx, "record requests whose workflow ended as failed", 10*time.Minute), a.ReconcileEnded).Get(ctx, &reconciled)
	return purged, err
}
