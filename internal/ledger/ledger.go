// Package ledger keeps the record of every data subject request dsrflow
// handles: the request as received, each status transition, the forwarding to
// each destination, and each status callback attempt. It is the proof of what
// was done, when and for whom, kept for the record retention period
// (DSR_RECORD_RETENTION, a year by default) and then purged.
//
// The ledger never holds identity values, callback URLs or results links in
// clear (see hash.go for the forms):
//   - identities and the request body only as keyed hashes (HMAC-SHA-256
//     with a key of the key ring, "hmac:<key id>:<hex>"), so that a copy of
//     the database does not let a dictionary of candidate values recover them;
//   - a request's callback URLs (which may carry the controller's secrets)
//     and its results link sealed with the key ring ("enc:v1:<key id>:...");
//     callback attempts name their URL by its keyed hash and its host;
//   - results tokens as their SHA-256 (a token is 256 random bits).
//
// CreateRequest and RecordCallbackAttempt refuse anything else. Rows written
// before migration 002 held unkeyed SHA-256 hashes and clear callback URLs:
// the migration marked them (hash_scheme "sha256", hashes "sha256:<hex>"),
// lookups still match them, and UpgradeLegacy (run by the hourly sweep)
// turns them into keyed hashes and sealed URLs.
//
// Every write is idempotent, so that Temporal activities may retry it.
// The Store works on SQLite and PostgreSQL alike (see package sqldb).
package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// ErrNotFound is returned (wrapped) when a request is not in the ledger.
var ErrNotFound = errors.New("request not found")

// DefaultRetention is how long a request's record is kept when no
// WithRetention option says otherwise (DSR_RECORD_RETENTION's default).
const DefaultRetention = 8760 * time.Hour

// Key identifies a request: request ids are unique per controller.
type Key struct {
	ControllerID string `json:"controller_id"`
	RequestID    string `json:"request_id"`
}

// String returns "controller/request", for messages.
func (k Key) String() string { return k.ControllerID + "/" + k.RequestID }

// IdentityHash is one identity of the data subject, as a keyed hash: the
// ledger never stores identity values.
type IdentityHash struct {
	// Type is the OpenDSR identity type, e.g. "email" or "controller_customer_id".
	Type string `json:"type"`
	// Format is the OpenDSR identity format, e.g. "raw" or "sha256".
	Format string `json:"format"`
	// Hash is the keyed hash (PurposeIdentity) of the identity's digest,
	// opendsr.HashIdentity; see IdentityHashOf.
	Hash string `json:"hash"`
}

// Request is the ledger's record of one data subject request.
type Request struct {
	ControllerID string `json:"controller_id"`
	RequestID    string `json:"request_id"`
	// Type is erasure, access or portability.
	Type string `json:"type"`
	// Regulation is gdpr or ccpa.
	Regulation string `json:"regulation"`
	// Status and StatusReason are those of the latest transition.
	Status       dsr.Status `json:"status"`
	StatusReason string     `json:"status_reason,omitempty"`
	APIVersion   string     `json:"api_version,omitempty"`

	SubmittedTime          time.Time `json:"submitted_time,omitzero"`
	ReceivedTime           time.Time `json:"received_time,omitzero"`
	ExpectedCompletionTime time.Time `json:"expected_completion_time,omitzero"`
	DueTime                time.Time `json:"due_time,omitzero"`

	// BodyHash is the keyed hash (PurposeBody) of the submitted content's
	// digest, to tell a retried submission from a conflicting one (Matches).
	BodyHash   string         `json:"body_hash,omitempty"`
	Identities []IdentityHash `json:"identities,omitempty"`
	// CallbackURLs are the status callback URLs, each sealed with the key
	// ring (keyring.Ring.Open reads them; a row from before migration 002
	// may hold clear URLs until UpgradeLegacy seals them).
	CallbackURLs      []string `json:"callback_urls,omitempty"`
	SkipWaitingPeriod bool     `json:"skip_waiting_period,omitempty"`

	// ResultsURL is the results link given to the controller, as the caller
	// stored it (sealed with the key ring, so a database copy holds no link).
	ResultsURL string `json:"results_url,omitempty"`
	// ResultsCount and ResultsExpiresAt describe the results of an access
	// or portability request; ResultsExpiresAt is when its link stops working.
	ResultsCount     int       `json:"results_count,omitempty"`
	ResultsExpiresAt time.Time `json:"results_expires_at,omitzero"`

	// Resolution is the trace the identity resolution step wrote: an opaque
	// JSON document (PostgreSQL may reformat it).
	Resolution json.RawMessage `json:"resolution,omitempty"`

	// UpdatedAt is the time of the latest change to this record.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// ExpiresAt is when the record may be purged: ReceivedTime plus the
	// retention period, unless set at creation.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Key returns the request's key.
func (r Request) Key() Key { return Key{ControllerID: r.ControllerID, RequestID: r.RequestID} }

// Transition is one change of a request's status.
type Transition struct {
	At time.Time `json:"at"`
	// From is empty for the first transition, to pending.
	From   dsr.Status `json:"from"`
	To     dsr.Status `json:"to"`
	Reason string     `json:"reason,omitempty"`
}

// Forwarding is the state of a request at one destination (a Mixpanel project).
type Forwarding struct {
	Destination   string               `json:"destination"`
	Status        dsr.ForwardingStatus `json:"status"`
	StatusMessage string               `json:"status_message,omitempty"`
	// TaskID and TaskStatus are the destination's deletion task and its state.
	TaskID     string         `json:"task_id,omitempty"`
	TaskStatus dsr.TaskStatus `json:"task_status,omitempty"`
	UpdatedAt  time.Time      `json:"updated_at,omitzero"`
}

// CallbackAttempt is one attempt to deliver a status callback.
type CallbackAttempt struct {
	// URLHash is the keyed hash (PurposeCallbackURL) of the callback URL's
	// digest; Host is its host.
	URLHash string `json:"url_hash"`
	Host    string `json:"host,omitempty"`
	// Seq numbers the status changes of a request, from 1: the callback of
	// each change is delivered once, even when a status repeats (pending
	// again after a retry). Attempts from before migration 002 have 0.
	Seq int `json:"seq"`
	// RequestStatus is the status the callback announced.
	RequestStatus dsr.Status `json:"request_status"`
	// Attempt numbers the attempts to deliver one change to one URL, from 1.
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at,omitzero"`
	// HTTPStatus is the response's status code, 0 when there was none.
	HTTPStatus int    `json:"http_status,omitempty"`
	Error      string `json:"error,omitempty"`
	Delivered  bool   `json:"delivered"`
	// Permanent marks a failure that retrying cannot fix (the URL refused
	// the callback for good), so the status is not sent to that URL again.
	Permanent bool `json:"permanent,omitempty"`
}

// HashHex returns the hex SHA-256 of s: how results tokens (256 random bits,
// so an unkeyed hash reveals nothing) are kept in the ledger, and the digest
// of a value that keyed hashes are made of (see Digest).
func HashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
