package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/workflows"
)

var a *activities.Activities

const waitingPeriod = 7 * 24 * time.Hour

// dsrHarness runs the DSR workflow in the time-skipping test environment with
// every activity mocked, and records what the workflow did.
type dsrHarness struct {
	mu         sync.Mutex // mocked activities run concurrently
	t          *testing.T
	env        *testsuite.TestWorkflowEnvironment
	in         dsr.Request
	statuses   []dsr.Status
	reasons    []string
	callbacks  []dsr.Status
	enqueuedAt time.Time
	removed    bool
	enqueues   int
	// keepQueued makes the batch answer "too late" to a remove.
	keepQueued bool
	plans      []dsr.Plan
	// deliver, when set, decides each callback attempt (nil: every attempt succeeds).
	deliver func(dsr.DeliverCallbacksInput) error
	// resolve, when set, answers ResolveIdentities instead of plans.
	resolve func(dsr.ResolveIdentitiesInput) (dsr.ResolveIdentitiesResult, error)
	// erasures are the CompleteErasure calls.
	erasures []dsr.CompleteErasureInput
}

func newDSRHarness(t *testing.T, skip bool) *dsrHarness {
	return newDSRHarnessIn(t, &testsuite.WorkflowTestSuite{}, skip)
}

// newDSRHarnessIn is newDSRHarness in a suite the test configured (its logger, say).
func newDSRHarnessIn(t *testing.T, s *testsuite.WorkflowTestSuite, skip bool) *dsrHarness {
	env := s.NewTestWorkflowEnvironment()
	now := env.Now().UTC()
	in := dsr.Request{
		ControllerID: "acme", RequestID: "9f1c2d3e-4b5a-4c6d-8e7f-001122334455",
		Type: dsr.TypeErasure, Regulation: dsr.RegulationGDPR,
		Identities:   []dsr.Identity{{Type: "controller_customer_id", Format: "raw", Value: "cust-1"}},
		CallbackURLs: []string{"https://controller.example/cb"},
		ReceivedTime: now, ForwardAt: now.Add(waitingPeriod), RetryWindow: 30 * 24 * time.Hour,
	}
	if skip {
		in.ForwardAt = now
	}
	h := &dsrHarness{t: t, env: env, in: in, plans: []dsr.Plan{{Destination: "mixpanel", DistinctIDs: []string{"cust-1"}}}}
	env.OnActivity(a.RecordRequest, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(a.RecordStatus, mock.Anything, mock.Anything).Return(func(_ context.Context, c dsr.RecordStatusInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.statuses = append(h.statuses, c.To)
		h.reasons = append(h.reasons, c.Reason)
		return nil
	})
	env.OnActivity(a.CompleteErasure, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.CompleteErasureInput) (dsr.CompleteErasureResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.statuses = append(h.statuses, in.Status.To)
		h.reasons = append(h.reasons, in.Status.Reason)
		h.erasures = append(h.erasures, in)
		return dsr.CompleteErasureResult{Reason: activities.LocalCopyErasedReason(in.Status.Reason, 3), RowsRemoved: 3}, nil
	})
	env.OnActivity(a.DeliverCallbacks, mock.Anything, mock.Anything).Return(func(_ context.Context, c dsr.DeliverCallbacksInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.deliver != nil {
			if err := h.deliver(c); err != nil {
				return err
			}
		}
		h.callbacks = append(h.callbacks, c.Status)
		return nil
	})
	env.OnActivity(a.ResolveIdentities, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.ResolveIdentitiesInput) (dsr.ResolveIdentitiesResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.resolve != nil {
			return h.resolve(in)
		}
		res := dsr.ResolveIdentitiesResult{Plans: h.plans}
		if in.Enqueue {
			h.enqueuedAt = env.Now()
			for _, p := range h.plans {
				if !p.Skipped {
					h.enqueues++
				}
			}
			res.Enqueued = true
		}
		return res, nil
	})
	env.OnActivity(a.Enqueue, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.EnqueueInput) error {
		h.enqueuedAt = env.Now()
		h.enqueues++
		return nil
	})
	env.OnActivity(a.RemoveFromBatch, mock.Anything, mock.Anything).Return(func(_ context.Context, _ dsr.RemoveFromBatchInput) (dsr.RemoveResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.keepQueued {
			return dsr.RemoveResult{Removed: false}, nil
		}
		h.removed = true
		return dsr.RemoveResult{Removed: true}, nil
	})
	return h
}

// taskEnds sends the signals a MixpanelTask workflow sends, at the given time after start.
func (h *dsrHarness) taskEnds(after time.Duration, status string) {
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(dsr.SignalForwarded, dsr.Forwarded{Destination: "mixpanel", TaskIDs: []string{"task-1"}})
	}, after)
	h.env.RegisterDelayedCallback(func() {
		res := dsr.TaskResult{Destination: "mixpanel", TaskID: "task-1", TaskStatus: dsr.TaskStatus(status), Succeeded: status == "SUCCESS"}
		if !res.Succeeded {
			res.Reason = "ended " + status
			res.Retryable = status == "REVOKED"
		}
		h.env.SignalWorkflow(dsr.SignalTaskResult, res)
	}, after+time.Hour)
}

func (h *dsrHarness) cancelAt(after time.Duration, accepted *bool, rejected *error) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(dsr.UpdateCancel, "cancel-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { *rejected = err },
			OnAccept: func() { *accepted = true },
			OnComplete: func(_ any, err error) {
				if err != nil {
					*rejected = err
				}
			},
		})
	}, after)
}

func (h *dsrHarness) run() {
	h.env.ExecuteWorkflow(workflows.DSR, h.in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
}

func (h *dsrHarness) assertStatuses(want ...dsr.Status) {
	h.t.Helper()
	if !slices.Equal(h.statuses, want) {
		h.t.Errorf("ledger statuses = %v, want %v", h.statuses, want)
	}
	// Callbacks: pending first (the intake wrote the ledger row), then every change of status.
	cb := []dsr.Status{dsr.StatusPending}
	for _, w := range want {
		if w != cb[len(cb)-1] {
			cb = append(cb, w)
		}
	}
	if !slices.Equal(h.callbacks, cb) {
		h.t.Errorf("callbacks = %v, want %v", h.callbacks, cb)
	}
}

func TestErasureWaitsTheFullWaitingPeriod(t *testing.T) {
	h := newDSRHarness(t, false)
	h.taskEnds(waitingPeriod+time.Minute, "SUCCESS")
	start := h.env.Now()
	h.run()
	if got := h.enqueuedAt.Sub(start); got < waitingPeriod {
		t.Errorf("enqueued %v after start, want after the %v waiting period", got, waitingPeriod)
	}
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusCompleted)
}

func TestErasureSkipsTheWaitingPeriod(t *testing.T) {
	h := newDSRHarness(t, true)
	h.taskEnds(time.Minute, "SUCCESS")
	start := h.env.Now()
	h.run()
	if got := h.enqueuedAt.Sub(start); got > time.Minute {
		t.Errorf("enqueued %v after start, want at once", got)
	}
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusCompleted)
}

// TestCompletionErasesTheLocalCopy: the step that records an erasure's
// completion is CompleteErasure, given the resolved profiles and the
// request's identities, and its reason (with the count) is the status reason.
func TestCompletionErasesTheLocalCopy(t *testing.T) {
	h := newDSRHarness(t, true)
	h.resolve = func(in dsr.ResolveIdentitiesInput) (dsr.ResolveIdentitiesResult, error) {
		return dsr.ResolveIdentitiesResult{Plans: h.plans, Profiles: []string{"p-1"}, Enqueued: in.Enqueue}, nil
	}
	h.taskEnds(time.Minute, "SUCCESS")
	h.run()
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusCompleted)
	if len(h.erasures) != 1 {
		t.Fatalf("%d CompleteErasure calls, want 1", len(h.erasures))
	}
	e := h.erasures[0]
	if !slices.Equal(e.Profiles, []string{"p-1"}) || len(e.Identities) != 1 || e.Status.To != dsr.StatusCompleted || e.Status.RequestID != h.in.RequestID {
		t.Errorf("CompleteErasure input %+v", e)
	}
	var view dsr.StatusView
	v, err := h.env.QueryWorkflow(dsr.QueryStatus)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Get(&view); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(view.Reason, "local copy erased: 3 ") {
		t.Errorf("status reason %q does not say the local copy was erased", view.Reason)
	}
}

// TestFailedOrCancelledErasureKeepsTheLocalCopy: only a completed erasure erases.
func TestFailedOrCancelledErasureKeepsTheLocalCopy(t *testing.T) {
	h := newDSRHarness(t, true)
	h.taskEnds(time.Minute, "FAILURE")
	h.run()
	if len(h.erasures) != 0 {
		t.Errorf("a failed erasure erased the local copy")
	}
}

func TestCancelDuringTheWaitingPeriod(t *testing.T) {
	h := newDSRHarness(t, false)
	var accepted bool
	var rejected error
	h.cancelAt(24*time.Hour, &accepted, &rejected)
	h.run()
	if !accepted || rejected != nil {
		t.Fatalf("cancel accepted=%v rejected=%v, want accepted", accepted, rejected)
	}
	if h.enqueues != 0 {
		t.Errorf("a cancelled request was enqueued %d times", h.enqueues)
	}
	h.assertStatuses(dsr.StatusCancelled)
}

func TestCancelWhileQueued(t *testing.T) {
	h := newDSRHarness(t, true)
	var accepted bool
	var rejected error
	h.cancelAt(10*time.Minute, &accepted, &rejected)
	h.run()
	if !accepted || rejected != nil || !h.removed {
		t.Fatalf("cancel accepted=%v rejected=%v removed=%v, want accepted and removed from the batch", accepted, rejected, h.removed)
	}
	h.assertStatuses(dsr.StatusCancelled)
}

func TestCancelTooLateWhenTheBatchAlreadySentIt(t *testing.T) {
	h := newDSRHarness(t, true)
	h.keepQueued = true
	h.taskEnds(time.Hour, "SUCCESS")
	var accepted bool
	var rejected error
	h.cancelAt(10*time.Minute, &accepted, &rejected)
	h.run()
	if rejected == nil {
		t.Fatal("cancel was not refused")
	}
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusCompleted)
}

func TestCancelTooLateAfterForwarding(t *testing.T) {
	h := newDSRHarness(t, true)
	h.taskEnds(time.Minute, "SUCCESS")
	var accepted bool
	var rejected error
	h.cancelAt(30*time.Minute, &accepted, &rejected)
	h.run()
	var appErr *temporal.ApplicationError
	if !errors.As(rejected, &appErr) || appErr.Message() != dsr.ErrTooLate {
		t.Fatalf("cancel after forwarding: got %v, want %q", rejected, dsr.ErrTooLate)
	}
	if h.removed {
		t.Error("the validator should refuse before asking the batch")
	}
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusCompleted)
}

func TestTaskFailureFailsTheRequest(t *testing.T) {
	h := newDSRHarness(t, true)
	h.taskEnds(time.Minute, "FAILURE")
	h.run()
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusFailed)
}

func TestRevokedTaskFailsAndCanBeRetried(t *testing.T) {
	h := newDSRHarness(t, true)
	h.taskEnds(time.Minute, "REVOKED")
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(dsr.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("retry rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, dsr.RetryRequest{By: "operator alice"})
	}, 24*time.Hour)
	// The retried request is forwarded again and succeeds.
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(dsr.SignalForwarded, dsr.Forwarded{Destination: "mixpanel", TaskIDs: []string{"task-2"}})
		h.env.SignalWorkflow(dsr.SignalTaskResult, dsr.TaskResult{Destination: "mixpanel", TaskID: "task-2", TaskStatus: "SUCCESS", Succeeded: true})
	}, 25*time.Hour)
	h.run()
	if h.enqueues != 2 {
		t.Errorf("enqueued %d times, want 2 (once more after the retry)", h.enqueues)
	}
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusFailed, dsr.StatusPending, dsr.StatusInProgress, dsr.StatusCompleted)
	if len(h.reasons) != 5 || h.reasons[2] != "retried by operator alice" {
		t.Errorf("reasons %q: want the retry recorded with the operator's name", h.reasons)
	}
}

// TestRetryWithoutANameStillWorks: a retry from a client that sends no
// argument (an older API or CLI) is recorded as by "an operator".
func TestRetryWithoutANameStillWorks(t *testing.T) {
	h := newDSRHarness(t, true)
	h.taskEnds(time.Minute, "REVOKED")
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(dsr.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("retry rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		})
	}, 24*time.Hour)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(dsr.SignalForwarded, dsr.Forwarded{Destination: "mixpanel", TaskIDs: []string{"task-2"}})
		h.env.SignalWorkflow(dsr.SignalTaskResult, dsr.TaskResult{Destination: "mixpanel", TaskID: "task-2", TaskStatus: "SUCCESS", Succeeded: true})
	}, 25*time.Hour)
	h.run()
	if len(h.reasons) != 5 || h.reasons[2] != "retried by an operator" {
		t.Errorf("reasons %q", h.reasons)
	}
}

func TestFailedRequestClosesAfterTheRetryWindow(t *testing.T) {
	h := newDSRHarness(t, true)
	h.taskEnds(time.Minute, "REVOKED")
	start := h.env.Now()
	h.run()
	if got := h.env.Now().Sub(start); got < h.in.RetryWindow {
		t.Errorf("closed after %v, want after the %v retry window", got, h.in.RetryWindow)
	}
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusFailed)
}

func TestNoSuitableIdentityCompletesAsSkipped(t *testing.T) {
	h := newDSRHarness(t, true)
	h.plans = []dsr.Plan{{Destination: "mixpanel", Skipped: true, Reason: "no identity"}}
	h.run()
	if h.enqueues != 0 {
		t.Errorf("a skipped request was enqueued")
	}
	h.assertStatuses(dsr.StatusCompleted)
}

func TestStatusQuery(t *testing.T) {
	h := newDSRHarness(t, false)
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(dsr.QueryStatus)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		var view dsr.StatusView
		if err := v.Get(&view); err != nil {
			t.Fatal(err)
		}
		if view.Status != dsr.StatusPending || view.Phase != "waiting period" {
			t.Errorf("view = %+v, want pending in the waiting period", view)
		}
	}, time.Hour)
	h.taskEnds(waitingPeriod+time.Minute, "SUCCESS")
	h.run()
}

func TestAccessRequestBuildsResultsAndExpiresThem(t *testing.T) {
	h := newDSRHarness(t, true)
	h.in.Type = dsr.TypeAccess
	// The request carries no polling settings: the worker's come with the created task.
	var polls int
	var built dsr.BuildResultsInput
	var expiredAt, builtAt time.Time
	start := h.env.Now()
	h.env.OnActivity(a.CreateRetrievalTask, mock.Anything, mock.Anything).Return(dsr.CreateTaskResult{
		TaskID: "r-1", CreatedAt: start, PollInterval: 3 * time.Minute, MaxTaskAge: 45 * 24 * time.Hour}, nil)
	h.env.OnActivity(a.PollTask, mock.Anything, mock.Anything).Return(func(_ context.Context, ref dsr.PollTaskInput) (dsr.PollTaskResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		polls++
		if ref.Kind != dsr.KindRetrieval {
			t.Errorf("polled a %s task, want retrieval", ref.Kind)
		}
		if polls < 3 {
			return dsr.PollTaskResult{}, temporal.NewApplicationError("STAGING", dsr.ErrTypeTaskNotFinished)
		}
		return dsr.PollTaskResult{Status: "SUCCESS", ResultURL: "https://mixpanel.example/export.zip"}, nil
	})
	h.env.OnActivity(a.BuildResults, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.BuildResultsInput) (dsr.BuildResultsResult, error) {
		built, builtAt = in, h.env.Now()
		return dsr.BuildResultsResult{Token: "tok", URL: "https://dsr.example/v1/results/tok", Count: 12, Matched: true, ExpiresAt: h.env.Now().Add(7 * 24 * time.Hour)}, nil
	})
	h.env.OnActivity(a.ExpireResults, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.ExpireResultsInput) error {
		expiredAt = h.env.Now()
		return nil
	})
	h.run()
	if polls != 3 {
		t.Errorf("%d polls, want 3 (retry-driven until SUCCESS)", polls)
	}
	if got := builtAt.Sub(start); got < 6*time.Minute || got > 7*time.Minute {
		t.Errorf("results built %v after start, want after two 3-minute poll intervals (the worker's setting)", got)
	}
	if len(built.Exports) != 1 || built.Exports[0].ResultURL == "" {
		t.Errorf("built from %+v, want the one export", built.Exports)
	}
	if got := expiredAt.Sub(start); got < 7*24*time.Hour {
		t.Errorf("results expired %v after start, want after the 7-day TTL", got)
	}
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusCompleted)
}

func TestCallbacksArriveInOrderAfterTheReceiverWasDown(t *testing.T) {
	h := newDSRHarness(t, true)
	start := h.env.Now()
	var attempts int
	h.deliver = func(dsr.DeliverCallbacksInput) error {
		attempts++
		if h.env.Now().Sub(start) < 10*time.Minute {
			return errors.New("callback to host controller.example: connection refused")
		}
		return nil
	}
	h.taskEnds(time.Minute, "SUCCESS") // the request completes while the receiver is down
	h.run()
	if got := fmt.Sprint(h.callbacks); got != "[pending in_progress completed]" {
		t.Errorf("delivered %s, want every status, in order", got)
	}
	if attempts <= 3 {
		t.Errorf("%d attempts, want retries while the receiver was down", attempts)
	}
}

func TestAmbiguousIdentityWaitsForAnOperator(t *testing.T) {
	h := newDSRHarness(t, true)
	var chosen []string
	h.resolve = func(in dsr.ResolveIdentitiesInput) (dsr.ResolveIdentitiesResult, error) {
		chosen = append(chosen, in.ChosenProfile)
		if in.ChosenProfile == "" {
			return dsr.ResolveIdentitiesResult{Hold: true, Candidates: []string{"p-1", "p-2"}}, nil
		}
		h.enqueues++
		return dsr.ResolveIdentitiesResult{Plans: h.plans, Enqueued: true, Profiles: []string{in.ChosenProfile}}, nil
	}
	var rejected, accepted error
	choose := func(profile string, into *error) func() {
		return func() {
			h.env.UpdateWorkflow(dsr.UpdateResolve, "resolve-"+profile, &testsuite.TestUpdateCallback{
				OnReject: func(err error) { *into = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
			}, dsr.ResolveChoice{ProfileID: profile, By: "operator alice"})
		}
	}
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(dsr.QueryStatus)
		if err != nil {
			t.Fatal(err)
		}
		var view dsr.StatusView
		_ = v.Get(&view)
		if view.Status != dsr.StatusPending || len(view.Candidates) != 2 {
			t.Errorf("held view = %+v, want pending with 2 candidates", view)
		}
	}, time.Hour)
	h.env.RegisterDelayedCallback(choose("p-9", &rejected), 2*time.Hour)
	h.env.RegisterDelayedCallback(choose("p-2", &accepted), 3*time.Hour)
	h.taskEnds(4*time.Hour, "SUCCESS")
	h.run()
	if rejected == nil || accepted != nil {
		t.Errorf("choice of a non-candidate: %v (want refused); of a candidate: %v (want accepted)", rejected, accepted)
	}
	if fmt.Sprint(chosen) != "[ p-2]" || h.enqueues != 1 {
		t.Errorf("resolutions %q, enqueues %d: want one held run, then one with p-2 that joins the batch", chosen, h.enqueues)
	}
	// The choice is a transition of its own, naming the operator.
	h.assertStatuses(dsr.StatusPending, dsr.StatusPending, dsr.StatusInProgress, dsr.StatusCompleted)
	if len(h.reasons) != 4 || h.reasons[1] != "identity settled by operator alice: profile p-2" {
		t.Errorf("reasons %q: want the choice recorded with the operator's name", h.reasons)
	}
}

func TestRequeueNudgeJoinsTheBatchAgain(t *testing.T) {
	h := newDSRHarness(t, true)
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(dsr.SignalRequeue, nil) }, 3*time.Hour)
	h.taskEnds(4*time.Hour, "SUCCESS")
	// A nudge after forwarding changes nothing.
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(dsr.SignalRequeue, nil) }, 4*time.Hour+30*time.Minute)
	h.run()
	if h.enqueues != 2 {
		t.Errorf("enqueued %d times, want 2 (once at first, once for the nudge while queued)", h.enqueues)
	}
	h.assertStatuses(dsr.StatusInProgress, dsr.StatusCompleted)
}
