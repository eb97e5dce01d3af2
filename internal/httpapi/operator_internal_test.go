package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// TestOperatorAuthed: an operator-only route admits an operator token and
// hands its name (never the token) to the handler; a controller token gets
// 403 and anything else 401.
func TestOperatorAuthed(t *testing.T) {
	dir := t.TempDir()
	keyPath, certPath, err := opendsr.WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := opendsr.LoadSigner(keyPath, certPath)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Signer: signer, Config: config.Config{
		APITokens: map[string]string{"tok-acme": "acme"}, OperatorTokens: map[string]string{"op-alice": "alice"},
	}})
	var seen string
	h := s.operatorAuthed(func(w http.ResponseWriter, r *http.Request) {
		seen = operatorOf(r)
		w.WriteHeader(http.StatusNoContent)
	})
	for bearer, want := range map[string]int{"op-alice": 204, "tok-acme": 403, "": 401, "op-bob": 401} {
		seen = ""
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v1/reports/2026-11", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		h(rec, req)
		if rec.Code != want {
			t.Errorf("bearer %q: %d, want %d", bearer, rec.Code, want)
		}
		if wantName := map[bool]string{true: "alice"}[want == 204]; seen != wantName {
			t.Errorf("bearer %q: handler saw operator %q, want %q", bearer, seen, wantName)
		}
	}
}
