// Package emulator is a local stand-in for Mixpanel's GDPR API v3, for
// development, demos, tests and benchmarks. It serves deletion and retrieval
// tasks the way Mixpanel does, including what the documentation leaves out:
// the 1 request/s limit, the 409 conflict on ids already being deleted,
// NOT_FOUND as a 200, and a signed result URL.
//
// Its answers follow Mixpanel's OpenAPI document (../openapi/gdpr.openapi.yaml):
// creates answer 201 {"status":"ok","results":{"task_id":ID}}, status objects
// hold exactly the documented fields, and a retrieval's link is
// results.results. Options.ProseShapes answers as Mixpanel's prose reference
// shows instead: creates 200 (a retrieval's as a list of task objects), status
// objects with "result" and more fields.
//
// The API is served at Mixpanel's own paths, with or without a trailing slash,
// so a client pointed at the emulator's host behaves as against Mixpanel's:
//
//	POST   /api/app/data-deletions/v3.0?token=T        create (409 on conflict)
//	GET    /api/app/data-deletions/v3.0/<id>?token=T   status
//	DELETE /api/app/data-deletions/v3.0/<id>?token=T   cancel (204, or 405 once STARTED)
//	POST   /api/app/data-retrievals/v3.0?token=T       create
//	GET    /api/app/data-retrievals/v3.0/<id>?token=T  status (no cancel, as documented)
//
// Helpers under /_emulator/ need no credentials and are not rate-limited:
//
//	GET  /_emulator/tasks     every task (TaskInfo list, JSON)
//	GET  /_emulator/calls     call counts (see Calls)
//	GET  /_emulator/log       every API call with its time and answer (see CallLog)
//	GET  /_emulator/faults    the current faults
//	POST /_emulator/faults    change only the fields named, e.g.
//	                          {"rate_429":0.1,"rate_500":0,"latency":"250ms","rate_limit":-1,
//	                           "unauthorized":false,"forbidden":false,"fail_prefix":"fail-"}
//	POST /_emulator/reset     forget tasks, counts and the call log
//	GET  /_emulator/healthz   200 once serving
//	GET  /_emulator/results/<id>.zip?sig=...   a retrieval's result (signed URL)
//
// The emulator logs nothing.
package emulator

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for zero Options fields, and the value that turns the rate limit off.
const (
	DefaultStep        = 2 * time.Second
	DefaultMaxIDs      = 1999
	DefaultEventsPerID = 5
	// DefaultRateLimit is Mixpanel's limit in requests per second per project.
	DefaultRateLimit = 1.0
	// NoRateLimit turns the rate limit off (Options.RateLimit, Faults.RateLimit).
	NoRateLimit = -1.0
)

// RateLimitMessage is the error text of a 429, as Mixpanel sends it.
const RateLimitMessage = "Too Many Requests, this API is limited to 1 req/s"

// Task kinds.
const (
	KindDeletion  = "deletion"
	KindRetrieval = "retrieval"
)

const maxBodyBytes = 4 << 20

// apiPrefix is where Mixpanel serves the GDPR API on its host.
const apiPrefix = "/api/app"

// maxLog bounds the call log; when it is full the oldest tenth is dropped.
const maxLog = 100_000

// Options configures an Emulator.
type Options struct {
	// ProjectToken (?token=) and OAuthToken ("Authorization: Bearer") are the
	// credentials every API call must carry. If either is empty, every API
	// call is answered 401.
	ProjectToken, OAuthToken string
	// Step is the time between status steps PENDING -> STAGING -> STARTED ->
	// SUCCESS (default 2s).
	Step time.Duration
	// RateLimit is in requests per second per project token: 0 means
	// Mixpanel's 1 req/s, NoRateLimit (any negative value) turns it off.
	RateLimit float64
	// MaxIDs is the most distinct ids one request may carry (default 1999).
	MaxIDs int
	// FailPrefix: a task holding a distinct id that starts with it ends in
	// FAILURE (dsr mixpanel-emulator --fail-ids).
	FailPrefix string
	// Rate429 and Rate500 are the fractions of API calls answered 429 or 500.
	Rate429, Rate500 float64
	// Latency is added to every API call.
	Latency time.Duration
	// Clock drives the status progression and the rate limit (default time.Now).
	Clock func() time.Time
	// EventsPerID is the number of fake events per id in a retrieval result (default 5).
	EventsPerID int
	// PublicURL is the base the emulator is reached at, for result URLs;
	// default: from the request's Host.
	PublicURL string
	// ProseShapes answers in the shapes of Mixpanel's prose reference instead
	// of its OpenAPI document (dsr mixpanel-emulator --prose-shapes).
	ProseShapes bool
}

// Faults is the fault injection that SetFaults changes at runtime. The zero
// value is a well-behaved Mixpanel, 1 req/s limit included.
type Faults struct {
	// Rate429 and Rate500 are the fractions of API calls answered 429 or 500.
	Rate429, Rate500 float64
	// Latency is added to every API call.
	Latency time.Duration
	// RateLimit as in Options: 0 is 1 req/s, negative is off.
	RateLimit float64
	// Unauthorized answers every API call 401, as with an expired OAuth token.
	Unauthorized bool
	// Forbidden answers every API call 403, as when the token's owner may not
	// manage the project's data.
	Forbidden bool
	// FailPrefix: tasks created from now on holding a distinct id that starts
	// with it end in FAILURE.
	FailPrefix string
}

// Call is one API call in the call log.
type Call struct {
	// Time is when the call arrived, by the emulator's clock.
	Time time.Time `json:"time"`
	// Op is e.g. "deletion.create", "retrieval.status", "deletion.cancel".
	Op string `json:"op"`
	// Code is the HTTP status answered (499 if the client went away).
	Code int `json:"code"`
	// TaskID is the task created, or asked about.
	TaskID string `json:"task_id,omitempty"`
}

// TaskInfo describes a task for inspection.
type TaskInfo struct {
	ID             string    `json:"id"`
	Kind           string    `json:"kind"`
	Status         string    `json:"status"`
	DistinctIDs    []string  `json:"distinct_ids"`
	ComplianceType string    `json:"compliance_type"`
	DisclosureType string    `json:"disclosure_type,omitempty"`
	Created        time.Time `json:"created"`
}

// Emulator is an http.Handler that behaves like Mixpanel's GDPR API v3. It is
// safe for concurrent use.
type Emulator struct {
	opts      Options
	projectID int64

	mu     sync.Mutex
	faults Faults
	tasks  map[string]*task
	seq    int
	calls  map[string]int
	log    []Call
	bucket bucket
}

// New returns an Emulator; zero Options fields take their defaults.
func New(o Options) *Emulator {
	if o.Step <= 0 {
		o.Step = DefaultStep
	}
	if o.MaxIDs <= 0 {
		o.MaxIDs = DefaultMaxIDs
	}
	if o.EventsPerID <= 0 {
		o.EventsPerID = DefaultEventsPerID
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	h := fnv.New32a()
	h.Write([]byte(o.ProjectToken))
	return &Emulator{
		opts:      o,
		projectID: 1_000_000 + int64(h.Sum32()%9_000_000),
		faults: Faults{
			Rate429: o.Rate429, Rate500: o.Rate500, Latency: o.Latency,
			RateLimit: o.RateLimit, FailPrefix: o.FailPrefix,
		},
		tasks: map[string]*task{},
		calls: map[string]int{},
	}
}

// SetFaults replaces the fault injection.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = f
}

// Faults returns the current fault injection.
func (e *Emulator) Faults() Faults {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faults
}

// Tasks returns every task in creation order, with its status now.
func (e *Emulator) Tasks() []TaskInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.opts.Clock()
	list := make([]*task, 0, len(e.tasks))
	for _, t := range e.tasks {
		list = append(list, t)
	}
	slices.SortFunc(list, func(a, b *task) int { return a.seq - b.seq })
	out := make([]TaskInfo, len(list))
	for i, t := range list {
		out[i] = TaskInfo{
			ID: t.id, Kind: t.kind, Status: t.status(now, e.opts.Step),
			DistinctIDs: slices.Clone(t.ids), ComplianceType: t.compliance,
			DisclosureType: t.disclosure, Created: t.created,
		}
	}
	return out
}

// Calls returns call counts: "deletion.create", "deletion.status",
// "deletion.cancel", the same for "retrieval.", "retrieval.download", and
// "status_<code>" for every API answer.
func (e *Emulator) Calls() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int, len(e.calls))
	for k, v := range e.calls {
		out[k] = v
	}
	return out
}

// CallLog returns the API calls in arrival order (at least the last 90,000),
// for checks such as "task creations stayed within 1 request/s".
func (e *Emulator) CallLog() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// Reset forgets every task, call count, logged call and rate-limit state;
// faults stay.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tasks = map[string]*task{}
	e.calls = map[string]int{}
	e.log = nil
	e.bucket = bucket{}
}

// ServeHTTP implements http.Handler.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/_emulator" || strings.HasPrefix(p, "/_emulator/") {
		e.serveHelpers(w, r)
		return
	}
	p, under := strings.CutPrefix(p, apiPrefix)
	kind, id, ok := route(p)
	if !under || !ok {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	e.serveAPI(w, r, kind, id)
}

// route splits an API path into the task kind and the task id ("" for the collection).
func route(p string) (kind, id string, ok bool) {
	for _, r := range [...]struct{ prefix, kind string }{
		{"/data-deletions/v3.0", KindDeletion},
		{"/data-retrievals/v3.0", KindRetrieval},
	} {
		prefix, k := r.prefix, r.kind
		if p == prefix {
			return k, "", true
		}
		if rest, found := strings.CutPrefix(p, prefix+"/"); found {
			rest = strings.TrimSuffix(rest, "/")
			if strings.Contains(rest, "/") {
				return "", "", false
			}
			return k, rest, true
		}
	}
	return "", "", false
}

func operation(kind, method, id string) string {
	switch {
	case id == "" && method == http.MethodPost:
		return "create"
	case id != "" && method == http.MethodGet:
		return "status"
	case id != "" && method == http.MethodDelete && kind == KindDeletion:
		return "cancel"
	}
	return ""
}

func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request, kind, id string) {
	rec := &recorder{ResponseWriter: w, code: http.StatusOK, task: id}
	op := operation(kind, r.Method, id)
	arrived := e.opts.Clock()
	defer func() { e.logCall(arrived, kind+"."+cmp.Or(op, "unsupported"), rec) }()
	if op == "" {
		allow := "POST"
		if id != "" {
			allow = "GET, DELETE"
			if kind == KindRetrieval {
				allow = "GET"
			}
		}
		rec.Header().Set("Allow", allow)
		writeError(rec, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	e.count(kind + "." + op)
	f := e.Faults()
	if !sleep(r, f.Latency) {
		rec.code = 499 // the client went away; nothing was answered
		return
	}
	switch {
	case f.Unauthorized:
		writeError(rec, http.StatusUnauthorized, "Unauthorized, the OAuth token is invalid or expired")
		return
	case f.Forbidden:
		writeError(rec, http.StatusForbidden, "Forbidden, the OAuth token's owner may not manage this project's data")
		return
	case f.Rate500 > 0 && mrand.Float64() < f.Rate500:
		writeError(rec, http.StatusInternalServerError, "Internal Server Error")
		return
	case f.Rate429 > 0 && mrand.Float64() < f.Rate429:
		writeError(rec, http.StatusTooManyRequests, RateLimitMessage)
		return
	}
	if msg := e.authorize(r); msg != "" {
		writeError(rec, http.StatusUnauthorized, msg)
		return
	}
	if !e.allow(f.RateLimit) {
		e.count("rate_limited") // a genuine limit breach, as opposed to an injected 429
		writeError(rec, http.StatusTooManyRequests, RateLimitMessage)
		return
	}
	switch op {
	case "create":
		e.create(rec, r, kind)
	case "status":
		e.status(rec, r, kind, id)
	case "cancel":
		e.cancel(rec, kind, id)
	}
}

// logCall counts an answered API call and adds it to the call log.
func (e *Emulator) logCall(at time.Time, op string, rec *recorder) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls["status_"+strconv.Itoa(rec.code)]++
	if len(e.log) >= maxLog {
		e.log = append(e.log[:0], e.log[maxLog/10:]...)
	}
	e.log = append(e.log, Call{Time: at, Op: op, Code: rec.code, TaskID: rec.task})
}

// authorize returns why a call is refused, or "".
func (e *Emulator) authorize(r *http.Request) string {
	if e.opts.ProjectToken == "" || e.opts.OAuthToken == "" {
		return "Unauthorized, the emulator has no project token or OAuth token configured"
	}
	tok := r.URL.Query().Get("token")
	if tok == "" {
		return "Unauthorized, missing project token: pass ?token=<project token>"
	}
	if !equal(tok, e.opts.ProjectToken) {
		return "Unauthorized, invalid project token"
	}
	scheme, bearer, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(bearer) == "" {
		return "Unauthorized, missing OAuth token: pass Authorization: Bearer <GDPR OAuth token>"
	}
	if !equal(strings.TrimSpace(bearer), e.opts.OAuthToken) {
		return "Unauthorized, invalid or expired OAuth token"
	}
	return ""
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// allow applies the per-project rate limit (the emulator has one project).
func (e *Emulator) allow(rate float64) bool {
	if rate < 0 {
		return true
	}
	if rate == 0 {
		rate = DefaultRateLimit
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bucket.allow(e.opts.Clock(), rate)
}

// bucket is a token bucket holding at most max(1, rate) tokens.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) allow(now time.Time, rate float64) bool {
	size := max(1, rate)
	if b.last.IsZero() {
		b.tokens = size
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(size, b.tokens+d.Seconds()*rate)
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

type createRequest struct {
	DistinctIDs    []string `json:"distinct_ids"`
	ComplianceType string   `json:"compliance_type"`
	DisclosureType string   `json:"disclosure_type"`
}

func (e *Emulator) create(w *recorder, r *http.Request, kind string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the request body")
		return
	}
	if len(body) > maxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	var req createRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: distinct_ids must be a list of strings")
		return
	}
	if len(req.DistinctIDs) == 0 {
		writeError(w, http.StatusBadRequest, "distinct_ids must be a non-empty list")
		return
	}
	if len(req.DistinctIDs) > e.opts.MaxIDs {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("too many distinct_ids: %d, at most %d per request", len(req.DistinctIDs), e.opts.MaxIDs))
		return
	}
	if slices.Contains(req.DistinctIDs, "") {
		writeError(w, http.StatusBadRequest, "distinct_ids must not contain an empty string")
		return
	}
	compliance := strings.ToUpper(strings.TrimSpace(req.ComplianceType))
	if compliance == "" {
		compliance = "GDPR"
	}
	if compliance != "GDPR" && compliance != "CCPA" {
		writeError(w, http.StatusBadRequest, "compliance_type must be GDPR or CCPA")
		return
	}
	disclosure := strings.ToUpper(strings.TrimSpace(req.DisclosureType))
	if disclosure != "" && disclosure != "DATA" && disclosure != "CATEGORIES" && disclosure != "SOURCES" {
		writeError(w, http.StatusBadRequest, "disclosure_type must be Data, Categories or Sources")
		return
	}
	if kind != KindRetrieval || compliance != "CCPA" {
		disclosure = ""
	} else if disclosure == "" {
		disclosure = "DATA"
	}

	e.mu.Lock()
	now := e.opts.Clock()
	if kind == KindDeletion {
		if ids, tasks := e.conflicts(req.DistinctIDs, now); len(ids) > 0 {
			e.mu.Unlock()
			writeJSON(w, http.StatusConflict, map[string]any{
				"status": "error",
				"error": map[string]any{
					"conflicting_distinct_ids": ids,
					"conflicting_task_ids":     tasks,
					"error":                    "some distinct_ids already belong to a running deletion task",
				},
			})
			return
		}
	}
	t := &task{
		id: e.newID(kind), kind: kind, ids: slices.Clone(req.DistinctIDs),
		compliance: compliance, disclosure: disclosure, created: now,
		sig: rand.Text(),
	}
	if p := e.faults.FailPrefix; p != "" {
		t.fail = slices.ContainsFunc(t.ids, func(id string) bool { return strings.HasPrefix(id, p) })
	}
	e.seq++
	t.seq = e.seq
	e.tasks[t.id] = t
	e.mu.Unlock()
	w.task = t.id

	if !e.opts.ProseShapes {
		// JobCreated in the OpenAPI document.
		writeJSON(w, http.StatusCreated, map[string]any{"status": "ok", "results": map[string]any{"task_id": t.id}})
		return
	}
	if kind == KindDeletion {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "results": map[string]any{"task_id": t.id}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "results": []any{map[string]any{
		"status":            StatusPending,
		"disclosure_type":   nullable(disclosure),
		"date_requested":    dateRequested(now),
		"tracking_id":       t.id,
		"project_id":        e.projectID,
		"compliance_type":   strings.ToLower(compliance),
		"destination_url":   nil,
		"requesting_user":   requestingUser,
		"distinct_id_count": len(t.ids),
	}}})
}

// conflicts returns the ids (in request order) that belong to running
// deletion tasks, and those tasks (in creation order). e.mu must be held.
func (e *Emulator) conflicts(ids []string, now time.Time) (conflicting, taskIDs []string) {
	running := map[string]*task{}
	for _, t := range e.tasks {
		if t.kind != KindDeletion || terminal(t.status(now, e.opts.Step)) {
			continue
		}
		for _, id := range t.ids {
			if cur, ok := running[id]; !ok || t.seq < cur.seq {
				running[id] = t
			}
		}
	}
	seenID := map[string]bool{}
	var hit []*task
	for _, id := range ids {
		t, ok := running[id]
		if !ok || seenID[id] {
			continue
		}
		seenID[id] = true
		conflicting = append(conflicting, id)
		if !slices.Contains(hit, t) {
			hit = append(hit, t)
		}
	}
	slices.SortFunc(hit, func(a, b *task) int { return a.seq - b.seq })
	for _, t := range hit {
		taskIDs = append(taskIDs, t.id)
	}
	return conflicting, taskIDs
}

func (e *Emulator) status(w http.ResponseWriter, r *http.Request, kind, id string) {
	e.mu.Lock()
	now := e.opts.Clock()
	t, ok := e.tasks[id]
	if !ok || t.kind != kind {
		e.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "results": e.notFound(kind, id)})
		return
	}
	st := t.status(now, e.opts.Step)
	e.mu.Unlock()

	var link string
	if kind == KindRetrieval && st == StatusSuccess {
		link = e.publicURL(r) + "/_emulator/results/" + t.id + ".zip?sig=" + t.sig
	}
	if !e.opts.ProseShapes {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "results": e.documented(t, st, link)})
		return
	}
	res := map[string]any{
		"status":          st,
		"tracking_id":     t.id,
		"distinct_ids":    t.ids,
		"compliance_type": strings.ToLower(t.compliance),
		"project_id":      e.projectID,
		"date_requested":  dateRequested(t.created),
		"requesting_user": requestingUser,
		"result":          "",
	}
	if kind == KindRetrieval {
		res["disclosure_type"] = nullable(t.disclosure)
		res["result"] = link
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "results": res})
}

// documented is a task's status object as the OpenAPI document defines it:
// DeletionJobResult (exactly its seven fields) or a retrieval's
// {status, results: link, distinct_ids}.
func (e *Emulator) documented(t *task, status, link string) map[string]any {
	if t.kind == KindRetrieval {
		return map[string]any{"status": status, "results": link, "distinct_ids": t.ids}
	}
	return map[string]any{
		"tracking_id":     t.id,
		"status":          status,
		"requesting_user": requestingUser,
		"compliance_type": strings.ToLower(t.compliance),
		"project_id":      e.projectID,
		"date_requested":  dateRequested(t.created),
		"distinct_ids":    t.ids,
	}
}

// notFound is the status object of a task the emulator does not know: 200
// with NOT_FOUND, and in the document's shape every required field (empty).
func (e *Emulator) notFound(kind, id string) map[string]any {
	if e.opts.ProseShapes {
		return map[string]any{"status": StatusNotFound}
	}
	if kind == KindRetrieval {
		return map[string]any{"status": StatusNotFound, "results": "", "distinct_ids": []string{}}
	}
	return map[string]any{
		"tracking_id": id, "status": StatusNotFound, "requesting_user": "", "compliance_type": "",
		"project_id": e.projectID, "date_requested": "", "distinct_ids": []string{},
	}
}

func (e *Emulator) cancel(w http.ResponseWriter, kind, id string) {
	e.mu.Lock()
	t, ok := e.tasks[id]
	if !ok || t.kind != kind {
		e.mu.Unlock()
		writeError(w, http.StatusNotFound, "task not found")
		return
	}
	st := t.status(e.opts.Clock(), e.opts.Step)
	if st != StatusPending && st != StatusStaging {
		e.mu.Unlock()
		writeError(w, http.StatusMethodNotAllowed, "the task has "+strings.ToLower(st)+" and can no longer be cancelled")
		return
	}
	t.revoked = true
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) publicURL(r *http.Request) string {
	if e.opts.PublicURL != "" {
		return e.opts.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// newID returns a fresh task id: a UUID for deletions, a 19-digit number for
// retrievals, as in Mixpanel's examples. e.mu must be held.
func (e *Emulator) newID(kind string) string {
	for {
		var id string
		if kind == KindDeletion {
			var b [16]byte
			_, _ = rand.Read(b[:])
			b[6] = b[6]&0x0f | 0x40
			b[8] = b[8]&0x3f | 0x80
			h := hex.EncodeToString(b[:])
			id = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		} else {
			id = strconv.FormatUint(1_000_000_000_000_000_000+mrand.Uint64N(9_000_000_000_000_000_000), 10)
		}
		if _, taken := e.tasks[id]; !taken {
			return id
		}
	}
}

func (e *Emulator) count(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[key]++
}

// sleep waits d unless the client goes away first.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

const requestingUser = "emulator@example.com"

// dateRequested formats like Mixpanel: UTC, microseconds, no zone.
func dateRequested(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// recorder remembers the status code of an answer and the task it concerns.
type recorder struct {
	http.ResponseWriter
	code int
	task string
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"status": "error", "error": msg})
}
