package e2e_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// importProfiles runs `dsr profiles import` against the stack's database.
func importProfiles(t *testing.T, jsonl string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "profiles.jsonl")
	if err := os.WriteFile(path, []byte(jsonl), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := dsrCommand(t, "profiles", "import", path).CombinedOutput(); err != nil {
		t.Fatalf("dsr profiles import: %v\n%s", err, out)
	}
}

// dsrCommand is bin/dsr with the stack's environment.
func dsrCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := devstack.Bin("dsr")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = stack.Env
	return cmd
}

func withIdentities(req map[string]any, ids ...[2]string) map[string]any {
	var list []map[string]string
	for _, id := range ids {
		list = append(list, map[string]string{"identity_type": id[0], "identity_value": id[1], "identity_format": "raw"})
	}
	req["subject_identities"] = list
	delete(req, "status_callback_urls")
	return req
}

func forwarding(t *testing.T, st opendsr.StatusResponse) opendsr.StatusExtension {
	t.Helper()
	var ext opendsr.StatusExtension
	if err := json.Unmarshal(st.Extensions["localhost"], &ext); err != nil || len(ext.Forwarding) != 1 {
		t.Fatalf("status extension: %v %s", err, st.Extensions["localhost"])
	}
	return ext
}

func TestIdentityResolution(t *testing.T) {
	importProfiles(t, strings.Join([]string{
		`{"profile_id":"p-ann","identities":{"email":"ann-e2e@example.com","controller_customer_id":"cust-ann","ios_vendor_id":"dev-ann"}}`,
		`{"profile_id":"p-twin-1","identities":{"email":"twins-e2e@example.com","controller_customer_id":"cust-twin-1"}}`,
		`{"profile_id":"p-twin-2","identities":{"email":"twins-e2e@example.com","controller_customer_id":"cust-twin-2"}}`,
	}, "\n")+"\n")

	t.Run("email only is forwarded as the profile's customer id", func(t *testing.T) {
		id := newID()
		req := withIdentities(devstack.Erasure(id, "gdpr", ""), [2]string{"email", "ann-e2e@example.com"})
		if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.Code, resp.Body)
		}
		st := waitForStatus(t, id, "completed", 90*time.Second)
		ext := forwarding(t, st)
		if ext.Forwarding[0].Status != "sent" {
			t.Fatalf("forwarding %+v, want sent", ext.Forwarding[0])
		}
		found := false
		for _, task := range stack.Emulator.Tasks() {
			for _, d := range task.DistinctIDs {
				if d == "cust-ann" && task.ID == ext.Forwarding[0].TaskID {
					found = true
				}
				if strings.Contains(d, "@") {
					t.Errorf("an email reached Mixpanel as a distinct id")
				}
			}
		}
		if !found {
			t.Errorf("task %s does not hold the profile's customer id", ext.Forwarding[0].TaskID)
		}
		var trace struct {
			Rule     string   `json:"rule"`
			Profiles []string `json:"profiles"`
		}
		// The erasure completed: the trace names p-ann by its keyed hash only.
		if err := json.Unmarshal(ext.Resolution, &trace); err != nil || trace.Rule != "single_profile" || len(trace.Profiles) != 1 || trace.Profiles[0] != erasedMention(t, "p-ann") {
			t.Errorf("resolution trace %s, want single_profile %s", ext.Resolution, erasedMention(t, "p-ann"))
		}
	})

	t.Run("a device id alone does not reach a login-protected profile", func(t *testing.T) {
		id := newID()
		req := withIdentities(devstack.Erasure(id, "gdpr", ""), [2]string{"ios_vendor_id", "dev-ann"})
		if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.Code, resp.Body)
		}
		st := waitForStatus(t, id, "completed", 60*time.Second)
		if f := forwarding(t, st).Forwarding[0]; f.Status != "skipped" || f.TaskID != "" {
			t.Errorf("forwarding %+v, want skipped with no task", f)
		}
	})

	t.Run("an ambiguous email waits for an operator", func(t *testing.T) {
		id := newID()
		req := withIdentities(devstack.Erasure(id, "ccpa", ""), [2]string{"email", "twins-e2e@example.com"})
		if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.Code, resp.Body)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			st := waitForStatus(t, id, "pending", 10*time.Second)
			var ext opendsr.StatusExtension
			_ = json.Unmarshal(st.Extensions["localhost"], &ext)
			if strings.Contains(ext.StatusReason, "ambiguous identity") && strings.Contains(ext.StatusReason, "p-twin-1") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status reason %q, want ambiguous identity with the candidates", ext.StatusReason)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if resp := apiCall(t, http.MethodPost, "/v1/requests/"+id+"/resolve", map[string]string{"profile_id": "p-twin-2"}); resp.Code != http.StatusForbidden {
			t.Errorf("the controller resolving its own request: %d %s, want 403", resp.Code, resp.Body)
		}
		if resp, err := stack.CallAsOperator(http.MethodPost, "/v1/requests/"+id+"/resolve", map[string]string{"profile_id": "p-nobody"}); err != nil || resp.Code != http.StatusConflict {
			t.Errorf("resolving to a non-candidate: %v %d %s, want 409", err, resp.Code, resp.Body)
		}
		// The operator settles it with the CLI (the API route is the same service).
		if out, err := dsrCommand(t, "resolve", id, "--profile", "p-twin-2").CombinedOutput(); err != nil {
			t.Fatalf("dsr resolve: %v\n%s", err, out)
		}
		st := waitForStatus(t, id, "completed", 90*time.Second)
		taskID := forwarding(t, st).Forwarding[0].TaskID
		for _, task := range stack.Emulator.Tasks() {
			if task.ID == taskID && (len(task.DistinctIDs) == 0 || !slices.Contains(task.DistinctIDs, "cust-twin-2") || slices.Contains(task.DistinctIDs, "cust-twin-1")) {
				t.Errorf("task %s holds %v, want cust-twin-2 and not cust-twin-1", taskID, task.DistinctIDs)
			}
		}
		// The ledger says who chose, by name.
		out, err := dsrCommand(t, "status", id).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "identity settled by operator") || !strings.Contains(string(out), "(dsr CLI): profile "+erasedMention(t, "p-twin-2")) {
			t.Errorf("dsr status: %v, want the operator's choice in the history:\n%s", err, out)
		}
	})

	t.Run("an operator settles through the API, recorded by name", func(t *testing.T) {
		// Twins of their own: the erasure above erased p-twin-2 from the profile store.
		importProfiles(t, `{"profile_id":"p-trio-1","identities":{"email":"trio-e2e@example.com","controller_customer_id":"cust-trio-1"}}`+"\n"+
			`{"profile_id":"p-trio-2","identities":{"email":"trio-e2e@example.com","controller_customer_id":"cust-trio-2"}}`+"\n")
		id := newID()
		req := withIdentities(devstack.Erasure(id, "ccpa", ""), [2]string{"email", "trio-e2e@example.com"})
		if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
			t.Fatalf("POST: %d %s", resp.Code, resp.Body)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := stack.CallAsOperator(http.MethodPost, "/v1/requests/"+id+"/resolve", map[string]string{"profile_id": "p-trio-1"})
			if err == nil && resp.Code == http.StatusAccepted {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("operator resolve: %v %d %s", err, resp.Code, resp.Body)
			}
			time.Sleep(200 * time.Millisecond) // 409 until the request is held
		}
		waitForStatus(t, id, "completed", 90*time.Second)
		out, err := dsrCommand(t, "status", id).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "identity settled by operator test-operator: profile "+erasedMention(t, "p-trio-1")) || strings.Contains(string(out), devstack.OperatorToken) {
			t.Errorf("dsr status: %v, want the operator's name (and never the token) in the history:\n%s", err, out)
		}
	})
}
