package opendsr

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// ErrorDomain is the domain of every ErrorItem built by this package.
const ErrorDomain = "opendsr"

// Reasons used in ErrorItem.Reason.
const (
	ReasonRequired              = "required"
	ReasonInvalid               = "invalid"
	ReasonDuplicateIdentityType = "duplicate_identity_type"
	ReasonTooMany               = "too_many"
	ReasonUnsupported           = "unsupported"
	ReasonMalformed             = "malformed"
	ReasonTooLarge              = "too_large"
	ReasonUnsupportedMediaType  = "unsupported_media_type"
	ReasonUnauthorized          = "unauthorized"
	ReasonForbidden             = "forbidden"
	ReasonNotFound              = "not_found"
	ReasonConflict              = "conflict"
	ReasonRateLimited           = "rate_limited"
	ReasonGone                  = "gone"
	ReasonInternal              = "internal"
)

// DuplicateIdentityTypeMessage is the message of a duplicate_identity_type
// error, worded as mParticle words it.
const DuplicateIdentityTypeMessage = "Only one identity of each identity type is allowed per request"

// ErrorItem is one entry of the error object's errors[].
type ErrorItem struct {
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Location is the path of the offending field, such as
	// subject_identities[1].identity_value. It is a dsrflow addition (in the
	// style of Google's error objects) and empty when no field is at fault.
	Location string `json:"location,omitempty"`
}

// Error is the OpenDSR error object. It marshals as
// {"error":{"code":400,"message":"...","errors":[...]}} where code is the
// HTTP status the error is sent with.
type Error struct {
	Code    int
	Message string
	Errors  []ErrorItem
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("opendsr: %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

type errorBody struct {
	Code    int         `json:"code"`
	Message string      `json:"message"`
	Errors  []ErrorItem `json:"errors"`
}

type errorEnvelope struct {
	Error errorBody `json:"error"`
}

// MarshalJSON writes the OpenDSR error envelope. errors[] is always an array.
func (e *Error) MarshalJSON() ([]byte, error) {
	items := e.Errors
	if items == nil {
		items = []ErrorItem{}
	}
	return json.Marshal(errorEnvelope{Error: errorBody{Code: e.Code, Message: e.Message, Errors: items}})
}

// UnmarshalJSON reads the OpenDSR error envelope.
func (e *Error) UnmarshalJSON(b []byte) error {
	var env errorEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("opendsr: decoding error object: %w", err)
	}
	*e = Error{Code: env.Error.Code, Message: env.Error.Message, Errors: env.Error.Errors}
	return nil
}

func newError(code int, msg, reason string) *Error {
	return &Error{
		Code:    code,
		Message: msg,
		Errors:  []ErrorItem{{Domain: ErrorDomain, Reason: reason, Message: msg}},
	}
}

// BadRequest returns a 400 error with msg and the given items. Items with an
// empty Domain get ErrorDomain.
func BadRequest(msg string, items ...ErrorItem) *Error {
	out := make([]ErrorItem, len(items))
	for i, it := range items {
		if it.Domain == "" {
			it.Domain = ErrorDomain
		}
		out[i] = it
	}
	if len(out) == 0 {
		out = append(out, ErrorItem{Domain: ErrorDomain, Reason: ReasonInvalid, Message: msg})
	}
	return &Error{Code: http.StatusBadRequest, Message: msg, Errors: out}
}

// badRequestFromItems builds the 400 for a list of field errors: its message
// is the only item's message, or a count of the problems.
func badRequestFromItems(items []ErrorItem) *Error {
	msg := items[0].Message
	if len(items) > 1 {
		msg = fmt.Sprintf("The request has %d invalid fields", len(items))
	}
	return BadRequest(msg, items...)
}

// Unauthorized returns the 401 error sent without a valid bearer token.
func Unauthorized() *Error {
	return newError(http.StatusUnauthorized, "A valid bearer token is required", ReasonUnauthorized)
}

// Forbidden returns the 403 error for valid credentials that may not do what
// was asked, such as a controller token on an operator route; msg says which
// credentials are needed.
func Forbidden(msg string) *Error {
	return newError(http.StatusForbidden, msg, ReasonForbidden)
}

// NotFound returns the 404 error for an unknown (or another controller's) request.
func NotFound() *Error {
	return newError(http.StatusNotFound, "Subject request not found", ReasonNotFound)
}

// Conflict returns a 409 error with msg, e.g. for a duplicate request or a
// cancellation that came too late.
func Conflict(msg string) *Error {
	return newError(http.StatusConflict, msg, ReasonConflict)
}

// TooManyRequests returns the 429 error; callers add a Retry-After header.
func TooManyRequests() *Error {
	return newError(http.StatusTooManyRequests, "Too many requests", ReasonRateLimited)
}

// Gone returns the 410 error for expired results.
func Gone() *Error {
	return newError(http.StatusGone, "The results are no longer available", ReasonGone)
}

// Internal returns a 500 error with a generic message and no detail.
func Internal() *Error {
	return newError(http.StatusInternalServerError, "Internal error", ReasonInternal)
}

// PayloadTooLarge returns the error for a body over MaxBodyBytes. It is a
// 400, as every bad-input answer of the API is, with reason too_large.
func PayloadTooLarge() *Error {
	return newError(http.StatusBadRequest,
		fmt.Sprintf("The request body is larger than %d bytes", MaxBodyBytes), ReasonTooLarge)
}

// UnsupportedMediaType returns the error for a body that is not
// application/json: a 400 with reason unsupported_media_type.
func UnsupportedMediaType() *Error {
	return newError(http.StatusBadRequest, "Content-Type must be application/json", ReasonUnsupportedMediaType)
}
