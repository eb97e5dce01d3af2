package requests

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// MaxExtensionReason bounds the reason of an extension, which the controller
// is told in a callback.
const MaxExtensionReason = 1000

// Extend extends a request's statutory due time once, within its
// regulation's limit (GDPR two further months, CCPA 45 days), with the reason
// the controller is told; by names who extended it. Refused (409) a second
// time or once the request is final.
func (s *Service) Extend(ctx context.Context, key ledger.Key, reason, by string) (opendsr.StatusResponse, *opendsr.Error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return opendsr.StatusResponse{}, opendsr.BadRequest("reason is required: the controller is told why the due time moves", opendsr.ErrorItem{
			Reason: opendsr.ReasonRequired, Message: "reason is required", Location: "reason"})
	case utf8.RuneCountInString(reason) > MaxExtensionReason || !utf8.ValidString(reason):
		return opendsr.StatusResponse{}, opendsr.BadRequest("reason is too long or not UTF-8", opendsr.ErrorItem{
			Reason: opendsr.ReasonInvalid, Message: "reason must be UTF-8 text of at most 1000 characters", Location: "reason"})
	}
	resp, oerr := s.Status(ctx, key)
	if oerr != nil {
		return opendsr.StatusResponse{}, oerr
	}
	switch resp.RequestStatus {
	case string(dsr.StatusCompleted), string(dsr.StatusCancelled):
		return resp, opendsr.Conflict("The request already finished (" + resp.RequestStatus + "); its due time cannot be extended")
	}
	var res dsr.ExtendResult
	if err := s.update(ctx, key, dsr.UpdateExtend, &res, dsr.Extension{Reason: reason, Operator: by}); err != nil {
		return opendsr.StatusResponse{}, s.updateError(err, "extend")
	}
	return s.Status(ctx, key)
}

// RetryWindow is how long a failed request stays open for an operator's
// retry (for the deadline gauges and dsr list --due-within).
const RetryWindow = retryWindow
