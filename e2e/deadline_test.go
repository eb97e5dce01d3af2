package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// TestHeldRequestNearItsDueTimeWarns holds a GDPR erasure submitted 25 days
// ago on an ambiguous identity: its due time is under 7 days away, so the
// worker warns at once — a log line, a status reason in GET and in a callback
// that says what is needed — and the worker's /metrics counts it as awaiting
// an operator with less than 7 days left.
func TestHeldRequestNearItsDueTimeWarns(t *testing.T) {
	importProfiles(t, strings.Join([]string{
		`{"profile_id":"p-late-1","identities":{"email":"late-twins@example.com","controller_customer_id":"cust-late-1"}}`,
		`{"profile_id":"p-late-2","identities":{"email":"late-twins@example.com","controller_customer_id":"cust-late-2"}}`,
	}, "\n"))
	var mu sync.Mutex
	var reasons []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var cb opendsr.Callback
		_ = json.Unmarshal(body, &cb)
		var ext opendsr.CallbackExtension
		_ = json.Unmarshal(cb.Extensions["localhost"], &ext)
		mu.Lock()
		reasons = append(reasons, ext.StatusReason)
		mu.Unlock()
	}))
	defer srv.Close()

	id := newID()
	req := withIdentities(devstack.Erasure(id, "gdpr", ""), [2]string{"email", "late-twins@example.com"})
	req["submitted_time"] = time.Now().UTC().Add(-25 * 24 * time.Hour).Format(time.RFC3339)
	req["status_callback_urls"] = []string{srv.URL}
	if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := waitForStatus(t, id, "pending", 10*time.Second)
		var ext opendsr.StatusExtension
		_ = json.Unmarshal(st.Extensions["localhost"], &ext)
		if strings.Contains(ext.StatusReason, "days left") {
			if !strings.Contains(ext.StatusReason, "ambiguous identity") || !strings.Contains(ext.StatusReason, "dsr resolve") {
				t.Errorf("status reason %q does not say what is needed", ext.StatusReason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status reason %q, want the deadline warning", ext.StatusReason)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		mu.Lock()
		told := false
		for _, r := range reasons {
			told = told || strings.Contains(r, "days left")
		}
		mu.Unlock()
		if told {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no callback carried the warning: %q", reasons)
		}
	}
	if log := stack.Worker.Log(); !strings.Contains(log, "request waits for an operator close to its statutory due time") || strings.Contains(log, "late-twins@example.com") {
		t.Error("the worker logged no warning, or logged the identity")
	}
	if v := metricValue(t, stack.WorkerMetricsURL(), `dsrflow_requests_awaiting_operator{due="lt_7d",reason="ambiguous_identity"}`); v < 1 {
		t.Errorf("awaiting operator, due within 7 days = %v, want at least 1", v)
	}

	// End it, and keep its history for the replay tests when asked.
	if resp := apiCall(t, http.MethodDelete, "/v1/requests/"+id, nil); resp.Code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", resp.Code, resp.Body)
	}
	waitForStatus(t, id, "cancelled", 30*time.Second)
	if dir := os.Getenv("DSR_SAVE_HISTORIES"); dir != "" {
		saveClosedHistory(t, stack, dsr.WorkflowID(devstack.Controller, id), filepath.Join(dir, "dsr-held-warned.json"))
	}
}

// metricValue reads one series' value from a /metrics page (-1 when absent).
func metricValue(t *testing.T, u, series string) float64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if err := json.Unmarshal([]byte(rest), &v); err == nil {
				return v
			}
		}
	}
	return -1
}
