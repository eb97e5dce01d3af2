// Package requests is the request service shared by the HTTP API and the dsr
// CLI: Submit validates a data subject request, starts its DSR workflow and
// then writes its ledger row (the workflow writes the row too, as its first
// step), before anyone is told it was accepted; Status answers from the
// ledger; Cancel, Retry and Resolve go to the request's workflow.
package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// completionMargin is added to the time a request is forwarded for
// expected_completion_time, as mParticle does.
const completionMargin = 48 * time.Hour

// ExpectedCompletionTime is a request's expected_completion_time: when it is
// forwarded (the end of an erasure's waiting period, else on receipt) plus
// 48 hours. It depends on nothing but the request, so the API and the CLI
// (both submit through Service.Submit) answer the same for the same request,
// whatever batch or polling settings their environments hold.
func ExpectedCompletionTime(forwardAt time.Time) time.Time {
	return forwardAt.Add(completionMargin)
}

// retryWindow is how long a failed request waits for an operator's retry.
const retryWindow = 30 * 24 * time.Hour

// Settings are the parts of the configuration the request service reads.
type Settings struct {
	// ProcessorDomain is dsrflow's OpenDSR processor domain (the extensions key).
	ProcessorDomain string
	// CallbackAllowPrivate lets callback URLs use http:// and private addresses.
	CallbackAllowPrivate bool
	// WaitingPeriod is an erasure's cancellation window.
	WaitingPeriod time.Duration
	// TaskQueue is the queue DSR workflows start on.
	TaskQueue string
}

// SettingsFrom takes the request service's settings from the configuration.
func SettingsFrom(cfg config.Config) Settings {
	return Settings{ProcessorDomain: cfg.ProcessorDomain, CallbackAllowPrivate: cfg.CallbackAllowPrivate,
		WaitingPeriod: cfg.WaitingPeriod, TaskQueue: cfg.TaskQueue}
}

// Service submits requests.
type Service struct {
	Settings Settings
	Ledger   *ledger.Store
	Temporal client.Client
	// Keys open sealed ledger fields (the results link).
	Keys   *keyring.Ring
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NameBasedIDs accepts UUID v5 request ids besides v4: the dsr CLI's
	// bulk ids, derived from controller, file and row.
	NameBasedIDs bool
}

// Result is an accepted request.
type Result struct {
	// Created is false when the same request had been submitted before.
	Created  bool
	Record   ledger.Request
	Response opendsr.CreatedResponse
}

// Submit validates req (decoded from raw) for a controller, starts its
// workflow and records it. The answer lists the extensions entries of other
// processors that were ignored. Submitting the same request id with the same content
// again returns the existing record and starts nothing; with different content
// it is a 409. A request is never left half-created: if the workflow cannot be
// started nothing was written and the caller gets a 503; if this process dies
// after the start, the workflow writes the ledger row itself.
func (s *Service) Submit(ctx context.Context, controllerID string, req opendsr.Request, raw []byte) (Result, *opendsr.Error) {
	res, oerr := s.submit(ctx, controllerID, req, raw)
	if ignored := req.IgnoredExtensions(s.Settings.ProcessorDomain); oerr == nil && len(ignored) > 0 {
		ext, _ := json.Marshal(opendsr.CreatedExtension{IgnoredExtensions: ignored}) // plain struct: cannot fail
		res.Response.Extensions = map[string]json.RawMessage{s.Settings.ProcessorDomain: ext}
	}
	return res, oerr
}

func (s *Service) submit(ctx context.Context, controllerID string, req opendsr.Request, raw []byte) (Result, *opendsr.Error) {
	now := s.now()
	if verr := opendsr.Validate(req, opendsr.ValidateOptions{
		ProcessorDomain: s.Settings.ProcessorDomain, Now: now,
		AllowHTTPCallbacks: s.Settings.CallbackAllowPrivate, AllowPrivateCallbacks: s.Settings.CallbackAllowPrivate,
		AllowUUIDv5: s.NameBasedIDs,
	}); verr != nil {
		return Result{}, verr
	}
	ext, err := req.ProcessorExtension(s.Settings.ProcessorDomain)
	if err != nil {
		var oerr *opendsr.Error
		if errors.As(err, &oerr) {
			return Result{}, oerr
		}
		return Result{}, opendsr.BadRequest("invalid processor extension")
	}
	req = req.WithDefaults()
	submitted, err := req.Submitted()
	if err != nil {
		return Result{}, opendsr.BadRequest("submitted_time is not RFC 3339")
	}

	in := s.workflowInput(controllerID, req, ext, submitted, now)
	key := ledger.Key{ControllerID: controllerID, RequestID: req.SubjectRequestID}
	if stored, err := s.Ledger.Get(ctx, key); err == nil {
		return s.again(stored, req, raw)
	} else if !errors.Is(err, ledger.ErrNotFound) {
		s.logger().Error("ledger read failed", "controller", controllerID, "request_id", req.SubjectRequestID, "error", err)
		return Result{}, unavailable()
	}
	// The workflow first, then the ledger row: if this process dies in
	// between, the workflow records the row itself (its first step), so a
	// request is never half-created; if the start fails, nothing was kept.
	started, err := s.start(ctx, in)
	if err != nil {
		return Result{}, unavailable()
	}
	rec, err := ledger.RecordOf(s.Keys, in)
	if err != nil {
		s.logger().Error("ledger record failed", "controller", controllerID, "request_id", req.SubjectRequestID, "error", err)
		return Result{}, unavailable()
	}
	stored, _, err := s.Ledger.CreateRequest(ctx, rec)
	if err != nil {
		s.logger().Error("ledger write failed; the workflow will record the request", "controller", controllerID, "request_id", req.SubjectRequestID, "error", err)
		return Result{}, unavailable()
	}
	// The workflow may have written the row first: what counts is who started it.
	if !started || stored.BodyHash != in.BodyHash {
		return s.again(stored, req, raw)
	}
	return Result{Created: true, Record: stored, Response: createdResponse(stored, raw)}, nil
}

// again answers a request id that is already recorded: the same content is
// answered as before (a retried submission), other content is a 409. The
// stored body hash may be keyed with a key rotated since, or be a legacy one.
func (s *Service) again(stored ledger.Request, req opendsr.Request, raw []byte) (Result, *opendsr.Error) {
	if !ledger.Matches(s.Keys, ledger.PurposeBody, contentDigest(req), stored.BodyHash) {
		return Result{}, opendsr.Conflict("subject_request_id was already used for a different request")
	}
	return Result{Created: false, Record: stored, Response: createdResponse(stored, raw)}, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// workflowInput schedules the request: forwarding after the waiting period
// (erasures that do not skip it), completion expected 48 h later, and the
// statutory due time from submitted_time. It carries only what the controller
// decided and the intake scheduled: polling, batching and results settings
// belong to the worker, which reads them when it uses them.
func (s *Service) workflowInput(controllerID string, req opendsr.Request, ext opendsr.ProcessorExtension, submitted, received time.Time) dsr.Request {
	forwardAt := received
	if req.SubjectRequestType == dsr.TypeErasure && !ext.SkipWaitingPeriod {
		forwardAt = received.Add(s.Settings.WaitingPeriod)
	}
	ids := make([]dsr.Identity, len(req.SubjectIdentities))
	for i, id := range req.SubjectIdentities {
		ids[i] = dsr.Identity{Type: id.IdentityType, Format: id.IdentityFormat, Value: id.IdentityValue}
	}
	return dsr.Request{
		ControllerID: controllerID, RequestID: req.SubjectRequestID,
		Type: req.SubjectRequestType, Regulation: req.Regulation,
		Identities: ids, CallbackURLs: req.StatusCallbackURLs, APIVersion: req.APIVersion,
		SubmittedTime: submitted.UTC(), ReceivedTime: received,
		ForwardAt:              forwardAt,
		ExpectedCompletionTime: ExpectedCompletionTime(forwardAt),
		DueTime:                opendsr.DueTime(req.Regulation, submitted).UTC(),
		DisclosureType:         ext.DisclosureType,
		SkipWaitingPeriod:      ext.SkipWaitingPeriod,
		BodyHash:               s.Keys.Hash(ledger.PurposeBody, contentDigest(req)),
		RetryWindow:            retryWindow,
	}
}

// start starts the request's DSR workflow and says whether this call started
// it (false: it existed already).
func (s *Service) start(ctx context.Context, in dsr.Request) (bool, error) {
	started, err := s.startRun(ctx, in, enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
	var exists *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &exists) {
		return false, nil
	}
	if err != nil {
		s.logger().Error("could not start the request workflow", "controller", in.ControllerID, "request_id", in.RequestID, "error", err)
		return false, err
	}
	return started, nil
}

// startRun starts a run of the request's DSR workflow: at intake no id may be
// used twice (REJECT_DUPLICATE); a retry may start a new run once the last
// one has ended (ALLOW_DUPLICATE). A running workflow is never joined.
func (s *Service) startRun(ctx context.Context, in dsr.Request, reuse enums.WorkflowIdReusePolicy) (bool, error) {
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       in.WorkflowID(),
		TaskQueue:                s.Settings.TaskQueue,
		WorkflowIDReusePolicy:    reuse,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		StaticSummary:            fmt.Sprintf("%s %s request from %s", in.Regulation, in.Type, in.ControllerID),
		TypedSearchAttributes:    dsr.StartAttributes(in),
	}, dsr.WorkflowDSR, in)
	return err == nil, err
}

func createdResponse(r ledger.Request, raw []byte) opendsr.CreatedResponse {
	return opendsr.CreatedResponse{
		ControllerID:           r.ControllerID,
		ExpectedCompletionTime: opendsr.NewTime(r.ExpectedCompletionTime),
		ReceivedTime:           opendsr.NewTime(r.ReceivedTime),
		EncodedRequest:         opendsr.EncodeRequest(raw),
		SubjectRequestID:       r.RequestID,
	}
}

// contentDigest identifies a request's content, independent of JSON
// formatting: the hex SHA-256 the ledger keeps a keyed hash of.
func contentDigest(req opendsr.Request) string {
	b, _ := json.Marshal(req) // a decoded Request always marshals
	return ledger.HashHex(string(b))
}
