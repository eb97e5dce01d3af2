package httpapi

import (
	"errors"
	"net/http"

	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/receipt"
)

// issuer builds the signed receipts this server serves.
func (s *Server) issuer() *receipt.Issuer {
	return &receipt.Issuer{Ledger: s.ledger, Signer: s.signer, ProcessorDomain: s.cfg.ProcessorDomain, WaitingPeriod: s.cfg.WaitingPeriod}
}

// receipt serves the signed receipt of the token's controller's request once
// it is final: a JWS in the flattened JSON serialization. Another
// controller's request, an unknown one and an open one are 404s.
func (s *Server) receipt(w http.ResponseWriter, r *http.Request) {
	jws, err := s.issuer().Issue(r.Context(), keyOf(r))
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		s.writeError(w, opendsr.NotFound())
		return
	case errors.Is(err, receipt.ErrNotFinal):
		e := opendsr.NotFound()
		e.Message = "No receipt yet: the request has not reached a final status"
		s.writeError(w, e)
		return
	case err != nil:
		s.logger.Error("issuing a receipt failed", "subject_request_id", r.PathValue("id"), "error", err)
		s.writeError(w, opendsr.Internal())
		return
	}
	w.Header().Set("Content-Type", receipt.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	if err := s.signer.SetHeaders(w.Header(), s.cfg.ProcessorDomain, jws); err != nil {
		s.logger.Error("signing failed", "error", err)
	}
	_, _ = w.Write(jws)
}
