package mixpanel_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
)

// Neither token, nor a distinct id, nor a result signature may appear in an
// error or in the printed client and options.

const (
	secretProject = "PROJ-SECRET-7f3a9c"
	secretOAuth   = "OAUTH-SECRET-b81d22"
	secretSig     = "SIG-SECRET-55aa01"
)

var secretIDs = []string{"alice@example.com", "user-8812", "1583792934719392965"}

func secrets() []string { return append([]string{secretProject, secretOAuth, secretSig}, secretIDs...) }

// echo is an error text that repeats every secret the request carried, as a
// careless server might: the tokens, the request's distinct ids, a download's
// signature. A call without ids (status, cancel, download) cannot know which
// ids to scrub: there the server echoes an email address, always masked.
func echo(r *http.Request) string {
	ids := secretIDs[:1]
	if r.Method == http.MethodPost {
		ids = secretIDs
	}
	return fmt.Sprintf("bad token %s / %s for ids %s sig=%s", secretProject, url.QueryEscape(secretOAuth), strings.Join(ids, ", "), r.URL.Query().Get("sig"))
}

func assertClean(t *testing.T, what string, s string) {
	t.Helper()
	for _, sec := range secrets() {
		if strings.Contains(s, sec) {
			t.Errorf("%s reveals %q: %s", what, sec, s)
		}
	}
}

func assertCleanErr(t *testing.T, name string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", name)
	}
	assertClean(t, name, fmt.Sprintf("%v|%+v|%s|%q", err, err, err, err))
	for e := err; e != nil; e = errors.Unwrap(e) {
		assertClean(t, name+" (wrapped)", e.Error())
	}
}

func secretClient(t *testing.T, base string, mod ...func(*mixpanel.Options)) (*mixpanel.Client, mixpanel.Options) {
	t.Helper()
	o := mixpanel.Options{BaseURL: base, ProjectToken: config.NewSecret(secretProject), OAuthToken: config.NewSecret(secretOAuth)}
	for _, m := range mod {
		m(&o)
	}
	c, err := mixpanel.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c, o
}

// everyCall makes every client call, each of which must fail.
func everyCall(c *mixpanel.Client, base string) map[string]error {
	out := map[string]error{}
	_, out["create deletion"] = c.CreateDeletion(ctx, secretIDs, mixpanel.GDPR)
	_, out["create retrieval"] = c.CreateRetrieval(ctx, secretIDs, mixpanel.CCPA, "")
	_, out["deletion status"] = c.DeletionStatus(ctx, "T1")
	_, out["retrieval status"] = c.RetrievalStatus(ctx, "T1")
	out["cancel deletion"] = c.CancelDeletion(ctx, "T1")
	_, out["download"] = c.DownloadResult(ctx, base+"/result.zip?sig="+secretSig)
	return out
}

func TestRedactionHTTPErrors(t *testing.T) {
	for _, code := range []int{400, 401, 403, 408, 409, 413, 429, 500, 502, 503} {
		for _, body := range []string{
			`{"status":"error","error":%q}`,
			`{"status":"error","error":{"conflicting_distinct_ids":["alice@example.com"],"conflicting_task_ids":["t1"],"error":%q}}`,
			`%s`, // plain text
		} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(code)
				fmt.Fprintf(w, body, echo(r))
			}))
			c, _ := secretClient(t, srv.URL)
			for name, err := range everyCall(c, srv.URL) {
				assertCleanErr(t, fmt.Sprintf("HTTP %d %s, %.20s", code, name, body), err)
			}
			srv.Close()
		}
	}
}

func TestRedactionProtocolErrors(t *testing.T) {
	for _, body := range []string{
		`%s`,
		`{"status":"error","error":%q}`,
		`{"results":{"task_id":{"x":%q}}}`,
		`{"results":{"status":%q}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, body, echo(r)) }))
		c, _ := secretClient(t, srv.URL)
		for name, err := range everyCall(c, srv.URL) {
			if name == "download" || strings.HasPrefix(name, "cancel") {
				continue // a 200 is a success there
			}
			assertCleanErr(t, "200 "+name, err)
		}
		srv.Close()
	}
}

func TestRedactionTransportErrors(t *testing.T) {
	// Connection refused: *url.Error quotes the URL, ?token= included.
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c, _ := secretClient(t, base)
	for name, err := range everyCall(c, base) {
		var te *mixpanel.TransientError
		if !errors.As(err, &te) {
			t.Errorf("connection refused, %s: %v is not a *TransientError", name, err)
		}
		assertCleanErr(t, "connection refused, "+name, err)
	}

	// Unknown host.
	c, _ = secretClient(t, "http://"+secretProject+".invalid")
	for name, err := range everyCall(c, "http://x.invalid") {
		if name == "download" {
			continue
		}
		assertCleanErr(t, "unknown host, "+name, err)
	}

	// Timeouts.
	done := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	defer slow.Close()
	defer close(done)
	c, _ = secretClient(t, slow.URL, func(o *mixpanel.Options) { o.Timeout, o.DownloadTimeout = 30*time.Millisecond, 30*time.Millisecond })
	for name, err := range everyCall(c, slow.URL) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("timeout, %s: %v", name, err)
		}
		assertCleanErr(t, "timeout, "+name, err)
	}

	// A redirect loop that carries the token along.
	var loop *httptest.Server
	loop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loop.URL+r.URL.Path+"?token="+secretProject+"&sig="+secretSig, http.StatusTemporaryRedirect)
	}))
	defer loop.Close()
	c, _ = secretClient(t, loop.URL)
	for name, err := range everyCall(c, loop.URL) {
		assertCleanErr(t, "redirect loop, "+name, err)
	}
}

func TestRedactionPrinting(t *testing.T) {
	c, o := secretClient(t, "https://eu.mixpanel.com/api/app")
	assertClean(t, "client and options", fmt.Sprintf("%v %+v %#v %s | %v %+v %#v | %v %+v %#v", c, c, c, c, o, o, o, *c, *c, *c))
	task := mixpanel.Task{ID: "T1", Status: dsr.TaskSuccess, Result: "https://x/r.zip?sig=" + secretSig, DistinctIDs: secretIDs}
	assertClean(t, "task", fmt.Sprintf("%v %+v %s", task, task, task))
	ce := &mixpanel.ConflictError{DistinctIDs: secretIDs, TaskIDs: []string{"T9"}}
	assertClean(t, "conflict", fmt.Sprintf("%v %+v %s", ce, ce, ce))
}
