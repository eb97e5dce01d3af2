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
	return errors.Join(failures...)
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
