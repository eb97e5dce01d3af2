package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// extend extends a request's statutory due time once (operator only; the
// operator names the controller with ?controller_id=): {"reason": "..."}.
// It answers 202 with the request's status, whose expected_completion_time
// and extensions.<domain>.due_time are the new due time.
func (s *Server) extend(w http.ResponseWriter, r *http.Request) {
	controller := r.URL.Query().Get("controller_id")
	if controller == "" {
		s.writeError(w, opendsr.BadRequest("An operator names the request's controller with ?controller_id=",
			opendsr.ErrorItem{Reason: opendsr.ReasonRequired, Message: "controller_id is required", Location: "controller_id"}))
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&body); err != nil {
		s.writeError(w, opendsr.BadRequest("The body must be {\"reason\": \"...\"}", opendsr.ErrorItem{
			Reason: opendsr.ReasonMalformed, Message: "the body is not a JSON object with reason", Location: "body"}))
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), controllerKey{}, controller))
	resp, err := s.requests.Extend(r.Context(), keyOf(r), body.Reason, actorOf(r))
	s.answer(w, http.StatusAccepted, resp, err)
}
