package httpapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/httpapi"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/requests"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRequestLogHoldsNoPathValue: a controller (or a script of one) that
// puts a subject's email or customer id where the request id goes gets its
// 404, and the API's request log does not keep the value: the log names a
// path's request id only when it is one (a UUID).
func TestRequestLogHoldsNoPathValue(t *testing.T) {
	dir := t.TempDir()
	keyPath, certPath, err := opendsr.WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := opendsr.LoadSigner(keyPath, certPath)
	if err != nil {
		t.Fatal(err)
	}
	store, err := ledger.Open(context.Background(), filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ring, err := keyring.Parse(devstack.TestEncryptionKeys)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{ProcessorDomain: "dsr.example", APITokens: map[string]string{"tok-acme": "acme"},
		OperatorTokens: map[string]string{"tok-op": "olga"}}
	var logs syncBuffer
	h := httpapi.New(httpapi.Options{Settings: httpapi.SettingsFrom(cfg), Signer: signer, Ledger: store, Keys: ring,
		Logger:   slog.New(slog.NewJSONHandler(&logs, nil)),
		Requests: &requests.Service{Settings: requests.SettingsFrom(cfg), Ledger: store, Keys: ring}}).Handler()

	const email, customer = "kim.logged@example.com", "cust-logged-8812"
	known := devstack.NewRequestID()
	for _, c := range []struct{ method, path, token string }{
		{http.MethodGet, "/v1/requests/" + email, "tok-acme"},
		{http.MethodDelete, "/v1/opendsr_requests/" + customer, "tok-acme"},
		{http.MethodPost, "/v1/requests/" + email + "/resolve?controller_id=acme", "tok-op"},
		{http.MethodGet, "/v1/requests/" + email, ""},
		{http.MethodGet, "/v1/requests/" + known, "tok-acme"},
	} {
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(`{"profile_id":"p1"}`))
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK || rec.Code == http.StatusAccepted {
			t.Errorf("%s %s: %d", c.method, c.path, rec.Code)
		}
	}
	out := logs.String()
	if !strings.Contains(out, known) {
		t.Fatalf("the log does not name a real request id, so it proves nothing:\n%s", out)
	}
	for _, v := range []string{email, customer, "kim.logged"} {
		if strings.Contains(out, v) {
			t.Errorf("the API log holds %q:\n%s", v, out)
		}
	}
}
