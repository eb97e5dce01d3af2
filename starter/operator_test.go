package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/app"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/httpapi"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/requests"
	"github.com/dsrflow/dsrflow/internal/results"
	"github.com/dsrflow/dsrflow/workflows"
)

// statusJSON is the API's status shape as the CLI prints it with --json.
type statusJSON struct {
	ControllerID     string `json:"controller_id"`
	SubjectRequestID string `json:"subject_request_id"`
	RequestStatus    string `json:"request_status"`
	ResultsURL       string `json:"results_url"`
	ResultsCount     int    `json:"results_count"`
	Extensions       map[string]struct {
		DueTime          string            `json:"due_time"`
		CancellableUntil string            `json:"cancellable_until"`
		ResultsExpiresAt string            `json:"results_expires_at"`
		Forwarding       []json.RawMessage `json:"forwarding"`
	} `json:"extensions"`
}

func decodeStatus(t *testing.T, out string) statusJSON {
	t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("not the API's JSON: %v\n%s", err, out)
	}
	if strings.Contains(out, "enc:v1:") {
		t.Errorf("--json shows ciphertext:\n%s", out)
	}
	return st
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, t.TempDir(), "--version")
	if code != exitOK || !regexp.MustCompile(`^dsr \S+ \(commit \S+\)\n$`).MatchString(out) {
		t.Errorf("dsr --version: exit %d, %q", code, out)
	}
	version, commit = "1.2.3", "abc123"
	defer func() { version, commit = "", "" }()
	if code, out, _ := runCLI(t, t.TempDir(), "--version"); code != exitOK || out != "dsr 1.2.3 (commit abc123)\n" {
		t.Errorf("with the build's version: exit %d, %q", code, out)
	}
}

// TestFlagMessages: flags, not JSON fields, are named; valid values are
// listed; wrong usage exits 2; case does not matter for fixed values.
func TestFlagMessages(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"submit", "--type", "delete", "--identity", "email=a@example.com"}, "--type must be one of erasure, access, portability"},
		{[]string{"submit", "--regulation", "hipaa", "--identity", "email=a@example.com"}, "--regulation must be one of gdpr, ccpa"},
		{[]string{"submit", "--identity", "mail=a@example.com"}, "valid types: controller_customer_id, android_advertising_id"},
		{[]string{"submit", "--identity", "email:sha512=ab"}, "valid formats: raw, sha1, md5, sha256"},
		{[]string{"submit", "--identity", "email=not-an-email"}, "--identity #1 value"},
		{[]string{"submit", "--identity", "email=a@example.com", "--id", "not-a-uuid"}, "--id must be a lowercase UUID v4"},
		{[]string{"list", "--status", "done"}, `"done" is not one of pending`},
		{[]string{"status"}, "accepts 1 arg(s)"},
		{[]string{"results"}, "accepts 1 arg(s)"},
		{[]string{"no-such-command"}, "unknown command"},
		{[]string{"resolve", "7d0f4a3c-1b2e-4c5d-8e9f-0a1b2c3d4e5f"}, "--profile is required"},
	} {
		code, _, errOut := runCLI(t, dir, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.want)
		}
		if strings.Contains(errOut, "subject_request_type") || strings.Contains(errOut, "subject_identities") {
			t.Errorf("%v: the message names JSON fields: %q", tc.args, errOut)
		}
	}
	code, out, errOut := runCLI(t, dir, "submit", "--regulation", "GDPR", "--type", "Erasure", "--identity", "Controller_Customer_ID=user-1", "--json")
	if code != exitOK {
		t.Fatalf("--regulation GDPR --type Erasure: exit %d\n%s%s", code, out, errOut)
	}
	var created opendsr.CreatedResponse
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.SubjectRequestID == "" || created.ControllerID != "acme" || created.EncodedRequest == "" {
		t.Errorf("submit --json is not the API's 201 body: %v\n%s", err, out)
	}
	raw, _ := json.Marshal(created)
	if !bytes.Contains(raw, []byte(`"received_time"`)) {
		t.Errorf("submit --json lacks received_time: %s", out)
	}
}

// TestMissingLedger: outside the checkout root the CLI does not create a
// database; it says which DSR_DB it looked for and how to fix it.
func TestMissingLedger(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DSR_DB", filepath.Join(dir, "nowhere", "dsrflow.db"))
	t.Setenv("DSR_ENCRYPTION_KEYS", testKeys)
	t.Setenv("TEMPORAL_ADDRESS", temporalAddr)
	t.Setenv("DSR_API_URL", "")
	for _, args := range [][]string{
		{"status", "7d0f4a3c-1b2e-4c5d-8e9f-0a1b2c3d4e5f"},
		{"submit", "--identity", "email=a@example.com"},
		{"profiles", "import", writeFile(t, dir, "p.jsonl", `{"profile_id":"p-1","identities":{"email":"a@example.com"}}`+"\n")},
	} {
		code, _, errOut := runDSR(args...)
		if code != exitFailure || !strings.Contains(errOut, "no ledger at DSR_DB="+filepath.Join(dir, "nowhere", "dsrflow.db")) ||
			!strings.Contains(errOut, "DSR_API_URL") || !strings.Contains(errOut, "checkout root") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
		t.Errorf("the CLI created %s", filepath.Join(dir, "nowhere"))
	}
}

// TestRequestJSONAndWaitingPeriod: status, cancel, retry, resolve and list
// print the API's shape with --json; status shows the cancellation window and
// the command that uses it.
func TestRequestJSONAndWaitingPeriod(t *testing.T) {
	dir := t.TempDir()
	id := "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
	t.Setenv("DSR_TASK_QUEUE", "cli-json-test")
	if code, out, errOut := runCLI(t, dir, "submit", "--identity", "email=ann@example.com", "--id", id); code != exitOK {
		t.Fatalf("submit: %d %s%s", code, out, errOut)
	}
	code, out, _ := runCLI(t, dir, "status", id)
	if code != exitOK || !regexp.MustCompile(`waiting period\s+ends \S+ \(in 6d23h\); cancel until then with: dsr cancel `+id).MatchString(out) {
		t.Errorf("status does not show the waiting period and how to cancel: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "ann@example.com") {
		t.Errorf("status shows an identity value:\n%s", out)
	}
	code, out, _ = runCLI(t, dir, "status", id, "--json")
	st := decodeStatus(t, out)
	ext := st.Extensions["localhost"]
	if code != exitOK || st.SubjectRequestID != id || st.ControllerID != "acme" || st.RequestStatus != "pending" || ext.DueTime == "" || ext.CancellableUntil == "" {
		t.Errorf("status --json: exit %d %+v\n%s", code, st, out)
	}
	if code, _, errOut := runCLI(t, dir, "status", "2b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"); code != exitFailure || !strings.Contains(errOut, "no such request") {
		t.Errorf("unknown request: exit %d %q", code, errOut)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errOut := runCLI(t, dir, "list", "--json")
		var items []listItem
		if code == exitOK && json.Unmarshal([]byte(out), &items) == nil {
			found := false
			for _, it := range items {
				found = found || it.SubjectRequestID == id && it.RequestStatus == "pending" && it.Type == "erasure" && it.Regulation == "gdpr" && it.ControllerID == "acme"
			}
			if found {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("list --json never listed %s: exit %d\n%s%s", id, code, out, errOut)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// A worker for this test's queue, so the cancel update is answered.
	stopWorker := startWorker(t, dir, "cli-json-test")
	defer stopWorker()
	if code, _, errOut := runCLI(t, dir, "retry", id, "--json"); code != exitFailure || !strings.Contains(errOut, "retry") {
		t.Errorf("retry of a pending request: exit %d %q", code, errOut)
	}
	code, out, errOut := runCLI(t, dir, "cancel", id, "--json")
	if st := decodeStatus(t, out); code != exitOK || st.RequestStatus != "cancelled" || st.SubjectRequestID != id {
		t.Errorf("cancel --json: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, dir, "cancel", id); code != exitOK || out != "cancelled "+id+"\n" {
		t.Errorf("cancel again: exit %d %q", code, out)
	}
	code, out, _ = runCLI(t, dir, "status", id)
	if code != exitOK || strings.Contains(out, "dsr cancel") || !regexp.MustCompile(`(?m)^status\s+cancelled`).MatchString(out) {
		t.Errorf("status after cancel: exit %d\n%s", code, out)
	}
}

// startWorker runs the DSR workflow and its activities on queue, on the ledger in dir.
func startWorker(t *testing.T, dir, queue string) func() {
	t.Helper()
	ring, _ := keyring.Parse(testKeys)
	cfg := config.Config{TemporalAddress: temporalAddr, TaskQueue: queue, EncryptionKeys: config.NewSecret(testKeys)}
	tc, err := app.DialTemporal(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := ledger.Open(context.Background(), filepath.Join(dir, "dsrflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(tc, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.DSR, workflow.RegisterOptions{Name: dsr.WorkflowDSR})
	w.RegisterActivity(&activities.Activities{Settings: activities.SettingsFrom(cfg), Ledger: store, Keys: ring, Temporal: tc})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	return func() { w.Stop(); store.Close(); tc.Close() }
}

// TestResults: dsr status shows the results link, count and expiry; dsr
// results downloads the bundle and verifies it against results_count.
func TestResults(t *testing.T) {
	dir := t.TempDir()
	id := "3c9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
	if code, out, errOut := runCLI(t, dir, "submit", "--type", "access", "--identity", "email=ann@example.com", "--id", id); code != exitOK {
		t.Fatalf("submit: %d %s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, dir, "results", id); code != exitFailure || !strings.Contains(errOut, "has no results") {
		t.Errorf("results before there are any: exit %d %q", code, errOut)
	}
	// What BuildResults does when the export is ready: a bundle in the store, the sealed link in the ledger.
	token, expires := putResults(t, dir, id, 3)

	code, out, _ := runCLI(t, dir, "status", id)
	for _, want := range []string{"results  ", "/v1/results/" + token, "results count        3 records", "results expire", "dsr results " + id + " -o FILE", expires.Format(time.RFC3339)} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q: exit %d\n%s", want, code, out)
		}
	}
	code, out, _ = runCLI(t, dir, "status", id, "--json")
	st := decodeStatus(t, out)
	if code != exitOK || !strings.HasSuffix(st.ResultsURL, "/v1/results/"+token) || st.ResultsCount != 3 || st.Extensions["localhost"].ResultsExpiresAt == "" {
		t.Errorf("status --json results: %+v\n%s", st, out)
	}

	file := filepath.Join(dir, "out.zip")
	code, out, errOut := runCLI(t, dir, "results", id, "-o", file)
	if code != exitOK || !strings.Contains(out, "3 records (results_count 3: verified)") {
		t.Fatalf("results: exit %d\n%s%s", code, out, errOut)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if files, records, err := countRecords(bytes.NewReader(b), int64(len(b))); err != nil || files != 2 || records != 3 {
		t.Errorf("saved bundle: %d files, %d records, %v", files, records, err)
	}
}

// putResults stores a bundle of n records for the request and records its link.
func putResults(t *testing.T, dir, id string, n int) (string, time.Time) {
	t.Helper()
	ring, err := keyring.Parse(testKeys)
	if err != nil {
		t.Fatal(err)
	}
	store, err := app.ResultsStore(config.Config{ResultsDir: filepath.Join(dir, "results")}, ring)
	if err != nil {
		t.Fatal(err)
	}
	token, err := results.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Write(context.Background(), token, func(w io.Writer) error {
		_, err := w.Write(testBundle(t, n))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sealed, err := ring.Seal("http://127.0.0.1:8080/v1/results/" + token)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(context.Background(), filepath.Join(dir, "dsrflow.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	expires := time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second)
	if err := l.SetResults(context.Background(), ledger.Key{ControllerID: "acme", RequestID: id}, token, sealed, n, expires); err != nil {
		t.Fatal(err)
	}
	return token, expires
}

// testBundle is a results zip: one profile and n-1 events.
func testBundle(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create(results.ProfileFile)
	fmt.Fprintln(w, `{"profile_id":"p-1"}`)
	w, _ = zw.Create("mixpanel-events-0001.jsonl")
	for i := 1; i < n; i++ {
		fmt.Fprintf(w, "{\"event\":%d}\n", i)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSaveVerified(t *testing.T) {
	dir := t.TempDir()
	good := testBundle(t, 4)
	path := filepath.Join(dir, "r.zip")
	if _, _, err := saveVerified(bytes.NewReader(good), path, 5); err == nil || !strings.Contains(err.Error(), "results_count 5") {
		t.Errorf("a count mismatch was accepted: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("an unverified bundle was kept")
	}
	if _, _, err := saveVerified(strings.NewReader("not a zip"), path, 0); err == nil || !strings.Contains(err.Error(), "not a readable zip") {
		t.Errorf("a non-zip was accepted: %v", err)
	}
	if files, records, err := saveVerified(bytes.NewReader(good), path, 4); err != nil || files != 2 || records != 4 {
		t.Errorf("good bundle: %d %d %v", files, records, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".dsr-results-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// TestThroughAPI: with DSR_API_URL and DSR_API_TOKEN the CLI reads and
// changes requests through the HTTP API, never the database.
func TestThroughAPI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "api.db")
	store, err := ledger.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keyPath, certPath, err := opendsr.WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := opendsr.LoadSigner(keyPath, certPath)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := keyring.Parse(testKeys)
	cfg := config.Config{ProcessorDomain: "localhost", TaskQueue: "cli-api-test", WaitingPeriod: 168 * time.Hour,
		APITokens: map[string]string{"tok-acme": "acme"}, TemporalAddress: temporalAddr, EncryptionKeys: config.NewSecret(testKeys)}
	tc, err := app.DialTemporal(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	svc := &requests.Service{Settings: requests.SettingsFrom(cfg), Ledger: store, Temporal: tc, Keys: ring}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Settings: httpapi.SettingsFrom(cfg), Signer: signer, Ledger: store, Keys: ring, Requests: svc}).Handler())
	defer srv.Close()

	t.Setenv("DSR_DB", filepath.Join(dir, "not-used", "dsrflow.db"))
	t.Setenv("DSR_ENCRYPTION_KEYS", "")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
	t.Setenv("DSR_API_URL", srv.URL+"/")
	t.Setenv("DSR_API_TOKEN", "tok-acme")
	id := "4d9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
	code, out, errOut := runDSR("submit", "--identity", "email=ann@example.com", "--id", id)
	if code != exitOK || !strings.Contains(out, "submitted "+id) || !strings.Contains(out, "for controller acme") {
		t.Fatalf("submit through the API: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runDSR("submit", "--identity", "email=ann@example.com", "--id", id); code != exitOK || !strings.Contains(out, "submitted "+id) {
		t.Errorf("the same submission again: exit %d\n%s", code, out)
	}
	code, out, _ = runDSR("status", id, "--json")
	if st := decodeStatus(t, out); code != exitOK || st.RequestStatus != "pending" || st.Extensions["localhost"].CancellableUntil == "" {
		t.Errorf("status --json through the API: exit %d\n%s", code, out)
	}
	code, out, _ = runDSR("status", id)
	if code != exitOK || !strings.Contains(out, "dsr cancel "+id) {
		t.Errorf("status through the API: exit %d\n%s", code, out)
	}
	if code, _, errOut := runDSR("status", "5e9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"); code != exitFailure || !strings.Contains(errOut, "no such request") {
		t.Errorf("unknown id through the API: exit %d %q", code, errOut)
	}
	if code, _, errOut := runDSR("submit", "--identity", "email=bad", "--id", "6f9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"); code != exitUsage || !strings.Contains(errOut, "--identity #1 value") {
		t.Errorf("a bad identity through the API: exit %d %q", code, errOut)
	}
	t.Setenv("DSR_API_TOKEN", "wrong")
	if code, _, errOut := runDSR("status", id); code != exitFailure || !strings.Contains(errOut, "401") && !strings.Contains(errOut, "bearer token") {
		t.Errorf("a wrong token: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "not-used")); !os.IsNotExist(err) {
		t.Errorf("the CLI touched DSR_DB while DSR_API_URL was set")
	}
	if _, err := store.Get(context.Background(), ledger.Key{ControllerID: "acme", RequestID: id}); err != nil {
		t.Errorf("the API's ledger has no record of the request: %v", err)
	}
}

func TestForwardingLineIsCoherent(t *testing.T) {
	queued := opendsr.Forwarding{Destination: "mixpanel", Status: "pending", StatusMessage: "queued for the next batch"}
	for _, tc := range []struct {
		status string
		f      opendsr.Forwarding
		want   string
	}{
		{"completed", queued, "done"},
		{"cancelled", queued, "not sent: the request was cancelled"},
		{"failed", queued, "not sent: the request failed (see status)"},
		{"pending", queued, "waiting: queued for the next batch"},
		{"in_progress", opendsr.Forwarding{Status: "pending", TaskID: "t1", TaskStatus: "PENDING"}, "sent: Mixpanel task t1 PENDING, waiting for it to finish"},
		{"completed", opendsr.Forwarding{Status: "sent", StatusMessage: "Mixpanel task ended SUCCESS", TaskID: "t1", TaskStatus: "SUCCESS"}, "done: Mixpanel task ended SUCCESS (Mixpanel task t1 SUCCESS)"},
		{"in_progress", opendsr.Forwarding{Status: "sent", StatusMessage: "Mixpanel task created", TaskID: "t1", TaskStatus: "PENDING"}, "sent: Mixpanel task created (Mixpanel task t1 PENDING)"},
		{"completed", opendsr.Forwarding{Status: "skipped", StatusMessage: "no identity of type x"}, "skipped: no identity of type x"},
	} {
		if got := forwardingLine(tc.status, tc.f); got != tc.want {
			t.Errorf("%s %+v: %q, want %q", tc.status, tc.f, got, tc.want)
		}
	}
}

func TestNoMatchListsNoDistinctIDs(t *testing.T) {
	var b bytes.Buffer
	printResolution(&b, json.RawMessage(`{"rule":"no_match","reason":"no profile matches the request's identities","matched":[],
		"plans":[{"destination":"mixpanel","distinct_ids":["user-9"],"reason":"the request's controller_customer_id"}]}`))
	if strings.Contains(b.String(), "user-9") || !strings.Contains(b.String(), "1 of the request's own identities sent as distinct ids") {
		t.Errorf("no-match resolution:\n%s", b.String())
	}
}

func TestProgressRateAndTally(t *testing.T) {
	if got := rateText(1, 2*time.Microsecond); got != "" {
		t.Errorf("rate after 2µs: %q, want none", got)
	}
	if got := rateText(50, 2*time.Second); got != " (25/s)" {
		t.Errorf("rate: %q", got)
	}
	var out bytes.Buffer
	p := newProgress(&out, 3, "submitting", "rows")
	p.add(outcomeExisting)
	p.add(outcomeExisting)
	p.add(outcomeRejected)
	if want := "submitting: 3/3 rows, 0 submitted, 2 already submitted, 1 rejected\n"; !strings.HasSuffix(out.String(), want) || strings.Contains(out.String(), "/s)") {
		t.Errorf("progress lines:\n%s\nwant the last one %q", out.String(), want)
	}
}

func TestProfilesImportSummary(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "p.jsonl", strings.Join([]string{
		`{"profile_id":"p-1","identities":{"email":"a@example.com"}}`,
		`{"profile_id":"","identities":{}}`,
		`not json`,
	}, "\n")+"\n")
	code, out, errOut := runCLI(t, dir, "profiles", "import", file)
	if code != exitFailure || !strings.Contains(out, "1 profiles imported for controller acme, 0 suppressed (erased people), 2 lines rejected (of 3 read)") || strings.Contains(errOut, "submitted") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

// TestListLink: --link prints the Web UI's list for the same visibility query.
func TestListLink(t *testing.T) {
	code, out, _ := runCLI(t, t.TempDir(), "list", "--status", "failed", "--link", "--ui", "http://ui.example:8233/")
	prefix := "http://ui.example:8233/namespaces/default/workflows?query="
	if code != exitOK || !strings.HasPrefix(out, prefix) || strings.Contains(out, "+") {
		t.Fatalf("exit %d %q", code, out)
	}
	q, err := url.QueryUnescape(strings.TrimSpace(strings.TrimPrefix(out, prefix)))
	want, _ := listQuery("acme", "failed", "", "", false, time.Now())
	if err != nil || q != want {
		t.Errorf("the link's query is %q (%v), want %q", q, err, want)
	}
}
