package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

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
	s := New(Options{Signer: signer, Settings: Settings{
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

// TestFailureLimitsStayBounded: the failure buckets never exceed their bound,
// and refilled ones are forgotten to make room.
func TestFailureLimitsStayBounded(t *testing.T) {
	f := newFailureLimits(time.Nanosecond, 1) // refills at once
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	for i := range authFailureTracked + 50 {
		req.RemoteAddr = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String() + ":1"
		f.failed(req)
	}
	if n := len(f.buckets); n > authFailureTracked {
		t.Errorf("%d buckets, want at most %d", n, authFailureTracked)
	}
	slow := newFailureLimits(time.Hour, 1) // never refills during the test
	for i := range authFailureTracked + 50 {
		req.RemoteAddr = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String() + ":1"
		slow.failed(req)
	}
	if n := len(slow.buckets); n != authFailureTracked {
		t.Errorf("%d buckets, want exactly %d", n, authFailureTracked)
	}
	if slow.wait(req) != 0 {
		t.Error("an address beyond the bound is throttled although it was not counted")
	}
	req.RemoteAddr = "10.0.0.0:1"
	if slow.wait(req) == 0 {
		t.Error("a counted address is not throttled")
	}
}
