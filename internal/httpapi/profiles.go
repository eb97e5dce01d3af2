package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// MaxProfilesBody is the largest body POST /v1/profiles accepts (32 MiB,
// about 100,000 profiles); larger files go through several calls or
// `dsr profiles import`.
const MaxProfilesBody = 32 << 20

// ProfilesContentType is the media type of POST /v1/profiles: JSON Lines in
// the `dsr profiles import` format.
const ProfilesContentType = "application/x-ndjson"

// ProfilesReport answers POST /v1/profiles. It holds line numbers and
// reasons, never a value from the body.
type ProfilesReport struct {
	Imported   int `json:"imported"`
	Suppressed int `json:"suppressed"`
	// SuppressedLines are the lines of erased people that were not imported.
	SuppressedLines []int             `json:"suppressed_lines"`
	Rejected        []ProfileRejected `json:"rejected"`
}

// ProfileRejected is one line of the body that was not imported.
type ProfileRejected struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// importProfiles is POST /v1/profiles: the token's controller imports its
// profiles (upsert, as `dsr profiles import --controller`). The body is read
// whole (bounded) before anything is written, so a body over the limit
// writes nothing.
func (s *Server) importProfiles(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != ProfilesContentType {
		s.writeError(w, opendsr.BadRequest("Content-Type must be "+ProfilesContentType, opendsr.ErrorItem{
			Reason: opendsr.ReasonUnsupportedMediaType, Message: "Content-Type must be " + ProfilesContentType, Location: "Content-Type"}))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxProfilesBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		msg := fmt.Sprintf("The body is larger than %d bytes: send the profiles in several calls", MaxProfilesBody)
		s.writeError(w, opendsr.BadRequest(msg, opendsr.ErrorItem{Reason: opendsr.ReasonTooLarge, Message: msg, Location: "body"}))
		return
	case err != nil:
		s.writeError(w, opendsr.BadRequest("The body could not be read", opendsr.ErrorItem{
			Reason: opendsr.ReasonMalformed, Message: "the body could not be read", Location: "body"}))
		return
	case len(bytes.TrimSpace(body)) == 0:
		s.writeError(w, opendsr.BadRequest("The body holds no profile", opendsr.ErrorItem{
			Reason: opendsr.ReasonRequired, Message: "the body holds no profile (one JSON object per line)", Location: "body"}))
		return
	}
	rep, err := s.profiles.Import(r.Context(), controllerOf(r), bytes.NewReader(body), identity.JSONL, identity.ImportOptions{})
	if err != nil {
		// The error names no value, but it is the server's business.
		s.logger.Error("profile import failed", "controller", controllerOf(r), "imported", rep.Imported, "error", err)
		s.writeError(w, opendsr.Internal())
		return
	}
	out := ProfilesReport{Imported: rep.Imported, Suppressed: rep.Suppressed, SuppressedLines: rep.SuppressedLines, Rejected: []ProfileRejected{}}
	if out.SuppressedLines == nil {
		out.SuppressedLines = []int{}
	}
	for _, e := range rep.Errors {
		out.Rejected = append(out.Rejected, ProfileRejected{Line: e.Line, Reason: e.Problem})
	}
	s.writeJSON(w, http.StatusOK, out)
}
