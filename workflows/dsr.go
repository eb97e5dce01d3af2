// Package workflows holds dsrflow's deterministic Temporal code: the DSR
// workflow (one per request), the Batch workflow (one per destination and
// regulation) and the MixpanelTask workflow (one per Mixpanel task).
// Every side effect is an activity from package activities.
package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/dsr"
)

// a is the nil activities value used to reference activity methods.
var a *activities.Activities

// DSR follows one data subject request from intake to its final status.
//
// A Temporal cancellation request (the Web UI's "Request Cancellation",
// `temporal workflow cancel`) is a cancel like the update: accepted while the
// request is cancellable (the workflow then ends Canceled, its ledger record
// and callback saying cancelled), refused and recorded once it was forwarded
// (the request goes on to its real outcome). For that the request's work runs
// on a context that the cancellation request does not cancel.
func DSR(ctx workflow.Context, in dsr.Request) error {
	version := workflow.GetVersion(ctx, changeLifecycle, workflow.DefaultVersion, lifecycleV1)
	requested := ctx
	if version >= lifecycleV1 {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	r := &requestRun{in: in, status: dsr.StatusPending, phase: dsr.PhaseWaiting, version: version}
	if err := r.registerHandlers(ctx); err != nil {
		return err
	}
	if version >= lifecycleV1 {
		workflow.Go(ctx, func(ctx workflow.Context) { r.onCancellationRequest(ctx, requested) })
	}
	r.showDetails(ctx)
	if err := workflow.ExecuteLocalActivity(withLedgerOptions(ctx), a.RecordRequest, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("recording the request: %w", err)
	}
	if len(in.CallbackURLs) > 0 {
		workflow.Go(ctx, r.deliverCallbacks)
	}
	var err error
	if in.EndedReason != "" {
		err = r.recordEnded(ctx)
	} else {
		r.queueCallback(dsr.StatusPending)
		err = r.run(ctx)
	}
	if err == nil && len(r.callbacks) > 0 {
		err = r.awaiting(ctx, "delivering status callbacks", dsr.NoteCallbacksPending)
	}
	// Every status change is reported before the workflow ends.
	if awaitErr := workflow.Await(ctx, func() bool { return len(r.callbacks) == 0 && workflow.AllHandlersFinished(ctx) }); awaitErr != nil && err == nil {
		err = awaitErr
	}
	if err == nil && r.waiting != "" {
		err = r.awaiting(ctx, "", "")
	}
	if err == nil && requested.Err() != nil && r.status == dsr.StatusCancelled {
		// Cancelled as Temporal asked: the execution ends Canceled, as the ledger says.
		return temporal.NewCanceledError()
	}
	return err
}

// recordEnded is a run the sweep started because the request's previous run
// ended without an outcome: it records the request failed with the reason
// and waits for the callback to go out; an operator's retry meanwhile goes
// on as the request.
func (r *requestRun) recordEnded(ctx workflow.Context) error {
	r.phase = dsr.PhaseAwaitingRetry
	if err := r.setStatus(ctx, dsr.StatusFailed, r.in.EndedReason); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return r.retry || len(r.callbacks) == 0 }); err != nil {
		return err
	}
	if !r.retry {
		r.phase = dsr.PhaseDone
		return nil
	}
	r.retry = false
	if err := r.setStatus(ctx, dsr.StatusPending, "retried by an operator"); err != nil {
		return err
	}
	return r.run(ctx)
}

// requestRun is the state of one DSR workflow.
type requestRun struct {
	in     dsr.Request
	status dsr.Status
	reason string
	phase  dsr.Phase
	// version is the workflow.GetVersion of changeLifecycle this run follows.
	version workflow.Version

	cancelled  bool
	cancelBusy bool
	retry      bool
	// extended is true once the due time was extended (allowed once).
	extended bool
	// candidates and chosen hold an ambiguous resolution and its answer.
	candidates []string
	chosen     string
	// retryBy and chosenBy name who retried or chose, for the ledger ("" when unknown).
	retryBy, chosenBy string

	dests []*destinationState
	// profiles are the profile ids the identities resolved to.
	profiles []string
	// callbacks holds status changes not yet delivered, oldest first;
	// callbackSeq numbers the changes queued so far.
	callbacks   []dsr.DeliverCallbacksInput
	callbackSeq int
	// resultsURL and resultsCount describe an access or portability result.
	resultsURL   string
	resultsCount int
	// waiting says what the workflow waits for once the outcome is final.
	waiting string
}

// destinationState is the request's progress at one destination.
type destinationState struct {
	plan       dsr.Plan
	enqueued   bool
	status     dsr.ForwardingStatus
	message    string
	taskIDs    []string
	taskStatus dsr.TaskStatus
	results    map[string]dsr.TaskResult
	// createdAt is when a retrieval task was created; pollInterval and
	// maxTaskAge are how it is polled.
	createdAt                time.Time
	pollInterval, maxTaskAge time.Duration
	// resultURL is a finished retrieval's export.
	resultURL string
}

// sent reports whether a Mixpanel task holds the request for this destination.
func (d *destinationState) sent() bool { return len(d.taskIDs) > 0 }

func (d *destinationState) done() bool {
	switch d.status {
	case dsr.ForwardingSkipped, dsr.ForwardingFailed:
		return true
	}
	if len(d.taskIDs) == 0 {
		return false
	}
	for _, id := range d.taskIDs {
		if _, ok := d.results[id]; !ok {
			return false
		}
	}
	return true
}

func (r *requestRun) run(ctx workflow.Context) error {
	if r.in.Type == dsr.TypeErasure {
		if err := r.waitingPeriod(ctx); err != nil {
			return err
		}
		if r.cancelled {
			return r.setStatus(ctx, dsr.StatusCancelled, "cancelled during the waiting period")
		}
		if r.in.ForwardAt.After(r.in.ReceivedTime) {
			// The intake started it as "pending (waiting period)".
			if err := r.noteStatus(ctx, ""); err != nil {
				return err
			}
		}
	}
	// Erasures resolve and join their batches in one activity; while it runs a
	// cancel waits for it and then takes the request out of the batches.
	erasure := r.in.Type == dsr.TypeErasure
	resolving := dsr.PhaseResolving
	if erasure {
		resolving = dsr.PhaseEnqueuing
	}
	r.phase = resolving
	var resolved dsr.ResolveIdentitiesResult
	for {
		resolved = dsr.ResolveIdentitiesResult{} // decoding into a used value would keep its old fields
		if err := workflow.ExecuteActivity(withResolveOptions(ctx), a.ResolveIdentities, dsr.ResolveIdentitiesInput{
			ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, Regulation: r.in.Regulation,
			Identities: r.in.Identities, Enqueue: erasure && !r.cancelled, ChosenProfile: r.chosen,
		}).Get(ctx, &resolved); err != nil {
			return r.fail(ctx, "identity resolution failed: "+errorMessage(err))
		}
		if !resolved.Hold || r.cancelled {
			break
		}
		// Several profiles match: never guess. Wait for `dsr resolve` (or the API).
		if err := r.awaitChoice(ctx, resolved); err != nil {
			return err
		}
		if r.cancelled {
			return r.setStatus(ctx, dsr.StatusCancelled, "cancelled while the identity was ambiguous")
		}
		r.phase = resolving
	}
	r.profiles = resolved.Profiles
	for _, p := range resolved.Plans {
		d := &destinationState{plan: p, status: dsr.ForwardingPending, results: map[string]dsr.TaskResult{}}
		if p.Skipped {
			d.status, d.message = dsr.ForwardingSkipped, p.Reason
		}
		d.enqueued = resolved.Enqueued && !p.Skipped
		r.dests = append(r.dests, d)
	}
	if r.cancelled && !resolved.Enqueued {
		return r.setStatus(ctx, dsr.StatusCancelled, "cancelled before forwarding")
	}
	if !erasure {
		return r.retrieve(ctx, resolved.Profiles)
	}
	for {
		if err := r.forward(ctx); err != nil {
			return err
		}
		if r.status != dsr.StatusFailed || !r.retryable() {
			return nil
		}
		// A failure an operator can fix (credentials, a revoked task): wait for `dsr retry`.
		if retried, err := r.awaitRetry(ctx); err != nil || !retried {
			return err
		}
	}
}

// awaitRetry keeps a failed request open for RetryWindow; on an operator's
// retry it puts the failed destinations back to pending and says true.
func (r *requestRun) awaitRetry(ctx workflow.Context) (bool, error) {
	r.phase = dsr.PhaseAwaitingRetry
	r.watchDeadline(ctx, needRetry, func() bool { return r.phase == dsr.PhaseAwaitingRetry && !r.retry })
	ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
		Timeout:      r.in.RetryWindow,
		TimerOptions: workflow.TimerOptions{Summary: "failed: waiting for an operator retry"},
	}, func() bool { return r.retry })
	if err != nil || !ok {
		return false, err
	}
	reason := "retried by an operator"
	if r.retryBy != "" {
		reason = "retried by " + r.retryBy
	}
	r.retry, r.retryBy = false, ""
	r.resetFailed()
	if err := r.setStatus(ctx, dsr.StatusPending, reason); err != nil {
		return false, err
	}
	return true, nil
}

// awaitChoice holds the request in pending until an operator chooses one of
// the candidate profiles (or cancels it).
func (r *requestRun) awaitChoice(ctx workflow.Context, resolved dsr.ResolveIdentitiesResult) error {
	r.phase, r.candidates, r.chosen = dsr.PhaseAmbiguous, resolved.Candidates, ""
	reason := fmt.Sprintf("ambiguous identity: %d profiles match (%s); choose one with dsr resolve", len(resolved.Candidates), strings.Join(resolved.Candidates, ", "))
	if err := r.setStatus(ctx, dsr.StatusPending, reason); err != nil {
		return err
	}
	r.watchDeadline(ctx, needChoice, func() bool { return r.phase == dsr.PhaseAmbiguous && r.chosen == "" && !r.cancelled })
	if err := r.noteStatus(ctx, dsr.NoteHeld); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return r.chosen != "" || r.cancelled }); err != nil {
		return err
	}
	r.candidates = nil
	// Who chose is recorded as a transition of its own (requests started
	// before this existed replay without it).
	if r.chosen != "" && workflow.GetVersion(ctx, versionRecordChoice, workflow.DefaultVersion, 1) == 1 {
		by := r.chosenBy
		if by == "" {
			by = "an operator"
		}
		// The transition sets DsrStatus back to the plain status too.
		return r.setStatus(ctx, dsr.StatusPending, "identity settled by "+by+": profile "+r.chosen)
	}
	return r.noteStatus(ctx, "")
}

// versionRecordChoice is the workflow.GetVersion change id of the
// transition that records who settled an ambiguous identity.
const versionRecordChoice = "record-resolve-choice"

// waitingPeriod holds an erasure until ForwardAt unless it is cancelled first.
func (r *requestRun) waitingPeriod(ctx workflow.Context) error {
	wait := r.in.ForwardAt.Sub(workflow.Now(ctx))
	if wait <= 0 {
		return nil
	}
	_, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
		Timeout:      wait,
		TimerOptions: workflow.TimerOptions{Summary: "erasure waiting period (cancellable)"},
	}, func() bool { return r.cancelled })
	return err
}

// forward enqueues the request in every destination's batch and follows it to a final status.
func (r *requestRun) forward(ctx workflow.Context) error {
	r.phase = dsr.PhaseEnqueuing
	for _, d := range r.dests {
		if d.status != dsr.ForwardingPending || d.enqueued {
			continue
		}
		if err := r.enqueue(ctx, d); err != nil {
			return r.fail(ctx, "could not join the batch: "+errorMessage(err))
		}
	}
	r.phase = dsr.PhaseQueued
	r.showDetails(ctx)
	for {
		if err := workflow.Await(ctx, func() bool {
			return !r.cancelBusy && (r.cancelled || r.allDone() || (r.status == dsr.StatusPending && r.anyForwarded()))
		}); err != nil {
			return err
		}
		if r.cancelled {
			return r.setStatus(ctx, dsr.StatusCancelled, "cancelled while queued")
		}
		if r.status == dsr.StatusPending && r.anyForwarded() {
			r.phase = dsr.PhaseForwarded
			if err := r.setStatus(ctx, dsr.StatusInProgress, "sent to Mixpanel"); err != nil {
				return err
			}
		}
		if r.allDone() {
			r.phase = dsr.PhaseDone
			if reason := r.failureReason(); reason != "" {
				return r.setStatus(ctx, dsr.StatusFailed, reason)
			}
			return r.completeErasure(ctx)
		}
	}
}

func (r *requestRun) enqueue(ctx workflow.Context, d *destinationState) error {
	err := workflow.ExecuteActivity(withShortActivityOptions(ctx, "join the "+r.in.Regulation+" batch of "+d.plan.Destination), a.Enqueue, dsr.EnqueueInput{
		Destination: d.plan.Destination,
		Regulation:  r.in.Regulation,
		Member:      dsr.Member{ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, DistinctIDs: d.plan.DistinctIDs},
	}).Get(ctx, nil)
	if err == nil {
		d.enqueued = true
	}
	return err
}

func (r *requestRun) allDone() bool {
	for _, d := range r.dests {
		if !d.done() {
			return false
		}
	}
	return true
}

func (r *requestRun) anyForwarded() bool {
	for _, d := range r.dests {
		if d.sent() {
			return true
		}
	}
	return false
}

func (r *requestRun) retryable() bool {
	for _, d := range r.dests {
		if d.status == dsr.ForwardingFailed {
			for _, id := range sortedKeys(d.results) {
				if d.results[id].Retryable {
					return true
				}
			}
		}
	}
	return false
}

// resetFailed puts failed destinations back to pending so forward sends them again.
func (r *requestRun) resetFailed() {
	for _, d := range r.dests {
		if d.status == dsr.ForwardingFailed {
			d.status, d.message, d.enqueued = dsr.ForwardingPending, "", false
			d.taskIDs, d.taskStatus, d.results = nil, "", map[string]dsr.TaskResult{}
		}
	}
}

func (r *requestRun) failureReason() string {
	var reasons []string
	for _, d := range r.dests {
		if d.status == dsr.ForwardingFailed {
			reasons = append(reasons, d.plan.Destination+": "+d.message)
		}
	}
	return strings.Join(reasons, "; ")
}

func (r *requestRun) completionReason() string {
	var sent, skipped []string
	for _, d := range r.dests {
		if d.status == dsr.ForwardingSkipped {
			skipped = append(skipped, d.plan.Destination)
		} else {
			sent = append(sent, d.plan.Destination)
		}
	}
	switch {
	case len(sent) == 0:
		return "nothing to forward: skipped " + strings.Join(skipped, ", ")
	case len(skipped) == 0:
		return "deleted by " + strings.Join(sent, ", ")
	default:
		return "deleted by " + strings.Join(sent, ", ") + "; skipped " + strings.Join(skipped, ", ")
	}
}

func (r *requestRun) destination(name string) *destinationState {
	for _, d := range r.dests {
		if d.plan.Destination == name {
			return d
		}
	}
	return nil
}

// fail ends the request as failed with a reason.
func (r *requestRun) fail(ctx workflow.Context, reason string) error {
	r.phase = dsr.PhaseDone
	return r.setStatus(ctx, dsr.StatusFailed, reason)
}

// versionEraseLocalCopy is the change after which an erasure's completion
// also erases dsrflow's own copy of the subject (CompleteErasure instead of
// RecordStatus). Histories recorded before it replay the old path.
const versionEraseLocalCopy = "erase-local-copy"

// completeErasure records a completed erasure. Since versionEraseLocalCopy
// the one local activity that records it first deletes the matched profiles
// from the profile store (leaving the suppression list) and removes results
// bundles of the subject; the recorded reason says how many rows went.
func (r *requestRun) completeErasure(ctx workflow.Context) error {
	if workflow.GetVersion(ctx, versionEraseLocalCopy, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return r.setStatus(ctx, dsr.StatusCompleted, r.completionReason())
	}
	return r.changeStatus(ctx, dsr.StatusCompleted, r.completionReason(), &dsr.CompleteErasureInput{
		Profiles: r.profiles, Identities: r.in.Identities,
	})
}

// setStatus records a status change in the ledger and the search attributes
// and queues its callback.
func (r *requestRun) setStatus(ctx workflow.Context, to dsr.Status, reason string) error {
	return r.changeStatus(ctx, to, reason, nil)
}

// changeStatus is setStatus; with erase, the ledger write is CompleteErasure,
// whose reason (with the count of rows erased) becomes the status reason.
func (r *requestRun) changeStatus(ctx workflow.Context, to dsr.Status, reason string, erase *dsr.CompleteErasureInput) error {
	if r.status == to && r.reason == reason {
		return nil
	}
	changed := r.status != to
	r.status, r.reason = to, reason
	change := dsr.RecordStatusInput{
		ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, To: to, Reason: reason, At: workflow.Now(ctx),
	}
	if erase == nil {
		if err := workflow.ExecuteLocalActivity(withLedgerOptions(ctx), a.RecordStatus, change).Get(ctx, nil); err != nil {
			return fmt.Errorf("recording status %s: %w", to, err)
		}
	} else {
		erase.Status = change
		var res dsr.CompleteErasureResult
		if err := workflow.ExecuteLocalActivity(withLedgerOptions(ctx), a.CompleteErasure, *erase).Get(ctx, &res); err != nil {
			return fmt.Errorf("recording status %s: %w", to, err)
		}
		r.reason = res.Reason
	}
	updates := []temporal.SearchAttributeUpdate{dsr.SearchStatus.ValueSet(string(to))}
	if tasks := r.taskIDs(); tasks != "" {
		updates = append(updates, dsr.SearchDestinationTask.ValueSet(tasks))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		return err
	}
	r.showDetails(ctx)
	if changed {
		r.queueCallback(to)
	}
	return nil
}

func (r *requestRun) taskIDs() string {
	var ids []string
	for _, d := range r.dests {
		for _, id := range d.taskIDs {
			ids = append(ids, d.plan.Destination+":"+id)
		}
	}
	return strings.Join(ids, ",")
}

func (r *requestRun) queueCallback(status dsr.Status) {
	if len(r.in.CallbackURLs) == 0 {
		return
	}
	// The sequence number, not the status, tells changes apart: after a
	// retry, pending and in_progress come again and are delivered again.
	// It is workflow state only (no command), so replay needs no version.
	r.callbackSeq++
	r.callbacks = append(r.callbacks, dsr.DeliverCallbacksInput{
		ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, Seq: r.callbackSeq, Status: status,
		URLs: r.in.CallbackURLs, APIVersion: r.in.APIVersion, ExpectedCompletionTime: r.in.ExpectedCompletionTime,
		ResultsURL: r.resultsURL, ResultsCount: r.resultsCount,
		StatusReason: r.reason, DueTime: r.in.DueTime,
	})
}

// deliverCallbacks sends queued status callbacks one after another, so each
// receiver sees a request's statuses in order.
func (r *requestRun) deliverCallbacks(ctx workflow.Context) {
	for {
		if err := workflow.Await(ctx, func() bool { return len(r.callbacks) > 0 }); err != nil {
			return
		}
		next := r.callbacks[0]
		// A callback that still fails after callbackRetryFor is recorded in the ledger
		// by the activity; the request itself goes on.
		_ = workflow.ExecuteActivity(withCallbackOptions(ctx, "callback: "+string(next.Status)), a.DeliverCallbacks, next).Get(ctx, nil)
		r.callbacks = r.callbacks[1:]
	}
}

// errorMessage returns the innermost application error message, without Temporal's wrapping.
func errorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out"
	}
	return err.Error()
}

// mergeSorted returns the sorted union of two id lists.
func mergeSorted(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range [][]string{a, b} {
		for _, id := range list {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}
