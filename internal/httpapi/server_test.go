package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/httpapi"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/requests"
	"github.com/dsrflow/dsrflow/internal/results"
)

type fixture struct {
	srv     *httptest.Server
	ledger  *ledger.Store
	results *results.Store
	cert    []byte
}

func newFixture(t *testing.T, rate float64) *fixture {
	t.Helper()
	return newFixtureWith(t, config.Config{APIRateLimit: rate})
}

// newFixtureWith serves the API with cfg's rate limit and codec settings.
func newFixtureWith(t *testing.T, cfg config.Config) *fixture {
	t.Helper()
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
	bundles, err := results.OpenStore(filepath.Join(dir, "results"), results.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ProcessorDomain, cfg.APIRateBurst = "dsr.example", 2
	cfg.APITokens = map[string]string{"tok-acme": "acme", "tok-globex": "globex"}
	cfg.CodecTokens = append(cfg.CodecTokens, config.NewSecret("tok-codec"))
	ring, err := keyring.Parse(devstack.TestEncryptionKeys)
	if err != nil {
		t.Fatal(err)
	}
	s := httpapi.New(httpapi.Options{Config: cfg, Signer: signer, Ledger: store, Results: bundles, Keys: ring,
		Requests: &requests.Service{Config: cfg, Ledger: store}})
	f := &fixture{srv: httptest.NewServer(s.Handler()), ledger: store, results: bundles, cert: signer.CertificatePEM()}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := opendsr.Verify(f.cert, body, resp.Header.Get(opendsr.HeaderSignature)); err != nil {
		t.Errorf("GET %s: response not signed: %v", path, err)
	}
	return resp, body
}

// request records an access request of acme with results.
func (f *fixture) request(t *testing.T, id, token string, count int, expires time.Time, bundle bool) {
	t.Helper()
	ctx := context.Background()
	key := ledger.Key{ControllerID: "acme", RequestID: id}
	if _, _, err := f.ledger.CreateRequest(ctx, ledger.Request{ControllerID: "acme", RequestID: id, Type: "access", Regulation: "gdpr"}); err != nil {
		t.Fatal(err)
	}
	if err := f.ledger.SetResults(ctx, key, token, "https://x/v1/results/"+token, count, expires); err != nil {
		t.Fatal(err)
	}
	if bundle {
		if _, err := f.results.Write(ctx, token, func(w io.Writer) error { _, err := w.Write([]byte("PK-bundle")); return err }); err != nil {
			t.Fatal(err)
		}
	}
}

func token(t *testing.T) string {
	tok, err := results.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestResultsLinks(t *testing.T) {
	f := newFixture(t, 0)
	live, expired, nothing := token(t), token(t), token(t)
	f.request(t, "11111111-1111-4111-8111-111111111111", live, 3, time.Now().Add(time.Hour), true)
	f.request(t, "22222222-2222-4222-8222-222222222222", expired, 3, time.Now().Add(-time.Minute), true)
	f.request(t, "33333333-3333-4333-8333-333333333333", nothing, 0, time.Now().Add(time.Hour), false)

	cases := []struct {
		name, token, bearer string
		code                int
	}{
		{"owner downloads", live, "tok-acme", 200},
		{"no bearer", live, "", 401},
		{"another controller", live, "tok-globex", 404},
		{"expired link", expired, "tok-acme", 410},
		{"nothing matched", nothing, "tok-acme", 404},
		{"unknown token", token(t), "tok-acme", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := f.get(t, "/v1/results/"+c.token, c.bearer)
			if resp.StatusCode != c.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.code, body)
			}
			if c.code == 200 {
				if string(body) != "PK-bundle" || resp.Header.Get("Content-Type") != "application/zip" {
					t.Errorf("body %q type %q", body, resp.Header.Get("Content-Type"))
				}
				return
			}
			var e opendsr.Error
			if err := json.Unmarshal(body, &e); err != nil || e.Code != c.code {
				t.Errorf("error object %s", body)
			}
		})
	}
}

func TestPerControllerRateLimit(t *testing.T) {
	f := newFixture(t, 1) // 1 request/s, burst 2
	codes := map[int]int{}
	var retryAfter string
	for range 5 {
		resp, _ := f.get(t, "/v1/requests/11111111-1111-4111-8111-111111111111", "tok-acme")
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Fatalf("codes %v, want some 429", codes)
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 {
		t.Errorf("Retry-After %q, want whole seconds", retryAfter)
	}
	// Another controller has its own budget.
	if resp, _ := f.get(t, "/v1/requests/11111111-1111-4111-8111-111111111111", "tok-globex"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("globex: %d, want 404 (not limited by acme's use)", resp.StatusCode)
	}
}

func TestPublicRoutes(t *testing.T) {
	f := newFixture(t, 0)
	resp, body := f.get(t, "/v1/discovery", "")
	var d opendsr.Discovery
	if resp.StatusCode != 200 || json.Unmarshal(body, &d) != nil || len(d.SupportedSubjectRequestTypes) != 3 || d.ProcessorCertificate == "" {
		t.Errorf("discovery: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.get(t, "/v1/cert.pem", ""); resp.StatusCode != 200 || string(body) != string(f.cert) {
		t.Errorf("cert.pem: %d", resp.StatusCode)
	}
	if resp, _ := f.get(t, "/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	if resp, body := f.get(t, "/nope", "tok-acme"); resp.StatusCode != 404 || !json.Valid(body) {
		t.Errorf("unknown route: %d %s", resp.StatusCode, body)
	}
}

// TestCodecEndpointNeedsAnOperator: the Web UI codec decodes histories, so it
// answers an operator token, or a browser on this machine only when allowed.
func TestCodecEndpointNeedsAnOperator(t *testing.T) {
	encode := func(f *fixture, bearer string) int {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/codec/encode", strings.NewReader(`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"InRlc3Qi"}]}`))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	strict := newFixtureWith(t, config.Config{CodecTokens: []config.Secret{config.NewSecret("op-token")}})
	if got := encode(strict, ""); got != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", got)
	}
	if got := encode(strict, "tok-acme"); got != http.StatusUnauthorized {
		t.Errorf("a controller's token: %d, want 401", got)
	}
	if got := encode(strict, "op-token"); got != http.StatusOK {
		t.Errorf("operator token: %d, want 200", got)
	}
	loopback := newFixtureWith(t, config.Config{CodecAllowLoopback: true})
	if got := encode(loopback, ""); got != http.StatusOK {
		t.Errorf("loopback allowed: %d, want 200", got)
	}
}

// post sends a signed-answer POST with a JSON body and returns the status and body.
func (f *fixture) post(t *testing.T, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := opendsr.Verify(f.cert, b, resp.Header.Get(opendsr.HeaderSignature)); err != nil {
		t.Errorf("POST %s: response not signed: %v", path, err)
	}
	return resp, b
}

// TestSettlingNeedsAnOperator: resolve and retry answer an operator token
// (naming the controller), a controller's own token only with
// DSR_CONTROLLER_MAY_RESOLVE, and nobody else. The request id is unknown, so
// an admitted call ends in 404 from the ledger: authentication passed.
func TestSettlingNeedsAnOperator(t *testing.T) {
	const id = "44444444-4444-4444-8444-444444444444"
	strict := newFixtureWith(t, config.Config{OperatorTokens: map[string]string{"op-alice": "alice"}})
	lenient := newFixtureWith(t, config.Config{OperatorTokens: map[string]string{"op-alice": "alice"}, ControllerMayResolve: true})
	cases := []struct {
		name   string
		f      *fixture
		bearer string
		query  string
		code   int
		reason string
	}{
		{"no token", strict, "", "", 401, opendsr.ReasonUnauthorized},
		{"unknown token", strict, "nope", "", 401, opendsr.ReasonUnauthorized},
		{"controller token", strict, "tok-acme", "", 403, opendsr.ReasonForbidden},
		{"codec-only token is no operator", strict, "tok-codec", "?controller_id=acme", 401, opendsr.ReasonUnauthorized},
		{"operator without controller_id", strict, "op-alice", "", 400, opendsr.ReasonRequired},
		{"operator", strict, "op-alice", "?controller_id=acme", 404, opendsr.ReasonNotFound},
		{"controller allowed to settle", lenient, "tok-acme", "", 404, opendsr.ReasonNotFound},
		{"operator when controllers may settle too", lenient, "op-alice", "?controller_id=acme", 404, opendsr.ReasonNotFound},
	}
	for _, c := range cases {
		for _, action := range []string{"resolve", "retry"} {
			t.Run(c.name+"/"+action, func(t *testing.T) {
				resp, body := c.f.post(t, "/v1/requests/"+id+"/"+action+c.query, c.bearer, `{"profile_id":"p1"}`)
				var e opendsr.Error
				if resp.StatusCode != c.code || json.Unmarshal(body, &e) != nil || e.Code != c.code || len(e.Errors) == 0 || e.Errors[0].Reason != c.reason {
					t.Fatalf("status %d, want %d with reason %s: %s", resp.StatusCode, c.code, c.reason, body)
				}
				if strings.Contains(string(body), "op-alice") || strings.Contains(string(body), "tok-acme") {
					t.Errorf("a token was echoed: %s", body)
				}
			})
		}
	}
}

// TestOperatorTokenOpensTheCodec: an operator token is good for the codec too.
func TestOperatorTokenOpensTheCodec(t *testing.T) {
	f := newFixtureWith(t, config.Config{OperatorTokens: map[string]string{"op-alice": "alice"}})
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/codec/encode", strings.NewReader(`{"payloads":[]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer op-alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("operator token on the codec: %d, want 200", resp.StatusCode)
	}
}
