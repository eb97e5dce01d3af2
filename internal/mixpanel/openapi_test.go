package mixpanel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
)

// The contract test: the real client against the real emulator over HTTP,
// every request and every answer checked against Mixpanel's own OpenAPI
// document (openapi/gdpr.openapi.yaml) by kin-openapi's openapi3filter.

const contractFile = "openapi/gdpr.openapi.yaml"

// loadContract loads Mixpanel's document for a server at host (the emulator
// stands in for https://{region}.mixpanel.com). Request bodies are tightened
// to additionalProperties: false, so that the client sends nothing the
// document does not name (a CCPA deletion's disclosure_type, say); answers
// are checked as the document wrote them.
func loadContract(t *testing.T, host string) (*openapi3.T, routers.Router) {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(contractFile)
	if err != nil {
		t.Fatal(err)
	}
	// The document's own example of DeletionJobResult gives project_id as
	// text ("your project ID") where its schema says number: check the
	// document, not its examples.
	if err := doc.Validate(loader.Context, openapi3.DisableExamplesValidation()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", contractFile, err)
	}
	if len(doc.Servers) != 1 || !strings.HasSuffix(doc.Servers[0].URL, ".com/api/app") {
		t.Fatalf("%s servers changed: %v", contractFile, doc.Servers)
	}
	doc.Servers = openapi3.Servers{{URL: host + "/api/app"}}
	no := false
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody == nil {
				continue
			}
			for _, mt := range op.RequestBody.Value.Content {
				mt.Schema.Value.AdditionalProperties.Has = &no
			}
		}
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// exchange is one API call as the contract saw it.
type exchange struct {
	op       string // the document's operationId; "" if no route matched
	status   int
	req, ans error // what the document says is wrong with the request, the answer
}

func (x exchange) String() string {
	return fmt.Sprintf("%s -> %d (request: %v; answer: %v)", x.op, x.status, x.req, x.ans)
}

// contract is an http.RoundTripper that checks each API call against the
// document on its way through.
type contract struct {
	router routers.Router
	next   http.RoundTripper

	mu  sync.Mutex
	log []exchange
}

func newContract(t *testing.T, host string) (*openapi3.T, *contract) {
	doc, router := loadContract(t, host)
	return doc, &contract{router: router, next: http.DefaultTransport}
}

func (c *contract) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, "/_emulator/results/") {
		// A retrieval's signed result URL: cloud storage at Mixpanel, not this API.
		return c.next.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	withBody := func() *http.Request {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		return r
	}
	var x exchange
	route, params, err := c.router.FindRoute(withBody())
	var in *openapi3filter.RequestValidationInput
	if err != nil {
		x.req = fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	} else {
		x.op = route.Operation.OperationID
		in = &openapi3filter.RequestValidationInput{
			Request: withBody(), PathParams: params, Route: route,
			Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerOnly},
		}
		x.req = openapi3filter.ValidateRequest(req.Context(), in)
	}
	resp, err := c.next.RoundTrip(withBody())
	if err != nil {
		return nil, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	x.status = resp.StatusCode
	if in != nil {
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			// A success must be one the document lists. Errors it does not
			// list (400, 404, 405, 409, 429, 500) are Mixpanel's, seen in
			// production and in its prose reference.
			Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: resp.StatusCode < 300},
		}
		out.SetBodyBytes(answer)
		x.ans = openapi3filter.ValidateResponse(req.Context(), out)
	}
	c.mu.Lock()
	c.log = append(c.log, x)
	c.mu.Unlock()
	return resp, nil
}

func (c *contract) exchanges() []exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// bearerOnly checks the document's OAuthToken scheme (HTTP bearer); the other
// schemes it defines are not used by any operation.
func bearerOnly(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return fmt.Errorf("security scheme %s is not the OAuth bearer", in.SecuritySchemeName)
	}
	scheme, token, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return errors.New("no Authorization: Bearer header")
	}
	return nil
}

// contractFixture is the client and the emulator, with the contract in between.
func contractFixture(t *testing.T, o emulator.Options) (*fixture, *openapi3.T, *contract) {
	var doc *openapi3.T
	var c *contract
	f := newFixture(t, o, func(opts *mixpanel.Options) {
		doc, c = newContract(t, opts.BaseURL)
		opts.HTTPClient = &http.Client{Transport: c}
	})
	return f, doc, c
}

// exercise makes every call the client has, with the outcomes Mixpanel
// gives: each documented answer (201, 200, 204, 401, 403) and the
// undocumented ones seen in production (405, 409).
func exercise(t *testing.T, f *fixture) {
	t.Helper()
	check := func(what string, err error, want func(error) bool) {
		t.Helper()
		if !want(err) {
			t.Errorf("%s: %v", what, err)
		}
	}
	ok := func(err error) bool { return err == nil }

	gdpr := f.createDeletion("alice", "bob")
	ccpa, err := f.c.CreateDeletion(ctx, []string{"carol"}, mixpanel.CCPA)
	check("CCPA deletion", err, ok)
	failing := f.createDeletion("dave", "fail-erin")
	_, err = f.c.CreateDeletion(ctx, []string{"bob"}, mixpanel.GDPR)
	check("conflicting deletion", err, func(err error) bool { var ce *mixpanel.ConflictError; return errors.As(err, &ce) })
	if task := f.status("deletion", gdpr); task.Status != dsr.TaskPending || !slices.Equal(task.DistinctIDs, []string{"alice", "bob"}) {
		t.Errorf("deletion status %+v", task)
	}
	check("cancel PENDING", f.c.CancelDeletion(ctx, ccpa), ok)

	retrieval, err := f.c.CreateRetrieval(ctx, []string{"frank"}, mixpanel.GDPR, "")
	check("GDPR retrieval", err, ok)
	_, err = f.c.CreateRetrieval(ctx, []string{"gina"}, mixpanel.CCPA, mixpanel.DisclosureCategories)
	check("CCPA retrieval", err, ok)
	if task := f.status("retrieval", retrieval); task.Status != dsr.TaskPending || task.Result != "" {
		t.Errorf("retrieval status %+v", task)
	}

	f.clock.Advance(3 * step)
	if st := f.status("deletion", gdpr).Status; st != dsr.TaskSuccess {
		t.Errorf("deletion after three steps: %s", st)
	}
	if st := f.status("deletion", failing).Status; st != dsr.TaskFailure {
		t.Errorf("deletion holding a failing id: %s", st)
	}
	check("cancel SUCCESS", f.c.CancelDeletion(ctx, gdpr), func(err error) bool { return errors.Is(err, mixpanel.ErrNotCancellable) })
	task := f.status("retrieval", retrieval)
	if task.Status != dsr.TaskSuccess || task.Result == "" {
		t.Fatalf("retrieval after three steps %+v", task)
	}
	rc, err := f.c.DownloadResult(ctx, task.Result)
	check("download", err, ok)
	if err == nil {
		n, _ := io.Copy(io.Discard, rc)
		rc.Close()
		if n == 0 {
			t.Error("empty result")
		}
	}
	notFound := func(err error) bool { return errors.Is(err, mixpanel.ErrTaskNotFound) }
	_, err = f.c.DeletionStatus(ctx, "no-such-task")
	check("unknown deletion", err, notFound)
	_, err = f.c.RetrievalStatus(ctx, "1583792934719392965")
	check("unknown retrieval", err, notFound)

	refused := func(code int) func(error) bool {
		return func(err error) bool {
			var ue *mixpanel.UnauthorizedError
			return errors.As(err, &ue) && ue.StatusCode == code
		}
	}
	for _, fault := range []struct {
		faults emulator.Faults
		code   int
	}{
		{emulator.Faults{Unauthorized: true, RateLimit: emulator.NoRateLimit}, 401},
		{emulator.Faults{Forbidden: true, RateLimit: emulator.NoRateLimit}, 403},
	} {
		f.em.SetFaults(fault.faults)
		_, err = f.c.CreateDeletion(ctx, []string{"hank"}, mixpanel.GDPR)
		check("create deletion "+strconv.Itoa(fault.code), err, refused(fault.code))
		_, err = f.c.DeletionStatus(ctx, gdpr)
		check("deletion status "+strconv.Itoa(fault.code), err, refused(fault.code))
		check("cancel deletion "+strconv.Itoa(fault.code), f.c.CancelDeletion(ctx, gdpr), refused(fault.code))
		_, err = f.c.CreateRetrieval(ctx, []string{"hank"}, mixpanel.GDPR, "")
		check("create retrieval "+strconv.Itoa(fault.code), err, refused(fault.code))
		_, err = f.c.RetrievalStatus(ctx, retrieval)
		check("retrieval status "+strconv.Itoa(fault.code), err, refused(fault.code))
	}
	f.em.SetFaults(emulator.Faults{RateLimit: emulator.NoRateLimit})
}

// documented lists every operationId and response status the document defines.
func documented(doc *openapi3.T) map[string][]int {
	out := map[string][]int{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for code := range op.Responses.Map() {
				n, err := strconv.Atoi(code)
				if err == nil {
					out[op.OperationID] = append(out[op.OperationID], n)
				}
			}
		}
	}
	return out
}

// By default the emulator answers exactly as the document says, and the
// client's requests are what the document asks for; every operation and
// every response the document defines is exercised.
func TestContractOpenAPIShapes(t *testing.T) {
	f, doc, c := contractFixture(t, emulator.Options{FailPrefix: "fail-"})
	exercise(t, f)
	seen := map[string]bool{}
	t.Logf("%d calls checked against %s", len(c.exchanges()), contractFile)
	for _, x := range c.exchanges() {
		if x.req != nil || x.ans != nil || x.op == "" {
			t.Errorf("%s", x)
		}
		seen[x.op+" "+strconv.Itoa(x.status)] = true
	}
	for op, codes := range documented(doc) {
		for _, code := range codes {
			if !seen[op+" "+strconv.Itoa(code)] {
				t.Errorf("%s %d (documented) was never exercised", op, code)
			}
		}
	}
	if len(documented(doc)) != 5 {
		t.Errorf("the document defines %d operations, the test knows 5", len(documented(doc)))
	}
}

// With ProseShapes the client works the same, its requests still follow the
// document, and the contract names exactly where the prose shapes part from
// it: 200 creates (a retrieval's as a list) and deletion status objects with
// "result" (unknown tasks without the required fields). The retrieval status,
// the cancel and the 401/403 answers agree with the document in both modes.
func TestContractProseShapes(t *testing.T) {
	f, _, c := contractFixture(t, emulator.Options{FailPrefix: "fail-", ProseShapes: true})
	exercise(t, f)
	departs := map[string]bool{"create-deletion 200": true, "create-retrieval 200": true, "get-deletion 200": true}
	caught := map[string]bool{}
	for _, x := range c.exchanges() {
		key := x.op + " " + strconv.Itoa(x.status)
		switch {
		case x.req != nil || x.op == "":
			t.Errorf("request: %s", x)
		case departs[key] && x.ans == nil:
			t.Errorf("a prose-shaped answer passed the document: %s", x)
		case departs[key]:
			caught[key] = true
		case x.ans != nil:
			t.Errorf("answer: %s", x)
		}
	}
	for key := range departs {
		if !caught[key] {
			t.Errorf("no %s answer was checked", key)
		}
	}
}

// The request side can fail too: what the document does not take is caught.
func TestContractCatchesBadRequests(t *testing.T) {
	f, _, c := contractFixture(t, emulator.Options{})
	hc := &http.Client{Transport: c}
	api := f.srv.URL + "/api/app"
	send := func(method, path, auth, body string) exchange {
		t.Helper()
		req, _ := http.NewRequest(method, api+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		log := c.exchanges()
		return log[len(log)-1]
	}
	bearer := "Bearer " + oauthToken
	tok := "?token=" + projectToken
	for name, x := range map[string]exchange{
		"CCPA deletion with disclosure_type": send("POST", "/data-deletions/v3.0"+tok, bearer, `{"distinct_ids":["a"],"compliance_type":"CCPA","disclosure_type":"Data"}`),
		"distinct_ids not a list":            send("POST", "/data-deletions/v3.0"+tok, bearer, `{"distinct_ids":"a"}`),
		"no project token":                   send("POST", "/data-deletions/v3.0", bearer, `{"distinct_ids":["a"]}`),
		"no bearer":                          send("GET", "/data-deletions/v3.0/x"+tok, "", ""),
		"retrieval cancel (undocumented)":    send("DELETE", "/data-retrievals/v3.0/1"+tok, bearer, ""),
		"prose trailing slash":               send("POST", "/data-deletions/v3.0/"+tok, bearer, `{"distinct_ids":["a"]}`),
	} {
		if x.req == nil {
			t.Errorf("%s: the contract let it through: %s", name, x)
		}
	}
	if x := send("POST", "/data-retrievals/v3.0"+tok, bearer, `{"distinct_ids":["a"],"compliance_type":"CCPA","disclosure_type":"Data"}`); x.req != nil || x.ans != nil {
		t.Errorf("a CCPA retrieval with disclosure_type is what the document asks for: %s", x)
	}
}
