package e2e_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// stack is shared by the tests of this package: one Temporal, emulator, worker and API.
var stack *devstack.Stack

// TestMain starts the stack the environment asks for (see the package doc):
// the dev server by default, a Temporal cluster on PostgreSQL with
// DSR_E2E_STACK=cluster, or an external Temporal with DSR_E2E_TEMPORAL_ADDRESS.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dsrflow-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	opts := devstack.StackOptions{Dir: dir, Env: map[string]string{}}
	var cluster *devstack.Cluster
	switch {
	case os.Getenv("DSR_E2E_TEMPORAL_ADDRESS") != "":
		opts.TemporalAddress = os.Getenv("DSR_E2E_TEMPORAL_ADDRESS")
	case os.Getenv("DSR_E2E_STACK") == "cluster":
		cluster, err = devstack.StartCluster(ctx, devstack.ClusterOptions{Dir: dir})
		if err == nil {
			opts.TemporalAddress, opts.Env["DSR_DB"] = cluster.Address, cluster.LedgerDSN
		}
	case os.Getenv("DSR_E2E_STACK") != "" && os.Getenv("DSR_E2E_STACK") != "dev":
		err = fmt.Errorf("DSR_E2E_STACK=%s: want dev or cluster", os.Getenv("DSR_E2E_STACK"))
	}
	if db := os.Getenv("DSR_E2E_DB"); db != "" {
		opts.Env["DSR_DB"] = db
	}
	if err == nil {
		stack, err = devstack.StartStack(ctx, opts)
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the stack:", err)
		if cluster != nil {
			fmt.Fprintln(os.Stderr, cluster.Logs())
			cluster.Stop()
		}
		os.Exit(1)
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, stack.Logs())
		if cluster != nil {
			fmt.Fprintln(os.Stderr, cluster.Logs())
		}
	}
	stack.Stop()
	if cluster != nil {
		cluster.Stop()
	}
	if code == 0 {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// callbackReceiver records callbacks, verifying each signature against /v1/cert.pem.
type callbackReceiver struct {
	t    *testing.T
	cert []byte
	mu   sync.Mutex
	got  map[string][]string // request id -> statuses in arrival order
	srv  *httptest.Server
}

func newCallbackReceiver(t *testing.T) *callbackReceiver {
	r := &callbackReceiver{t: t, got: map[string][]string{}}
	resp := apiCall(t, http.MethodGet, "/v1/cert.pem", nil)
	r.cert = resp.Body
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := opendsr.Verify(r.cert, body, req.Header.Get(opendsr.HeaderSignature)); err != nil {
			t.Errorf("callback signature does not verify: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var cb opendsr.Callback
		if err := json.Unmarshal(body, &cb); err != nil {
			t.Errorf("callback body: %v", err)
		}
		r.mu.Lock()
		r.got[cb.SubjectRequestID] = append(r.got[cb.SubjectRequestID], cb.RequestStatus)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *callbackReceiver) statuses(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got[id]...)
}

func apiCall(t *testing.T, method, path string, body any) devstack.Response {
	t.Helper()
	resp, err := stack.Call(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func newID() string { return devstack.NewRequestID() }

// erasure is a skip-wait erasure with a customer id and an email, reporting to callbackURL.
func erasure(id, regulation, customer, callbackURL string) map[string]any {
	req := devstack.Erasure(id, regulation, customer)
	req["subject_identities"] = []map[string]string{
		{"identity_type": "controller_customer_id", "identity_value": customer, "identity_format": "raw"},
		{"identity_type": "email", "identity_value": customer + "@example.com", "identity_format": "raw"},
	}
	req["status_callback_urls"] = []string{callbackURL}
	return req
}

func waitForStatus(t *testing.T, id, want string, timeout time.Duration) opendsr.StatusResponse {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp := apiCall(t, http.MethodGet, "/v1/requests/"+id, nil)
		var st opendsr.StatusResponse
		_ = json.Unmarshal(resp.Body, &st)
		if st.RequestStatus == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s is %q after %v, want %q: %s", id, st.RequestStatus, timeout, want, resp.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestErasuresEndToEnd(t *testing.T) {
	cb := newCallbackReceiver(t)
	stack.Emulator.Reset()
	const perRegulation = 5
	byRegulation := map[string][]string{}
	var all []string
	for _, reg := range []string{"gdpr", "ccpa"} {
		for i := range perRegulation {
			id := newID()
			resp := apiCall(t, http.MethodPost, "/v1/requests", erasure(id, reg, fmt.Sprintf("%s-customer-%d", reg, i), cb.srv.URL))
			if resp.Code != http.StatusCreated {
				t.Fatalf("POST: %d %s", resp.Code, resp.Body)
			}
			if err := opendsr.Verify(cb.cert, resp.Body, resp.Signature); err != nil {
				t.Fatalf("response signature: %v", err)
			}
			var fields map[string]any
			_ = json.Unmarshal(resp.Body, &fields)
			delete(fields, "encoded_request")
			if rest, _ := json.Marshal(fields); strings.Contains(string(rest), "customer-") {
				t.Errorf("201 holds an identity value outside encoded_request: %s", rest)
			}
			byRegulation[reg] = append(byRegulation[reg], fmt.Sprintf("%s-customer-%d", reg, i))
			all = append(all, id)
		}
	}
	for _, id := range all {
		st := waitForStatus(t, id, "completed", 90*time.Second)
		var ext opendsr.StatusExtension
		if err := json.Unmarshal(st.Extensions["localhost"], &ext); err != nil || len(ext.Forwarding) != 1 {
			t.Fatalf("forwarding of %s: %v %s", id, err, st.Extensions["localhost"])
		}
		if f := ext.Forwarding[0]; f.Status != "sent" || f.TaskID == "" || f.TaskStatus != "SUCCESS" {
			t.Errorf("forwarding of %s = %+v, want sent with a SUCCESS task", id, f)
		}
	}

	// One Mixpanel task per regulation, with that regulation's compliance type and exactly its ids.
	tasks := stack.Emulator.Tasks()
	if len(tasks) != 2 {
		t.Fatalf("%d Mixpanel tasks, want 2 (one per regulation): %+v", len(tasks), tasks)
	}
	for _, task := range tasks {
		reg := strings.ToLower(task.ComplianceType)
		got := append([]string(nil), task.DistinctIDs...)
		sort.Strings(got)
		want := append([]string(nil), byRegulation[reg]...)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s task ids = %v, want %v", reg, got, want)
		}
	}

	// Callbacks: every status change, in order, each signed.
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range all {
		for len(cb.statuses(id)) < 3 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if got := strings.Join(cb.statuses(id), ","); got != "pending,in_progress,completed" {
			t.Errorf("callbacks of %s = %s, want pending,in_progress,completed", id, got)
		}
	}
	reportCosts(t, all)
	if dir := os.Getenv("DSR_SAVE_HISTORIES"); dir != "" {
		saveHistories(t, dir, all[0], tasks[0].ID)
	}
}

// saveHistories writes one history of each workflow type for the replay tests
// (run with DSR_SAVE_HISTORIES=$PWD/workflows/testdata/histories).
func saveHistories(t *testing.T, dir, requestID, taskID string) {
	tc, err := client.Dial(client.Options{HostPort: stack.Temporal.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	for name, id := range map[string]string{
		"dsr-erasure.json":   dsr.WorkflowID(devstack.Controller, requestID),
		"batch.json":         dsr.BatchWorkflowID("mixpanel", "gdpr"),
		"mixpanel-task.json": dsr.TaskWorkflowID("mixpanel", taskID),
	} {
		if err := devstack.WriteHistory(context.Background(), tc, id, "", filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// reportCosts logs Mixpanel calls and Temporal history events per request.
func reportCosts(t *testing.T, ids []string) {
	calls := stack.Emulator.Calls()
	total := 0
	for k, n := range calls {
		if strings.HasPrefix(k, "deletion.") {
			total += n
		}
	}
	tc, err := client.Dial(client.Options{HostPort: stack.Temporal.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	events := 0
	for _, id := range ids {
		events += historyLength(t, tc, dsr.WorkflowID(devstack.Controller, id))
	}
	t.Logf("Mixpanel calls: %v (%.2f per request); DSR workflow history: %.1f events per request",
		calls, float64(total)/float64(len(ids)), float64(events)/float64(len(ids)))
}

func historyLength(t *testing.T, tc client.Client, workflowID string) int {
	it := tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	var types []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, strings.TrimPrefix(e.GetEventType().String(), "EVENT_TYPE_"))
		n++
	}
	if os.Getenv("DSR_DEBUG_HISTORY") != "" {
		t.Logf("%s", strings.Join(types, "\n"))
	}
	return n
}

func TestCancelDuringTheWaitingPeriodOverHTTP(t *testing.T) {
	id := newID()
	req := erasure(id, "gdpr", "cancel-me", "https://controller.example/cb")
	delete(req, "extensions")
	delete(req, "status_callback_urls")
	if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
	resp := apiCall(t, http.MethodDelete, "/v1/requests/"+id, nil)
	if resp.Code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s, want 202", resp.Code, resp.Body)
	}
	waitForStatus(t, id, "cancelled", 30*time.Second)
	// Cancelling a finished request is a conflict.
	if resp := apiCall(t, http.MethodDelete, "/v1/requests/"+id, nil); resp.Code != http.StatusAccepted {
		t.Errorf("DELETE of a cancelled request: %d, want 202 (already cancelled)", resp.Code)
	}
}

func TestDuplicateSubmissions(t *testing.T) {
	id := newID()
	req := erasure(id, "gdpr", "dup", "https://controller.example/cb")
	req["extensions"] = map[string]any{}
	first := apiCall(t, http.MethodPost, "/v1/requests", req)
	again := apiCall(t, http.MethodPost, "/v1/requests", req)
	if first.Code != http.StatusCreated || again.Code != http.StatusCreated {
		t.Fatalf("same request twice: %d then %d, want 201 both times", first.Code, again.Code)
	}
	var a, b opendsr.CreatedResponse
	_ = json.Unmarshal(first.Body, &a)
	_ = json.Unmarshal(again.Body, &b)
	if !a.ReceivedTime.Equal(b.ReceivedTime.Time) {
		t.Errorf("the repeat answered a new received_time: %v vs %v", a.ReceivedTime, b.ReceivedTime)
	}
	req["regulation"] = "ccpa"
	if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusConflict {
		t.Errorf("same id, different body: %d, want 409", resp.Code)
	}
}

func TestAuthAndIsolation(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, stack.APIURL+"/v1/requests/"+newID(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", resp.StatusCode)
	}
	if got := apiCall(t, http.MethodGet, "/v1/requests/"+newID(), nil); got.Code != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", got.Code)
	}
	bad := apiCall(t, http.MethodPost, "/v1/requests", map[string]any{"regulation": "gdpr"})
	if bad.Code != http.StatusBadRequest {
		t.Fatalf("invalid request: %d, want 400", bad.Code)
	}
	var e opendsr.Error
	if err := json.Unmarshal(bad.Body, &e); err != nil || e.Code != 400 || len(e.Errors) == 0 {
		t.Errorf("error object = %s", bad.Body)
	}
}

func TestAccessRequestProducesAResultsBundle(t *testing.T) {
	id := newID()
	req := erasure(id, "gdpr", "reader-7", "https://controller.example/cb")
	req["subject_request_type"] = "access"
	delete(req, "status_callback_urls")
	if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
	st := waitForStatus(t, id, "completed", 90*time.Second)
	if !strings.HasPrefix(st.ResultsURL, stack.APIURL+"/v1/results/") || st.ResultsCount == 0 {
		t.Fatalf("status = %+v, want a results_url and a count", st)
	}
	path := strings.TrimPrefix(st.ResultsURL, stack.APIURL)
	resp := apiCall(t, http.MethodGet, path, nil)
	if resp.Code != http.StatusOK {
		t.Fatalf("GET results: %d %s", resp.Code, resp.Body)
	}
	if err := opendsr.Verify(newCallbackReceiver(t).cert, resp.Body, resp.Signature); err != nil {
		t.Errorf("results signature: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(resp.Body), int64(len(resp.Body)))
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		for sc.Scan() {
			var v map[string]any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Errorf("%s: line %d is not JSON: %v", f.Name, lines+1, err)
			}
			if strings.Contains(f.Name, "events") && !strings.Contains(sc.Text(), "reader-7") {
				t.Errorf("%s holds an event of another subject", f.Name)
			}
			lines++
		}
		rc.Close()
	}
	if lines != st.ResultsCount {
		t.Errorf("bundle holds %d lines, results_count says %d", lines, st.ResultsCount)
	}
	// The link is for the owning controller only: without its token, 401.
	anon, _ := http.Get(st.ResultsURL)
	if anon != nil {
		anon.Body.Close()
		if anon.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous download: %d, want 401", anon.StatusCode)
		}
	}
	var retrievals int
	for _, task := range stack.Emulator.Tasks() {
		if task.Kind == "retrieval" && len(task.DistinctIDs) == 1 && task.DistinctIDs[0] == "reader-7" {
			retrievals++
			if task.ComplianceType != "gdpr" && task.ComplianceType != "GDPR" {
				t.Errorf("retrieval compliance type %q, want gdpr", task.ComplianceType)
			}
		}
	}
	if retrievals != 1 {
		t.Errorf("%d retrieval tasks for the subject, want 1", retrievals)
	}
	if dir := os.Getenv("DSR_SAVE_HISTORIES"); dir != "" {
		saveHistory(t, dir, "dsr-access.json", dsr.WorkflowID(devstack.Controller, id))
	}
}

// TestHistoriesHoldNoIdentityOrToken dumps every history an erasure touched
// and looks for the subject's identities and the Mixpanel credentials.
func TestHistoriesHoldNoIdentityOrToken(t *testing.T) {
	id := newID()
	customer := "histcheck-" + id[:8]
	req := erasure(id, "gdpr", customer, "https://controller.example/cb?token=callback-secret")
	if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
	st := waitForStatus(t, id, "completed", 90*time.Second)
	var ext opendsr.StatusExtension
	_ = json.Unmarshal(st.Extensions["localhost"], &ext)
	tc, err := client.Dial(client.Options{HostPort: stack.Temporal.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	workflowIDs := []string{dsr.WorkflowID(devstack.Controller, id), dsr.BatchWorkflowID("mixpanel", "gdpr")}
	for _, f := range ext.Forwarding {
		workflowIDs = append(workflowIDs, dsr.TaskWorkflowID(f.Destination, f.TaskID))
	}
	secrets := []string{customer, customer + "@example.com", devstack.OAuthToken, devstack.ProjectToken, "callback-secret"}
	for _, wid := range workflowIDs {
		resp, err := tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: "WorkflowId = '" + wid + "'"})
		if err != nil || len(resp.Executions) == 0 {
			t.Fatalf("listing %s: %v", wid, err)
		}
		for _, e := range resp.Executions {
			it := tc.GetWorkflowHistory(context.Background(), wid, e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			var events []*historypb.HistoryEvent
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatal(err)
				}
				events = append(events, ev)
			}
			// The binary form holds payload bytes as they are, so a plain search finds any clear value.
			dump, err := proto.Marshal(&historypb.History{Events: events})
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range secrets {
				if bytes.Contains(dump, []byte(secret)) {
					t.Errorf("the history of %s holds %q in clear", wid, secret)
				}
			}
			if !bytes.Contains(dump, []byte("binary/encrypted")) {
				t.Errorf("the history of %s holds no encrypted payload: is the codec on?", wid)
			}
		}
	}
}

func TestMetricsEndpoints(t *testing.T) {
	// After the other tests the worker has made Mixpanel calls and the SDK has polled.
	for _, c := range []struct {
		url  string
		want []string
	}{
		{stack.WorkerMetricsURL(), []string{"dsrflow_mixpanel_calls_total", "dsrflow_request_status_changes_total", "temporal_", "go_goroutines"}},
		{stack.APIURL + "/metrics", []string{"dsrflow_api_requests_total", "dsrflow_api_request_seconds", "temporal_"}},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range c.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s has no %s metric", c.url, w)
			}
		}
		for _, secret := range []string{devstack.OAuthToken, devstack.ProjectToken, devstack.APIToken} {
			if strings.Contains(string(body), secret) {
				t.Errorf("%s exposes a credential", c.url)
			}
		}
	}
}
