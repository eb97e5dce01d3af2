package httpapi

import (
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/results"
)

// downloadResults serves an access or portability results bundle to the
// controller that owns the request: 404 for an unknown token, another
// controller's token, or a request that matched nothing; 410 once the link
// expired. The zip is signed like every other response.
func (s *Server) downloadResults(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	rec, err := s.ledger.ByResultsToken(r.Context(), token)
	if errors.Is(err, ledger.ErrNotFound) || (err == nil && rec.ControllerID != controllerOf(r)) {
		s.writeError(w, opendsr.NotFound())
		return
	}
	if err != nil {
		s.logger.Error("ledger read failed", "error", err)
		s.writeError(w, opendsr.Internal())
		return
	}
	if !rec.ResultsExpiresAt.After(time.Now()) {
		s.writeError(w, opendsr.Gone())
		return
	}
	bundle, _, err := s.results.Open(token)
	if errors.Is(err, results.ErrNotFound) {
		if rec.ResultsCount == 0 {
			s.writeError(w, &opendsr.Error{Code: http.StatusNotFound, Message: "No records matched the identities of this request",
				Errors: []opendsr.ErrorItem{{Domain: opendsr.ErrorDomain, Reason: opendsr.ReasonNotFound, Message: "no records matched"}}})
			return
		}
		s.writeError(w, opendsr.Gone())
		return
	}
	if err != nil {
		s.logger.Error("results store read failed", "error", err)
		s.writeError(w, opendsr.Internal())
		return
	}
	defer bundle.Close()
	sig, err := s.signStream(bundle)
	if err != nil {
		s.logger.Error("signing the results failed", "error", err)
		s.writeError(w, opendsr.Internal())
		return
	}
	opendsr.SetSignatureHeaders(w.Header(), s.cfg.ProcessorDomain, sig)
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="dsr-`+rec.RequestID+`.zip"`)
	w.Header().Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", rec.ResultsExpiresAt, bundle)
}

// signStream signs the whole bundle (read once for its digest) and rewinds it.
func (s *Server) signStream(f io.ReadSeeker) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return s.signer.SignDigest(h.Sum(nil))
}
