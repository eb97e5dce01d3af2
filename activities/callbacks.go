package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"go.temporal.io/sdk/activity"

	"github.com/dsrflow/dsrflow/internal/callback"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/receipt"
)

// DeliverCallbacks POSTs one status change, signed, to every callback URL of
// the request that has not received that change yet, appending each attempt
// to the ledger. A change is known by its sequence number, not its status, so
// a status that comes again (pending after a retry) is delivered again. It
// fails while any URL can still succeed, so Temporal retries with backoff.
func (a *Activities) DeliverCallbacks(ctx context.Context, in dsr.DeliverCallbacksInput) error {
	key := ledger.Key{ControllerID: in.ControllerID, RequestID: in.RequestID}
	attempts, err := a.Ledger.CallbackAttempts(ctx, key)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	ext, err := a.callbackExtension(in)
	if err != nil {
		return err
	}
	var failures []error
	for _, u := range in.URLs {
		digest := ledger.HashHex(u)
		if delivered(a.Keys, attempts, in, digest) {
			continue
		}
		body, err := json.Marshal(opendsr.Callback{
			ControllerID:           in.ControllerID,
			ExpectedCompletionTime: opendsr.NewTime(in.ExpectedCompletionTime),
			StatusCallbackURL:      u,
			SubjectRequestID:       in.RequestID,
			RequestStatus:          string(in.Status),
			APIVersion:             in.APIVersion,
			ResultsURL:             in.ResultsURL,
			ResultsCount:           in.ResultsCount,
			Extensions:             ext,
		})
		if err != nil {
			return err
		}
		status, sendErr := a.Callbacks.Send(ctx, u, body)
		attempt := ledger.CallbackAttempt{
			URLHash: a.Keys.Hash(ledger.PurposeCallbackURL, digest), Host: host(u),
			Seq: in.Seq, RequestStatus: dsr.Status(in.Status),
			Attempt: int(activity.GetInfo(ctx).Attempt), At: a.now(), HTTPStatus: status,
			Delivered: sendErr == nil, Permanent: sendErr != nil && callback.IsPermanent(sendErr),
		}
		if sendErr != nil {
			attempt.Error = sendErr.Error()
		}
		if err := a.Ledger.RecordCallbackAttempt(ctx, key, attempt); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		switch {
		case sendErr == nil:
			a.Metrics.callbackAttempt("delivered")
		case attempt.Permanent:
			a.Metrics.callbackAttempt("refused")
		default:
			a.Metrics.callbackAttempt("failed")
			failures = append(failures, sendErr)
		}
	}
	if len(failures) == 0 {
		return nil
	}
	// A receiver that is down is expected to come back: retried, logged at debug.
	return a.stillRunning(ctx, retryCallbackDown, errors.Join(failures...).Error(), dsr.ErrTypeCallbackUndelivered)
}

// callbackExtension is dsrflow's entry in a callback's extensions: the status
// reason, the due time and, once the request is final, its receipt's URL.
func (a *Activities) callbackExtension(in dsr.DeliverCallbacksInput) (map[string]json.RawMessage, error) {
	ext := opendsr.CallbackExtension{StatusReason: in.StatusReason, DueTime: opendsr.NewTime(in.DueTime)}
	if receipt.Final(dsr.Status(in.Status)) {
		ext.ReceiptURL = receipt.URL(a.Settings.PublicURL, in.RequestID)
	}
	b, err := json.Marshal(ext)
	if err != nil {
		return nil, fmt.Errorf("encoding the callback extension: %w", err)
	}
	return map[string]json.RawMessage{a.Settings.ProcessorDomain: b}, nil
}

// delivered reports whether the URL with digest already received the change
// in announces, or refused it for good: an attempt of the same change (its
// sequence number; 0 for changes queued before sequence numbers, which fall
// back to the status) that succeeded or failed permanently. The URL hash may
// be keyed with a rotated key, or be a legacy one.
func delivered(keys *keyring.Ring, attempts []ledger.CallbackAttempt, in dsr.DeliverCallbacksInput, digest string) bool {
	for _, at := range attempts {
		if at.Seq == in.Seq && at.RequestStatus == dsr.Status(in.Status) && (at.Delivered || at.Permanent) &&
			ledger.Matches(keys, ledger.PurposeCallbackURL, digest, at.URLHash) {
			return true
		}
	}
	return false
}

// host is the part of a callback URL safe to keep in the ledger.
func host(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return parsed.Hostname()
}
