package workflows_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// currentDetails reads a workflow's Current Details as the Web UI does.
func (h *dsrHarness) currentDetails() string {
	h.t.Helper()
	v, err := h.env.QueryWorkflow("__temporal_workflow_metadata")
	if err != nil {
		h.t.Fatalf("metadata query: %v", err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		h.t.Fatal(err)
	}
	return md.GetCurrentDetails()
}

func assertContains(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// TestCurrentDetailsFollowAnErasure: status in words, the due time, the
// cancellation window with its command, then links to the batch and the
// Mixpanel task workflow.
func TestCurrentDetailsFollowAnErasure(t *testing.T) {
	h := newDSRHarness(t, false)
	h.in.DueTime = h.in.ReceivedTime.Add(30 * 24 * time.Hour)
	id := h.in.RequestID
	h.env.RegisterDelayedCallback(func() {
		assertContains(t, "details in the waiting period", h.currentDetails(),
			"**Pending** — GDPR erasure request: waiting period", "Statutory due: "+h.in.DueTime.UTC().Format(time.RFC3339),
			"Waiting period ends "+h.in.ForwardAt.UTC().Format(time.RFC3339), "`dsr cancel "+id+" --controller acme`")
	}, time.Hour)
	h.env.RegisterDelayedCallback(func() {
		d := h.currentDetails()
		assertContains(t, "details once forwarded", d, "**In progress**",
			"batch [gdpr](/namespaces/default-test-namespace/workflows/batch%2Fmixpanel%2Fmixpanel%2Fgdpr)",
			"task [task-1](/namespaces/default-test-namespace/workflows/mptask%2Fmixpanel%2Ftask-1)")
		if strings.Contains(d, "Waiting period ends") || strings.Contains(d, "cust-1") {
			t.Errorf("details after the waiting period:\n%s", d)
		}
	}, waitingPeriod+30*time.Minute)
	h.taskEnds(waitingPeriod+time.Minute, "SUCCESS")
	h.run()
}

// TestFinalButWaitingSaysSo: an access request whose results are ready is
// final for dsrflow though its workflow runs until the link expires: Current
// Details and DsrStatus say so; at the end DsrStatus is the plain status.
func TestFinalButWaitingSaysSo(t *testing.T) {
	h := newDSRHarness(t, true)
	h.in.Type = dsr.TypeAccess
	var upserts []string
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		if v, ok := sa.GetKeyword(dsr.SearchStatus); ok {
			upserts = append(upserts, v)
		}
	}).Return(nil)
	h.env.OnActivity(a.CreateRetrievalTask, mock.Anything, mock.Anything).Return(dsr.CreateTaskResult{TaskID: "r-1", CreatedAt: h.env.Now(), PollInterval: 10 * time.Minute, MaxTaskAge: 45 * 24 * time.Hour}, nil)
	h.env.OnActivity(a.PollTask, mock.Anything, mock.Anything).Return(dsr.PollTaskResult{Status: "SUCCESS", ResultURL: "https://mixpanel.example/x.zip"}, nil)
	expires := h.env.Now().Add(7 * 24 * time.Hour)
	h.env.OnActivity(a.BuildResults, mock.Anything, mock.Anything).Return(func(_ context.Context, _ dsr.BuildResultsInput) (dsr.BuildResultsResult, error) {
		return dsr.BuildResultsResult{Token: "tok", URL: "https://dsr.example/v1/results/tok", Count: 2, Matched: true, ExpiresAt: expires}, nil
	})
	h.env.OnActivity(a.ExpireResults, mock.Anything, mock.Anything).Return(nil)
	h.env.RegisterDelayedCallback(func() {
		assertContains(t, "details while the results are available", h.currentDetails(), "**Completed**",
			"Outcome final; the workflow stays open: results available until "+expires.UTC().Format(time.RFC3339), "retrieval task r-1")
	}, 24*time.Hour)
	h.run()
	want := []string{"in_progress", "completed", "completed (results available)", "completed"}
	if strings.Join(upserts, "|") != strings.Join(want, "|") {
		t.Errorf("DsrStatus upserts %q, want %q", upserts, want)
	}
}

func TestSearchStatusValues(t *testing.T) {
	got := dsr.SearchStatusValues("pending")
	if strings.Join(got, "|") != "pending|pending (waiting period)|pending (held for an operator)" {
		t.Errorf("%q", got)
	}
	if got := dsr.SearchStatusValues("completed"); strings.Join(got, "|") != "completed|completed (callbacks pending)|completed (results available)" {
		t.Errorf("%q", got)
	}
}

// TestWaitingPeriodEndClearsItsNote: the intake starts an erasure as
// "pending (waiting period)"; when the period ends, DsrStatus is "pending".
func TestWaitingPeriodEndClearsItsNote(t *testing.T) {
	h := newDSRHarness(t, false)
	var upserts []string
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(dsr.SearchStatus); ok {
			upserts = append(upserts, v)
		}
	}).Return(nil)
	h.taskEnds(waitingPeriod+time.Minute, "SUCCESS")
	h.run()
	if len(upserts) < 2 || upserts[0] != "pending" || upserts[1] != "in_progress" {
		t.Errorf("DsrStatus upserts %q, want pending (the waiting period over), then in_progress", upserts)
	}
}

// TestHeldForAnOperatorSaysSo: an ambiguous identity shows as
// "pending (held for an operator)" in DsrStatus until an operator chooses.
func TestHeldForAnOperatorSaysSo(t *testing.T) {
	h := newDSRHarness(t, true)
	h.resolve = func(in dsr.ResolveIdentitiesInput) (dsr.ResolveIdentitiesResult, error) {
		if in.ChosenProfile == "" {
			return dsr.ResolveIdentitiesResult{Hold: true, Candidates: []string{"p-1", "p-2"}}, nil
		}
		return dsr.ResolveIdentitiesResult{Plans: h.plans, Enqueued: true, Profiles: []string{in.ChosenProfile}}, nil
	}
	var upserts []string
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(dsr.SearchStatus); ok {
			upserts = append(upserts, v)
		}
	}).Return(nil)
	h.env.RegisterDelayedCallback(func() {
		assertContains(t, "details while held", h.currentDetails(), "**Pending**", "ambiguous identity: 2 profiles match")
		h.env.UpdateWorkflow(dsr.UpdateResolve, "resolve-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("resolve refused: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, dsr.ResolveChoice{ProfileID: "p-2"})
	}, time.Hour)
	h.taskEnds(2*time.Hour, "SUCCESS")
	h.run()
	want := "pending|pending (held for an operator)|pending|in_progress|completed"
	if got := strings.Join(upserts, "|"); !strings.HasPrefix(got, want) {
		t.Errorf("DsrStatus upserts %q, want them to start %q", got, want)
	}
}

// TestCallbacksPendingSaysSo: a request that completed while its callback
// receiver is down stays open to deliver them, and says so.
func TestCallbacksPendingSaysSo(t *testing.T) {
	h := newDSRHarness(t, true)
	start := h.env.Now()
	h.deliver = func(dsr.DeliverCallbacksInput) error {
		if h.env.Now().Sub(start) < 6*time.Hour {
			return errors.New("callback to host controller.example: connection refused")
		}
		return nil
	}
	var upserts []string
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(dsr.SearchStatus); ok {
			upserts = append(upserts, v)
		}
	}).Return(nil)
	h.taskEnds(time.Minute, "SUCCESS")
	h.env.RegisterDelayedCallback(func() {
		assertContains(t, "details while callbacks are pending", h.currentDetails(), "**Completed**",
			"Outcome final; the workflow stays open: delivering status callbacks")
	}, 3*time.Hour)
	h.run()
	if got, want := strings.Join(upserts, "|"), "in_progress|completed|completed (callbacks pending)|completed"; got != want {
		t.Errorf("DsrStatus upserts %q, want %q", got, want)
	}
}
