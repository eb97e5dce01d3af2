package opendsr

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Identity types.
const (
	IdentityTypeControllerCustomerID   = "controller_customer_id"
	IdentityTypeAndroidAdvertisingID   = "android_advertising_id"
	IdentityTypeAndroidID              = "android_id"
	IdentityTypeEmail                  = "email"
	IdentityTypeFireAdvertisingID      = "fire_advertising_id"
	IdentityTypeIOSAdvertisingID       = "ios_advertising_id"
	IdentityTypeIOSVendorID            = "ios_vendor_id"
	IdentityTypeMicrosoftAdvertisingID = "microsoft_advertising_id"
	IdentityTypeMicrosoftPublisherID   = "microsoft_publisher_id"
	IdentityTypeRokuPublisherID        = "roku_publisher_id"
	IdentityTypeRokuAdvertisingID      = "roku_advertising_id"
)

// Identity formats. An empty identity_format means IdentityFormatRaw.
const (
	IdentityFormatRaw    = "raw"
	IdentityFormatSHA1   = "sha1"
	IdentityFormatMD5    = "md5"
	IdentityFormatSHA256 = "sha256"
)

// API versions accepted in api_version. An empty api_version means APIVersion1.
const (
	APIVersion1 = "1.0"
	APIVersion2 = "2.0"
)

// CCPA disclosure types for access requests, sent in the processor extension.
const (
	DisclosureData       = "data"
	DisclosureCategories = "categories"
	DisclosureSources    = "sources"
)

// IdentityTypes returns every supported identity_type.
func IdentityTypes() []string {
	return []string{
		IdentityTypeControllerCustomerID, IdentityTypeAndroidAdvertisingID, IdentityTypeAndroidID,
		IdentityTypeEmail, IdentityTypeFireAdvertisingID, IdentityTypeIOSAdvertisingID,
		IdentityTypeIOSVendorID, IdentityTypeMicrosoftAdvertisingID, IdentityTypeMicrosoftPublisherID,
		IdentityTypeRokuPublisherID, IdentityTypeRokuAdvertisingID,
	}
}

// IdentityFormats returns every supported identity_format.
func IdentityFormats() []string {
	return []string{IdentityFormatRaw, IdentityFormatSHA1, IdentityFormatMD5, IdentityFormatSHA256}
}

// IsAdvertisingID reports whether identityType is a mobile or TV advertising
// id, whose raw form is a UUID.
func IsAdvertisingID(identityType string) bool {
	switch identityType {
	case IdentityTypeIOSAdvertisingID, IdentityTypeAndroidAdvertisingID, IdentityTypeFireAdvertisingID,
		IdentityTypeMicrosoftAdvertisingID, IdentityTypeRokuAdvertisingID:
		return true
	}
	return false
}

// Time is a timestamp written on the wire as RFC 3339 in UTC with whole
// seconds (e.g. "2026-01-31T09:30:00Z"). It reads any RFC 3339 timestamp, and
// a JSON null or "" as the zero Time. Fields of this type carry the
// `omitzero` option so an unset time is left out.
type Time struct{ time.Time }

// NewTime wraps t as a wire Time.
func NewTime(t time.Time) Time { return Time{Time: t} }

// FormatTime formats t the way Time is written on the wire.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// MarshalJSON writes the time as an RFC 3339 UTC string with seconds.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(FormatTime(t.Time))
}

// UnmarshalJSON reads an RFC 3339 string, null or "".
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("opendsr: time must be an RFC 3339 string: %w", err)
	}
	if s == "" {
		*t = Time{}
		return nil
	}
	parsed, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("opendsr: time is not RFC 3339: %w", err)
	}
	*t = Time{Time: parsed}
	return nil
}

// Identity is one of the subject's identities.
type Identity struct {
	IdentityType  string `json:"identity_type"`
	IdentityValue string `json:"identity_value"`
	// IdentityFormat is raw, sha1, md5 or sha256; empty means raw.
	IdentityFormat string `json:"identity_format,omitempty"`
}

// EffectiveFormat returns IdentityFormat, or raw when it is empty.
func (id Identity) EffectiveFormat() string {
	if id.IdentityFormat == "" {
		return IdentityFormatRaw
	}
	return id.IdentityFormat
}

// Request is an OpenDSR subject request, as POSTed by a controller.
//
// SubmittedTime is kept as the submitted string so that Validate can name it
// when it is not RFC 3339; Submitted parses it.
type Request struct {
	SubjectRequestID   string     `json:"subject_request_id"`
	SubjectRequestType string     `json:"subject_request_type"`
	SubmittedTime      string     `json:"submitted_time"`
	SubjectIdentities  []Identity `json:"subject_identities"`
	// APIVersion is "1.0" or "2.0"; empty means "1.0".
	APIVersion         string   `json:"api_version,omitempty"`
	StatusCallbackURLs []string `json:"status_callback_urls,omitempty"`
	Regulation         string   `json:"regulation"`
	// Extensions is keyed by processor domain. Only the key equal to
	// dsrflow's processor domain is read (see ProcessorExtension); the others
	// are kept and ignored.
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// Submitted parses SubmittedTime as RFC 3339.
func (r Request) Submitted() (time.Time, error) {
	t, err := time.Parse(time.RFC3339, r.SubmittedTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("opendsr: submitted_time is not RFC 3339: %w", err)
	}
	return t, nil
}

// EffectiveAPIVersion returns APIVersion, or "1.0" when it is empty.
func (r Request) EffectiveAPIVersion() string {
	if r.APIVersion == "" {
		return APIVersion1
	}
	return r.APIVersion
}

// WithDefaults returns a copy of r with api_version and every
// identity_format filled in with their defaults. The identities slice is
// copied, never shared with r.
func (r Request) WithDefaults() Request {
	r.APIVersion = r.EffectiveAPIVersion()
	ids := make([]Identity, len(r.SubjectIdentities))
	for i, id := range r.SubjectIdentities {
		id.IdentityFormat = id.EffectiveFormat()
		ids[i] = id
	}
	r.SubjectIdentities = ids
	return r
}

// ProcessorExtension is the object a controller sends in
// extensions[<processor domain>].
type ProcessorExtension struct {
	// SkipWaitingPeriod skips the erasure cancellation window. It is
	// accepted, and ignored, on other request types.
	SkipWaitingPeriod bool `json:"skip_waiting_period,omitempty"`
	// DisclosureType is data, categories or sources, for CCPA access and
	// portability requests only. Empty means data.
	DisclosureType string `json:"disclosure_type,omitempty"`
}

// ProcessorExtension parses r.Extensions[processorDomain]. An absent or null
// entry gives the zero ProcessorExtension. The error, if any, is an *Error
// (HTTP 400) naming the offending field.
func (r Request) ProcessorExtension(processorDomain string) (ProcessorExtension, error) {
	ext, items := parseExtension(r, processorDomain)
	if len(items) > 0 {
		return ext, badRequestFromItems(items)
	}
	return ext, nil
}

// EncodeRequest returns the encoded_request of a CreatedResponse: the
// standard base64 of the raw request body.
func EncodeRequest(rawBody []byte) string { return base64.StdEncoding.EncodeToString(rawBody) }

// CreatedResponse is the body of the 201 answer to a new request.
type CreatedResponse struct {
	ControllerID           string `json:"controller_id"`
	ExpectedCompletionTime Time   `json:"expected_completion_time,omitzero"`
	ReceivedTime           Time   `json:"received_time,omitzero"`
	// EncodedRequest is EncodeRequest of the raw request body.
	EncodedRequest   string `json:"encoded_request"`
	SubjectRequestID string `json:"subject_request_id"`
	// Extensions is keyed by processor domain; dsrflow's own entry holds a
	// CreatedExtension when the request carried other processors' extensions.
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// CreatedExtension is what dsrflow reports in extensions[<processor domain>]
// of a CreatedResponse.
type CreatedExtension struct {
	// IgnoredExtensions are the request's extensions entries dsrflow did not
	// read (other processors' domains), sorted.
	IgnoredExtensions []string `json:"ignored_extensions"`
}

// IgnoredExtensions returns the keys of r.Extensions other than
// processorDomain, sorted: the entries dsrflow does not read.
func (r Request) IgnoredExtensions(processorDomain string) []string {
	var out []string
	for k := range r.Extensions {
		if k != processorDomain {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// StatusResponse is the body of GET requests/{id}.
type StatusResponse struct {
	ControllerID           string `json:"controller_id"`
	ExpectedCompletionTime Time   `json:"expected_completion_time,omitzero"`
	SubjectRequestID       string `json:"subject_request_id"`
	RequestStatus          string `json:"request_status"`
	APIVersion             string `json:"api_version,omitempty"`
	ResultsURL             string `json:"results_url,omitempty"`
	ResultsCount           int    `json:"results_count,omitempty"`
	// Extensions is keyed by processor domain; dsrflow's own entry holds a
	// StatusExtension.
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// StatusExtension is what dsrflow reports in extensions[<processor domain>]
// of a StatusResponse.
type StatusExtension struct {
	// DueTime is the statutory deadline (see DueTime).
	DueTime Time `json:"due_time,omitzero"`
	// StatusReason says why the request is in its status (e.g. why it failed).
	StatusReason string       `json:"status_reason,omitempty"`
	Forwarding   []Forwarding `json:"forwarding,omitempty"`
	// Resolution is the identity resolution trace: which input identities
	// matched which of the controller's profiles, the rule applied, and the
	// reason per destination, without identity values (owning controller only).
	Resolution json.RawMessage `json:"resolution,omitempty"`
	// CancellableUntil is the end of an erasure's waiting period, while the
	// request is pending in it (a dsrflow addition).
	CancellableUntil Time `json:"cancellable_until,omitzero"`
	// ResultsExpiresAt is when results_url stops working (a dsrflow addition).
	ResultsExpiresAt Time `json:"results_expires_at,omitzero"`
}

// Forwarding is the state of a request at one destination, as GET reports it.
type Forwarding struct {
	Destination string `json:"destination"`
	// Status is pending, skipped, sent or failed.
	Status        string `json:"status"`
	StatusMessage string `json:"status_message,omitempty"`
	TaskID        string `json:"task_id,omitempty"`
	TaskStatus    string `json:"task_status,omitempty"`
}

// Callback is the body POSTed to each status callback URL on every status
// change.
type Callback struct {
	ControllerID           string `json:"controller_id"`
	ExpectedCompletionTime Time   `json:"expected_completion_time,omitzero"`
	StatusCallbackURL      string `json:"status_callback_url"`
	SubjectRequestID       string `json:"subject_request_id"`
	RequestStatus          string `json:"request_status"`
	ResultsURL             string `json:"results_url,omitempty"`
	ResultsCount           int    `json:"results_count,omitempty"`
	APIVersion             string `json:"api_version,omitempty"`
	// Extensions is keyed by processor domain; dsrflow's own entry holds a
	// CallbackExtension.
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// Discovery is the body of GET discovery.
type Discovery struct {
	APIVersion                   string              `json:"api_version"`
	SupportedIdentities          []SupportedIdentity `json:"supported_identities"`
	SupportedSubjectRequestTypes []string            `json:"supported_subject_request_types"`
	// ProcessorCertificate is the URL of the PEM certificate that verifies
	// X-OpenDSR-Signature.
	ProcessorCertificate string `json:"processor_certificate"`
}

// SupportedIdentity is one identity type and format a processor accepts.
type SupportedIdentity struct {
	IdentityType   string `json:"identity_type"`
	IdentityFormat string `json:"identity_format"`
}
