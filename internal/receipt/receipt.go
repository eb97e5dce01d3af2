// Package receipt issues the signed proof of a finished data subject request:
// a JSON document built from the request's ledger rows (what was asked, when,
// which Mixpanel tasks carried it and how they ended, which callbacks reached
// the controller), signed with the processor key as a JWS that a controller
// verifies offline against /v1/cert.pem.
//
// A receipt is built from the ledger on demand and signed when served, not
// stored: the ledger rows are the record, kept for DSR_RECORD_RETENTION and
// purged with it, so a receipt can never disagree with them, and it always
// verifies with the certificate served now (after a key rotation too).
package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// ContentType is the media type of a served receipt (a JWS in the flattened
// JSON serialization).
const ContentType = "application/jose+json"

// Version is the receipt format's version, in every receipt.
const Version = "1"

// ErrNotFinal is returned (wrapped) for a request that has no final status yet.
var ErrNotFinal = errors.New("the request is not final yet")

// Receipt is the signed document. It holds no identity value: identities
// appear as the keyed hashes the ledger keeps.
type Receipt struct {
	Version         string `json:"receipt_version"`
	ProcessorDomain string `json:"processor_domain"`
	ControllerID    string `json:"controller_id"`
	RequestID       string `json:"subject_request_id"`
	Type            string `json:"subject_request_type"`
	Regulation      string `json:"regulation"`
	// Status is the final request status (completed, cancelled or failed).
	Status       string `json:"request_status"`
	StatusReason string `json:"status_reason,omitempty"`
	// IdentityHashes are the ledger's hashes of the subject's identities.
	IdentityHashes json.RawMessage `json:"identity_hashes"`

	ReceivedTime Time `json:"received_time"`
	// WaitingPeriodEnd is when an erasure's cancellation window ended (the
	// received time when it was skipped or the request is not an erasure).
	WaitingPeriodEnd  Time `json:"waiting_period_end"`
	SkipWaitingPeriod bool `json:"skip_waiting_period"`
	// ForwardedTime is when the request was first sent to Mixpanel (absent
	// when nothing was sent).
	ForwardedTime *Time `json:"forwarded_time,omitempty"`
	// CompletedTime is when the request reached its final status.
	CompletedTime Time `json:"completed_time"`
	DueTime       Time `json:"due_time"`
	// Extension is set when an operator extended the statutory due time.
	Extension *Extension `json:"extension,omitempty"`

	Destinations []Destination `json:"destinations"`
	// LocalCopyErased says whether dsrflow erased its own copy of the
	// subject's profile (a transition reason in the ledger says "local copy
	// erased").
	LocalCopyErased bool       `json:"local_copy_erased"`
	Callbacks       []Callback `json:"callbacks_delivered"`
	IssuedAt        Time       `json:"issued_at"`
}

// Extension is an extension of the statutory due time.
type Extension struct {
	OriginalDueTime Time   `json:"original_due_time"`
	ExtendedAt      Time   `json:"extended_at"`
	Reason          string `json:"reason"`
}

// Destination is the request's outcome at one Mixpanel project.
type Destination struct {
	// Project is the destination's name (a Mixpanel project), never its token.
	Project       string   `json:"mixpanel_project"`
	Status        string   `json:"forwarding_status"`
	StatusMessage string   `json:"status_message,omitempty"`
	TaskIDs       []string `json:"task_ids,omitempty"`
	// TaskStatus is Mixpanel's final task status (SUCCESS, FAILURE, REVOKED).
	TaskStatus string `json:"task_status,omitempty"`
	// ReportedAt is when Mixpanel's task status was recorded.
	ReportedAt Time `json:"reported_at"`
}

// Callback is one status callback the controller received.
type Callback struct {
	RequestStatus string `json:"request_status"`
	// URLHash is the SHA-256 of the callback URL, Host its host.
	URLHash     string `json:"url_sha256"`
	Host        string `json:"host,omitempty"`
	DeliveredAt Time   `json:"delivered_at"`
	HTTPStatus  int    `json:"http_status,omitempty"`
}

// localCopyErased is what the completing transition's reason says when the
// worker erased dsrflow's own copy of the subject's profile.
const localCopyErased = "local copy erased"

// Time is a UTC RFC 3339 time with seconds precision and a fixed layout, so a
// receipt's text does not depend on the database's clock resolution.
type Time struct{ time.Time }

// MarshalJSON writes the time as "2006-01-02T15:04:05Z".
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Truncate(time.Second).Format(time.RFC3339))
}

// UnmarshalJSON reads an RFC 3339 time.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339, s)
	t.Time = v
	return err
}

// Final reports whether a request status is final, so that it has a receipt.
func Final(s dsr.Status) bool {
	return s == dsr.StatusCompleted || s == dsr.StatusCancelled || s == dsr.StatusFailed
}

// Issuer builds and signs receipts.
type Issuer struct {
	Ledger          *ledger.Store
	Signer          *opendsr.Signer
	ProcessorDomain string
	// WaitingPeriod is DSR_WAITING_PERIOD, for an erasure's window end.
	WaitingPeriod time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Build assembles the receipt of a final request from its ledger rows. An
// unknown request gives an error wrapping ledger.ErrNotFound, an open one
// ErrNotFinal.
func (is *Issuer) Build(ctx context.Context, key ledger.Key) (Receipt, error) {
	rec, err := is.Ledger.Get(ctx, key)
	if err != nil {
		return Receipt{}, err
	}
	if !Final(rec.Status) {
		return Receipt{}, fmt.Errorf("receipt of %s: %w", key, ErrNotFinal)
	}
	transitions, err := is.Ledger.Transitions(ctx, key)
	if err != nil {
		return Receipt{}, err
	}
	forwardings, err := is.Ledger.Forwardings(ctx, key)
	if err != nil {
		return Receipt{}, err
	}
	attempts, err := is.Ledger.CallbackAttempts(ctx, key)
	if err != nil {
		return Receipt{}, err
	}
	ext, err := is.Ledger.Extension(ctx, key)
	if err != nil {
		return Receipt{}, err
	}
	hashes, err := json.Marshal(rec.Identities)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt: identity hashes: %w", err)
	}
	r := Receipt{
		Version: Version, ProcessorDomain: is.ProcessorDomain,
		ControllerID: rec.ControllerID, RequestID: rec.RequestID, Type: rec.Type, Regulation: rec.Regulation,
		Status: string(rec.Status), StatusReason: rec.StatusReason, IdentityHashes: hashes,
		ReceivedTime: Time{rec.ReceivedTime}, WaitingPeriodEnd: Time{rec.ReceivedTime}, SkipWaitingPeriod: rec.SkipWaitingPeriod,
		DueTime: Time{rec.DueTime}, Destinations: []Destination{}, Callbacks: []Callback{},
		IssuedAt: Time{is.now()},
	}
	if rec.Type == "erasure" && !rec.SkipWaitingPeriod {
		r.WaitingPeriodEnd = Time{rec.ReceivedTime.Add(is.WaitingPeriod)}
	}
	if ext != nil {
		r.Extension = &Extension{OriginalDueTime: Time{ext.OriginalDueTime}, ExtendedAt: Time{ext.ExtendedAt}, Reason: ext.Reason}
	}
	for _, t := range transitions {
		if t.To == dsr.StatusInProgress && r.ForwardedTime == nil {
			r.ForwardedTime = &Time{t.At}
		}
		if t.To == rec.Status && t.From != rec.Status {
			r.CompletedTime = Time{t.At} // the last entry into the final status
		}
		if strings.Contains(t.Reason, localCopyErased) {
			r.LocalCopyErased = true
		}
	}
	for _, f := range forwardings {
		d := Destination{Project: f.Destination, Status: string(f.Status), StatusMessage: f.StatusMessage,
			TaskStatus: string(f.TaskStatus), ReportedAt: Time{f.UpdatedAt}}
		for id := range strings.SplitSeq(f.TaskID, ",") {
			if id = strings.TrimSpace(id); id != "" {
				d.TaskIDs = append(d.TaskIDs, id)
			}
		}
		r.Destinations = append(r.Destinations, d)
	}
	for _, a := range attempts {
		if a.Delivered {
			r.Callbacks = append(r.Callbacks, Callback{RequestStatus: string(a.RequestStatus), URLHash: a.URLHash,
				Host: a.Host, DeliveredAt: Time{a.At}, HTTPStatus: a.HTTPStatus})
		}
	}
	slices.SortStableFunc(r.Callbacks, func(x, y Callback) int { return x.DeliveredAt.Compare(y.DeliveredAt.Time) })
	return r, nil
}

// Issue builds the receipt of a final request and signs it: the JWS in the
// flattened JSON serialization, as served and written by dsr receipt.
func (is *Issuer) Issue(ctx context.Context, key ledger.Key) ([]byte, error) {
	r, err := is.Build(ctx, key)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("receipt: encoding: %w", err)
	}
	return is.Signer.SignJWS(payload)
}

// Verify checks a receipt JWS against the processor certificate (PEM) and
// returns the receipt it signs. Any change to the document fails.
func Verify(certPEM, jws []byte) (Receipt, error) {
	payload, err := opendsr.VerifyJWS(certPEM, jws)
	if err != nil {
		return Receipt{}, err
	}
	var r Receipt
	if err := json.Unmarshal(payload, &r); err != nil {
		return Receipt{}, fmt.Errorf("receipt: the signed payload is not a receipt: %w", err)
	}
	return r, nil
}

// URL is where the owning controller fetches a request's receipt.
func URL(publicURL, requestID string) string {
	return strings.TrimRight(publicURL, "/") + "/v1/requests/" + url.PathEscape(requestID) + "/receipt"
}

func (is *Issuer) now() time.Time {
	if is.Now != nil {
		return is.Now().UTC()
	}
	return time.Now().UTC()
}
