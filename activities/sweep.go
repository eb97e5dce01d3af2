package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// endedQuery finds DSR workflow runs that ended while their request was open.
// A run's DsrStatus is the last status it recorded; the ledger is checked too.
const endedQuery = "WorkflowType = '" + dsr.WorkflowDSR + "' AND ExecutionStatus != 'Running' AND DsrStatus IN ('pending', 'in_progress')"

// maxReconciled bounds the requests one sweep looks at.
const maxReconciled = 1000

// ReconcileEnded is the hourly sweep's check that the ledger and Temporal
// agree: a request the ledger holds open (pending, in progress) whose
// workflow is no longer running (terminated, timed out, or ended without
// recording an outcome) is recorded failed with the reason, so GET, `dsr
// list` and the callbacks' receiver stop waiting, and `retry` can start it
// again. It returns how many it recorded.
func (a *Activities) ReconcileEnded(ctx context.Context) (int, error) {
	var token []byte
	seen, fixed := 0, 0
	for seen < maxReconciled {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: endedQuery, PageSize: 100, NextPageToken: token,
		})
		if err != nil {
			return fixed, fmt.Errorf("listing ended request workflows: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			seen++
			ok, err := a.reconcile(ctx, e.GetExecution().GetWorkflowId())
			if err != nil {
				return fixed, err
			}
			if ok {
				fixed++
			}
			activity.RecordHeartbeat(ctx, seen)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	if fixed > 0 {
		activity.GetLogger(ctx).Warn("recorded requests whose workflow had ended as failed", "count", fixed)
	}
	return fixed, nil
}

// reconcile records one request failed if the ledger holds it open and its
// latest workflow run has ended; it says whether it did.
func (a *Activities) reconcile(ctx context.Context, workflowID string) (bool, error) {
	controller, requestID, ok := dsr.ParseWorkflowID(workflowID)
	if !ok {
		return false, nil
	}
	key := ledger.Key{ControllerID: controller, RequestID: requestID}
	rec, err := a.Ledger.Get(ctx, key)
	if errors.Is(err, ledger.ErrNotFound) {
		return false, nil // purged after its retention
	}
	if err != nil {
		return false, fmt.Errorf("ledger: %w", err)
	}
	if rec.Status != ledger.Status(dsr.StatusPending) && rec.Status != ledger.Status(dsr.StatusInProgress) {
		return false, nil
	}
	// The latest run: after a retry a new run may be going.
	desc, err := a.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describing a request workflow: %w", err)
	}
	reason := dsr.EndedReason(desc.GetWorkflowExecutionInfo().GetStatus())
	if reason == "" {
		return false, nil
	}
	if err := a.Ledger.SetStatus(ctx, key, ledger.Status(dsr.StatusFailed), reason, a.now()); err != nil {
		return false, fmt.Errorf("ledger: %w", err)
	}
	a.Metrics.statusChanged(string(dsr.StatusFailed))
	return true, nil
}
