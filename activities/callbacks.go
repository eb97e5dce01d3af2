package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"go.temporal.io/sdk/activity"

	"github.com/dsrflow/dsrflow/internal/callback"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// DeliverCallbacks POSTs one status change, signed, to every callback URL of the
// request that has not received it yet, recording each attempt in the ledger.
// It fails while any URL can still succeed, so Temporal retries with backoff.
func (a *Activities) DeliverCallbacks(ctx context.Context, in CallbackInput) error {
	key := ledger.Key{ControllerID: in.ControllerID, RequestID: in.RequestID}
	attempts, err := a.Ledger.CallbackAttempts(ctx, key)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	finished := map[string]bool{} // URL hash -> delivered or refused for this status
	for _, at := range attempts {
		if at.RequestStatus == ledger.Status(in.Status) && (at.Delivered || at.Permanent) {
			finished[at.URLHash] = true
		}
	}
	var failures []error
	for _, u := range in.URLs {
		hash := hashURL(u)
		if finished[hash] {
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
			URLHash: hash, Host: host(u), RequestStatus: ledger.Status(in.Status),
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
	return a.stillRunning(ctx, retryCallbackDown, errors.Join(failures...).Error(), ErrTypeCallbackUndelivered)
}

func hashURL(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:])
}

// host is the part of a callback URL safe to keep in the ledger.
func host(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return parsed.Hostname()
}
