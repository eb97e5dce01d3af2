package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/httpapi"
)

// TestErasureLeavesNoLocalCopy completes an access request (a results
// bundle) and then an erasure of one subject, and scans every file dsrflow
// and its Temporal dev server wrote (SQLite databases with their -wal and
// -shm, the results directory, the process logs) for the subject's raw
// identities and attribute values: none may be left. A re-import of the
// same profile (CLI and API) is reported suppressed, and a later access
// request for the same email finds nothing.
func TestErasureLeavesNoLocalCopy(t *testing.T) {
	dir := t.TempDir()
	s := startOwnStack(t, dir, nil)
	acme := tenant{stack: s, token: devstack.APIToken, id: devstack.Controller, httpClient: &http.Client{Timeout: 30 * time.Second}}
	const (
		email   = "erin.scan-4417@example.com"
		cust    = "cust-erin-scan-7731"
		device  = "dev-erin-scan-5510"
		colour  = "tangerine-scan-9921"
		address = "12 Scanlane Road, Erinville"
	)
	values := []string{email, cust, device, colour, address}
	profile := fmt.Sprintf(`{"profile_id":"p-erin","identities":{"email":%q,"controller_customer_id":%q,"ios_vendor_id":%q},"attributes":{"colour":%q,"address":%q}}`+"\n",
		email, cust, device, colour, address)
	// Another person, who must stay.
	other := `{"profile_id":"p-otto","identities":{"email":"otto.stays@example.com","controller_customer_id":"cust-otto-stays"},"attributes":{"colour":"teal-otto-stays"}}` + "\n"
	if out := importAs(t, s, devstack.Controller, profile+other); !strings.Contains(out, "2 profiles imported") {
		t.Fatalf("import: %s", out)
	}

	// An access request first: its bundle holds the profile and the Mixpanel export.
	accessID := acme.submit(t, "access", [3]string{"email", "raw", email})
	st, ext, _ := acme.wait(t, accessID, 3*time.Minute)
	if st.RequestStatus != "completed" || st.ResultsURL == "" {
		t.Fatalf("access: %+v %s", st, ext.StatusReason)
	}
	resultsPath := strings.TrimPrefix(st.ResultsURL, s.APIURL)
	code, bundle := acme.call(t, http.MethodGet, resultsPath, "", nil)
	if code != http.StatusOK || !bundleContains(t, bundle, colour) {
		t.Fatalf("access results: %d, want the profile's attributes", code)
	}
	if found := scanFiles(t, dir, []string{colour}); len(found) == 0 {
		// The scan must be able to see the profile where it is stored in clear.
		t.Fatalf("the scan finds the attribute nowhere before the erasure: it cannot prove anything")
	}

	// The erasure.
	erasureID := acme.submit(t, "erasure", [3]string{"email", "raw", email})
	st, ext, _ = acme.wait(t, erasureID, 3*time.Minute)
	if st.RequestStatus != "completed" {
		t.Fatalf("erasure: %s %s", st.RequestStatus, ext.StatusReason)
	}
	m := regexp.MustCompile(`local copy erased: (\d+) profile store rows removed`).FindStringSubmatch(ext.StatusReason)
	if m == nil {
		t.Fatalf("status reason %q does not record the local erasure", ext.StatusReason)
	}
	if n, _ := strconv.Atoi(m[1]); n != 4 { // the profile and its three identities
		t.Errorf("%d rows removed, want 4", n)
	}
	if dir := os.Getenv("DSR_SAVE_HISTORIES"); dir != "" {
		// A history of the new completion path (GetVersion erase-local-copy) for the replay tests.
		saveClosedHistory(t, s, dsr.WorkflowID(devstack.Controller, erasureID), filepath.Join(dir, "dsr-erasure-local-copy.json"))
	}
	// The access request's bundle went with it.
	if code, _ := acme.call(t, http.MethodGet, resultsPath, "", nil); code != http.StatusGone && code != http.StatusNotFound {
		t.Errorf("the earlier results link answers %d after the erasure, want 410", code)
	}

	// A CRM re-sync cannot bring the person back: CLI and API report it suppressed.
	out := importAs(t, s, devstack.Controller, profile+other)
	if !strings.Contains(out, "1 profiles imported") || !strings.Contains(out, "1 suppressed") || !strings.Contains(out, "line 1: suppressed") {
		t.Errorf("re-import: %s", out)
	}
	code, body := acme.call(t, http.MethodPost, "/v1/profiles", "application/x-ndjson", other+profile)
	var rep httpapi.ProfilesReport
	if err := json.Unmarshal(body, &rep); code != http.StatusOK || err != nil || rep.Suppressed != 1 || !reflect.DeepEqual(rep.SuppressedLines, []int{2}) {
		t.Errorf("POST /v1/profiles: %d %s", code, body)
	}
	for _, v := range values {
		if strings.Contains(out+string(body), v) {
			t.Errorf("an import report holds %q", v)
		}
	}

	// An access request for the same email finds nothing.
	again := acme.submit(t, "access", [3]string{"email", "raw", email})
	st, ext, raw := acme.wait(t, again, 3*time.Minute)
	var trace struct {
		Profiles []string `json:"profiles"`
	}
	if err := json.Unmarshal(ext.Resolution, &trace); st.RequestStatus != "completed" || err != nil || len(trace.Profiles) != 0 || st.ResultsCount != 0 {
		t.Errorf("access after the erasure: %s", raw)
	}

	// Every file, while the stack runs, then once it has stopped.
	if found := scanFiles(t, dir, values); len(found) > 0 {
		t.Errorf("after the erasure, with the stack running: %s", strings.Join(found, "; "))
	}
	if found := scanFiles(t, dir, []string{"teal-otto-stays"}); len(found) == 0 {
		t.Errorf("the other person's profile is gone too")
	}
	s.Stop()
	if found := scanFiles(t, dir, values); len(found) > 0 {
		t.Errorf("after the erasure, with the stack stopped: %s", strings.Join(found, "; "))
	}
}

// saveClosedHistory waits for a workflow of stack s to close and writes its history as JSON.
func saveClosedHistory(t *testing.T, s *devstack.Stack, workflowID, path string) {
	t.Helper()
	tc, err := client.Dial(client.Options{HostPort: s.Temporal.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := tc.GetWorkflow(ctx, workflowID, "").Get(ctx, nil); err != nil {
		t.Fatalf("waiting for %s to close: %v", workflowID, err)
	}
	if err := devstack.WriteHistory(ctx, tc, workflowID, "", path); err != nil {
		t.Fatal(err)
	}
}

// scanFiles returns "file: value" for every file under dir holding one of
// values (also lowercased or as UTF-16, how SQLite or a log might hold it).
func scanFiles(t *testing.T, dir string, values []string) []string {
	t.Helper()
	var found []string
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		lower := bytes.ToLower(b)
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) || bytes.Contains(lower, []byte(strings.ToLower(v))) || bytes.Contains(b, utf16(v)) {
				rel, _ := filepath.Rel(dir, path)
				found = append(found, rel+": "+v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("only %d files under %s: the scan looks in the wrong place", files, dir)
	}
	return found
}

func utf16(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}
