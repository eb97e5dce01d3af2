package activities_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// events is a client.HistoryEventIterator over a fixed history.
type events struct{ list []*historypb.HistoryEvent }

func (e *events) HasNext() bool { return len(e.list) > 0 }
func (e *events) Next() (*historypb.HistoryEvent, error) {
	ev := e.list[0]
	e.list = e.list[1:]
	return ev, nil
}

// TestReconcileEnded: the sweep acts only when the ledger holds a request
// open and its latest workflow run has ended: it starts a short run that
// records the failure (with the original input and the reason), or, when the
// history cannot be read, records it in the ledger itself.
func TestReconcileEnded(t *testing.T) {
	ctx := context.Background()
	store, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ring, err := keyring.Parse("test:ZHNyZmxvdy10ZXN0LWtleS1ub3QtZm9yLXByb2R1Y3Q=")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	cases := map[string]struct {
		ledger     dsr.Status
		latest     enumspb.WorkflowExecutionStatus
		noHistory  bool
		wantRun    string // EndedReason of the run started, "" for none
		wantLedger dsr.Status
	}{
		"terminated":      {ledger: dsr.StatusPending, latest: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, wantRun: dsr.ReasonTerminated, wantLedger: dsr.StatusPending},
		"timed-out":       {ledger: dsr.StatusInProgress, latest: enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, wantRun: "workflow timed out", wantLedger: dsr.StatusInProgress},
		"history-gone":    {ledger: dsr.StatusPending, latest: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, noHistory: true, wantLedger: dsr.StatusFailed},
		"running-again":   {ledger: dsr.StatusPending, latest: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, wantLedger: dsr.StatusPending},
		"already-handled": {ledger: dsr.StatusCompleted, latest: enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, wantLedger: dsr.StatusCompleted},
	}
	tc := &mocks.Client{}
	var mu sync.Mutex
	started := map[string]dsr.Request{}
	var executions []*workflowpb.WorkflowExecutionInfo
	for id, c := range cases {
		if _, _, err := store.CreateRequest(ctx, ledger.Request{ControllerID: "acme", RequestID: id, Type: "erasure", Regulation: "gdpr", ReceivedTime: now}); err != nil {
			t.Fatal(err)
		}
		if c.ledger != dsr.StatusPending {
			if err := store.SetStatus(ctx, ledger.Key{ControllerID: "acme", RequestID: id}, dsr.Status(c.ledger), "", now); err != nil {
				t.Fatal(err)
			}
		}
		wid := dsr.WorkflowID("acme", id)
		executions = append(executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: wid}})
		tc.On("DescribeWorkflowExecution", mock.Anything, wid, "").Return(&workflowservice.DescribeWorkflowExecutionResponse{
			WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: c.latest, Execution: &commonpb.WorkflowExecution{WorkflowId: wid, RunId: "run-" + id}},
		}, nil).Maybe()
		history := &events{}
		if !c.noHistory {
			input, err := keyring.DataConverter(ring).ToPayloads(dsr.Request{ControllerID: "acme", RequestID: id, Type: "erasure", Regulation: "gdpr",
				Identities: []dsr.Identity{{Type: "email", Format: "raw", Value: "x@example.com"}}})
			if err != nil {
				t.Fatal(err)
			}
			history.list = []*historypb.HistoryEvent{{Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
				WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{Input: input}}}}
		}
		tc.On("GetWorkflowHistory", mock.Anything, wid, "run-"+id, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Return(history).Maybe()
	}
	tc.On("ExecuteWorkflow", mock.Anything, mock.Anything, dsr.WorkflowDSR, mock.Anything).Return(nil, nil).Run(func(args mock.Arguments) {
		opts := args.Get(1).(client.StartWorkflowOptions)
		in := args.Get(3).(dsr.Request)
		if opts.ID != in.WorkflowID() || opts.WorkflowIDReusePolicy != enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE ||
			opts.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL {
			t.Errorf("started %+v, want a new run under the request's id, never joining a running one", opts)
		}
		mu.Lock()
		started[in.RequestID] = in
		mu.Unlock()
	}).Maybe()
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return strings.Contains(r.Query, "WorkflowType = 'DSR'")
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: executions}, nil).Once()
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return strings.Contains(r.Query, "WorkflowType = 'MixpanelTask'")
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{}, nil).Once()

	a := &activities.Activities{Ledger: store, Temporal: tc, Keys: ring}
	var env testsuite.WorkflowTestSuite
	act := env.NewTestActivityEnvironment()
	act.RegisterActivity(a)
	v, err := act.ExecuteActivity(a.ReconcileEnded)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := v.Get(&n); err != nil || n != 3 {
		t.Fatalf("reconciled %d (%v), want 3 (terminated, timed out, history gone)", n, err)
	}
	for id, c := range cases {
		rec, err := store.Get(ctx, ledger.Key{ControllerID: "acme", RequestID: id})
		if err != nil {
			t.Fatal(err)
		}
		if string(rec.Status) != string(c.wantLedger) {
			t.Errorf("%s: ledger %s, want %s", id, rec.Status, c.wantLedger)
		}
		run, ok := started[id]
		if c.wantRun == "" && ok {
			t.Errorf("%s: started a run %+v, want none", id, run)
		}
		if c.wantRun != "" && (run.EndedReason != c.wantRun || len(run.Identities) != 1) {
			t.Errorf("%s: started %+v, want the original input with EndedReason %q", id, run, c.wantRun)
		}
	}
	if rec, _ := store.Get(ctx, ledger.Key{ControllerID: "acme", RequestID: "history-gone"}); rec.StatusReason != dsr.ReasonTerminated {
		t.Errorf("history gone: reason %q", rec.StatusReason)
	}
	tc.AssertNotCalled(t, "DescribeWorkflowExecution", mock.Anything, dsr.WorkflowID("acme", "already-handled"), "")
}
