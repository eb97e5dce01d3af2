package e2e_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/devstack"
)

// MIXPANEL_API_URL is the host, as for Mixpanel itself: the worker runs with
// the emulator's bare http://host:port, the client appends /api/app/..., and
// the emulator serves only those paths, so a completed erasure proves the
// paths are Mixpanel's.
func TestMixpanelAPIURLIsTheBareHost(t *testing.T) {
	raw := devstack.EnvValue(stack.Env, "MIXPANEL_API_URL")
	u, err := url.Parse(raw)
	if err != nil || raw != stack.EmulatorURL || u.Scheme != "http" || u.Host == "" || u.Path != "" {
		t.Fatalf("MIXPANEL_API_URL = %q, want the emulator's bare http://host:port", raw)
	}
	id := newID()
	customer := "bare-host-" + id[:8]
	resp := apiCall(t, http.MethodPost, "/v1/requests", devstack.Erasure(id, "gdpr", customer))
	if resp.Code != http.StatusCreated {
		t.Fatalf("submit: %d %s", resp.Code, resp.Body)
	}
	waitForStatus(t, id, "completed", 90*time.Second)

	var taskID string
	for _, task := range stack.Emulator.Tasks() {
		if task.Kind == "deletion" && slices.Contains(task.DistinctIDs, customer) {
			taskID = task.ID
		}
	}
	if taskID == "" {
		t.Fatal("no deletion task holds the subject's id")
	}
	var created, polled bool
	for _, c := range stack.Emulator.CallLog() {
		if c.TaskID != taskID {
			continue
		}
		created = created || (c.Op == "deletion.create" && c.Code == http.StatusCreated)
		polled = polled || (c.Op == "deletion.status" && c.Code == http.StatusOK)
	}
	if !created || !polled {
		t.Errorf("emulator call log for task %s: created %v, polled %v; want both", taskID, created, polled)
	}
}
