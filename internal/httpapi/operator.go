package httpapi

import (
	"context"
	"net/http"

	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// Operator authentication. Operators run the processor (OPERATOR_TOKENS,
// "token:operator-name"); controllers submit and follow their own requests
// (API_TOKENS). Routes that settle or inspect requests on the processor's side
// wrap their handler in operatorAuthed, or operatorOrController where the
// request's own controller may act too; the handler finds who acted with
// operatorOf and records that name, never the token.

type operatorKey struct{}

// operatorAuthed requires an operator's bearer token. The handler reads the
// operator's name with operatorOf. A controller token gets 403, anything else
// 401. Operators share the per-caller rate limit with controllers (keyed by
// "operator:<name>").
func (s *Server) operatorAuthed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name, ok := s.operators.match(r); ok {
			s.serveOperator(w, r, name, h)
			return
		}
		if _, ok := s.tokens.match(r); ok {
			s.writeError(w, opendsr.Forbidden("This route needs an operator token (OPERATOR_TOKENS)"))
			return
		}
		s.unauthorized(w)
	}
}

// operatorOrController admits an operator, who names the request's
// controller with the controller_id query parameter, or, when
// DSR_CONTROLLER_MAY_RESOLVE is true, the request's own controller with its
// API token. Without that setting a controller token gets 403.
func (s *Server) operatorOrController(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name, ok := s.operators.match(r); ok {
			controller := r.URL.Query().Get("controller_id")
			if controller == "" {
				s.writeError(w, opendsr.BadRequest("An operator names the request's controller with ?controller_id=",
					opendsr.ErrorItem{Reason: opendsr.ReasonRequired, Message: "controller_id is required", Location: "controller_id"}))
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), controllerKey{}, controller))
			s.serveOperator(w, r, name, h)
			return
		}
		if _, ok := s.tokens.match(r); ok {
			if !s.cfg.ControllerMayResolve {
				s.writeError(w, opendsr.Forbidden("Only an operator may do this (OPERATOR_TOKENS); set DSR_CONTROLLER_MAY_RESOLVE=true to let controllers settle their own requests"))
				return
			}
			s.authed(h)(w, r)
			return
		}
		s.unauthorized(w)
	}
}

// serveOperator applies the rate limit and calls h with the operator's name in the context.
func (s *Server) serveOperator(w http.ResponseWriter, r *http.Request, name string, h http.HandlerFunc) {
	if !s.allow(w, "operator:"+name) {
		return
	}
	h(w, r.WithContext(context.WithValue(r.Context(), operatorKey{}, name)))
}

// operatorOf returns the name of the operator who made the request, or ""
// when a controller made it.
func operatorOf(r *http.Request) string {
	name, _ := r.Context().Value(operatorKey{}).(string)
	return name
}

// actorOf names who acted, for the ledger: "operator <name>" or "controller <id>".
func actorOf(r *http.Request) string {
	if name := operatorOf(r); name != "" {
		return "operator " + name
	}
	return "controller " + controllerOf(r)
}
