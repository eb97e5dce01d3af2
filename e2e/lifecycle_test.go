package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// temporalCLI runs bin/temporal against the stack's dev server, as an operator would.
func temporalCLI(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := devstack.Bin("temporal")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, append(args, "--address", stack.Temporal.Address)...).CombinedOutput()
	if err != nil {
		t.Fatalf("temporal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func temporalClient(t *testing.T) client.Client {
	t.Helper()
	tc, err := client.Dial(client.Options{HostPort: stack.Temporal.Address})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	return tc
}

// transitions reads a request's status transitions from the stack's ledger.
func transitions(t *testing.T, id string) []ledger.Transition {
	t.Helper()
	store, err := ledger.Open(context.Background(), devstack.EnvValue(stack.Env, "DSR_DB"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	trs, err := store.Transitions(context.Background(), ledger.Key{ControllerID: devstack.Controller, RequestID: id})
	if err != nil {
		t.Fatal(err)
	}
	return trs
}

func statusReason(t *testing.T, st opendsr.StatusResponse) string {
	t.Helper()
	var ext opendsr.StatusExtension
	_ = json.Unmarshal(st.Extensions["localhost"], &ext)
	return ext.StatusReason
}

func workflowStatus(t *testing.T, id string) enumspb.WorkflowExecutionStatus {
	t.Helper()
	desc, err := temporalClient(t).DescribeWorkflowExecution(context.Background(), dsr.WorkflowID(devstack.Controller, id), "")
	if err != nil {
		t.Fatal(err)
	}
	return desc.GetWorkflowExecutionInfo().GetStatus()
}

func post(t *testing.T, req map[string]any) {
	t.Helper()
	if resp := apiCall(t, http.MethodPost, "/v1/requests", req); resp.Code != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
}

func TestTemporalCancelInTheWaitingPeriod(t *testing.T) {
	id := newID()
	req := erasure(id, "gdpr", "tcancel-"+id[:8], "https://controller.example/cb")
	delete(req, "extensions") // the 7-day waiting period
	delete(req, "status_callback_urls")
	post(t, req)
	waitForStatus(t, id, "pending", 10*time.Second)
	temporalCLI(t, "workflow", "cancel", "--workflow-id", dsr.WorkflowID(devstack.Controller, id))
	start := time.Now()
	st := waitForStatus(t, id, "cancelled", 10*time.Second)
	t.Logf("GET said cancelled %v after `temporal workflow cancel`", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(statusReason(t, st), "cancelled") {
		t.Errorf("status reason %q", statusReason(t, st))
	}
	deadline := time.Now().Add(10 * time.Second)
	for workflowStatus(t, id) == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := workflowStatus(t, id); got != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
		t.Errorf("workflow is %v, want Canceled like the ledger", got)
	}
	// DELETE agrees: already cancelled.
	if resp := apiCall(t, http.MethodDelete, "/v1/requests/"+id, nil); resp.Code != http.StatusAccepted {
		t.Errorf("DELETE after the Temporal cancel: %d %s, want 202 (already cancelled)", resp.Code, resp.Body)
	}
}

func TestTemporalCancelAfterForwardingIsRefused(t *testing.T) {
	id := newID()
	req := erasure(id, "gdpr", "tlate-"+id[:8], "https://controller.example/cb")
	delete(req, "status_callback_urls")
	post(t, req)
	waitForStatus(t, id, "in_progress", 60*time.Second)
	faults := stack.Emulator.Faults()
	down := faults
	down.Rate500 = 1 // Mixpanel answers nothing for now: the task cannot finish before the cancel
	stack.Emulator.SetFaults(down)
	defer stack.Emulator.SetFaults(faults)
	temporalCLI(t, "workflow", "cancel", "--workflow-id", dsr.WorkflowID(devstack.Controller, id))
	stack.Emulator.SetFaults(faults)
	waitForStatus(t, id, "completed", 90*time.Second)
	var refused bool
	for _, tr := range transitions(t, id) {
		if strings.Contains(tr.Reason, "Temporal cancellation request refused") && strings.Contains(tr.Reason, "too late") {
			refused = true
		}
	}
	if !refused {
		t.Errorf("transitions %+v record no refused cancellation", transitions(t, id))
	}
	if got := workflowStatus(t, id); got != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && got != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("workflow is %v, want it to go on (completed)", got)
	}
	if dir := os.Getenv("DSR_SAVE_HISTORIES"); dir != "" {
		saveHistory(t, dir, "dsr-erasure-cancel-refused.json", dsr.WorkflowID(devstack.Controller, id))
	}
}

// sweep runs the hourly Retention schedule now and waits for the request to reach want.
func sweepUntil(t *testing.T, id, want string) opendsr.StatusResponse {
	t.Helper()
	h := temporalClient(t).ScheduleClient().GetHandle(context.Background(), "dsrflow-retention")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := h.Trigger(context.Background(), client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}); err != nil {
			t.Fatal(err)
		}
		var st opendsr.StatusResponse
		for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); time.Sleep(200 * time.Millisecond) {
			resp := apiCall(t, http.MethodGet, "/v1/requests/"+id, nil)
			_ = json.Unmarshal(resp.Body, &st)
			if st.RequestStatus == want {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after sweeps for 60 s the request is %q, want %q", st.RequestStatus, want)
		}
	}
}

func TestTemporalTerminateIsSweptThenRetried(t *testing.T) {
	cb := newCallbackReceiver(t)
	id := newID()
	post(t, erasure(id, "gdpr", "tterm-"+id[:8], cb.srv.URL))
	temporalCLI(t, "workflow", "terminate", "--workflow-id", dsr.WorkflowID(devstack.Controller, id), "--reason", "e2e")
	if resp := apiCall(t, http.MethodGet, "/v1/requests/"+id, nil); !strings.Contains(string(resp.Body), `"pending"`) {
		t.Fatalf("right after terminate: %s", resp.Body)
	}
	st := sweepUntil(t, id, "failed")
	if got := statusReason(t, st); got != dsr.ReasonTerminated {
		t.Errorf("status reason %q, want %q", got, dsr.ReasonTerminated)
	}
	if dir := os.Getenv("DSR_SAVE_HISTORIES"); dir != "" {
		saveHistory(t, dir, "retention.json", completedRetentionRun(t))
	}
	if rows := listed(t, id); len(rows) != 1 || !strings.Contains(rows[0], " failed ") {
		t.Errorf("dsr list shows %q, want the request once, failed", rows)
	}
	if rows := listed(t, id, "--status", "failed"); len(rows) != 1 {
		t.Errorf("dsr list --status failed shows %q, want the request", rows)
	}
	for deadline := time.Now().Add(20 * time.Second); !slices.Contains(cb.statuses(id), "failed") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Contains(cb.statuses(id), "failed") {
		t.Errorf("callbacks %v: the controller was not told the request failed", cb.statuses(id))
	}
	resp, err := stack.CallAsOperator(http.MethodPost, "/v1/requests/"+id+"/retry", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != http.StatusAccepted {
		t.Fatalf("retry: %d %s, want 202", resp.Code, resp.Body)
	}
	waitForStatus(t, id, "completed", 90*time.Second)
	if got := workflowStatus(t, id); got != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && got != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("the retried run is %v", got)
	}
	var path []string
	for _, tr := range transitions(t, id) {
		path = append(path, string(tr.To))
	}
	if got := strings.Join(path, ","); !strings.Contains(got, "failed,pending") || !strings.HasSuffix(got, "completed") {
		t.Errorf("transitions %s, want failed (terminated), pending (retried), ..., completed", got)
	}
	// The sweep does not touch it again: the new run completed it.
	sweepUntil(t, id, "completed")
	for deadline := time.Now().Add(20 * time.Second); !slices.Contains(cb.statuses(id), "completed") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if got := cb.statuses(id); slices.Index(got, "failed") < 0 || slices.Index(got, "completed") < slices.Index(got, "failed") {
		t.Errorf("callbacks %v, want failed (after the sweep), then completed (after the retry)", got)
	}
	if dir := os.Getenv("DSR_SAVE_HISTORIES"); dir != "" {
		// The terminated run, the sweep's recording run and the retried run, oldest first.
		resp, err := temporalClient(t).ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: "WorkflowId = '" + dsr.WorkflowID(devstack.Controller, id) + "'"})
		if err != nil {
			t.Fatal(err)
		}
		runs := resp.GetExecutions()
		for i := range runs {
			run := runs[len(runs)-1-i].GetExecution()
			saveRunHistory(t, dir, fmt.Sprintf("dsr-erasure-terminated-run%d.json", i+1), run.GetWorkflowId(), run.GetRunId())
		}
	}
	if rows := listed(t, id); len(rows) != 1 || !strings.Contains(rows[0], " completed ") {
		t.Errorf("dsr list shows %q, want the request once (its newest run), completed", rows)
	}
}

// completedRetentionRun returns the workflow ID of a finished run of the
// Retention schedule, for saving its history.
func completedRetentionRun(t *testing.T) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := temporalClient(t).ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: "WorkflowType = 'Retention' AND ExecutionStatus = 'Completed'"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetExecutions()) > 0 {
			return resp.GetExecutions()[0].GetExecution().GetWorkflowId()
		}
	}
	t.Fatal("no completed Retention run")
	return ""
}

// listed returns the lines of `dsr list` that show the request.
func listed(t *testing.T, id string, filter ...string) []string {
	t.Helper()
	out, err := dsrCommand(t, append([]string{"list", "--limit", "1000"}, filter...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dsr list: %v\n%s", err, out)
	}
	var rows []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, id) {
			rows = append(rows, line)
		}
	}
	return rows
}

// TestPoisonedIDFailsOnlyItsRequest: one of 50 erasures carries an id the
// emulator fails; 49 complete, the poisoned one fails with the task chain,
// and the split's creates stayed at most 1 per second.
func TestPoisonedIDFailsOnlyItsRequest(t *testing.T) {
	stack.Emulator.Reset()
	faults := stack.Emulator.Faults()
	poisoned := faults
	poisoned.FailPrefix = "poison-"
	stack.Emulator.SetFaults(poisoned)
	defer stack.Emulator.SetFaults(faults)

	var ids []string
	poisonedID := ""
	for i := range 50 {
		id := newID()
		customer := fmt.Sprintf("split-%d-%s", i, id[:8])
		if i == 23 {
			customer, poisonedID = "poison-"+id[:8], id
		}
		req := erasure(id, "gdpr", customer, "https://controller.example/cb")
		delete(req, "status_callback_urls")
		post(t, req)
		ids = append(ids, id)
	}
	start := time.Now()
	for _, id := range ids {
		if id == poisonedID {
			continue
		}
		waitForStatus(t, id, "completed", 5*time.Minute)
	}
	st := waitForStatus(t, poisonedID, "failed", 5*time.Minute)
	reason := statusReason(t, st)
	t.Logf("49 completed and 1 failed %v after the last POST; reason: %s", time.Since(start).Round(time.Second), reason)
	if !strings.Contains(reason, "FAILURE") || !strings.Contains(reason, "failed alone") || !strings.Contains(reason, "task chain: ") {
		t.Errorf("poisoned request's reason %q names no failure, isolation or task chain", reason)
	}
	tasks := stack.Emulator.Tasks()
	var created []time.Time
	for _, task := range tasks {
		if task.Kind == "deletion" {
			created = append(created, task.Created)
		}
	}
	sort.Slice(created, func(i, j int) bool { return created[i].Before(created[j]) })
	minGap := time.Hour
	for i := 1; i < len(created); i++ {
		minGap = min(minGap, created[i].Sub(created[i-1]))
	}
	calls := stack.Emulator.Calls()
	t.Logf("%d deletion tasks, closest creates %v apart; calls %v", len(created), minGap, calls)
	if len(created) < 3 || len(created) > 2+2*7 {
		t.Errorf("%d deletion tasks, want a split (more than 2) bounded by halving (at most 16)", len(created))
	}
	if minGap < 900*time.Millisecond {
		t.Errorf("two creates %v apart: the split broke Mixpanel's 1 request/s", minGap)
	}
	if calls["status_429"] > 0 {
		t.Errorf("Mixpanel answered %d calls 429 (rate limited)", calls["status_429"])
	}
	if dir := os.Getenv("DSR_SAVE_HISTORIES"); dir != "" {
		saveHistory(t, dir, "mixpanel-task-split.json", dsr.TaskWorkflowID("mixpanel", tasks[0].ID))
		saveHistory(t, dir, "dsr-erasure-isolated.json", dsr.WorkflowID(devstack.Controller, poisonedID))
	}
}

// saveHistory writes a workflow's history for the replay tests (see saveHistories).
func saveHistory(t *testing.T, dir, name, workflowID string) {
	t.Helper()
	saveRunHistory(t, dir, name, workflowID, "")
}

func saveRunHistory(t *testing.T, dir, name, workflowID, runID string) {
	t.Helper()
	if err := devstack.WriteHistory(context.Background(), temporalClient(t), workflowID, runID, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// TestCLIAccessRequestCompletesAsFastAsHTTP: an access request submitted
// with bin/dsr from an environment without the worker's settings (default
// 10 minute poll interval) is polled at the worker's 1 s, like one over HTTP,
// and both get the same expected_completion_time rule.
func TestCLIAccessRequestCompletesAsFastAsHTTP(t *testing.T) {
	var env []string
	for _, kv := range stack.Env {
		k, _, _ := strings.Cut(kv, "=")
		if k != "MIXPANEL_POLL_INTERVAL" && k != "DSR_BATCH_MAX_WAIT" && k != "DSR_RESULTS_TTL" {
			env = append(env, kv)
		}
	}
	timed := func(submit func() (string, opendsr.CreatedResponse)) (time.Duration, opendsr.CreatedResponse) {
		start := time.Now()
		id, created := submit()
		waitForStatus(t, id, "completed", 3*time.Minute)
		return time.Since(start), created
	}
	httpTook, httpCreated := timed(func() (string, opendsr.CreatedResponse) {
		id := newID()
		req := erasure(id, "gdpr", "speed-http", "https://controller.example/cb")
		req["subject_request_type"] = "access"
		delete(req, "status_callback_urls")
		resp := apiCall(t, http.MethodPost, "/v1/requests", req)
		var c opendsr.CreatedResponse
		if resp.Code != http.StatusCreated || json.Unmarshal(resp.Body, &c) != nil {
			t.Fatalf("POST: %d %s", resp.Code, resp.Body)
		}
		return id, c
	})
	cliTook, cliCreated := timed(func() (string, opendsr.CreatedResponse) {
		cmd := dsrCommand(t, "submit", "--regulation", "gdpr", "--type", "access", "--identity", "controller_customer_id=speed-cli", "--json")
		cmd.Env = env
		out, err := cmd.Output()
		var c opendsr.CreatedResponse
		if err != nil || json.Unmarshal(out, &c) != nil {
			t.Fatalf("dsr submit: %v\n%s", err, out)
		}
		return c.SubjectRequestID, c
	})
	t.Logf("access request completed in %v over HTTP, %v from bin/dsr", httpTook.Round(time.Millisecond), cliTook.Round(time.Millisecond))
	if cliTook > 2*httpTook+10*time.Second {
		t.Errorf("bin/dsr's request took %v, HTTP's %v: the CLI's environment decided the polling", cliTook, httpTook)
	}
	for name, c := range map[string]opendsr.CreatedResponse{"HTTP": httpCreated, "CLI": cliCreated} {
		if got := c.ExpectedCompletionTime.Sub(c.ReceivedTime.Time); got != 48*time.Hour {
			t.Errorf("%s: expected_completion_time is received + %v, want + 48h", name, got)
		}
	}
}

// TestFailedAccessRequestCanBeRetried: an access request whose Mixpanel
// retrieval ends FAILURE fails (its workflow ends); once the cause is gone,
// retry starts it again and it completes with its results.
func TestFailedAccessRequestCanBeRetried(t *testing.T) {
	faults := stack.Emulator.Faults()
	failing := faults
	failing.FailPrefix = "afail-"
	stack.Emulator.SetFaults(failing)
	defer stack.Emulator.SetFaults(faults)

	id := newID()
	req := erasure(id, "gdpr", "afail-"+id[:8], "https://controller.example/cb")
	req["subject_request_type"] = "access"
	delete(req, "status_callback_urls")
	post(t, req)
	st := waitForStatus(t, id, "failed", 90*time.Second)
	if reason := statusReason(t, st); !strings.Contains(reason, "FAILURE") {
		t.Errorf("failure reason %q", reason)
	}
	deadline := time.Now().Add(30 * time.Second)
	for workflowStatus(t, id) == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	stack.Emulator.SetFaults(faults) // the cause is fixed
	resp, err := stack.CallAsOperator(http.MethodPost, "/v1/requests/"+id+"/retry", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != http.StatusAccepted {
		t.Fatalf("retry of a failed access request: %d %s, want 202", resp.Code, resp.Body)
	}
	st = waitForStatus(t, id, "completed", 90*time.Second)
	if st.ResultsURL == "" {
		t.Errorf("retried access request completed without results: %+v", st)
	}
	// A request that is not failed cannot be retried.
	if resp, err := stack.CallAsOperator(http.MethodPost, "/v1/requests/"+id+"/retry", nil); err != nil || resp.Code != http.StatusConflict {
		t.Errorf("retry of a completed request: %d %s, want 409", resp.Code, resp.Body)
	}
}

// TestTerminatedTaskWorkflowIsRestartedBySweep: an operator terminates the
// workflow following a request's Mixpanel task; the sweep starts it again
// and the request still learns that its task succeeded.
func TestTerminatedTaskWorkflowIsRestartedBySweep(t *testing.T) {
	faults := stack.Emulator.Faults()
	defer stack.Emulator.SetFaults(faults)
	bin, err := devstack.Bin("temporal")
	if err != nil {
		t.Fatal(err)
	}
	var id string
	// The task must still be polled when it is terminated: on a slow machine it
	// may finish first, then try again with another request.
	for attempt := 1; ; attempt++ {
		id = newID()
		req := erasure(id, "gdpr", "tasktm-"+id[:8], "https://controller.example/cb")
		delete(req, "status_callback_urls")
		post(t, req)
		st := waitForStatus(t, id, "in_progress", 60*time.Second)
		down := faults
		down.Rate500 = 1 // hold the task workflow in its polling while we terminate it
		stack.Emulator.SetFaults(down)
		task := forwarding(t, st).Forwarding[0].TaskID
		out, err := exec.Command(bin, "workflow", "terminate", "--workflow-id", dsr.TaskWorkflowID("mixpanel", task),
			"--reason", "e2e", "--address", stack.Temporal.Address).CombinedOutput()
		stack.Emulator.SetFaults(faults)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("temporal workflow terminate: %v\n%s", err, out)
		}
		t.Logf("attempt %d: the task workflow ended before it was terminated (%s)", attempt, strings.TrimSpace(string(out)))
	}
	time.Sleep(3 * time.Second)
	if resp := apiCall(t, http.MethodGet, "/v1/requests/"+id, nil); !strings.Contains(string(resp.Body), `"in_progress"`) {
		t.Fatalf("with its task workflow terminated the request moved on: %s", resp.Body)
	}
	sweepUntil(t, id, "completed")
}

// TestDeleteOfATerminatedRequest: DELETE of a request whose workflow was
// terminated answers 409 with the reason and settles it at once: GET,
// `dsr list --status failed` and the controller's callback say failed.
func TestDeleteOfATerminatedRequest(t *testing.T) {
	cb := newCallbackReceiver(t)
	id := newID()
	req := erasure(id, "gdpr", "tdel-"+id[:8], cb.srv.URL)
	delete(req, "extensions") // in its waiting period
	post(t, req)
	temporalCLI(t, "workflow", "terminate", "--workflow-id", dsr.WorkflowID(devstack.Controller, id), "--reason", "e2e")
	resp := apiCall(t, http.MethodDelete, "/v1/requests/"+id, nil)
	if resp.Code != http.StatusConflict || !strings.Contains(string(resp.Body), dsr.ReasonTerminated) {
		t.Fatalf("DELETE of a terminated request: %d %s, want 409 naming the termination", resp.Code, resp.Body)
	}
	st := waitForStatus(t, id, "failed", 5*time.Second)
	if got := statusReason(t, st); got != dsr.ReasonTerminated {
		t.Errorf("status reason %q", got)
	}
	for deadline := time.Now().Add(20 * time.Second); !slices.Contains(cb.statuses(id), "failed") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Contains(cb.statuses(id), "failed") {
		t.Errorf("callbacks %v, want failed", cb.statuses(id))
	}
	if rows := listed(t, id, "--status", "failed"); len(rows) != 1 {
		t.Errorf("dsr list --status failed shows %q, want the request", rows)
	}
}
