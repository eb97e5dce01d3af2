package mixpanel_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
)

// Contract tests: the client against the emulator over HTTP.

const (
	projectToken = "proj-0123456789abcdef"
	oauthToken   = "oauth-vZcErNw8JCq42BZUJyWoZmDWCKBxXc"
	step         = time.Minute
)

// request is what a recording middleware saw of one API call.
type request struct {
	method, path, query string
	header              http.Header
	body                []byte
}

type fixture struct {
	t     *testing.T
	em    *emulator.Emulator
	srv   *httptest.Server
	clock *emulator.ManualClock
	c     *mixpanel.Client

	mu   sync.Mutex
	reqs []request
}

// newFixture starts an emulator (rate limit off unless o sets one) and a
// client for it. mod may change the client options.
func newFixture(t *testing.T, o emulator.Options, mod ...func(*mixpanel.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: emulator.NewManualClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))}
	o.ProjectToken, o.OAuthToken = projectToken, oauthToken
	if o.RateLimit == 0 {
		o.RateLimit = emulator.NoRateLimit
	}
	o.Step = step
	o.Clock = f.clock.Now
	f.em = emulator.New(o)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		f.em.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	opts := mixpanel.Options{
		BaseURL:      f.srv.URL,
		ProjectToken: config.NewSecret(projectToken),
		OAuthToken:   config.NewSecret(oauthToken),
	}
	for _, m := range mod {
		m(&opts)
	}
	c, err := mixpanel.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	return f
}

func (f *fixture) last() request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func (f *fixture) status(kind, id string) mixpanel.Task {
	f.t.Helper()
	var task mixpanel.Task
	var err error
	if kind == "deletion" {
		task, err = f.c.DeletionStatus(context.Background(), id)
	} else {
		task, err = f.c.RetrievalStatus(context.Background(), id)
	}
	if err != nil {
		f.t.Fatalf("%s status: %v", kind, err)
	}
	return task
}

func (f *fixture) createDeletion(ids ...string) string {
	f.t.Helper()
	id, err := f.c.CreateDeletion(context.Background(), ids, mixpanel.GDPR)
	if err != nil {
		f.t.Fatalf("create deletion: %v", err)
	}
	return id
}

var ctx = context.Background()

func TestDeletionCancelWhileStaging(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	id := f.createDeletion("alice", "bob")
	if id == "" {
		t.Fatal("empty task id")
	}
	task := f.status("deletion", id)
	if task.ID != id || task.Status != dsr.TaskPending || !slices.Equal(task.DistinctIDs, []string{"alice", "bob"}) ||
		task.ComplianceType != "gdpr" || task.ProjectID == "" || task.DateRequested != "2025-03-01T12:00:00.000000" {
		t.Fatalf("status %+v", task)
	}
	if task.Status.Terminal() || !task.Status.Cancellable() {
		t.Fatal("PENDING must be cancellable and not terminal")
	}
	f.clock.Advance(step)
	if st := f.status("deletion", id).Status; st != dsr.TaskStaging {
		t.Fatalf("after one step: %s", st)
	}
	if err := f.c.CancelDeletion(ctx, id); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if r := f.last(); r.method != "DELETE" || r.path != "/api/app/data-deletions/v3.0/"+id {
		t.Errorf("cancel sent %s %s", r.method, r.path)
	}
	if st := f.status("deletion", id).Status; st != dsr.TaskRevoked || !st.Terminal() {
		t.Fatalf("after cancel: %s", st)
	}
}

func TestDeletionSuccessNotCancellable(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	id := f.createDeletion("carol")
	f.clock.Advance(2 * step)
	if st := f.status("deletion", id).Status; st != dsr.TaskStarted || st.Terminal() || st.Cancellable() {
		t.Fatalf("after two steps: %s", st)
	}
	err := f.c.CancelDeletion(ctx, id)
	if !errors.Is(err, mixpanel.ErrNotCancellable) || mixpanel.Retryable(err) {
		t.Fatalf("cancel after STARTED: %v", err)
	}
	f.clock.Advance(step)
	if st := f.status("deletion", id).Status; st != dsr.TaskSuccess || !st.Terminal() {
		t.Fatalf("after three steps: %s", st)
	}
	if err := f.c.CancelDeletion(ctx, id); !errors.Is(err, mixpanel.ErrNotCancellable) {
		t.Fatalf("cancel after SUCCESS: %v", err)
	}
}

func TestDeletionFailure(t *testing.T) {
	f := newFixture(t, emulator.Options{FailPrefix: "fail-"})
	ok := f.createDeletion("dave")
	bad := f.createDeletion("erin", "fail-frank")
	f.clock.Advance(3 * step)
	if st := f.status("deletion", ok).Status; st != dsr.TaskSuccess {
		t.Errorf("task without fail prefix: %s", st)
	}
	if st := f.status("deletion", bad).Status; st != dsr.TaskFailure || !st.Terminal() {
		t.Errorf("task with fail prefix: %s", st)
	}
}

func TestRequestShape(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	f.createDeletion("alice")
	r := f.last()
	if r.method != "POST" || r.path != "/api/app/data-deletions/v3.0" || r.query != "token="+projectToken {
		t.Errorf("create sent %s %s?%s", r.method, r.path, r.query)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer " + oauthToken,
		"Content-Type":  "application/json",
		"Accept":        "application/json",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, "dsrflow/") || !strings.Contains(ua, "github.com/dsrflow/dsrflow") {
		t.Errorf("User-Agent %q", ua)
	}
	if string(r.body) != `{"distinct_ids":["alice"],"compliance_type":"GDPR"}` {
		t.Errorf("body %s", r.body)
	}
	// A CCPA deletion carries no disclosure_type: the deletion API takes none.
	if _, err := f.c.CreateDeletion(ctx, []string{"bob"}, mixpanel.CCPA); err != nil {
		t.Fatal(err)
	}
	if r := f.last(); string(r.body) != `{"distinct_ids":["bob"],"compliance_type":"CCPA"}` {
		t.Errorf("CCPA deletion body %s", r.body)
	}
}

func TestRetrievalGDPR(t *testing.T) {
	f := newFixture(t, emulator.Options{EventsPerID: 4})
	ids := []string{"alice", "bob", "$device:0f3c"}
	id, err := f.c.CreateRetrieval(ctx, ids, mixpanel.GDPR, mixpanel.DisclosureCategories)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.last(); r.path != "/api/app/data-retrievals/v3.0" || strings.Contains(string(r.body), "disclosure_type") {
		t.Errorf("GDPR retrieval sent %s %s (disclosure_type is for CCPA only)", r.path, r.body)
	}
	task := f.status("retrieval", id)
	if task.Status != dsr.TaskPending || task.Result != "" {
		t.Fatalf("status %+v", task)
	}
	f.clock.Advance(3 * step)
	task = f.status("retrieval", id)
	if task.Status != dsr.TaskSuccess || task.Result == "" {
		t.Fatalf("status %+v", task)
	}
	rc, err := f.c.DownloadResult(ctx, task.Result)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(t, zr, "events.jsonl"); n != len(ids)*4 {
		t.Errorf("%d event lines, want %d", n, len(ids)*4)
	}
	if n := countLines(t, zr, "people.jsonl"); n != len(ids) {
		t.Errorf("%d profile lines, want %d", n, len(ids))
	}
}

func TestRetrievalCCPA(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	for _, tc := range []struct {
		dt       mixpanel.DisclosureType
		sent     string
		reported string
	}{
		{mixpanel.DisclosureCategories, "Categories", "CATEGORIES"},
		{"sources", "Sources", "SOURCES"},
		{"", "Data", "DATA"},
	} {
		id, err := f.c.CreateRetrieval(ctx, []string{"gina"}, "ccpa", tc.dt)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.Unmarshal(f.last().body, &body)
		if body["compliance_type"] != "CCPA" || body["disclosure_type"] != tc.sent {
			t.Errorf("CCPA body %v, want disclosure_type %q", body, tc.sent)
		}
		tasks := f.em.Tasks()
		if task := tasks[len(tasks)-1]; task.ID != id || task.ComplianceType != "CCPA" || task.DisclosureType != tc.reported {
			t.Errorf("emulator task %+v, want disclosure %s", task, tc.reported)
		}
	}
	if _, err := f.c.CreateRetrieval(ctx, []string{"gina"}, mixpanel.CCPA, "Everything"); !isBadRequest(err, 0) {
		t.Errorf("bad disclosure type: %v", err)
	}
}

func TestUnauthorized(t *testing.T) {
	for name, mod := range map[string]func(*mixpanel.Options){
		"wrong project token": func(o *mixpanel.Options) { o.ProjectToken = config.NewSecret("wrong-project") },
		"wrong bearer":        func(o *mixpanel.Options) { o.OAuthToken = config.NewSecret("wrong-oauth") },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, emulator.Options{}, mod)
			_, err := f.c.CreateDeletion(ctx, []string{"ida"}, mixpanel.GDPR)
			var ue *mixpanel.UnauthorizedError
			if !errors.As(err, &ue) || ue.StatusCode != 401 || ue.Message == "" || mixpanel.Retryable(err) {
				t.Fatalf("got %v, want a non-retryable *UnauthorizedError with a message", err)
			}
			if strings.Contains(err.Error(), "wrong-") {
				t.Errorf("error quotes the credential: %v", err)
			}
		})
	}
	f := newFixture(t, emulator.Options{})
	f.em.SetFaults(emulator.Faults{Unauthorized: true, RateLimit: emulator.NoRateLimit})
	var ue *mixpanel.UnauthorizedError
	if _, err := f.c.DeletionStatus(ctx, "x"); !errors.As(err, &ue) {
		t.Fatalf("Unauthorized fault: %v", err)
	}
}

func TestBadRequest(t *testing.T) {
	f := newFixture(t, emulator.Options{MaxIDs: 3})
	_, err := f.c.CreateDeletion(ctx, []string{"a", "b", "c", "d"}, mixpanel.GDPR)
	if !isBadRequest(err, 400) || mixpanel.Retryable(err) {
		t.Fatalf("too many ids: %v", err)
	}
	var bre *mixpanel.BadRequestError
	errors.As(err, &bre)
	if !strings.Contains(bre.Message, "too many") {
		t.Errorf("message %q does not carry Mixpanel's explanation", bre.Message)
	}
	calls := f.em.Calls()["deletion.create"]
	// Rejected before sending: StatusCode 0.
	for name, call := range map[string]func() error{
		"empty list":          func() error { _, err := f.c.CreateDeletion(ctx, nil, mixpanel.GDPR); return err },
		"empty id":            func() error { _, err := f.c.CreateDeletion(ctx, []string{"a", ""}, mixpanel.GDPR); return err },
		"bad compliance type": func() error { _, err := f.c.CreateDeletion(ctx, []string{"a"}, "HIPAA"); return err },
		"no compliance type":  func() error { _, err := f.c.CreateRetrieval(ctx, []string{"a"}, "", ""); return err },
		"empty task id":       func() error { _, err := f.c.DeletionStatus(ctx, ""); return err },
	} {
		if err := call(); !isBadRequest(err, 0) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := f.em.Calls()["deletion.create"]; got != calls {
		t.Errorf("invalid requests reached the server")
	}
}

func TestRateLimited(t *testing.T) {
	f := newFixture(t, emulator.Options{RateLimit: 1})
	id := f.createDeletion("a")
	_, err := f.c.DeletionStatus(ctx, id)
	var rl *mixpanel.RateLimitedError
	if !errors.As(err, &rl) || !mixpanel.Retryable(err) || rl.RetryAfter != 0 || !strings.Contains(rl.Message, "1 req/s") {
		t.Fatalf("got %v, want a retryable *RateLimitedError", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.c.DeletionStatus(ctx, id); err != nil {
		t.Fatalf("after 1s: %v", err)
	}
	f.em.SetFaults(emulator.Faults{Rate429: 1, RateLimit: emulator.NoRateLimit})
	if _, err := f.c.DeletionStatus(ctx, id); !errors.As(err, &rl) {
		t.Fatalf("injected 429: %v", err)
	}
}

func TestTransient(t *testing.T) {
	f := newFixture(t, emulator.Options{Rate500: 1})
	_, err := f.c.CreateDeletion(ctx, []string{"a"}, mixpanel.GDPR)
	var te *mixpanel.TransientError
	if !errors.As(err, &te) || te.StatusCode != 500 || !mixpanel.Retryable(err) {
		t.Fatalf("got %v, want a retryable *TransientError (HTTP 500)", err)
	}
}

func TestTimeout(t *testing.T) {
	f := newFixture(t, emulator.Options{Latency: time.Second}, func(o *mixpanel.Options) { o.Timeout = 50 * time.Millisecond })
	check := func(name string, err error) {
		t.Helper()
		var te *mixpanel.TransientError
		if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) || !mixpanel.Retryable(err) {
			t.Errorf("%s: got %v, want a *TransientError wrapping context.DeadlineExceeded", name, err)
		}
	}
	_, err := f.c.DeletionStatus(ctx, "x") // no deadline: Options.Timeout applies
	check("default timeout", err)
	c2, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = f.c.DeletionStatus(c2, "x")
	check("context deadline", err)
}

func TestConflict(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	t1 := f.createDeletion("alice@example.com", "bob")
	t2 := f.createDeletion("carol")
	_, err := f.c.CreateDeletion(ctx, []string{"dave", "carol", "alice@example.com"}, mixpanel.GDPR)
	var ce *mixpanel.ConflictError
	if !errors.As(err, &ce) || mixpanel.Retryable(err) {
		t.Fatalf("got %v, want a non-retryable *ConflictError", err)
	}
	if !slices.Equal(ce.DistinctIDs, []string{"carol", "alice@example.com"}) || !slices.Equal(ce.TaskIDs, []string{t1, t2}) {
		t.Fatalf("conflict ids %v tasks %v", ce.DistinctIDs, ce.TaskIDs)
	}
	if msg := err.Error(); strings.Contains(msg, "carol") || strings.Contains(msg, "alice") || !strings.Contains(msg, t1) {
		t.Errorf("message %q must name the tasks but no distinct id", msg)
	}
	if n := len(f.em.Tasks()); n != 2 {
		t.Fatalf("%d tasks after the 409, want 2", n)
	}
	// Dropping the conflicting ids, as the batch workflow does, is accepted.
	f.createDeletion("dave")
}

func TestNotFound(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	task, err := f.c.DeletionStatus(ctx, "no-such-task")
	if !errors.Is(err, mixpanel.ErrTaskNotFound) || task.Status != dsr.TaskNotFound || mixpanel.Retryable(err) {
		t.Fatalf("status of unknown deletion: %+v %v", task, err)
	}
	if r := f.last(); r.path != "/api/app/data-deletions/v3.0/no-such-task" {
		t.Errorf("status path %s", r.path)
	}
	if _, err := f.c.RetrievalStatus(ctx, "1583792934719392965"); !errors.Is(err, mixpanel.ErrTaskNotFound) {
		t.Fatalf("status of unknown retrieval: %v", err)
	}
	if err := f.c.CancelDeletion(ctx, "no-such-task"); !errors.Is(err, mixpanel.ErrTaskNotFound) {
		t.Fatalf("cancel of unknown deletion: %v", err)
	}
	// A task id is escaped into one path segment.
	if _, err := f.c.DeletionStatus(ctx, "a/b?c"); !errors.Is(err, mixpanel.ErrTaskNotFound) {
		t.Fatalf("odd task id: %v", err)
	}
	if r := f.last(); r.path != "/api/app/data-deletions/v3.0/a/b?c" || r.query != "token="+projectToken {
		t.Errorf("odd task id sent as path %q query %q", r.path, r.query)
	}
}

// BaseURL is the host: the client appends Mixpanel's /api/app/... paths, and a
// value that already ends in /api/app reaches the same paths.
func TestBaseURLForms(t *testing.T) {
	for _, suffix := range []string{"", "/", "/api/app", "/api/app/"} {
		f := newFixture(t, emulator.Options{}, func(o *mixpanel.Options) { o.BaseURL += suffix })
		id := f.createDeletion("a" + suffix)
		if r := f.last(); r.path != "/api/app/data-deletions/v3.0" {
			t.Errorf("base %q: create path %s", suffix, r.path)
		}
		if st := f.status("deletion", id).Status; st != dsr.TaskPending {
			t.Errorf("base %q: status %s", suffix, st)
		}
	}
	// A gateway's path prefix is kept; Mixpanel's paths follow it.
	var gatewayPath string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gatewayPath = r.URL.Path
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"status":"ok","results":{"task_id":"t1"}}`)
	}))
	defer gw.Close()
	c, err := mixpanel.New(mixpanel.Options{BaseURL: gw.URL + "/mixpanel/api/app", ProjectToken: config.NewSecret("p"), OAuthToken: config.NewSecret("o")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRetrieval(ctx, []string{"a"}, mixpanel.GDPR, ""); err != nil || gatewayPath != "/mixpanel/api/app/data-retrievals/v3.0" {
		t.Errorf("gateway prefix: %v, path %q", err, gatewayPath)
	}
	for _, bad := range []string{"", "mixpanel.com/api/app", "ftp://mixpanel.com", "https://mixpanel.com/api/app?x=1", "https://u:p@mixpanel.com"} {
		if _, err := mixpanel.New(mixpanel.Options{BaseURL: bad, ProjectToken: config.NewSecret("p"), OAuthToken: config.NewSecret("o")}); err == nil {
			t.Errorf("New accepted BaseURL %q", bad)
		}
	}
	if _, err := mixpanel.New(mixpanel.Options{BaseURL: "https://mixpanel.com/api/app", ProjectToken: config.NewSecret("p")}); err == nil {
		t.Error("New accepted a missing OAuth token")
	}
}

// successfulRetrieval returns the result URL of a finished retrieval.
func successfulRetrieval(t *testing.T, f *fixture, ids ...string) string {
	t.Helper()
	id, err := f.c.CreateRetrieval(ctx, ids, mixpanel.GDPR, "")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * step)
	return f.status("retrieval", id).Result
}

func TestDownloadCredentials(t *testing.T) {
	f := newFixture(t, emulator.Options{})
	result := successfulRetrieval(t, f, "alice")

	// Same origin as the API: the bearer may go along, the token never does.
	rc, err := f.c.DownloadResult(ctx, result)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if r := f.last(); !strings.HasPrefix(r.path, "/_emulator/results/") || strings.Contains(r.query, "token=") {
		t.Errorf("same-origin download sent %s?%s", r.path, r.query)
	}

	// Another host (here another port): no credentials at all.
	var seen http.Header
	var seenQuery string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, seenQuery = r.Header.Clone(), r.URL.RawQuery
		f.em.ServeHTTP(w, r)
	}))
	defer other.Close()
	u, _ := url.Parse(result)
	o, _ := url.Parse(other.URL)
	u.Host = o.Host
	rc, err = f.c.DownloadResult(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if seen.Get("Authorization") != "" || strings.Contains(seenQuery, "token=") {
		t.Errorf("credentials sent to another host: Authorization %q, query %q", seen.Get("Authorization"), seenQuery)
	}

	// A redirect from the API host to another host drops the bearer.
	seen = nil
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, u.String(), http.StatusFound)
	}))
	defer redirector.Close()
	c, _ := mixpanel.New(mixpanel.Options{BaseURL: redirector.URL, ProjectToken: config.NewSecret(projectToken), OAuthToken: config.NewSecret(oauthToken)})
	rc, err = c.DownloadResult(ctx, redirector.URL+"/result.zip")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if seen == nil || seen.Get("Authorization") != "" {
		t.Errorf("redirected download: Authorization %q", seen.Get("Authorization"))
	}
}

func TestDownloadErrors(t *testing.T) {
	f := newFixture(t, emulator.Options{EventsPerID: 50}, func(o *mixpanel.Options) { o.MaxDownloadBytes = 512 })
	result := successfulRetrieval(t, f, "alice", "bob")
	rc, err := f.c.DownloadResult(ctx, result)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if !errors.Is(err, mixpanel.ErrResultTooLarge) || n != 512 {
		t.Errorf("oversized result: read %d bytes, err %v", n, err)
	}

	sig := strings.SplitN(result, "sig=", 2)[1]
	_, err = f.c.DownloadResult(ctx, strings.Replace(result, sig, "forged", 1))
	if !errors.Is(err, mixpanel.ErrResultExpired) || mixpanel.Retryable(err) || strings.Contains(err.Error(), "forged") {
		t.Errorf("forged signature: %v", err)
	}
	for _, bad := range []string{"", "/relative.zip", "file:///etc/passwd", "%zz"} {
		if _, err := f.c.DownloadResult(ctx, bad); !isBadRequest(err, 0) {
			t.Errorf("result URL %q: %v", bad, err)
		}
	}
}

func isBadRequest(err error, code int) bool {
	var bre *mixpanel.BadRequestError
	return errors.As(err, &bre) && bre.StatusCode == code
}

func countLines(t *testing.T, zr *zip.Reader, name string) int {
	t.Helper()
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rc.Close()
	n := 0
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("%s: line %d is not JSON", name, n+1)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
