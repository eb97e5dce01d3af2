package e2e_test

import (
	"context"
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

	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// TestExtendTheDueTime extends a waiting erasure's due time with dsr extend:
// GET shows the new due time, DsrDueTime follows, the controller gets a
// callback with the new expected_completion_time and the reason, and a second
// extension (over the API, as an operator) is refused; a controller token may
// not extend at all.
func TestExtendTheDueTime(t *testing.T) {
	var mu sync.Mutex
	var got []opendsr.Callback
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var cb opendsr.Callback
		_ = json.Unmarshal(body, &cb)
		mu.Lock()
		got = append(got, cb)
		mu.Unlock()
	}))
	defer srv.Close()

	id := newID()
	req := erasure(id, "ccpa", "extend-customer", srv.URL)
	delete(req, "extensions") // keep the waiting period: the request stays open
	if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
	before := waitForStatus(t, id, "pending", 10*time.Second)
	var ext opendsr.StatusExtension
	_ = json.Unmarshal(before.Extensions["localhost"], &ext)
	due := ext.DueTime.Time
	want := due.Add(dsr.CCPAExtension)

	if resp := apiCall(t, http.MethodPost, "/v1/requests/"+id+"/extend", map[string]string{"reason": "x"}); resp.Code != http.StatusForbidden {
		t.Errorf("extend with a controller token: %d, want 403", resp.Code)
	}
	if out, err := dsrCommand(t, "extend", id).CombinedOutput(); err == nil {
		t.Errorf("dsr extend without --reason succeeded: %s", out)
	}
	out, err := dsrCommand(t, "extend", id, "--reason", "records held by a third system").CombinedOutput()
	if err != nil {
		t.Fatalf("dsr extend: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "due "+want.UTC().Format(time.RFC3339)) {
		t.Errorf("dsr extend said %q, want the new due time %s", out, want.UTC().Format(time.RFC3339))
	}

	after := apiCall(t, http.MethodGet, "/v1/requests/"+id, nil)
	var st opendsr.StatusResponse
	_ = json.Unmarshal(after.Body, &st)
	_ = json.Unmarshal(st.Extensions["localhost"], &ext)
	if !ext.DueTime.Equal(want) || !st.ExpectedCompletionTime.Equal(want) {
		t.Fatalf("after extending: due %s, expected completion %s; want both %s", ext.DueTime, st.ExpectedCompletionTime, want)
	}

	tc, err := client.Dial(client.Options{HostPort: stack.Temporal.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	desc, err := tc.DescribeWorkflowExecution(context.Background(), dsr.WorkflowID(devstack.Controller, id), "")
	if err != nil {
		t.Fatal(err)
	}
	var attr string
	_ = json.Unmarshal(desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()["DsrDueTime"].GetData(), &attr)
	if at, err := time.Parse(time.RFC3339Nano, attr); err != nil || !at.Equal(want) {
		t.Errorf("DsrDueTime = %q, want %s", attr, want)
	}

	second, err := stack.CallAsOperator(http.MethodPost, "/v1/requests/"+id+"/extend", map[string]string{"reason": "more"})
	if err != nil || second.Code != http.StatusConflict || !strings.Contains(string(second.Body), "already extended") {
		t.Errorf("second extension: %v %d %s, want 409 already extended", err, second.Code, second.Body)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		var told *opendsr.Callback
		for i, cb := range got {
			var ce opendsr.CallbackExtension
			_ = json.Unmarshal(cb.Extensions["localhost"], &ce)
			if strings.Contains(ce.StatusReason, "records held by a third system") && cb.ExpectedCompletionTime.Equal(want) && ce.DueTime.Equal(want) {
				told = &got[i]
			}
		}
		mu.Unlock()
		if told != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no callback with the new due time and reason: %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp := apiCall(t, http.MethodDelete, "/v1/requests/"+id, nil); resp.Code != http.StatusAccepted {
		t.Fatalf("cancel after extending: %d %s", resp.Code, resp.Body)
	}
	if dir := os.Getenv("DSR_SAVE_HISTORIES"); dir != "" {
		saveClosedHistory(t, stack, dsr.WorkflowID(devstack.Controller, id), filepath.Join(dir, "dsr-extended.json"))
	}
}
