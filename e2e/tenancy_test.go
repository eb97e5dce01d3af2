package e2e_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// tenant is one controller of a multi-controller stack.
type tenant struct {
	stack      *devstack.Stack
	token, id  string
	httpClient *http.Client
}

// call sends a request to the stack's API with the tenant's token; a string
// body is sent as is (JSON Lines), anything else as JSON.
func (c tenant) call(t *testing.T, method, path, contentType string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.stack.APIURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", contentType)
	resp, err := c.httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// submit posts a skip-wait request of typ with ids ([type, format, value]) and returns its id.
func (c tenant) submit(t *testing.T, typ string, ids ...[3]string) string {
	t.Helper()
	id := newID()
	var list []map[string]string
	for _, x := range ids {
		list = append(list, map[string]string{"identity_type": x[0], "identity_format": x[1], "identity_value": x[2]})
	}
	body := map[string]any{
		"subject_request_id": id, "subject_request_type": typ, "regulation": "gdpr",
		"submitted_time": time.Now().UTC().Format(time.RFC3339), "api_version": "1.0",
		"subject_identities": list,
		"extensions":         map[string]any{"localhost": map[string]any{"skip_waiting_period": true}},
	}
	if code, b := c.call(t, http.MethodPost, "/v1/requests", "application/json", body); code != http.StatusCreated {
		t.Fatalf("%s POST %s: %d %s", c.id, typ, code, b)
	}
	return id
}

// wait polls GET until the request is final and returns the answer and its raw body.
func (c tenant) wait(t *testing.T, id string, timeout time.Duration) (opendsr.StatusResponse, opendsr.StatusExtension, []byte) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, b := c.call(t, http.MethodGet, "/v1/requests/"+id, "", nil)
		var st opendsr.StatusResponse
		_ = json.Unmarshal(b, &st)
		switch st.RequestStatus {
		case "completed", "failed", "cancelled":
			var ext opendsr.StatusExtension
			if err := json.Unmarshal(st.Extensions["localhost"], &ext); err != nil {
				t.Fatalf("extension: %v %s", err, b)
			}
			return st, ext, b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's request %s: %d %s after %v\n%s", c.id, id, code, b, timeout, c.stack.Logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func sha256Of(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// startEmulator serves an in-process Mixpanel emulator with the stack's credentials.
func startEmulator(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	em := emulator.New(emulator.Options{ProjectToken: devstack.ProjectToken, OAuthToken: devstack.OAuthToken, Step: time.Second})
	srv := httptest.NewServer(em)
	t.Cleanup(srv.Close)
	return em, srv.URL
}

// startOwnStack starts a stack of its own in dir (the shared one has one
// controller and one destination).
func startOwnStack(t *testing.T, dir string, env map[string]string) *devstack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := devstack.StartStack(ctx, devstack.StackOptions{Dir: dir, Env: env})
	if err != nil {
		t.Fatalf("starting a stack: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Logs())
		}
		s.Stop()
	})
	return s
}

// importAs runs `dsr profiles import --controller controller` against s and returns its output.
func importAs(t *testing.T, s *devstack.Stack, controller, jsonl string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "profiles.jsonl")
	if err := os.WriteFile(path, []byte(jsonl), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, err := devstack.Bin("dsr")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "profiles", "import", "--controller", controller, path)
	cmd.Env = s.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dsr profiles import: %v\n%s", err, out)
	}
	return string(out)
}

// TestControllersAreIsolated: controller B, knowing controller A's
// customer's identities (raw and SHA-256), gets nothing of A's from access
// and erasure requests: no profile, no export from A's Mixpanel project, no
// deletion there, nothing of A's in B's answers; A's own requests work.
func TestControllersAreIsolated(t *testing.T) {
	emA, urlA := startEmulator(t)
	emB, urlB := startEmulator(t)
	dir := t.TempDir()
	dests := fmt.Sprintf(`[
		{"name":"a-proj","api_url":%q,"project_token_env":"MIXPANEL_PROJECT_TOKEN","oauth_token_env":"MIXPANEL_OAUTH_TOKEN","controllers":["ctrl-a"]},
		{"name":"b-proj","api_url":%q,"project_token_env":"MIXPANEL_PROJECT_TOKEN","oauth_token_env":"MIXPANEL_OAUTH_TOKEN","controllers":["ctrl-b"]}]`, urlA, urlB)
	destPath := filepath.Join(dir, "destinations.json")
	if err := os.WriteFile(destPath, []byte(dests), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startOwnStack(t, dir, map[string]string{
		"API_TOKENS":       "tok-a:ctrl-a,tok-b:ctrl-b",
		"DSR_DESTINATIONS": destPath,
		"DSR_CONTROLLER":   "ctrl-a",
	})
	client := &http.Client{Timeout: 30 * time.Second}
	a := tenant{stack: s, token: "tok-a", id: "ctrl-a", httpClient: client}
	b := tenant{stack: s, token: "tok-b", id: "ctrl-b", httpClient: client}

	// A's customer, imported with the CLI; B's own customer, through the API.
	const (
		annEmail = "ann.tenant@example.com"
		annCust  = "cust-ann-tenant-a"
		annDev   = "dev-ann-tenant-a"
		annAttr  = "gold-ann-tenant-secret"
		annID    = "p-ann-tenant-a"
	)
	out := importAs(t, s, "ctrl-a", fmt.Sprintf(`{"profile_id":%q,"identities":{"email":%q,"controller_customer_id":%q,"ios_vendor_id":%q},"attributes":{"tier":%q}}`+"\n",
		annID, annEmail, annCust, annDev, annAttr))
	if !strings.Contains(out, "1 profiles imported for controller ctrl-a") {
		t.Fatalf("import output: %s", out)
	}
	code, body := b.call(t, http.MethodPost, "/v1/profiles", "application/x-ndjson",
		`{"profile_id":"p-bob","identities":{"email":"bob.tenant@example.com","controller_customer_id":"cust-bob-tenant-b"}}`+"\n")
	if code != http.StatusOK || !strings.Contains(string(body), `"imported":1`) {
		t.Fatalf("B's POST /v1/profiles: %d %s", code, body)
	}

	// B's requests carrying A's customer's identities.
	hashedEmail := sha256Of(annEmail)
	bRequests := map[string]string{
		"erasure, raw email":        b.submit(t, "erasure", [3]string{"email", "raw", annEmail}),
		"erasure, hashed email":     b.submit(t, "erasure", [3]string{"email", "sha256", hashedEmail}),
		"erasure, hashed device":    b.submit(t, "erasure", [3]string{"ios_vendor_id", "sha256", sha256Of(annDev)}),
		"erasure, raw customer id":  b.submit(t, "erasure", [3]string{"controller_customer_id", "raw", annCust}),
		"access, raw email":         b.submit(t, "access", [3]string{"email", "raw", annEmail}),
		"access, hashed email":      b.submit(t, "access", [3]string{"email", "sha256", hashedEmail}),
		"access, hashed customer":   b.submit(t, "access", [3]string{"controller_customer_id", "sha256", sha256Of(annCust)}),
		"portability, hashed email": b.submit(t, "portability", [3]string{"email", "sha256", hashedEmail}),
	}
	secrets := []string{annEmail, annCust, annDev, annAttr, annID}
	for name, id := range bRequests {
		st, ext, raw := b.wait(t, id, 3*time.Minute)
		if st.RequestStatus != "completed" {
			t.Errorf("B %s: %s (%s)", name, st.RequestStatus, ext.StatusReason)
		}
		for _, v := range secrets {
			if strings.Contains(string(raw), v) {
				t.Errorf("B %s: the answer holds A's %q: %s", name, v, raw)
			}
		}
		var trace struct {
			Rule     string   `json:"rule"`
			Profiles []string `json:"profiles"`
		}
		if err := json.Unmarshal(ext.Resolution, &trace); err != nil || len(trace.Profiles) != 0 {
			t.Errorf("B %s resolved to profiles %v (%v)", name, trace.Profiles, err)
		}
		for _, f := range ext.Forwarding {
			if f.Destination == "a-proj" && (f.Status != "skipped" || f.TaskID != "") {
				t.Errorf("B %s reached A's destination: %+v", name, f)
			}
		}
		if st.ResultsURL != "" {
			code, bundle := b.call(t, http.MethodGet, strings.TrimPrefix(st.ResultsURL, s.APIURL), "", nil)
			if code == http.StatusOK {
				for _, v := range secrets {
					if bundleContains(t, bundle, v) {
						t.Errorf("B %s: the results hold A's %q", name, v)
					}
				}
			}
		}
	}
	// Nothing reached A's Mixpanel project; B's raw customer id went to B's own project only.
	if tasks := emA.Tasks(); len(tasks) != 0 {
		t.Fatalf("A's Mixpanel project got %d tasks from B's requests: %+v", len(tasks), tasks)
	}
	sawB := false
	for _, task := range emB.Tasks() {
		for _, d := range task.DistinctIDs {
			sawB = sawB || d == annCust
			if d == annDev || strings.Contains(d, "@") {
				t.Errorf("B's project got %q: only ids B sent raw may go there", d)
			}
		}
	}
	if !sawB {
		t.Errorf("B's raw customer id did not reach B's own project (the allowlist should not block it)")
	}
	// B cannot read A's requests, nor A B's.
	idA := a.submit(t, "access", [3]string{"email", "sha256", hashedEmail})
	if code, _ := b.call(t, http.MethodGet, "/v1/requests/"+idA, "", nil); code != http.StatusNotFound {
		t.Errorf("B reads A's request: %d", code)
	}

	// A's own requests still work: access finds the profile and A's export; erasure deletes in A's project.
	st, ext, _ := a.wait(t, idA, 3*time.Minute)
	if st.RequestStatus != "completed" || st.ResultsURL == "" {
		t.Fatalf("A's access: %+v %s", st, ext.StatusReason)
	}
	code, bundle := a.call(t, http.MethodGet, strings.TrimPrefix(st.ResultsURL, s.APIURL), "", nil)
	if code != http.StatusOK || !bundleContains(t, bundle, annAttr) || !bundleContains(t, bundle, annCust) {
		t.Fatalf("A's results: %d, want A's profile and export", code)
	}
	if code, _ := b.call(t, http.MethodGet, strings.TrimPrefix(st.ResultsURL, s.APIURL), "", nil); code == http.StatusOK {
		t.Errorf("B downloads A's results")
	}
	idA = a.submit(t, "erasure", [3]string{"email", "sha256", hashedEmail})
	st, ext, _ = a.wait(t, idA, 3*time.Minute)
	if st.RequestStatus != "completed" || len(ext.Forwarding) != 2 {
		t.Fatalf("A's erasure: %s %+v", st.RequestStatus, ext)
	}
	deleted := false
	for _, task := range emA.Tasks() {
		if task.Kind == emulator.KindDeletion && len(task.DistinctIDs) == 1 && task.DistinctIDs[0] == annCust {
			deleted = true
		}
	}
	if !deleted {
		t.Errorf("A's erasure did not delete A's customer in A's project: %+v", emA.Tasks())
	}
	for _, f := range ext.Forwarding {
		if f.Destination == "b-proj" && f.Status != "skipped" {
			t.Errorf("A's erasure reached B's destination: %+v", f)
		}
	}
}

// bundleContains reports whether any file of the results zip holds v.
func bundleContains(t *testing.T, bundle []byte, v string) bool {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(bundle), int64(len(bundle)))
	if err != nil {
		t.Fatalf("results are not a zip: %v", err)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(b, []byte(v)) {
			return true
		}
	}
	return false
}
