package walkthrough_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/keyring"
)

// readmeBlocks returns the ```sh code blocks of the checkout's README.md, in order.
func readmeBlocks(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```").FindAllStringSubmatch(string(b), -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 4 {
		t.Fatalf("README.md has %d sh blocks, want the quickstart's", len(blocks))
	}
	return blocks
}

// stackAddresses maps the README's default addresses to this stack's.
type stackAddresses struct{ api, ui, emulator string }

// runReadmeBlocks runs every sh block of the README as written, except the
// one that starts the stack (`make dev`: the test started it with dev.sh) and
// those of `make cluster`,
// in bash with -euo pipefail, from a directory whose bin/ is the checkout's,
// with the banner's exports; only the default addresses are rewritten to
// this stack's ports. It returns each block's output.
func runReadmeBlocks(t *testing.T, root string, env []string, addr stackAddresses) map[string]string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "bin"), filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	for _, block := range readmeBlocks(t, root) {
		if strings.Contains(block, "make dev") {
			continue
		}
		if strings.Contains(block, "make cluster") || strings.Contains(block, ".data/cluster/env") {
			// make cluster's blocks need the cluster, which this test does not
			// start (the cluster e2e run of make test covers that stack).
			continue
		}
		script := strings.NewReplacer("http://127.0.0.1:8080", addr.api, "http://127.0.0.1:8233", addr.ui,
			"http://127.0.0.1:9410", addr.emulator).Replace(block)
		if strings.Contains(script, "curl ") {
			if _, err := exec.LookPath("curl"); err != nil {
				t.Logf("curl is not installed: this README block was not run:\n%s", block)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(devstack.BaseEnv(), env...)
		cmd.WaitDelay = 5 * time.Second // a killed block's children must not hold its output open
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("the README block\n%s\nfailed: %v\n%s", block, err, out)
		}
		outputs[block] = string(out)
		t.Logf("README block ran:\n%s---\n%s", block, out)
	}
	return outputs
}

// checkReadmeOutputs checks what the README blocks printed: the CLI's
// erasure completes, the curl POST and GET answer, the access request's
// bundle is downloaded and verified, the overdue link is the Web UI's.
func checkReadmeOutputs(t *testing.T, outputs map[string]string) {
	t.Helper()
	want := map[string][]*regexp.Regexp{
		"--type erasure --identity controller_customer_id=user-42": {
			regexp.MustCompile(`(?m)^submitted [0-9a-f-]{36} \(gdpr erasure\) for controller dev$`),
			regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  completed`), regexp.MustCompile(`(?m)^status\s+completed`),
		},
		"curl -s -X POST": {
			regexp.MustCompile(`"subject_request_id":"[0-9a-f-]{36}"`), regexp.MustCompile(`"request_status":"(pending|in_progress|completed)"`),
		},
		"--type access":         {regexp.MustCompile(`(?m)^saved /tmp/dsr-([0-9a-f-]{36})\.zip: \d+ files, \d+ records \(results_count \d+: verified\)$`)},
		"list --overdue --link": {regexp.MustCompile(`^http://127\.0\.0\.1:8233/namespaces/default/workflows\?query=\S*DsrDueTime`)},
	}
	for marker, patterns := range want {
		found := false
		for block, out := range outputs {
			if !strings.Contains(block, marker) {
				continue
			}
			found = true
			for _, re := range patterns {
				if !re.MatchString(out) {
					t.Errorf("the README block with %q printed no %s:\n%s", marker, re, out)
				}
			}
			if m := regexp.MustCompile(`saved (/tmp/dsr-[0-9a-f-]{36}\.zip)`).FindStringSubmatch(out); m != nil {
				os.Remove(m[1])
			}
		}
		if !found {
			t.Errorf("no README block with %q", marker)
		}
	}
}

// checkCurrentDetails reads the request's Current Details from the dev
// server (the SDK's metadata query, what the Web UI shows), checks the
// markdown names its status and due time and links its batch and Mixpanel
// task workflows, that every link opens a workflow through the Web UI's
// API, and that the task's details link back to the request.
func checkCurrentDetails(t *testing.T, temporalAddr, keysFile, ui, workflowID string) {
	t.Helper()
	spec, err := os.ReadFile(keysFile)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Parse(strings.TrimSpace(string(spec)))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.Dial(client.Options{HostPort: temporalAddr, DataConverter: keyring.DataConverter(ring)})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	details := func(id string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		v, err := tc.QueryWorkflow(ctx, id, "", "__temporal_workflow_metadata")
		if err != nil {
			t.Fatalf("metadata query of %s: %v", id, err)
		}
		var md sdkpb.WorkflowMetadata
		if err := v.Get(&md); err != nil {
			t.Fatal(err)
		}
		return md.GetCurrentDetails()
	}
	d := details(workflowID)
	t.Logf("Current Details of %s:\n%s", workflowID, d)
	for _, want := range []string{"**Completed**", "Statutory due: ", "batch [gdpr](/namespaces/default/workflows/batch%2Fmixpanel%2Fmixpanel%2Fgdpr)", "task ["} {
		if !strings.Contains(d, want) {
			t.Errorf("Current Details of %s lack %q:\n%s", workflowID, want, d)
		}
	}
	if strings.Contains(d, "user-42") {
		t.Errorf("Current Details show an identity value:\n%s", d)
	}
	links := regexp.MustCompile(`\]\((/namespaces/default/workflows/([^)]+))\)`).FindAllStringSubmatch(d, -1)
	if len(links) < 2 {
		t.Fatalf("Current Details link %d workflows, want the batch and the task:\n%s", len(links), d)
	}
	var taskID string
	for _, l := range links {
		id, err := url.PathUnescape(l[2])
		if err != nil {
			t.Fatal(err)
		}
		var wf struct {
			Info struct {
				Execution struct {
					WorkflowID string `json:"workflowId"`
				} `json:"execution"`
			} `json:"workflowExecutionInfo"`
		}
		if code := getJSON(t, ui+"/api/v1"+l[1], "", &wf); code != 200 || wf.Info.Execution.WorkflowID != id {
			t.Errorf("the link %s does not open workflow %s in the Web UI: %d %+v", l[1], id, code, wf)
		}
		if strings.HasPrefix(id, "mptask/") {
			taskID = id
		}
	}
	if taskID == "" {
		t.Fatalf("no Mixpanel task workflow linked:\n%s", d)
	}
	back := fmt.Sprintf("(/namespaces/default/workflows/%s)", url.PathEscape(workflowID))
	if td := details(taskID); !strings.Contains(td, back) {
		t.Errorf("the task's Current Details do not link back to %s:\n%s", workflowID, td)
	}
}

// checkSavedQueries opens every saved query the README links through the
// Web UI's API, and checks that "in waiting period" lists an erasure that is
// in its waiting period (submitted here) and "failed" does not.
func checkSavedQueries(t *testing.T, root, ui, api, token string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]string{}
	for _, m := range regexp.MustCompile(`\[([^\]]+)\]\(http://127\.0\.0\.1:8233/namespaces/default/workflows\?query=([^)\s]+)\)`).FindAllStringSubmatch(string(readme), -1) {
		links[m[1]] = m[2]
	}
	for _, name := range []string{"in waiting period", "held for an operator", "failed"} {
		if links[name] == "" {
			t.Errorf("the README has no saved query %q", name)
		}
	}
	id := newUUID(t)
	body := strings.Replace(string(erasureBody(id)), `"skip_waiting_period":true`, `"skip_waiting_period":false`, 1)
	if code, out := post(t, api+"/v1/requests", token, []byte(body)); code != 201 {
		t.Fatalf("POST a waiting erasure: %d %s", code, out)
	}
	list := func(query string) string {
		code, out := get(t, ui+"/api/v1/namespaces/default/workflows?query="+query, "")
		if code != 200 {
			t.Fatalf("the Web UI refused the saved query %s: %d %.300s", query, code, out)
		}
		return out
	}
	for name, query := range links {
		list(query)
		t.Logf("saved query %q works", name)
	}
	eventually(t, 30*time.Second, func() error {
		if out := list(links["in waiting period"]); !strings.Contains(out, "dsr/dev/"+id) {
			return fmt.Errorf("the saved query \"in waiting period\" does not list dsr/dev/%s: %.500s", id, out)
		}
		return nil
	})
	if out := list(links["failed"]); strings.Contains(out, "dsr/dev/"+id) {
		t.Errorf("the saved query \"failed\" lists a request in its waiting period")
	}
}
