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
	handler http.Handler
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
	s := httpapi.New(httpapi.Options{Settings: httpapi.SettingsFrom(cfg), Signer: signer, Ledger: store, Results: bundles, Keys: ring,
		Requests: &requests.Service{Settings: requests.SettingsFrom(cfg), Ledger: store, Keys: ring}})
	h := s.Handler()
	f := &fixture{srv: httptest.NewServer(h), handler: h, ledger: store, results: bundles, cert: signer.CertificatePEM()}
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

// submitBody is a valid erasure body of acme with one identity value that
// tests replace (the marker SECRET must never come back).
const submitBody = `{"subject_request_id":"55555555-5555-4555-8555-555555555555","subject_request_type":"erasure",
"regulation":"gdpr","submitted_time":"2026-11-01T10:00:00Z","api_version":"1.0",
"subject_identities":[{"identity_type":"email","identity_value":"SECRET@example.org","identity_format":"raw"}],
"status_callback_urls":["https://controller.example/cb"]}`

// TestStrictIntake: each refused input answers 400 with the error object
// naming the field, echoes nothing, and leaves no record (GET is 404).
func TestStrictIntake(t *testing.T) {
	f := newFixture(t, 0)
	const id = "55555555-5555-4555-8555-555555555555"
	replace := func(old, new string) string { return strings.Replace(submitBody, old, new, 1) }
	cases := []struct {
		name, body, location, reason string
	}{
		{"invalid UTF-8", replace(`"SECRET@example.org"`, "\"SECRET\xff@example.org\""), "subject_identities[0].identity_value", opendsr.ReasonMalformed},
		{"unpaired surrogate", replace(`"SECRET@example.org"`, `"SECRET\udfff@example.org"`), "subject_identities[0].identity_value", opendsr.ReasonMalformed},
		{"duplicate key", replace(`"regulation":"gdpr"`, `"regulation":"gdpr","regulation":"ccpa"`), "regulation", opendsr.ReasonDuplicateKey},
		{"case-variant key", replace(`"status_callback_urls"`, `"SUBJECT_IDENTITIES":[{"identity_type":"email","identity_value":"SECRET2@example.org"}],"status_callback_urls"`),
			"subject_identities", opendsr.ReasonDuplicateKey},
		{"nested case-variant key", replace(`"identity_format":"raw"`, `"identity_format":"raw","IDENTITY_VALUE":"SECRET3@example.org"`),
			"subject_identities[0].identity_value", opendsr.ReasonDuplicateKey},
		{"loopback callback", replace(`https://controller.example/cb`, `https://127.0.0.1/cb?SECRET=1`), "status_callback_urls[0]", opendsr.ReasonInvalid},
		{"localhost callback", replace(`https://controller.example/cb`, `https://localhost:8443/cb?SECRET=1`), "status_callback_urls[0]", opendsr.ReasonInvalid},
		{"private callback", replace(`https://controller.example/cb`, `https://192.168.0.10/cb?SECRET=1`), "status_callback_urls[0]", opendsr.ReasonInvalid},
		{"link-local callback", replace(`https://controller.example/cb`, `https://[fe80::1]/cb?SECRET=1`), "status_callback_urls[0]", opendsr.ReasonInvalid},
		{"metadata callback", replace(`https://controller.example/cb`, `https://169.254.169.254/latest?SECRET=1`), "status_callback_urls[0]", opendsr.ReasonInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := f.post(t, "/v1/requests", "tok-acme", c.body)
			var e opendsr.Error
			if resp.StatusCode != 400 || json.Unmarshal(body, &e) != nil || e.Code != 400 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			found := false
			for _, it := range e.Errors {
				found = found || it.Location == c.location && it.Reason == c.reason
			}
			if !found {
				t.Errorf("errors %+v, want %s at %s", e.Errors, c.reason, c.location)
			}
			if strings.Contains(strings.ToLower(string(body)), "secret") {
				t.Errorf("the answer echoes a submitted value: %s", body)
			}
			if resp, body := f.get(t, "/v1/requests/"+id, "tok-acme"); resp.StatusCode != 404 {
				t.Errorf("after a refused submission GET answers %d: %s", resp.StatusCode, body)
			}
			if _, err := f.ledger.Get(context.Background(), ledger.Key{ControllerID: "acme", RequestID: id}); err == nil {
				t.Error("a refused submission left a ledger row")
			}
		})
	}
}

// TestDiscoveryIgnoresTheHostHeader: the signed discovery document names
// DSR_PUBLIC_URL whatever Host and X-Forwarded-* headers a caller sends.
func TestDiscoveryIgnoresTheHostHeader(t *testing.T) {
	f := newFixtureWith(t, config.Config{PublicURL: "https://dsr.example.com"})
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/discovery", nil)
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "http")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var d opendsr.Discovery
	if resp.StatusCode != 200 || json.Unmarshal(body, &d) != nil {
		t.Fatalf("discovery: %d %s", resp.StatusCode, body)
	}
	if d.ProcessorCertificate != "https://dsr.example.com/v1/cert.pem" || strings.Contains(string(body), "evil") {
		t.Errorf("processor_certificate %q, want it from DSR_PUBLIC_URL", d.ProcessorCertificate)
	}
	if err := opendsr.Verify(f.cert, body, resp.Header.Get(opendsr.HeaderSignature)); err != nil {
		t.Errorf("discovery not signed: %v", err)
	}
}

// TestNoStore: every answer about a request, errors included, forbids caching.
func TestNoStore(t *testing.T) {
	f := newFixture(t, 0)
	const id = "66666666-6666-4666-8666-666666666666"
	live := token(t)
	f.request(t, id, live, 1, time.Now().Add(time.Hour), true)
	check := func(name string, resp *http.Response) {
		t.Helper()
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", name, resp.StatusCode, got)
		}
	}
	for name, c := range map[string]struct{ path, bearer string }{
		"status":               {"/v1/requests/" + id, "tok-acme"},
		"status of another":    {"/v1/requests/" + id, "tok-globex"},
		"status without token": {"/v1/requests/" + id, ""},
		"results":              {"/v1/results/" + live, "tok-acme"},
		"unknown results":      {"/v1/results/" + token(t), "tok-acme"},
	} {
		resp, _ := f.get(t, c.path, c.bearer)
		check(name, resp)
	}
	resp, _ := f.post(t, "/v1/requests", "tok-acme", `{"subject_request_id":"not-a-uuid"}`)
	check("refused submission", resp)
	resp, _ = f.post(t, "/v1/requests/"+id+"/resolve", "tok-acme", `{"profile_id":"p"}`)
	check("forbidden resolve", resp)
}

// serve sends one request from a given client address straight to the handler.
func (f *fixture) serve(method, path, bearer, remote string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = remote
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

// TestAuthFailuresAreThrottledPerAddress: an address hammering bad tokens
// gets 429 with Retry-After, even for a good token (its credentials are no
// longer examined), on every authenticated route; other addresses, including
// a controller with a good token, are unaffected; an IPv6 attacker is counted
// per /64.
func TestAuthFailuresAreThrottledPerAddress(t *testing.T) {
	f := newFixtureWith(t, config.Config{OperatorTokens: map[string]string{"op-alice": "alice"}})
	const path = "/v1/requests/77777777-7777-4777-8777-777777777777"
	codes := map[int]int{}
	for i := range 30 {
		codes[f.serve(http.MethodGet, path, "guess-"+strconv.Itoa(i), "203.0.113.9:40000").Code]++
	}
	if codes[http.StatusUnauthorized] == 0 || codes[http.StatusTooManyRequests] < 15 {
		t.Fatalf("codes %v: want 401s, then 429s", codes)
	}
	for _, c := range []struct{ method, path, bearer string }{
		{http.MethodGet, path, "tok-acme"},
		{http.MethodPost, path + "/resolve?controller_id=acme", "op-alice"},
		{http.MethodGet, "/v1/results/x", "tok-acme"},
		{http.MethodPost, "/codec/decode", "op-alice"},
	} {
		rec := f.serve(c.method, c.path, c.bearer, "203.0.113.9:40001")
		var e opendsr.Error
		if rec.Code != http.StatusTooManyRequests || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Code != 429 || e.Errors[0].Reason != opendsr.ReasonRateLimited {
			t.Errorf("%s %s from the attacker: %d %s, want the 429 error object", c.method, c.path, rec.Code, rec.Body)
		}
		if n, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
		}
	}
	if rec := f.serve(http.MethodGet, path, "tok-acme", "198.51.100.7:5000"); rec.Code != http.StatusNotFound {
		t.Errorf("a good token from another address: %d %s, want 404 (authenticated)", rec.Code, rec.Body)
	}
	if rec := f.serve(http.MethodGet, path, "bad", "198.51.100.7:5000"); rec.Code != http.StatusUnauthorized {
		t.Errorf("another address's first failure: %d, want 401", rec.Code)
	}
	for i := range 15 {
		f.serve(http.MethodGet, path, "guess", "[2001:db8:1:2::"+strconv.Itoa(i+1)+"]:443")
	}
	if rec := f.serve(http.MethodGet, path, "tok-acme", "[2001:db8:1:2:ffff::1]:443"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("the same /64: %d, want 429", rec.Code)
	}
	if rec := f.serve(http.MethodGet, path, "tok-acme", "[2001:db8:1:3::1]:443"); rec.Code != http.StatusNotFound {
		t.Errorf("another /64: %d, want 404", rec.Code)
	}
}
