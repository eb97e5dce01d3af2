package e2e_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/devstack"
)

// metricToken finds the metric names in PromQL text (deploy/check parses the
// same queries with the PromQL parser and allows no other names).
var metricToken = regexp.MustCompile(`\b(?:dsrflow|temporal)_[a-zA-Z0-9_]+`)

// TestOpsKitNamesExportedMetrics scrapes the running worker's and API's
// /metrics after an erasure (with a callback that fails) and one whose
// Mixpanel credentials are rejected (a real activity failure: a receiver
// that is down is an expected retry, which the SDK does not count as one),
// and checks that every metric the Grafana dashboard and the alert rules in
// deploy/ name is one of them.
func TestOpsKitNamesExportedMetrics(t *testing.T) {
	id := newID()
	if resp := apiCall(t, http.MethodPost, "/v1/requests", erasure(id, "ccpa", "opskit-1", "http://127.0.0.1:1/callback")); resp.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
	waitForStatus(t, id, "completed", 90*time.Second)

	faults := stack.Emulator.Faults()
	rejected := faults
	rejected.Unauthorized = true
	stack.Emulator.SetFaults(rejected)
	defer stack.Emulator.SetFaults(faults)
	failing := newID()
	if resp := apiCall(t, http.MethodPost, "/v1/requests", erasure(failing, "ccpa", "opskit-2", "http://127.0.0.1:1/callback")); resp.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
	waitForStatus(t, failing, "failed", 90*time.Second)
	stack.Emulator.SetFaults(faults)

	exported := map[string]bool{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		for _, u := range []string{stack.WorkerMetricsURL(), stack.APIURL + "/metrics"} {
			for name := range scrapeNames(t, u) {
				exported[name] = true
			}
		}
		if exported["dsrflow_callback_attempts_total"] || time.Now().After(deadline) {
			break // the failing callback was attempted
		}
	}

	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"deploy/grafana/dsrflow-dashboard.json", "deploy/prometheus/dsrflow-alerts.yml"} {
		content, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, n := range metricToken.FindAllString(string(content), -1) {
			names[n] = true
		}
		if len(names) < 5 {
			t.Errorf("%s names %d metrics", file, len(names))
		}
		for n := range names {
			if !exported[n] {
				t.Errorf("%s uses %s, which neither the worker nor the API exports", file, n)
			}
		}
	}
}

// scrapeNames returns the metric names of one /metrics page.
func scrapeNames(t *testing.T, u string) map[string]bool {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}
