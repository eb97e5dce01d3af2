package emulator_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
)

// These tests speak raw HTTP, as a client that knows only Mixpanel's
// documentation would, so that the emulator is checked independently of
// package mixpanel's client.

const (
	projectToken = "proj-token-123"
	oauthToken   = "oauth-token-456"
	step         = time.Minute
)

type env struct {
	t     *testing.T
	srv   *httptest.Server
	em    *emulator.Emulator
	clock *emulator.ManualClock
}

func newEnv(t *testing.T, o emulator.Options) *env {
	t.Helper()
	c := emulator.NewManualClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	if o.ProjectToken == "" {
		o.ProjectToken = projectToken
	}
	if o.OAuthToken == "" {
		o.OAuthToken = oauthToken
	}
	if o.RateLimit == 0 {
		o.RateLimit = emulator.NoRateLimit
	}
	o.Step = step
	o.Clock = c.Now
	em := emulator.New(o)
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, em: em, clock: c}
}

type answer struct {
	code   int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", a.body, err)
	}
	return m
}

// call sends an authenticated request to path, under Mixpanel's /api/app.
func (e *env) call(method, path, body string) answer {
	e.t.Helper()
	return e.raw(method, "/api/app"+path+"?token="+projectToken, "Bearer "+oauthToken, body)
}

func (e *env) raw(method, pathAndQuery, authorization, body string) answer {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+pathAndQuery, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return answer{code: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) createDeletion(ids ...string) string {
	e.t.Helper()
	a := e.call("POST", "/data-deletions/v3.0", body(ids, "GDPR", ""))
	if a.code != 201 {
		e.t.Fatalf("create deletion: %d %s", a.code, a.body)
	}
	return a.json(e.t)["results"].(map[string]any)["task_id"].(string)
}

func (e *env) createRetrieval(ct, dt string, ids ...string) string {
	e.t.Helper()
	a := e.call("POST", "/data-retrievals/v3.0", body(ids, ct, dt))
	if a.code != 201 {
		e.t.Fatalf("create retrieval: %d %s", a.code, a.body)
	}
	return a.json(e.t)["results"].(map[string]any)["task_id"].(string)
}

func (e *env) statusOf(kind, id string) map[string]any {
	e.t.Helper()
	a := e.call("GET", "/data-"+kind+"/v3.0/"+id, "")
	if a.code != 200 {
		e.t.Fatalf("status: %d %s", a.code, a.body)
	}
	m := a.json(e.t)
	if m["status"] != "ok" {
		e.t.Fatalf("status envelope: %s", a.body)
	}
	return m["results"].(map[string]any)
}

func body(ids []string, ct, dt string) string {
	m := map[string]any{"distinct_ids": ids}
	if ct != "" {
		m["compliance_type"] = ct
	}
	if dt != "" {
		m["disclosure_type"] = dt
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func wantError(t *testing.T, a answer, code int) string {
	t.Helper()
	if a.code != code {
		t.Fatalf("got HTTP %d %s, want %d", a.code, a.body, code)
	}
	m := a.json(t)
	msg, ok := m["error"].(string)
	if m["status"] != "error" || !ok || msg == "" {
		t.Fatalf(`body %s, want {"status":"error","error":"..."}`, a.body)
	}
	return msg
}

func TestAuth(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	b := body([]string{"u1"}, "GDPR", "")
	for _, tc := range []struct{ name, query, auth string }{
		{"no token", "", "Bearer " + oauthToken},
		{"wrong token", "?token=nope", "Bearer " + oauthToken},
		{"no bearer", "?token=" + projectToken, ""},
		{"basic instead of bearer", "?token=" + projectToken, "Basic " + oauthToken},
		{"wrong bearer", "?token=" + projectToken, "Bearer nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := wantError(t, e.raw("POST", "/api/app/data-deletions/v3.0"+tc.query, tc.auth, b), 401)
			if strings.Contains(msg, "nope") || strings.Contains(msg, oauthToken) || strings.Contains(msg, projectToken) {
				t.Errorf("401 message echoes a token: %q", msg)
			}
		})
	}
	if a := e.raw("POST", "/api/app/data-deletions/v3.0?token="+projectToken, "bearer "+oauthToken, b); a.code != 201 {
		t.Errorf("lower-case bearer scheme: %d %s", a.code, a.body)
	}
	if n := len(e.em.Tasks()); n != 1 {
		t.Errorf("%d tasks, want 1 (refused calls create nothing)", n)
	}

	noCreds := emulator.New(emulator.Options{RateLimit: emulator.NoRateLimit})
	rec := httptest.NewRecorder()
	noCreds.ServeHTTP(rec, httptest.NewRequest("POST", "/api/app/data-deletions/v3.0?token=x", strings.NewReader(b)))
	if rec.Code != 401 {
		t.Errorf("emulator without credentials answered %d, want 401", rec.Code)
	}
}

// Mixpanel's paths are under /api/app; the prose reference's trailing
// slashes are accepted too.
func TestPaths(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	for i, p := range []string{"/data-deletions/v3.0", "/data-deletions/v3.0/"} {
		a := e.call("POST", p, body([]string{fmt.Sprint("p", i)}, "", ""))
		if a.code != 201 {
			t.Fatalf("POST %s: %d %s", p, a.code, a.body)
		}
		id := a.json(t)["results"].(map[string]any)["task_id"].(string)
		for _, sp := range []string{"/data-deletions/v3.0/" + id, "/data-deletions/v3.0/" + id + "/"} {
			if st := e.call("GET", sp, ""); st.code != 200 || st.json(t)["results"].(map[string]any)["status"] != "PENDING" {
				t.Errorf("GET %s: %d %s", sp, st.code, st.body)
			}
		}
		// Outside /api/app there is no API, as on Mixpanel's host.
		if a := e.raw("GET", "/data-deletions/v3.0/"+id+"?token="+projectToken, "Bearer "+oauthToken, ""); a.code != 404 {
			t.Errorf("GET without /api/app: %d, want 404", a.code)
		}
	}
	if a := e.raw("POST", "/data-deletions/v3.0?token="+projectToken, "Bearer "+oauthToken, body([]string{"root"}, "", "")); a.code != 404 {
		t.Errorf("POST without /api/app: %d, want 404", a.code)
	}
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/data-deletions/v3.0/", 405},
		{"PUT", "/data-deletions/v3.0/abc", 405},
		{"POST", "/data-deletions/v3.0/abc", 405},
		{"DELETE", "/data-deletions/v3.0/", 405},
		{"GET", "/data-deletions/v2.0/abc", 404},
		{"GET", "/data-deletions/v3.0/a/b", 404},
		{"GET", "data-deletions/v3.0/abc", 404},
		{"DELETE", "/data-retrievals/v3.0/123", 405},
	} {
		if a := e.call(tc.method, tc.path, ""); a.code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, a.code, tc.code)
		}
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, emulator.Options{MaxIDs: 3})
	for _, tc := range []struct{ name, path, body string }{
		{"invalid JSON", "/data-deletions/v3.0", `{"distinct_ids":`},
		{"no body", "/data-deletions/v3.0", ``},
		{"no distinct_ids", "/data-deletions/v3.0", `{"compliance_type":"GDPR"}`},
		{"empty list", "/data-deletions/v3.0", `{"distinct_ids":[]}`},
		{"empty id", "/data-deletions/v3.0", `{"distinct_ids":["a",""]}`},
		{"numbers", "/data-deletions/v3.0", `{"distinct_ids":[1,2]}`},
		{"too many ids", "/data-deletions/v3.0", `{"distinct_ids":["a","b","c","d"]}`},
		{"bad compliance_type", "/data-deletions/v3.0", `{"distinct_ids":["a"],"compliance_type":"HIPAA"}`},
		{"bad disclosure_type", "/data-retrievals/v3.0", `{"distinct_ids":["a"],"compliance_type":"CCPA","disclosure_type":"Everything"}`},
		{"too many retrieval ids", "/data-retrievals/v3.0", `{"distinct_ids":["a","b","c","d"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) { wantError(t, e.call("POST", tc.path, tc.body), 400) })
	}
	if n := len(e.em.Tasks()); n != 0 {
		t.Fatalf("%d tasks after bad requests, want 0", n)
	}
	if a := e.call("POST", "/data-deletions/v3.0", `{"distinct_ids":["a","b","c"],"compliance_type":"ccpa"}`); a.code != 201 {
		t.Errorf("MaxIDs ids, lower-case ccpa: %d %s", a.code, a.body)
	}
	tasks := e.em.Tasks()
	if len(tasks) != 1 || tasks[0].ComplianceType != "CCPA" {
		t.Errorf("tasks = %+v, want one CCPA task", tasks)
	}
}

// Creates answer JobCreated of the OpenAPI document: 201, exactly
// {"status":"ok","results":{"task_id":ID}}.
func TestCreateShapes(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	a := e.call("POST", "/data-deletions/v3.0", body([]string{"a"}, "", ""))
	if a.code != 201 || !regexp.MustCompile(`^\{"results":\{"task_id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"\},"status":"ok"\}\n$`).Match(a.body) {
		t.Errorf("deletion create: %d %s", a.code, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	a = e.call("POST", "/data-retrievals/v3.0", body([]string{"a", "b"}, "CCPA", "categories"))
	if a.code != 201 || !regexp.MustCompile(`^\{"results":\{"task_id":"[1-9][0-9]{18}"\},"status":"ok"\}\n$`).Match(a.body) {
		t.Errorf("retrieval create: %d %s", a.code, a.body)
	}
}

// With ProseShapes, creates answer 200 as the prose reference shows: a
// retrieval's as a list of task objects with tracking_id.
func TestCreateProseShapes(t *testing.T) {
	e := newEnv(t, emulator.Options{ProseShapes: true})
	a := e.call("POST", "/data-deletions/v3.0/", body([]string{"a"}, "", ""))
	if a.code != 200 || a.json(t)["results"].(map[string]any)["task_id"] == nil {
		t.Errorf("deletion create: %d %s", a.code, a.body)
	}
	a = e.call("POST", "/data-retrievals/v3.0/", body([]string{"a", "b"}, "CCPA", "categories"))
	res, _ := a.json(t)["results"].([]any)
	if a.code != 200 || len(res) != 1 {
		t.Fatalf("retrieval create: %d %s", a.code, a.body)
	}
	r := res[0].(map[string]any)
	if !regexp.MustCompile(`^[1-9][0-9]{18}$`).MatchString(r["tracking_id"].(string)) {
		t.Errorf("tracking_id %v, want 19 digits", r["tracking_id"])
	}
	if r["status"] != "PENDING" || r["compliance_type"] != "ccpa" || r["disclosure_type"] != "CATEGORIES" || r["distinct_id_count"] != 2.0 {
		t.Errorf("retrieval create body %s", a.body)
	}
	if _, ok := r["project_id"].(float64); !ok {
		t.Errorf("project_id %v is not a number", r["project_id"])
	}
}

func TestStatusProgression(t *testing.T) {
	e := newEnv(t, emulator.Options{FailPrefix: "bad-"})
	ok := e.createDeletion("a", "b", "not-bad-x") // holds the prefix, but not at the start
	bad := e.createDeletion("c", "bad-d")
	want := []string{"PENDING", "STAGING", "STARTED", "SUCCESS", "SUCCESS"}
	for i, w := range want {
		st := e.statusOf("deletions", ok)
		if st["status"] != w {
			t.Fatalf("after %d steps: %v, want %s", i, st["status"], w)
		}
		failWant := w
		if w == "SUCCESS" {
			failWant = "FAILURE"
		}
		if got := e.statusOf("deletions", bad)["status"]; got != failWant {
			t.Fatalf("fail-prefix task after %d steps: %v, want %s", i, got, failWant)
		}
		e.clock.Advance(step)
	}
	// DeletionJobResult: exactly its seven fields, no "result".
	st := e.statusOf("deletions", ok)
	if st["tracking_id"] != ok || st["compliance_type"] != "gdpr" || len(st) != 7 ||
		!slices.Equal(anyStrings(st["distinct_ids"]), []string{"a", "b", "not-bad-x"}) ||
		st["date_requested"] != "2025-03-01T12:00:00.000000" || st["requesting_user"] == "" {
		t.Errorf("status results %v", st)
	}
	if _, isNum := st["project_id"].(float64); !isNum {
		t.Errorf("project_id %v", st["project_id"])
	}
}

// With ProseShapes, status objects carry "result" (and a retrieval's
// disclosure_type), as the prose reference's examples do.
func TestStatusProseShapes(t *testing.T) {
	e := newEnv(t, emulator.Options{ProseShapes: true})
	a := e.call("POST", "/data-deletions/v3.0/", body([]string{"a"}, "", ""))
	id := a.json(t)["results"].(map[string]any)["task_id"].(string)
	st := e.statusOf("deletions", id)
	if st["result"] != "" || st["status"] != "PENDING" || st["tracking_id"] != id {
		t.Errorf("deletion status %v", st)
	}
	a = e.call("POST", "/data-retrievals/v3.0/", body([]string{"a"}, "CCPA", "Sources"))
	rid := a.json(t)["results"].([]any)[0].(map[string]any)["tracking_id"].(string)
	e.clock.Advance(3 * step)
	st = e.statusOf("retrievals", rid)
	if link, _ := st["result"].(string); st["status"] != "SUCCESS" || !strings.Contains(link, "/_emulator/results/"+rid+".zip?sig=") ||
		st["disclosure_type"] != "SOURCES" || st["results"] != nil {
		t.Errorf("retrieval status %v", st)
	}
	if st := e.statusOf("deletions", "nope"); st["status"] != "NOT_FOUND" || len(st) != 1 {
		t.Errorf("unknown deletion %v", st)
	}
}

// An unknown task is a 200 with NOT_FOUND, with every field the document requires.
func TestNotFound(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	del := e.createDeletion("a")
	st := e.statusOf("deletions", "nope")
	if st["status"] != "NOT_FOUND" || st["tracking_id"] != "nope" || len(st) != 7 || st["distinct_ids"] == nil {
		t.Errorf("unknown deletion: %v", st)
	}
	if _, isNum := st["project_id"].(float64); !isNum {
		t.Errorf("unknown deletion: project_id %v", st["project_id"])
	}
	st = e.statusOf("retrievals", del)
	if st["status"] != "NOT_FOUND" || st["results"] != "" || st["distinct_ids"] == nil || len(st) != 3 {
		t.Errorf("unknown retrieval: %v", st)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	pending := e.createDeletion("a")
	if a := e.call("DELETE", "/data-deletions/v3.0/"+pending, ""); a.code != 204 || len(a.body) != 0 {
		t.Fatalf("cancel PENDING: %d %s", a.code, a.body)
	}
	if st := e.statusOf("deletions", pending)["status"]; st != "REVOKED" {
		t.Fatalf("after cancel: %v", st)
	}
	wantError(t, e.call("DELETE", "/data-deletions/v3.0/"+pending, ""), 405) // terminal

	staging := e.createDeletion("b")
	started := e.createDeletion("c")
	e.clock.Advance(step)
	if a := e.call("DELETE", "/data-deletions/v3.0/"+staging+"/", ""); a.code != 204 {
		t.Fatalf("cancel STAGING: %d %s", a.code, a.body)
	}
	e.clock.Advance(step)
	wantError(t, e.call("DELETE", "/data-deletions/v3.0/"+started, ""), 405)
	if st := e.statusOf("deletions", started)["status"]; st != "STARTED" {
		t.Fatalf("refused cancel changed the status to %v", st)
	}
	e.clock.Advance(step)
	wantError(t, e.call("DELETE", "/data-deletions/v3.0/"+started, ""), 405)
	if st := e.statusOf("deletions", started)["status"]; st != "SUCCESS" {
		t.Fatalf("status %v, want SUCCESS", st)
	}
	wantError(t, e.call("DELETE", "/data-deletions/v3.0/nope", ""), 404)

	// Mixpanel documents no cancel for retrievals.
	r := e.createRetrieval("GDPR", "", "x")
	if a := e.call("DELETE", "/data-retrievals/v3.0/"+r, ""); a.code != 405 || a.header.Get("Allow") != "GET" {
		t.Fatalf("cancel retrieval: %d %s, want 405", a.code, a.body)
	}
	if st := e.statusOf("retrievals", r)["status"]; st != "PENDING" {
		t.Fatalf("retrieval after a refused cancel: %v", st)
	}
}

func TestConflict(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	t1 := e.createDeletion("a", "b")
	t2 := e.createDeletion("c")
	revoked := e.createDeletion("r")
	if a := e.call("DELETE", "/data-deletions/v3.0/"+revoked, ""); a.code != 204 {
		t.Fatal(a.code)
	}
	before := len(e.em.Tasks())

	a := e.call("POST", "/data-deletions/v3.0", body([]string{"c", "z", "b", "a", "b", "r"}, "GDPR", ""))
	if a.code != 409 {
		t.Fatalf("got %d %s, want 409", a.code, a.body)
	}
	m := a.json(t)
	errObj, ok := m["error"].(map[string]any)
	if m["status"] != "error" || !ok {
		t.Fatalf("409 body %s", a.body)
	}
	if got := anyStrings(errObj["conflicting_distinct_ids"]); !slices.Equal(got, []string{"c", "b", "a"}) {
		t.Errorf("conflicting_distinct_ids %v, want [c b a]", got)
	}
	if got := anyStrings(errObj["conflicting_task_ids"]); !slices.Equal(got, []string{t1, t2}) {
		t.Errorf("conflicting_task_ids %v, want [%s %s]", got, t1, t2)
	}
	if msg, _ := errObj["error"].(string); msg == "" {
		t.Errorf("409 body has no error text: %s", a.body)
	}
	if n := len(e.em.Tasks()); n != before {
		t.Fatalf("409 created a task: %d tasks, want %d", n, before)
	}
	// Same body again: 409 again. Without the conflicting ids: accepted.
	if a := e.call("POST", "/data-deletions/v3.0", body([]string{"c", "z"}, "", "")); a.code != 409 {
		t.Fatalf("resubmit: %d", a.code)
	}
	e.createDeletion("z", "r")
	// Retrievals never conflict.
	e.createRetrieval("GDPR", "", "a")
	// Once the tasks end, the ids are free again.
	e.clock.Advance(3 * step)
	e.createDeletion("a", "b", "c")
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, emulator.Options{RateLimit: 1})
	id := e.createDeletion("a")
	msg := wantError(t, e.call("GET", "/data-deletions/v3.0/"+id, ""), 429)
	if msg != "Too Many Requests, this API is limited to 1 req/s" {
		t.Errorf("429 text %q", msg)
	}
	// Inspection is not limited and does not use the budget.
	for range 3 {
		if a := e.raw("GET", "/_emulator/tasks", "", ""); a.code != 200 {
			t.Fatalf("/_emulator/tasks: %d", a.code)
		}
	}
	e.clock.Advance(500 * time.Millisecond)
	wantError(t, e.call("GET", "/data-deletions/v3.0/"+id, ""), 429)
	e.clock.Advance(500 * time.Millisecond)
	if a := e.call("GET", "/data-deletions/v3.0/"+id, ""); a.code != 200 {
		t.Fatalf("after 1s: %d %s", a.code, a.body)
	}
	e.em.SetFaults(emulator.Faults{RateLimit: 3})
	e.clock.Advance(time.Second)
	codes := []int{}
	for range 4 {
		codes = append(codes, e.call("GET", "/data-deletions/v3.0/"+id, "").code)
	}
	if !slices.Equal(codes, []int{200, 200, 200, 429}) {
		t.Errorf("3 req/s burst: %v", codes)
	}
	e.em.SetFaults(emulator.Faults{RateLimit: emulator.NoRateLimit})
	for range 5 {
		if a := e.call("GET", "/data-deletions/v3.0/"+id, ""); a.code != 200 {
			t.Fatalf("rate limit off: %d", a.code)
		}
	}
	e.em.SetFaults(emulator.Faults{}) // the zero value is Mixpanel's 1 req/s
	e.clock.Advance(time.Second)
	e.call("GET", "/data-deletions/v3.0/"+id, "")
	wantError(t, e.call("GET", "/data-deletions/v3.0/"+id, ""), 429)
	if got := e.em.Calls()["status_429"]; got != 4 {
		t.Errorf("status_429 = %d, want 4", got)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t, emulator.Options{Rate500: 1})
	wantError(t, e.call("POST", "/data-deletions/v3.0", body([]string{"a"}, "", "")), 500)
	if n := len(e.em.Tasks()); n != 0 {
		t.Fatalf("500 created a task")
	}

	post := func(j string) answer { return e.raw("POST", "/_emulator/faults", "", j) }
	if a := post(`{"rate_500":0,"rate_429":1}`); a.code != 200 {
		t.Fatalf("POST faults: %d %s", a.code, a.body)
	}
	if f := e.em.Faults(); f.Rate500 != 0 || f.Rate429 != 1 || f.RateLimit != emulator.NoRateLimit {
		t.Fatalf("faults %+v: partial update expected", f)
	}
	wantError(t, e.call("GET", "/data-deletions/v3.0/x", ""), 429)
	post(`{"rate_429":0,"unauthorized":true}`)
	wantError(t, e.call("GET", "/data-deletions/v3.0/x", ""), 401)
	post(`{"unauthorized":false,"forbidden":true}`)
	wantError(t, e.call("POST", "/data-retrievals/v3.0", body([]string{"a"}, "", "")), 403)
	post(`{"forbidden":false,"fail_prefix":"boom-","latency":"30ms"}`)
	start := time.Now()
	id := e.createDeletion("fine", "boom-1")
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("latency fault: call took %v", d)
	}
	e.clock.Advance(3 * step)
	if st := e.statusOf("deletions", id)["status"]; st != "FAILURE" {
		t.Errorf("fail_prefix set at runtime: %v", st)
	}
	var got map[string]any
	_ = json.Unmarshal(e.raw("GET", "/_emulator/faults", "", "").body, &got)
	if got["latency"] != "30ms" || got["fail_prefix"] != "boom-" {
		t.Errorf("GET faults %v", got)
	}
	for _, bad := range []string{`{"rate_500":2}`, `{"latency":"soon"}`, `{"nope":1}`, `[`} {
		if a := post(bad); a.code != 400 {
			t.Errorf("POST faults %s: %d, want 400", bad, a.code)
		}
	}
}

func TestResultDownload(t *testing.T) {
	e := newEnv(t, emulator.Options{EventsPerID: 7})
	ids := []string{"alice", "bob", "$device:c3"}
	id := e.createRetrieval("GDPR", "", ids...)
	if st := e.statusOf("retrievals", id); st["results"] != "" || len(st) != 3 {
		t.Fatalf("link before SUCCESS: %v", st)
	}
	e.clock.Advance(3 * step)
	st := e.statusOf("retrievals", id)
	result, _ := st["results"].(string)
	if st["status"] != "SUCCESS" || !strings.HasPrefix(result, e.srv.URL+"/_emulator/results/"+id+".zip?sig=") {
		t.Fatalf("status %v", st)
	}
	path := strings.TrimPrefix(result, e.srv.URL)
	noSig, _, _ := strings.Cut(path, "?")
	wantError(t, e.raw("GET", noSig, "", ""), 403)
	wantError(t, e.raw("GET", noSig+"?sig=guess", "", ""), 403)
	wantError(t, e.raw("GET", "/_emulator/results/nope.zip?sig=x", "", ""), 404)

	a := e.raw("GET", path, "", "")
	if a.code != 200 || a.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %v", a.code, a.header)
	}
	files := unzip(t, a.body)
	events := lines(files["events.jsonl"])
	if len(events) != len(ids)*7 {
		t.Fatalf("%d events, want %d", len(events), len(ids)*7)
	}
	perID := map[string]int{}
	for _, l := range events {
		var ev struct {
			Event      string         `json:"event"`
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event == "" {
			t.Fatalf("event line %q: %v", l, err)
		}
		if _, ok := ev.Properties["time"].(float64); !ok {
			t.Fatalf("event without time: %q", l)
		}
		perID[ev.Properties["distinct_id"].(string)]++
	}
	for _, id := range ids {
		if perID[id] != 7 {
			t.Errorf("%d events for %q, want 7", perID[id], id)
		}
	}
	if n := len(lines(files["people.jsonl"])); n != len(ids) {
		t.Errorf("%d profiles, want %d", n, len(ids))
	}
	if again := e.raw("GET", path, "", ""); !bytes.Equal(unzip(t, again.body)["events.jsonl"], files["events.jsonl"]) {
		t.Error("result is not deterministic")
	}
	// Another task with an id in common has the same events for it.
	other := e.createRetrieval("CCPA", "", "alice")
	e.clock.Advance(3 * step)
	res2 := strings.TrimPrefix(e.statusOf("retrievals", other)["results"].(string), e.srv.URL)
	if got := lines(unzip(t, e.raw("GET", res2, "", "").body)["events.jsonl"]); !slices.Equal(got, events[:7]) {
		t.Error("alice's events differ between tasks")
	}
	if n := e.em.Calls()["retrieval.download"]; n != 6 {
		t.Errorf("retrieval.download = %d, want 6", n)
	}
}

func TestPublicURL(t *testing.T) {
	e := newEnv(t, emulator.Options{PublicURL: "https://mp.example.test/base/"})
	id := e.createRetrieval("GDPR", "", "a")
	e.clock.Advance(3 * step)
	if r := e.statusOf("retrievals", id)["results"].(string); !strings.HasPrefix(r, "https://mp.example.test/base/_emulator/results/"+id+".zip?sig=") {
		t.Errorf("result %q", r)
	}
}

func TestInspection(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	d := e.createDeletion("a", "b")
	r := e.createRetrieval("ccpa", "Sources", "c")
	e.statusOf("deletions", d)
	e.raw("GET", "/api/app/data-deletions/v3.0/"+d+"?token=wrong", "", "")
	e.clock.Advance(step)

	var tasks []map[string]any
	if err := json.Unmarshal(e.raw("GET", "/_emulator/tasks", "", "").body, &tasks); err != nil || len(tasks) != 2 {
		t.Fatalf("tasks: %v %v", tasks, err)
	}
	if tasks[0]["id"] != d || tasks[0]["kind"] != "deletion" || tasks[0]["status"] != "STAGING" ||
		!slices.Equal(anyStrings(tasks[0]["distinct_ids"]), []string{"a", "b"}) || tasks[0]["compliance_type"] != "GDPR" {
		t.Errorf("task 0: %v", tasks[0])
	}
	if tasks[1]["id"] != r || tasks[1]["kind"] != "retrieval" || tasks[1]["disclosure_type"] != "SOURCES" || tasks[1]["created"] != "2025-03-01T12:00:00Z" {
		t.Errorf("task 1: %v", tasks[1])
	}
	var calls map[string]int
	_ = json.Unmarshal(e.raw("GET", "/_emulator/calls/", "", "").body, &calls)
	want := map[string]int{"deletion.create": 1, "retrieval.create": 1, "deletion.status": 2, "status_201": 2, "status_200": 1, "status_401": 1}
	for k, v := range want {
		if calls[k] != v {
			t.Errorf("calls[%s] = %d, want %d (all: %v)", k, calls[k], v, calls)
		}
	}
	if a := e.raw("POST", "/_emulator/reset", "", ""); a.code != 204 || len(e.em.Tasks()) != 0 || len(e.em.Calls()) != 0 {
		t.Errorf("reset: %d, %d tasks", a.code, len(e.em.Tasks()))
	}
	if a := e.raw("GET", "/_emulator/healthz", "", ""); a.code != 200 {
		t.Errorf("healthz: %d", a.code)
	}
}

// The call log lists every API call with its arrival time, operation,
// answer and task, so a test can check the spacing of task creations.
func TestCallLog(t *testing.T) {
	e := newEnv(t, emulator.Options{RateLimit: 1})
	id := e.createDeletion("a")
	e.call("GET", "/data-deletions/v3.0/"+id, "") // within the same second: 429
	e.clock.Advance(1500 * time.Millisecond)
	e.call("GET", "/data-deletions/v3.0/"+id, "")
	e.call("DELETE", "/data-retrievals/v3.0/1", "")
	var log []emulator.Call
	if err := json.Unmarshal(e.raw("GET", "/_emulator/log", "", "").body, &log); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	want := []emulator.Call{
		{Time: t0, Op: "deletion.create", Code: 201, TaskID: id},
		{Time: t0, Op: "deletion.status", Code: 429, TaskID: id},
		{Time: t0.Add(1500 * time.Millisecond), Op: "deletion.status", Code: 200, TaskID: id},
		{Time: t0.Add(1500 * time.Millisecond), Op: "retrieval.unsupported", Code: 405, TaskID: "1"},
	}
	if len(log) != len(want) {
		t.Fatalf("log %+v, want %+v", log, want)
	}
	for i := range want {
		if !log[i].Time.Equal(want[i].Time) || log[i].Op != want[i].Op || log[i].Code != want[i].Code || log[i].TaskID != want[i].TaskID {
			t.Errorf("log[%d] = %+v, want %+v", i, log[i], want[i])
		}
	}
	if got := e.em.CallLog(); len(got) != len(want) {
		t.Errorf("CallLog() has %d calls, want %d", len(got), len(want))
	}
	e.em.Reset()
	if got := e.em.CallLog(); len(got) != 0 {
		t.Errorf("after Reset: %d logged calls", len(got))
	}
}

func TestConcurrent(t *testing.T) {
	e := newEnv(t, emulator.Options{})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			id := e.createDeletion(fmt.Sprint("user-", i))
			e.statusOf("deletions", id)
			e.em.Tasks()
			e.em.SetFaults(emulator.Faults{RateLimit: emulator.NoRateLimit})
		})
	}
	wg.Wait()
	if n := len(e.em.Tasks()); n != 40 {
		t.Errorf("%d tasks, want 40", n)
	}
	if c := e.em.Calls(); c["deletion.create"] != 40 || c["deletion.status"] != 40 {
		t.Errorf("calls %v", c)
	}
}

func anyStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func unzip(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
