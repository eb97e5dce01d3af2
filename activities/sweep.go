package activities

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// endedQuery finds DSR workflow runs that ended while their request was open.
// A run's DsrStatus is the last status it recorded; the ledger is checked too.
const endedQuery = "WorkflowType = '" + dsr.WorkflowDSR + "' AND ExecutionStatus != 'Running' AND DsrStatus IN ('pending', 'in_progress')"

// endedTaskQuery finds MixpanelTask workflow runs that an operator ended
// (Terminate, Request Cancellation) or that timed out: their requests would
// never hear how the Mixpanel task ended.
const endedTaskQuery = "WorkflowType = '" + dsr.WorkflowMixpanelTask + "' AND ExecutionStatus IN ('Terminated', 'Canceled', 'TimedOut')"

// maxReconciled bounds the workflows one sweep looks at.
const maxReconciled = 1000

// ReconcileEnded is the hourly sweep's check that the ledger and Temporal
// agree: a request the ledger holds open (pending, in progress) whose
// workflow is no longer running (terminated, timed out, or ended without
// recording an outcome) is recorded failed with the reason by a short new
// run of its workflow (ledger, DsrStatus, callback), so GET, `dsr list` and
// the controller stop waiting, and `retry` can start it again. A MixpanelTask workflow ended the same way is started again with
// its members, so they learn how their Mixpanel task ended. It returns how
// many requests and tasks it reconciled.
func (a *Activities) ReconcileEnded(ctx context.Context) (int, error) {
	fixed, err := a.eachEnded(ctx, endedQuery, a.reconcile)
	if err != nil {
		return fixed, err
	}
	restarted, err := a.eachEnded(ctx, endedTaskQuery, a.restartTask)
	if fixed+restarted > 0 {
		activity.GetLogger(ctx).Warn("reconciled workflows that had ended", "requests_failed", fixed, "tasks_restarted", restarted)
	}
	return fixed + restarted, err
}

// eachEnded hands every workflow id the visibility query finds to fix and
// counts those it fixed.
func (a *Activities) eachEnded(ctx context.Context, query string, fix func(context.Context, string) (bool, error)) (int, error) {
	var token []byte
	seen, fixed := 0, 0
	done := map[string]bool{} // a workflow id has a run per retry or restart: look once
	for seen < maxReconciled {
		resp, err := a.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, PageSize: 100, NextPageToken: token,
		})
		if err != nil {
			return fixed, fmt.Errorf("listing ended workflows: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			seen++
			id := e.GetExecution().GetWorkflowId()
			if done[id] {
				continue
			}
			done[id] = true
			ok, err := fix(ctx, id)
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
	return fixed, nil
}

// restartTask starts a MixpanelTask workflow again when its latest run was
// terminated, cancelled or timed out, with the members it had (from the
// run's start and add-members signals): the new run polls the task and tells
// them how it ended. It says whether it did.
func (a *Activities) restartTask(ctx context.Context, workflowID string) (bool, error) {
	desc, err := a.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describing a task workflow: %w", err)
	}
	switch desc.GetWorkflowExecutionInfo().GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
	default:
		return false, nil
	}
	in, err := a.taskInput(ctx, workflowID, desc.GetWorkflowExecutionInfo().GetExecution().GetRunId())
	if err != nil {
		return false, err
	}
	in.PollInterval, in.MaxTaskAge, in.MaxIDs = a.Settings.MixpanelPollInterval, a.Settings.MixpanelMaxTaskAge, a.Settings.MixpanelMaxIDs
	_, err = a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflowID, TaskQueue: a.Settings.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		StaticSummary:            "Mixpanel deletion task " + in.TaskID + " at " + in.Destination + " (restarted after its workflow ended)",
	}, dsr.WorkflowMixpanelTask, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("restarting a task workflow: %w", err)
	}
	return true, nil
}

// taskInput reads a MixpanelTask run's input and every member it was given.
func (a *Activities) taskInput(ctx context.Context, workflowID, runID string) (dsr.TaskInput, error) {
	var in dsr.TaskInput
	if a.Keys == nil {
		return in, errors.New("no key ring to read workflow histories")
	}
	dc := keyring.DataConverter(a.Keys)
	var added []dsr.Member
	it := a.Temporal.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return in, fmt.Errorf("reading a task workflow's history: %w", err)
		}
		if s := e.GetWorkflowExecutionStartedEventAttributes(); s != nil {
			if err := dc.FromPayloads(s.GetInput(), &in); err != nil {
				return in, fmt.Errorf("reading a task workflow's input: %w", err)
			}
		}
		if s := e.GetWorkflowExecutionSignaledEventAttributes(); s != nil && s.GetSignalName() == dsr.SignalAddMembers {
			var ms []dsr.Member
			if err := dc.FromPayloads(s.GetInput(), &ms); err != nil {
				return in, fmt.Errorf("reading a task workflow's members: %w", err)
			}
			added = append(added, ms...)
		}
	}
	in.Members = append(in.Members, added...)
	if in.TaskID == "" || len(in.Members) == 0 {
		return in, fmt.Errorf("task workflow %s: no task or members in its history", workflowID)
	}
	return in, nil
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
	if rec.Status != dsr.StatusPending && rec.Status != dsr.StatusInProgress {
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
	info := desc.GetWorkflowExecutionInfo()
	reason := dsr.EndedReason(info.GetStatus())
	if reason == "" {
		return false, nil
	}
	// A short run records it (ledger, search attribute, callback), so the
	// latest run in Temporal says failed like the ledger; retry continues it.
	var in dsr.Request
	if err := a.runInput(ctx, workflowID, info.GetExecution().GetRunId(), &in); err != nil || in.RequestID != requestID {
		// The history is unreadable: the ledger at least must not stay open.
		activity.GetLogger(ctx).Warn("recording an ended request in the ledger only", "request_id", requestID, "error", err)
		if err := a.Ledger.SetStatus(ctx, key, dsr.StatusFailed, reason, a.now()); err != nil {
			return false, fmt.Errorf("ledger: %w", err)
		}
		a.Metrics.statusChanged(string(dsr.StatusFailed))
		return true, nil
	}
	in.EndedReason = reason
	_, err = a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflowID, TaskQueue: a.Settings.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		StaticSummary:            fmt.Sprintf("%s %s request from %s: recording that its workflow ended", in.Regulation, in.Type, in.ControllerID),
		TypedSearchAttributes:    dsr.StartAttributes(in),
	}, dsr.WorkflowDSR, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("starting the run that records an ended request: %w", err)
	}
	return true, nil
}

// runInput decodes the input of a workflow run (its first event).
func (a *Activities) runInput(ctx context.Context, workflowID, runID string, v any) error {
	if a.Keys == nil {
		return errors.New("no key ring to read workflow histories")
	}
	it := a.Temporal.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return errors.New("no history")
	}
	e, err := it.Next()
	if err != nil {
		return err
	}
	s := e.GetWorkflowExecutionStartedEventAttributes()
	if s == nil {
		return errors.New("the first event is not the start")
	}
	return keyring.DataConverter(a.Keys).FromPayloads(s.GetInput(), v)
}
