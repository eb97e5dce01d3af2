package workflows

import (
	"github.com/dsrflow/dsrflow/internal/dsr"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The DSR workflow's message handlers: the status query, the cancel, retry
// and resolve updates (with their validators), the Temporal cancellation
// request, and the signals from batches, task workflows and the sweep.
// Their names are in internal/dsr and never change.

// registerHandlers installs the status query, the cancel and retry updates and
// their signal twins, and the receivers of the batch's and task's signals.
func (r *requestRun) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, dsr.QueryStatus, r.view); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, dsr.UpdateCancel,
		func(ctx workflow.Context) (dsr.CancelResult, error) { return r.cancel(ctx) },
		workflow.UpdateHandlerOptions{Validator: func() error { return r.validateCancel() }},
	); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, dsr.UpdateRetry,
		func(ctx workflow.Context, rr dsr.RetryRequest) error { r.retry, r.retryBy = true, rr.By; return nil },
		workflow.UpdateHandlerOptions{Validator: func(dsr.RetryRequest) error { return r.validateRetry() }},
	); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, dsr.UpdateResolve,
		func(ctx workflow.Context, c dsr.ResolveChoice) error {
			r.chosen, r.chosenBy = c.ProfileID, c.By
			return nil
		},
		workflow.UpdateHandlerOptions{Validator: func(c dsr.ResolveChoice) error { return r.validateChoice(c) }},
	); err != nil {
		return err
	}
	if err := r.registerExtend(ctx); err != nil {
		return err
	}
	workflow.Go(ctx, r.receiveSignals)
	return nil
}

func (r *requestRun) view() (dsr.StatusView, error) {
	v := dsr.StatusView{Status: r.status, Reason: r.reason, Phase: r.phase.String(), Candidates: r.candidates}
	for _, d := range r.dests {
		v.Destinations = append(v.Destinations, dsr.DestinationView{
			Destination: d.plan.Destination, Status: d.status, StatusMessage: d.message,
			TaskIDs: d.taskIDs, TaskStatus: d.taskStatus,
		})
	}
	return v, nil
}

func (r *requestRun) validateCancel() error {
	if r.cancelled {
		return nil
	}
	if r.phase.Cancellable() && !r.anyForwarded() {
		return nil
	}
	return temporal.NewApplicationError(dsr.ErrTooLate, "TooLate")
}

// cancel takes the request out of every batch that has not sent it; if any
// batch already sent it, the request goes on everywhere and cancel is refused.
func (r *requestRun) cancel(ctx workflow.Context) (dsr.CancelResult, error) {
	if err := workflow.Await(ctx, func() bool { return !r.cancelBusy && r.phase != dsr.PhaseEnqueuing }); err != nil {
		return dsr.CancelResult{}, err
	}
	if r.cancelled {
		return dsr.CancelResult{Cancelled: true}, nil
	}
	if err := r.validateCancel(); err != nil {
		return dsr.CancelResult{}, err
	}
	if r.phase != dsr.PhaseQueued {
		r.cancelled = true
		return dsr.CancelResult{Cancelled: true}, nil
	}
	r.cancelBusy = true
	defer func() { r.cancelBusy = false }()
	var removed []*destinationState
	tooLate := false
	for _, d := range r.dests {
		if !d.enqueued || d.status != dsr.ForwardingPending {
			continue
		}
		var res dsr.RemoveResult
		if err := workflow.ExecuteActivity(withShortActivityOptions(ctx, "leave the batch of "+d.plan.Destination), a.RemoveFromBatch, dsr.RemoveFromBatchInput{
			Destination: d.plan.Destination, Regulation: r.in.Regulation, ControllerID: r.in.ControllerID, RequestID: r.in.RequestID,
		}).Get(ctx, &res); err != nil || !res.Removed {
			tooLate = true
			break
		}
		removed = append(removed, d)
	}
	if !tooLate {
		r.cancelled = true
		return dsr.CancelResult{Cancelled: true}, nil
	}
	// Put back what was taken out so every destination still receives the request.
	for _, d := range removed {
		d.enqueued = false
		if err := r.enqueue(ctx, d); err != nil {
			return dsr.CancelResult{}, err
		}
	}
	return dsr.CancelResult{}, temporal.NewApplicationError(dsr.ErrTooLate, "TooLate")
}

// recordRefusedCancel writes a refused cancel signal or cancellation request
// to the ledger's transitions; the status does not change.
func (r *requestRun) recordRefusedCancel(ctx workflow.Context, what string, cause error) {
	_ = workflow.ExecuteLocalActivity(withLedgerOptions(ctx), a.RecordStatus, dsr.RecordStatusInput{
		ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, To: r.status,
		Reason: what + errorMessage(cause), At: workflow.Now(ctx),
	}).Get(ctx, nil)
}

// onCancellationRequest waits for a Temporal cancellation request and
// handles it as the cancel signal: cancel while cancellable, else record the refusal.
func (r *requestRun) onCancellationRequest(ctx, requested workflow.Context) {
	requested.Done().Receive(ctx, nil)
	const what = "Temporal cancellation request refused: "
	if err := r.validateCancel(); err != nil {
		r.recordRefusedCancel(ctx, what, err)
		return
	}
	if _, err := r.cancel(ctx); err != nil {
		r.recordRefusedCancel(ctx, what, err)
	}
}

func (r *requestRun) validateRetry() error {
	if r.phase != dsr.PhaseAwaitingRetry {
		return temporal.NewApplicationError("only a failed request awaiting retry can be retried", "NotRetryable")
	}
	return nil
}

func (r *requestRun) validateChoice(c dsr.ResolveChoice) error {
	if r.phase != dsr.PhaseAmbiguous {
		return temporal.NewApplicationError("the request is not waiting for an identity choice", "NotAmbiguous")
	}
	for _, p := range r.candidates {
		if p == c.ProfileID {
			return nil
		}
	}
	return temporal.NewApplicationError("profile "+c.ProfileID+" is not one of the candidates", "NotACandidate")
}

// receiveSignals handles every signal in arrival order, in one coroutine
// (a worker caches thousands of open requests: each coroutine costs memory).
// Retry and cancel signals come from operators (the Web UI) with or without a
// payload, so theirs is ignored.
func (r *requestRun) receiveSignals(ctx workflow.Context) {
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, dsr.SignalForwarded), func(c workflow.ReceiveChannel, _ bool) {
		var f dsr.Forwarded
		c.Receive(ctx, &f)
		r.onForwarded(f)
		r.showDetails(ctx)
	})
	sel.AddReceive(workflow.GetSignalChannel(ctx, dsr.SignalTaskResult), func(c workflow.ReceiveChannel, _ bool) {
		var res dsr.TaskResult
		c.Receive(ctx, &res)
		r.onTaskResult(res)
		r.showDetails(ctx)
	})
	sel.AddReceive(workflow.GetSignalChannel(ctx, dsr.SignalRequeue), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		workflow.Go(ctx, r.requeue)
	})
	sel.AddReceive(workflow.GetSignalChannel(ctx, dsr.SignalRetry), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		if r.validateRetry() == nil {
			r.retry = true
		}
	})
	sel.AddReceive(workflow.GetSignalChannel(ctx, dsr.SignalCancel), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		workflow.Go(ctx, func(ctx workflow.Context) {
			if err := r.validateCancel(); err != nil {
				r.recordRefusedCancel(ctx, "cancel signal refused: ", err)
				return
			}
			if _, err := r.cancel(ctx); err != nil {
				r.recordRefusedCancel(ctx, "cancel signal refused: ", err)
			}
		})
	})
	for {
		sel.Select(ctx)
	}
}

// requeue joins the batches again when the request is still queued and not
// being cancelled (the sweep's nudge after a lost batch signal).
func (r *requestRun) requeue(ctx workflow.Context) {
	if r.phase != dsr.PhaseQueued || r.cancelBusy || r.cancelled {
		return
	}
	for _, d := range r.dests {
		if d.enqueued && d.status == dsr.ForwardingPending && !d.sent() {
			_ = r.enqueue(ctx, d) // retried by its activity options; a failure leaves the next sweep to try
		}
	}
}

// onForwarded records that the destination's Mixpanel task(s) exist.
func (r *requestRun) onForwarded(f dsr.Forwarded) {
	d := r.destination(f.Destination)
	if d == nil || d.status != dsr.ForwardingPending {
		return
	}
	d.taskIDs = mergeSorted(d.taskIDs, f.TaskIDs)
	d.message = "Mixpanel task created"
}

// onTaskResult records how one of the destination's tasks ended.
func (r *requestRun) onTaskResult(res dsr.TaskResult) {
	d := r.destination(res.Destination)
	if d == nil || d.status != dsr.ForwardingPending {
		return
	}
	if res.TaskID == "" {
		// No task could be created for the request.
		d.status, d.message = dsr.ForwardingFailed, res.Reason
		d.results["-"] = res
		return
	}
	d.taskIDs = mergeSorted(d.taskIDs, []string{res.TaskID})
	d.results[res.TaskID] = res
	if res.Superseded {
		// The task ended, but the ids were sent again: wait for the new tasks too.
		d.taskIDs = mergeSorted(d.taskIDs, res.NextTaskIDs)
		d.message = res.Reason
		if d.done() {
			d.status, d.message = dsr.ForwardingSent, "Mixpanel task ended "+string(d.taskStatus)+" after resubmission"
		}
		return
	}
	d.taskStatus = res.TaskStatus
	if !res.Succeeded {
		d.status, d.message = dsr.ForwardingFailed, res.Reason
		return
	}
	if d.done() {
		d.status, d.message = dsr.ForwardingSent, "Mixpanel task ended "+string(res.TaskStatus)
	}
}
