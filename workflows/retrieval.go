package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/dsr"
)

// retrieve answers an access or portability request: one Mixpanel retrieval
// task per destination (not batched: an export mixes every id in it), polled
// until it ends, then the exports and the live profiles become the subject's
// results bundle. The link works for ResultsTTL; then the bundle is deleted
// and the link answers 410 Gone.
func (r *requestRun) retrieve(ctx workflow.Context, profiles []string) error {
	r.phase = phaseRetrieving
	var sent []*destinationState
	for _, d := range r.dests {
		if d.status != dsr.ForwardingPending {
			continue
		}
		var created activities.CreateTaskResult
		err := workflow.ExecuteActivity(withMixpanelOptions(ctx, d.plan.Destination, "create a data retrieval task", 72*time.Hour),
			a.CreateRetrievalTask, activities.CreateRetrievalInput{
				Destination: d.plan.Destination, Regulation: r.in.Regulation,
				DisclosureType: r.in.DisclosureType, DistinctIDs: d.plan.DistinctIDs,
			}).Get(ctx, &created)
		if err != nil {
			d.status, d.message = dsr.ForwardingFailed, "creating the Mixpanel retrieval task failed: "+errorMessage(err)
			continue
		}
		d.taskIDs, d.message = []string{created.TaskID}, "Mixpanel retrieval task created"
		d.createdAt = created.CreatedAt
		sent = append(sent, d)
	}
	if len(sent) > 0 {
		if err := r.setStatus(ctx, dsr.StatusInProgress, "retrieving data from Mixpanel"); err != nil {
			return err
		}
	}
	var exports []activities.Export
	for _, d := range sent {
		res := pollTask(ctx, activities.TaskRef{Destination: d.plan.Destination, TaskID: d.taskIDs[0], Kind: activities.KindRetrieval, CreatedAt: d.createdAt},
			r.in.PollInterval, r.in.MaxTaskAge)
		d.results[d.taskIDs[0]] = res
		d.taskStatus = res.TaskStatus
		if !res.Succeeded {
			d.status, d.message = dsr.ForwardingFailed, res.Reason
			continue
		}
		d.status, d.message = dsr.ForwardingSent, "Mixpanel export ready"
		exports = append(exports, activities.Export{Destination: d.plan.Destination, ResultURL: res.ResultURL, TaskID: d.taskIDs[0]})
	}
	if reason := r.failureReason(); reason != "" {
		return r.fail(ctx, reason)
	}
	var info activities.ResultsInfo
	if err := workflow.ExecuteActivity(withBuildOptions(ctx), a.BuildResults, activities.BuildResultsInput{
		ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, Profiles: profiles, Exports: exports,
	}).Get(ctx, &info); err != nil {
		return r.fail(ctx, "building the results failed: "+errorMessage(err))
	}
	r.resultsURL, r.resultsCount = info.URL, info.Count
	reason := "results ready"
	if !info.Matched {
		reason = "no records matched the subject's identities"
	}
	r.phase = phaseDone
	if err := r.setStatus(ctx, dsr.StatusCompleted, reason); err != nil {
		return err
	}
	if err := r.awaiting(ctx, "results available until "+stamp(info.ExpiresAt), waitingResults); err != nil {
		return err
	}
	if err := workflow.NewTimerWithOptions(ctx, info.ExpiresAt.Sub(workflow.Now(ctx)),
		workflow.TimerOptions{Summary: "results link expires"}).Get(ctx, nil); err != nil {
		return err
	}
	return workflow.ExecuteActivity(withShortActivityOptions(ctx, "delete the expired results"), a.ExpireResults, activities.ExpireInput{
		ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, Token: info.Token,
	}).Get(ctx, nil)
}

func withBuildOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                "build the results bundle",
		StartToCloseTimeout:    2 * time.Hour,
		HeartbeatTimeout:       time.Minute,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeResultsUnreadable, activities.ErrTypeBadRequest},
		},
	})
}
