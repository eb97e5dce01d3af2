package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// Status returns a controller's request as the OpenDSR status body, from the
// ledger, so it answers for the whole record retention, long after Temporal
// forgot the workflow. Another controller's request is not found.
func (s *Service) Status(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, *opendsr.Error) {
	rec, err := s.Ledger.Get(ctx, key)
	if errors.Is(err, ledger.ErrNotFound) {
		return opendsr.StatusResponse{}, opendsr.NotFound()
	}
	if err != nil {
		s.logger().Error("ledger read failed", "request_id", key.RequestID, "error", err)
		return opendsr.StatusResponse{}, opendsr.Internal()
	}
	fwd, err := s.Ledger.Forwardings(ctx, key)
	if err != nil {
		s.logger().Error("ledger read failed", "request_id", key.RequestID, "error", err)
		return opendsr.StatusResponse{}, opendsr.Internal()
	}
	trace, err := s.ResolutionTrace(rec.Resolution)
	if err != nil {
		s.logger().Error("opening the sealed resolution trace failed", "request_id", key.RequestID, "error", err)
		return opendsr.StatusResponse{}, opendsr.Internal()
	}
	ext := opendsr.StatusExtension{DueTime: opendsr.NewTime(rec.DueTime), StatusReason: rec.StatusReason, Resolution: trace,
		ResultsExpiresAt: opendsr.NewTime(rec.ResultsExpiresAt)}
	if end := rec.ReceivedTime.Add(s.Settings.WaitingPeriod); rec.Type == dsr.TypeErasure && !rec.SkipWaitingPeriod &&
		rec.Status == dsr.StatusPending && end.After(s.now()) {
		ext.CancellableUntil = opendsr.NewTime(end)
	}
	for _, f := range fwd {
		ext.Forwarding = append(ext.Forwarding, opendsr.Forwarding{
			Destination: f.Destination, Status: string(f.Status), StatusMessage: f.StatusMessage,
			TaskID: f.TaskID, TaskStatus: string(f.TaskStatus),
		})
	}
	extJSON, _ := json.Marshal(ext) // plain struct: cannot fail
	resultsURL := rec.ResultsURL
	if resultsURL != "" && s.Keys != nil {
		if resultsURL, err = s.Keys.Open(rec.ResultsURL); err != nil {
			s.logger().Error("opening the sealed results link failed", "request_id", key.RequestID, "error", err)
			return opendsr.StatusResponse{}, opendsr.Internal()
		}
	}
	return opendsr.StatusResponse{
		ControllerID: rec.ControllerID, SubjectRequestID: rec.RequestID,
		RequestStatus: string(rec.Status), ExpectedCompletionTime: opendsr.NewTime(rec.ExpectedCompletionTime),
		APIVersion: rec.APIVersion, ResultsURL: resultsURL, ResultsCount: rec.ResultsCount,
		Extensions: map[string]json.RawMessage{s.Settings.ProcessorDomain: extJSON},
	}, nil
}

// ResolutionTrace opens the sealed identity resolution trace the worker
// recorded (a JSON string in the ledger); nil when there is none yet.
func (s *Service) ResolutionTrace(doc json.RawMessage) (json.RawMessage, error) {
	if len(doc) == 0 {
		return nil, nil
	}
	var sealed string
	if err := json.Unmarshal(doc, &sealed); err != nil {
		return nil, err
	}
	if s.Keys == nil {
		return nil, errors.New("no key ring to open the trace")
	}
	plain, err := s.Keys.Open(sealed)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(plain), nil
}

// Resolve settles an ambiguous identity resolution with the operator's
// choice of profile. by names who chose ("operator alice"), recorded in the
// ledger; it must never be a credential.
func (s *Service) Resolve(ctx context.Context, key ledger.Key, profileID, by string) (opendsr.StatusResponse, *opendsr.Error) {
	if _, oerr := s.Status(ctx, key); oerr != nil {
		return opendsr.StatusResponse{}, oerr
	}
	if profileID == "" {
		return opendsr.StatusResponse{}, opendsr.BadRequest("profile_id is required", opendsr.ErrorItem{
			Domain: opendsr.ErrorDomain, Reason: opendsr.ReasonRequired, Message: "profile_id is required", Location: "profile_id"})
	}
	if err := s.update(ctx, key, dsr.UpdateResolve, nil, dsr.ResolveChoice{ProfileID: profileID, By: by}); err != nil {
		return opendsr.StatusResponse{}, s.updateError(err, "resolve")
	}
	return s.Status(ctx, key)
}

// Cancel cancels a request through its workflow's cancel update: accepted
// while the request waits or is queued, refused (409) once it was sent.
func (s *Service) Cancel(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, *opendsr.Error) {
	resp, oerr := s.Status(ctx, key)
	if oerr != nil {
		return resp, oerr
	}
	switch resp.RequestStatus {
	case string(dsr.StatusCancelled):
		return resp, nil
	case string(dsr.StatusCompleted), string(dsr.StatusFailed):
		return resp, opendsr.Conflict("The request already finished (" + resp.RequestStatus + ") and cannot be cancelled")
	}
	var res dsr.CancelResult
	if err := s.update(ctx, key, dsr.UpdateCancel, &res); err != nil {
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			// The workflow ended under an open request: record it now rather than at the next sweep.
			if reason := s.recordEnded(ctx, key, true); reason != "" {
				return resp, opendsr.Conflict("Cannot cancel: " + reason + "; the request is now recorded failed and can be retried")
			}
		}
		return resp, s.updateError(err, "cancel")
	}
	resp.RequestStatus = string(dsr.StatusCancelled)
	return resp, nil
}

// Retry resumes a failed request, of any type, once its cause (Mixpanel
// credentials, a revoked task, an identity service) was fixed: a workflow
// that waits for a retry is told so; a failed request whose workflow has
// ended (a terminated workflow, an access request, a task that failed) is
// started again, a new run under the same workflow id. by names who
// retried, as for Resolve.
func (s *Service) Retry(ctx context.Context, key ledger.Key, by string) (opendsr.StatusResponse, *opendsr.Error) {
	resp, oerr := s.Status(ctx, key)
	if oerr != nil {
		return opendsr.StatusResponse{}, oerr
	}
	err := s.update(ctx, key, dsr.UpdateRetry, nil, dsr.RetryRequest{By: by})
	var notFound *serviceerror.NotFound
	if err != nil && errors.As(err, &notFound) {
		failed := resp.RequestStatus == string(dsr.StatusFailed)
		if !failed && resp.RequestStatus != string(dsr.StatusCompleted) && resp.RequestStatus != string(dsr.StatusCancelled) {
			// Open in the ledger, yet its workflow ended (terminated): record that first.
			failed = s.recordEnded(ctx, key, false) != ""
		}
		if failed {
			err = s.restart(ctx, key, by)
		}
	}
	if err != nil {
		return opendsr.StatusResponse{}, s.updateError(err, "retry")
	}
	return s.Status(ctx, key)
}

// recordEnded records an open request failed when its latest workflow run
// has ended, and returns the reason ("" if not). With announce it also
// starts the short run the hourly sweep would (dsr.Request.EndedReason), which
// sends the failed callback and sets the run's DsrStatus.
func (s *Service) recordEnded(ctx context.Context, key ledger.Key, announce bool) string {
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, dsr.WorkflowID(key.ControllerID, key.RequestID), "")
	if err != nil {
		return ""
	}
	reason := dsr.EndedReason(desc.GetWorkflowExecutionInfo().GetStatus())
	if reason == "" {
		return ""
	}
	if err := s.Ledger.SetStatus(ctx, key, dsr.StatusFailed, reason, s.now()); err != nil {
		s.logger().Error("ledger write failed", "request_id", key.RequestID, "error", err)
		return ""
	}
	if announce {
		in, err := s.originalInput(ctx, key)
		if err == nil {
			in.EndedReason = reason
			_, err = s.startRun(ctx, in, enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE)
		}
		if err != nil {
			// The ledger is right; only the callback is missing.
			s.logger().Warn("could not start the run that announces an ended request", "request_id", key.RequestID, "error", err)
		}
	}
	return reason
}

// restart starts a failed request's DSR workflow again with its original
// input (read from the last run's history: the ledger keeps no identity),
// and records the retry. The id reuse policy allows a new run only because
// the last one has ended; a run still going is a conflict.
func (s *Service) restart(ctx context.Context, key ledger.Key, by string) error {
	in, err := s.originalInput(ctx, key)
	if err != nil {
		return err
	}
	if _, err := s.startRun(ctx, in, enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE); err != nil {
		var exists *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &exists) {
			return temporal.NewApplicationError("the request's workflow is running again already", "AlreadyRunning")
		}
		return err
	}
	who := "an operator"
	if by != "" {
		who = by
	}
	if err := s.Ledger.SetStatus(ctx, key, dsr.StatusPending, "retried by "+who+": started again", s.now()); err != nil {
		// The new run records its own progress; only this transition is missing.
		s.logger().Error("ledger write failed after restarting a request", "request_id", key.RequestID, "error", err)
	}
	return nil
}

// originalInput reads the input of the request's last workflow run.
func (s *Service) originalInput(ctx context.Context, key ledger.Key) (dsr.Request, error) {
	it := s.Temporal.GetWorkflowHistory(ctx, dsr.WorkflowID(key.ControllerID, key.RequestID), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return dsr.Request{}, temporal.NewApplicationError("the request's workflow history is gone (Temporal's retention): submit it again under a new id", "HistoryGone")
	}
	first, err := it.Next()
	if err != nil {
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return dsr.Request{}, temporal.NewApplicationError("the request's workflow history is gone (Temporal's retention): submit it again under a new id", "HistoryGone")
		}
		return dsr.Request{}, err
	}
	started := first.GetWorkflowExecutionStartedEventAttributes()
	if started == nil || s.Keys == nil {
		return dsr.Request{}, errors.New("the request's first workflow event is not its start")
	}
	var in dsr.Request
	if err := keyring.DataConverter(s.Keys).FromPayloads(started.GetInput(), &in); err != nil {
		return dsr.Request{}, fmt.Errorf("reading the request's workflow input: %w", err)
	}
	if in.ControllerID != key.ControllerID || in.RequestID != key.RequestID {
		return dsr.Request{}, errors.New("the request's workflow input names another request")
	}
	in.EndedReason = "" // the last run may be the one the sweep started to record the failure
	return in, nil
}

// update sends an update to the request's workflow and waits for its answer.
func (s *Service) update(ctx context.Context, key ledger.Key, name string, result any, args ...any) error {
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   dsr.WorkflowID(key.ControllerID, key.RequestID),
		UpdateName:   name,
		Args:         args,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return h.Get(ctx, result)
}

// updateError maps a refused or failed update to the error object.
func (s *Service) updateError(err error, action string) *opendsr.Error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return opendsr.Conflict("Cannot " + action + ": " + appErr.Message())
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return opendsr.Conflict("Cannot " + action + ": the request's workflow has finished")
	}
	s.logger().Error(action+" update failed", "error", err)
	return unavailable()
}

func unavailable() *opendsr.Error {
	return &opendsr.Error{Code: http.StatusServiceUnavailable, Message: "A backend is unavailable; nothing was changed. Try again.",
		Errors: []opendsr.ErrorItem{{Domain: opendsr.ErrorDomain, Reason: "unavailable", Message: "a backend is unavailable"}}}
}
