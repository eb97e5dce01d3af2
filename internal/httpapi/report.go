package httpapi

import (
	"bytes"
	"net/http"
	"time"

	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/report"
)

// monthlyReport serves the monthly compliance report to operators: one
// self-contained HTML page (GET /v1/reports/{YYYY-MM}).
func (s *Server) monthlyReport(w http.ResponseWriter, r *http.Request) {
	month := r.PathValue("month")
	if _, _, err := report.ParseMonth(month); err != nil {
		s.writeError(w, opendsr.BadRequest("The month must be YYYY-MM", opendsr.ErrorItem{
			Reason: opendsr.ReasonInvalid, Message: "month must be YYYY-MM", Location: "month"}))
		return
	}
	rep, err := report.Build(r.Context(), s.ledger, month, time.Now())
	if err != nil {
		s.logger.Error("building the monthly report failed", "month", month, "error", err)
		s.writeError(w, opendsr.Internal())
		return
	}
	var page bytes.Buffer
	if err := report.Render(&page, rep, s.cfg.ProcessorDomain); err != nil {
		s.logger.Error("rendering the monthly report failed", "month", month, "error", err)
		s.writeError(w, opendsr.Internal())
		return
	}
	body := page.Bytes()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", report.ContentSecurityPolicy)
	if err := s.signer.SetHeaders(w.Header(), s.cfg.ProcessorDomain, body); err != nil {
		s.logger.Error("signing failed", "error", err)
	}
	_, _ = w.Write(body)
}
