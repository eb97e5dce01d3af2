package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// retrieve answers an access or portability request: one Mixpanel retrieval
// task per destination (not batched: an export mixes every id in it), polled
// until it ends, then the exports and the live profiles become the subject's
// results bundle. The link works for ResultsTTL; then the bundle is deleted
// and the link answers 410 Gone.
func (r *requestRun) retrieve(ctx workflow.Context, profiles []string) error {
	for {
		r.phase = dsr.PhaseRetrieving
		if err := r.retrieveExports(ctx); err != nil {
			return err
		}
		reason := r.failureReason()
		if reason == "" {
			break
		}
		if r.version < lifecycleV1 || !r.retryable() {
			return r.fail(ctx, reason)
		}
		// A failure an operator can fix (credentials, a task revoked twice): wait for `dsr retry`.
		if err := r.setStatus(ctx, dsr.StatusFailed, reason); err != nil {
			return err
		}
		if retried, err := r.awaitRetry(ctx); err != nil || !retried {
			return err
		}
	}
	var exports []dsr.Export
	for _, d := range r.dests {
		if d.status == dsr.ForwardingSent {
			exports = append(exports, dsr.Export{Destination: d.plan.Destination, ResultURL: d.resultURL, TaskID: d.taskIDs[len(d.taskIDs)-1]})
		}
	}
	var info dsr.BuildResultsResult
	if err := workflow.ExecuteActivity(withBuildOptions(ctx), a.BuildResults, dsr.BuildResultsInput{
		ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, Profiles: profiles, Exports: exports,
		Identities: r.in.Identities,
	}).Get(ctx, &info); err != nil {
		return r.fail(ctx, "building the results failed: "+errorMessage(err))
	}
	r.resultsURL, r.resultsCount = info.URL, info.Count
	reason := "results ready"
	if !info.Matched {
		reason = "no records matched the subject's identities"
	}
	r.phase = dsr.PhaseDone
	if err := r.setStatus(ctx, dsr.StatusCompleted, reason); err != nil {
		return err
	}
	if err := r.awaiting(ctx, "results available until "+stamp(info.ExpiresAt), dsr.NoteResultsAvailable); err != nil {
		return err
	}
	if err := workflow.NewTimerWithOptions(ctx, info.ExpiresAt.Sub(workflow.Now(ctx)),
		workflow.TimerOptions{Summary: "results link expires"}).Get(ctx, nil); err != nil {
		return err
	}
	return workflow.ExecuteActivity(withShortActivityOptions(ctx, "delete the expired results"), a.ExpireResults, dsr.ExpireResultsInput{
		ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, Token: info.Token,
	}).Get(ctx, nil)
}

// retrieveExports creates a retrieval task at every pending destination and
// polls each to its end. A task revoked in Mixpanel is created again once
// (runs of earlier releases: never).
func (r *requestRun) retrieveExports(ctx workflow.Context) error {
	var sent []*destinationState
	for _, d := range r.dests {
		if d.status != dsr.ForwardingPending {
			continue
		}
		if r.createRetrieval(ctx, d) {
			sent = append(sent, d)
		}
	}
	if len(sent) > 0 {
		if err := r.setStatus(ctx, dsr.StatusInProgress, "retrieving data from Mixpanel"); err != nil {
			return err
		}
	}
	for _, d := range sent {
		for resubmitted := false; ; resubmitted = true {
			task := d.taskIDs[len(d.taskIDs)-1]
			res := pollTask(ctx, dsr.PollTaskInput{Destination: d.plan.Destination, TaskID: task, Kind: dsr.KindRetrieval, CreatedAt: d.createdAt},
				d.pollInterval, d.maxTaskAge)
			d.results[task] = res
			d.taskStatus = res.TaskStatus
			if res.Succeeded {
				d.status, d.message, d.resultURL = dsr.ForwardingSent, "Mixpanel export ready", res.ResultURL
				break
			}
			if r.version >= lifecycleV1 && res.TaskStatus == dsr.TaskRevoked && !resubmitted {
				// Someone cancelled the task in Mixpanel: ask once more.
				if r.createRetrieval(ctx, d) {
					continue
				}
				break
			}
			d.status, d.message = dsr.ForwardingFailed, res.Reason
			break
		}
	}
	return nil
}

// createRetrieval creates one retrieval task for a destination and says
// whether it exists; if not, the destination failed with the reason.
func (r *requestRun) createRetrieval(ctx workflow.Context, d *destinationState) bool {
	var created dsr.CreateTaskResult
	err := workflow.ExecuteActivity(withMixpanelOptions(ctx, d.plan.Destination, "create a data retrieval task", 72*time.Hour),
		a.CreateRetrievalTask, dsr.CreateRetrievalTaskInput{
			Destination: d.plan.Destination, Regulation: r.in.Regulation,
			DisclosureType: r.in.DisclosureType, DistinctIDs: d.plan.DistinctIDs,
		}).Get(ctx, &created)
	if err != nil {
		d.status, d.message = dsr.ForwardingFailed, "creating the Mixpanel retrieval task failed: "+errorMessage(err)
		if r.version >= lifecycleV1 {
			d.results["-"] = dsr.TaskResult{Destination: d.plan.Destination, Reason: d.message, Retryable: !isErrorType(err, dsr.ErrTypeBadRequest)}
		}
		return false
	}
	d.taskIDs, d.message = append(d.taskIDs, created.TaskID), "Mixpanel retrieval task created"
	d.createdAt = created.CreatedAt
	// The worker's polling settings; a request started by an earlier
	// release carries its own, and its recorded result has none.
	d.pollInterval, d.maxTaskAge = created.PollInterval, created.MaxTaskAge
	if d.pollInterval == 0 {
		d.pollInterval, d.maxTaskAge = r.in.PollInterval, r.in.MaxTaskAge
	}
	return true
}
