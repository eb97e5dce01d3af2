package callback_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/callback"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

const secret = "TOKEN-s3cr3t"

func newSigner(t *testing.T) *opendsr.Signer {
	t.Helper()
	keyPEM, certPEM, err := opendsr.GenerateSelfSigned("dsr.example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := opendsr.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s, err := opendsr.NewSigner(key, certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSender(t *testing.T, signer *opendsr.Signer, allowPrivate bool, roots *x509.CertPool) *callback.Sender {
	t.Helper()
	s, err := callback.New(callback.Options{
		Signer: signer, ProcessorDomain: "dsr.example.com", AllowPrivate: allowPrivate,
		Timeout: 5 * time.Second, RootCAs: roots,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pool(ts *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ts.Certificate())
	return p
}

func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "?") || strings.Contains(err.Error(), "/cb") {
		t.Errorf("error text leaks the URL path or query: %v", err)
	}
}

func TestSendSignedOverTLS(t *testing.T) {
	signer := newSigner(t)
	type received struct {
		header http.Header
		body   []byte
		query  string
	}
	got := make(chan received, 1)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		got <- received{header: r.Header.Clone(), body: b, query: r.URL.RawQuery}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ts.Close()

	body := []byte(`{"controller_id":"acme","request_status":"completed"}`)
	s := newSender(t, signer, true, pool(ts))
	status, err := s.Send(context.Background(), ts.URL+"/cb?token="+secret+"#frag", body)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("Send = %d, %v", status, err)
	}
	r := <-got
	if string(r.body) != string(body) || r.query != "token="+secret {
		t.Errorf("received %q ?%s", r.body, r.query)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if ua := r.header.Get("User-Agent"); ua != callback.DefaultUserAgent {
		t.Errorf("User-Agent %q", ua)
	}
	for _, h := range []string{opendsr.HeaderProcessorDomain, opendsr.HeaderLegacyProcessorDomain} {
		if r.header.Get(h) != "dsr.example.com" {
			t.Errorf("%s = %q", h, r.header.Get(h))
		}
	}
	for _, h := range []string{opendsr.HeaderSignature, opendsr.HeaderLegacySignature} {
		if err := opendsr.Verify(signer.CertificatePEM(), r.body, r.header.Get(h)); err != nil {
			t.Errorf("%s does not verify: %v", h, err)
		}
	}
}

func TestSendAllowsHTTPOnlyWithAllowPrivate(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer ts.Close()
	signer := newSigner(t)

	if status, err := newSender(t, signer, true, nil).Send(context.Background(), ts.URL+"/cb", []byte(`{}`)); err != nil || status != 200 {
		t.Fatalf("AllowPrivate http: %d %v", status, err)
	}
	_, err := newSender(t, signer, false, nil).Send(context.Background(), ts.URL+"/cb?token="+secret, []byte(`{}`))
	if !errors.Is(err, callback.ErrInvalidURL) || !callback.IsPermanent(err) {
		t.Fatalf("http refused with %v", err)
	}
	assertNoSecret(t, err)
	if hits.Load() != 1 {
		t.Fatalf("server hit %d times", hits.Load())
	}
}

func TestSendRefusesPrivateDestinations(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer ts.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "https://"))
	s := newSender(t, newSigner(t), false, pool(ts))

	// "localhost" is not an IP literal, so only the dial-time check can refuse it.
	urls := []string{
		"https://localhost:" + port + "/cb?token=" + secret,
		"https://127.0.0.1:" + port + "/cb?token=" + secret,
		"https://[::1]:" + port + "/cb?token=" + secret,
		"https://[::ffff:127.0.0.1]:" + port + "/cb?token=" + secret,
		"https://10.0.0.1/cb?token=" + secret,
		"https://169.254.169.254/latest/meta-data/cb?token=" + secret,
		"https://[fd00:ec2::254]/cb?token=" + secret,
		"https://100.64.0.1/cb?token=" + secret,
		"https://0.0.0.0:" + port + "/cb?token=" + secret,
	}
	for _, u := range urls {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		status, err := s.Send(ctx, u, []byte(`{}`))
		cancel()
		if status != 0 || !errors.Is(err, callback.ErrForbiddenDestination) || !callback.IsPermanent(err) {
			t.Errorf("%s: status %d, err %v", u, status, err)
		}
		assertNoSecret(t, err)
	}
	if hits.Load() != 0 {
		t.Fatalf("a forbidden destination was reached %d times", hits.Load())
	}
}

func TestSendRefusedAtDialTime(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "https://"))
	s := newSender(t, newSigner(t), false, pool(ts))

	_, err := s.Send(context.Background(), "https://localhost:"+port+"/cb", []byte(`{}`))
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" || !errors.Is(err, callback.ErrForbiddenDestination) {
		t.Fatalf("want a refused dial, got %v", err)
	}
}

func TestSendRejectsBadURLs(t *testing.T) {
	s := newSender(t, newSigner(t), false, nil)
	for _, u := range []string{
		"ftp://example.com/cb?token=" + secret,
		"https://user:" + secret + "@example.com/cb",
		"https:///cb?token=" + secret,
		"/cb?token=" + secret,
		"https://example.com/%zz/cb?token=" + secret,
		"",
	} {
		_, err := s.Send(context.Background(), u, []byte(`{}`))
		if !errors.Is(err, callback.ErrInvalidURL) || !callback.IsPermanent(err) {
			t.Errorf("%q: %v", u, err)
		}
		assertNoSecret(t, err)
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) })
	mux.HandleFunc("/cb", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusTemporaryRedirect)
	})
	ts := httptest.NewTLSServer(mux)
	defer ts.Close()

	s := newSender(t, newSigner(t), true, pool(ts))
	status, err := s.Send(context.Background(), ts.URL+"/cb?token="+secret, []byte(`{}`))
	if status != http.StatusTemporaryRedirect || err == nil || !callback.IsPermanent(err) {
		t.Fatalf("status %d, err %v", status, err)
	}
	if targetHits.Load() != 0 {
		t.Fatal("redirect was followed")
	}
	assertNoSecret(t, err)
}

func TestSendStatusClassification(t *testing.T) {
	tests := []struct {
		status    int
		ok        bool
		permanent bool
	}{
		{200, true, false}, {201, true, false}, {204, true, false},
		{400, false, true}, {401, false, true}, {403, false, true}, {404, false, true}, {410, false, true},
		{408, false, false}, {429, false, false},
		{500, false, false}, {502, false, false}, {503, false, false},
	}
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "echo "+r.URL.RawQuery)
	}))
	defer ts.Close()
	s := newSender(t, newSigner(t), true, pool(ts))
	host := "127.0.0.1"

	for _, tt := range tests {
		u := ts.URL + "/cb?token=" + secret + "&code=" + strconv.Itoa(tt.status)
		status, err := s.Send(context.Background(), u, []byte(`{}`))
		if status != tt.status {
			t.Errorf("%d: status %d", tt.status, status)
		}
		if tt.ok {
			if err != nil {
				t.Errorf("%d: %v", tt.status, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%d: no error", tt.status)
			continue
		}
		if callback.IsPermanent(err) != tt.permanent {
			t.Errorf("%d: IsPermanent = %v", tt.status, !tt.permanent)
		}
		want := "callback to host " + host + ": status " + strconv.Itoa(tt.status)
		if err.Error() != want {
			t.Errorf("error %q, want %q", err.Error(), want)
		}
		assertNoSecret(t, err)
	}
}

func TestSendNetworkFailureIsRetryable(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	u := ts.URL + "/cb?token=" + secret
	roots := pool(ts)
	ts.Close()

	s := newSender(t, newSigner(t), true, roots)
	status, err := s.Send(context.Background(), u, []byte(`{}`))
	if status != 0 || err == nil || callback.IsPermanent(err) {
		t.Fatalf("status %d, err %v", status, err)
	}
	assertNoSecret(t, err)
	if !strings.HasPrefix(err.Error(), "callback to host 127.0.0.1: ") {
		t.Errorf("error %q", err)
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer ts.Close()
	defer close(release)

	s, err := callback.New(callback.Options{
		Signer: newSigner(t), ProcessorDomain: "d", AllowPrivate: true,
		Timeout: 200 * time.Millisecond, RootCAs: pool(ts),
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Send(context.Background(), ts.URL+"/cb?token="+secret, []byte(`{}`))
	if err == nil || callback.IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("timeout not applied: %v", time.Since(start))
	}
	assertNoSecret(t, err)
}

func TestUntrustedCertificateFails(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	s := newSender(t, newSigner(t), true, x509.NewCertPool())
	if _, err := s.Send(context.Background(), ts.URL+"/cb?token="+secret, []byte(`{}`)); err == nil {
		t.Fatal("untrusted certificate accepted")
	} else {
		assertNoSecret(t, err)
	}
}

func TestNewRequiresSignerAndDomain(t *testing.T) {
	if _, err := callback.New(callback.Options{ProcessorDomain: "d"}); err == nil {
		t.Error("nil signer accepted")
	}
	if _, err := callback.New(callback.Options{Signer: newSigner(t)}); err == nil {
		t.Error("empty domain accepted")
	}
}

func TestIsPermanentOnOtherErrors(t *testing.T) {
	if callback.IsPermanent(errors.New("boom")) || callback.IsPermanent(nil) || callback.IsPermanent(context.Canceled) {
		t.Error("unrelated errors are permanent")
	}
	if !callback.IsPermanent(&url.Error{Op: "Post", URL: "x", Err: callback.ErrForbiddenDestination}) {
		t.Error("wrapped ErrForbiddenDestination not permanent")
	}
}
