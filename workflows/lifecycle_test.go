package workflows_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/workflows"
)

// runUntilEnd executes the DSR workflow and returns its error (nil or the
// cancellation), failing the test on any other ending.
func (h *dsrHarness) runUntilEnd() error {
	h.t.Helper()
	h.env.ExecuteWorkflow(workflows.DSR, h.in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	err := h.env.GetWorkflowError()
	if err != nil && !temporal.IsCanceledError(err) {
		h.t.Fatalf("workflow failed: %v", err)
	}
	return err
}

func TestTemporalCancellationInTheWaitingPeriodCancels(t *testing.T) {
	h := newDSRHarness(t, false)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 24*time.Hour)
	start := h.env.Now()
	err := h.runUntilEnd()
	if !temporal.IsCanceledError(err) {
		t.Errorf("workflow ended with %v, want Canceled (as the ledger says)", err)
	}
	if got := h.env.Now().Sub(start); got > 25*time.Hour {
		t.Errorf("ended %v after start, want soon after the cancellation request at 24h", got)
	}
	if h.enqueues != 0 {
		t.Errorf("a cancelled request was enqueued %d times", h.enqueues)
	}
	h.assertStatuses(dsr.StatusCancelled)
}

func TestTemporalCancellationWhileQueuedLeavesTheBatch(t *testing.T) {
	h := newDSRHarness(t, true)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 10*time.Minute)
	if err := h.runUntilEnd(); !temporal.IsCanceledError(err) {
		t.Errorf("workflow ended with %v, want Canceled", err)
	}
	if !h.removed {
		t.Error("the request was not taken out of its batch")
	}
	h.assertStatuses(dsr.StatusCancelled)
}

func TestTemporalCancellationAfterForwardingIsRefusedAndRecorded(t *testing.T) {
	h := newDSRHarness(t, true)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(dsr.SignalForwarded, dsr.Forwarded{Destination: "mixpanel", TaskIDs: []string{"task-1"}})
	}, time.Minute)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 30*time.Minute)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(dsr.SignalTaskResult, dsr.TaskResult{Destination: "mixpanel", TaskID: "task-1", TaskStatus: "SUCCESS", Succeeded: true})
	}, 5*time.Hour)
	if err := h.runUntilEnd(); err != nil {
		t.Fatalf("workflow ended with %v, want completed: the request goes on to its real outcome", err)
	}
	if h.removed {
		t.Error("asked the batch to drop a forwarded request")
	}
	want := []dsr.Status{dsr.StatusInProgress, dsr.StatusInProgress, dsr.StatusCompleted}
	if !slices.Equal(h.statuses, want) {
		t.Fatalf("ledger statuses = %v, want %v (the refusal recorded as a transition)", h.statuses, want)
	}
	if !strings.Contains(h.reasons[1], "Temporal cancellation request refused") || !strings.Contains(h.reasons[1], "too late") {
		t.Errorf("refusal recorded as %q", h.reasons[1])
	}
	if !slices.Equal(h.callbacks, []dsr.Status{dsr.StatusPending, dsr.StatusInProgress, dsr.StatusCompleted}) {
		t.Errorf("callbacks = %v, want no callback for the refusal", h.callbacks)
	}
}

// TestAccessRequestRevokedIsResubmittedOnceThenRetried: a retrieval task
// revoked in Mixpanel is created once more; revoked again, the request fails
// and waits for an operator, whose retry completes it.
func TestAccessRequestRevokedIsResubmittedOnceThenRetried(t *testing.T) {
	h := newDSRHarness(t, true)
	h.in.Type = dsr.TypeAccess
	var creates []time.Time
	outcome := map[string]string{"r-1": "REVOKED", "r-2": "REVOKED", "r-3": "SUCCESS"}
	h.env.OnActivity(a.CreateRetrievalTask, mock.Anything, mock.Anything).Return(func(_ context.Context, _ dsr.CreateRetrievalTaskInput) (dsr.CreateTaskResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		creates = append(creates, h.env.Now())
		return dsr.CreateTaskResult{TaskID: "r-" + string(rune('0'+len(creates))), CreatedAt: h.env.Now(), PollInterval: time.Minute, MaxTaskAge: 24 * time.Hour}, nil
	})
	h.env.OnActivity(a.PollTask, mock.Anything, mock.Anything).Return(func(_ context.Context, ref dsr.PollTaskInput) (dsr.PollTaskResult, error) {
		return dsr.PollTaskResult{Status: dsr.TaskStatus(outcome[ref.TaskID]), ResultURL: "https://mixpanel.example/" + ref.TaskID + ".zip"}, nil
	})
	var built dsr.BuildResultsInput
	h.env.OnActivity(a.BuildResults, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.BuildResultsInput) (dsr.BuildResultsResult, error) {
		built = in
		return dsr.BuildResultsResult{Token: "tok", URL: "https://dsr.example/v1/results/tok", Count: 1, Matched: true, ExpiresAt: h.env.Now().Add(time.Hour)}, nil
	})
	h.env.OnActivity(a.ExpireResults, mock.Anything, mock.Anything).Return(nil)
	var awaiting dsr.StatusView
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(dsr.QueryStatus)
		if err == nil {
			_ = v.Get(&awaiting)
		}
		h.env.UpdateWorkflow(dsr.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("retry rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		})
	}, 24*time.Hour)
	h.run()
	if len(creates) != 3 {
		t.Fatalf("%d retrieval tasks created, want 3 (the first, one resubmission, one after the retry)", len(creates))
	}
	if got := creates[2].Sub(creates[0]); got < 24*time.Hour {
		t.Errorf("third task created %v after the first, want after the operator's retry", got)
	}
	if awaiting.Status != dsr.StatusFailed || awaiting.Phase != "failed, awaiting retry" {
		t.Errorf("before the retry: %+v, want failed, awaiting retry", awaiting)
	}
	if len(built.Exports) != 1 || !strings.Contains(built.Exports[0].ResultURL, "r-3") {
		t.Errorf("built from %+v, want the export of the retried task", built.Exports)
	}
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusFailed, dsr.StatusPending, dsr.StatusInProgress, dsr.StatusCompleted)
}

// TestEndedRunRecordsTheFailure: the run the sweep starts for a request whose
// workflow was terminated records failed (ledger, callback) and ends.
func TestEndedRunRecordsTheFailure(t *testing.T) {
	h := newDSRHarness(t, true)
	h.in.EndedReason = dsr.ReasonTerminated
	h.run()
	if !slices.Equal(h.statuses, []dsr.Status{dsr.StatusFailed}) || h.reasons[0] != dsr.ReasonTerminated {
		t.Errorf("ledger %v %q, want failed with the reason", h.statuses, h.reasons)
	}
	if !slices.Equal(h.callbacks, []dsr.Status{dsr.StatusFailed}) {
		t.Errorf("callbacks %v, want only failed", h.callbacks)
	}
	if h.enqueues != 0 {
		t.Error("the recording run forwarded the request")
	}
}

// TestEndedRunContinuesOnRetry: a retry while the recording run still
// delivers its callback continues it as the request.
func TestEndedRunContinuesOnRetry(t *testing.T) {
	h := newDSRHarness(t, true)
	h.in.EndedReason = dsr.ReasonTerminated
	start := h.env.Now()
	h.deliver = func(dsr.DeliverCallbacksInput) error {
		if h.env.Now().Sub(start) < 30*time.Minute {
			return errors.New("receiver down")
		}
		return nil
	}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(dsr.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("retry rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		})
	}, 10*time.Minute)
	h.taskEnds(time.Hour, "SUCCESS")
	h.run()
	want := []dsr.Status{dsr.StatusFailed, dsr.StatusPending, dsr.StatusInProgress, dsr.StatusCompleted}
	if !slices.Equal(h.statuses, want) {
		t.Errorf("ledger %v, want %v", h.statuses, want)
	}
	if !slices.Equal(h.callbacks, want) {
		t.Errorf("callbacks %v, want %v", h.callbacks, want)
	}
}
