package requests

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dsrflow/dsrflow/internal/dsr"
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
	if end := rec.ReceivedTime.Add(s.Config.WaitingPeriod); rec.Type == dsr.TypeErasure && !rec.SkipWaitingPeriod &&
		rec.Status == ledger.StatusPending && end.After(s.now()) {
		ext.CancellableUntil = opendsr.NewTime(end)
	}
	for _, f := range fwd {
		ext.Forwarding = append(ext.Forwarding, opendsr.ForwardingStatus{
			Destination: f.Destination, Status: string(f.Status), StatusMessage: f.StatusMessage,
			TaskID: f.TaskID, TaskStatus: f.TaskStatus,
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
		Extensions: map[string]json.RawMessage{s.Config.ProcessorDomain: extJSON},
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

// Resolve settles an ambiguous identity resolution with the operator's choice of profile.
func (s *Service) Resolve(ctx context.Context, key ledger.Key, profileID string) (opendsr.StatusResponse, *opendsr.Error) {
	if _, oerr := s.Status(ctx, key); oerr != nil {
		return opendsr.StatusResponse{}, oerr
	}
	if profileID == "" {
		return opendsr.StatusResponse{}, opendsr.BadRequest("profile_id is required", opendsr.ErrorItem{
			Domain: opendsr.ErrorDomain, Reason: opendsr.ReasonRequired, Message: "profile_id is required", Location: "profile_id"})
	}
	if err := s.update(ctx, key, dsr.UpdateResolve, nil, dsr.ResolveChoice{ProfileID: profileID}); err != nil {
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
		return resp, s.updateError(err, "cancel")
	}
	resp.RequestStatus = string(dsr.StatusCancelled)
	return resp, nil
}

// Retry resumes a failed request whose cause (such as Mixpanel credentials) was fixed.
func (s *Service) Retry(ctx context.Context, key ledger.Key) (opendsr.StatusResponse, *opendsr.Error) {
	if _, oerr := s.Status(ctx, key); oerr != nil {
		return opendsr.StatusResponse{}, oerr
	}
	if err := s.update(ctx, key, dsr.UpdateRetry, nil); err != nil {
		return opendsr.StatusResponse{}, s.updateError(err, "retry")
	}
	return s.Status(ctx, key)
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
