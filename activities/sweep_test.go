package activities_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// TestReconcileEnded: the sweep records a request failed only when the
// ledger holds it open and its latest workflow run has ended.
func TestReconcileEnded(t *testing.T) {
	ctx := context.Background()
	store, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC()
	cases := map[string]struct {
		ledger     dsr.Status
		latest     enumspb.WorkflowExecutionStatus
		wantStatus dsr.Status
		wantReason string
	}{
		"terminated":      {dsr.StatusPending, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, dsr.StatusFailed, dsr.ReasonTerminated},
		"timed-out":       {dsr.StatusInProgress, enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, dsr.StatusFailed, "workflow timed out"},
		"running-again":   {dsr.StatusPending, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, dsr.StatusPending, ""},
		"already-handled": {dsr.StatusCompleted, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, dsr.StatusCompleted, ""},
	}
	tc := &mocks.Client{}
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
			WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: c.latest},
		}, nil).Maybe()
	}
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return strings.Contains(r.Query, "WorkflowType = 'DSR'")
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: executions}, nil).Once()
	tc.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return strings.Contains(r.Query, "WorkflowType = 'MixpanelTask'")
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{}, nil).Once()

	a := &activities.Activities{Ledger: store, Temporal: tc}
	var env testsuite.WorkflowTestSuite
	act := env.NewTestActivityEnvironment()
	act.RegisterActivity(a)
	v, err := act.ExecuteActivity(a.ReconcileEnded)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := v.Get(&n); err != nil || n != 2 {
		t.Fatalf("recorded %d (%v), want 2 (terminated, timed out)", n, err)
	}
	for id, c := range cases {
		rec, err := store.Get(ctx, ledger.Key{ControllerID: "acme", RequestID: id})
		if err != nil {
			t.Fatal(err)
		}
		if string(rec.Status) != string(c.wantStatus) || (c.wantReason != "" && rec.StatusReason != c.wantReason) {
			t.Errorf("%s: %s %q, want %s %q", id, rec.Status, rec.StatusReason, c.wantStatus, c.wantReason)
		}
	}
	tc.AssertNotCalled(t, "DescribeWorkflowExecution", mock.Anything, dsr.WorkflowID("acme", "already-handled"), "")
}
