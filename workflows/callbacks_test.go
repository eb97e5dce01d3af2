package workflows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/callback"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/workflows"
)

// receiver is a controller's callback endpoint: it records the status of
// every callback it is sent, in arrival order, and answers 503 to the
// attempts fail says to.
type receiver struct {
	mu       sync.Mutex
	received []string // every POST
	accepted []string // the POSTs answered 2xx
	fail     func(n int, status string) bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var cb opendsr.Callback
	if err := json.NewDecoder(r.Body).Decode(&cb); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.received = append(rc.received, cb.RequestStatus)
	if rc.fail != nil && rc.fail(len(rc.received), cb.RequestStatus) {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.accepted = append(rc.accepted, cb.RequestStatus)
	w.WriteHeader(http.StatusOK)
}

// TestCallbacksAfterAnOperatorRetry runs a request that fails, is retried by
// an operator and completes, with the real ledger, callback activity and an
// HTTP receiver: the receiver hears every status change in order, the
// repeated pending and in_progress included, and the ledger has one attempt
// row per attempt made.
func TestCallbacksAfterAnOperatorRetry(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "ledger.db")
	store, err := ledger.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	spec, err := keyring.Generate("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	// Completing an erasure also erases dsrflow's own copy from the profile store.
	profiles, err := identity.Open(ctx, db, identity.WithKeys(keys))
	if err != nil {
		t.Fatal(err)
	}
	defer profiles.Close()
	keyPath, certPath, err := opendsr.WriteKeyPair(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := opendsr.LoadSigner(keyPath, certPath)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := callback.New(callback.Options{Signer: signer, ProcessorDomain: "dsr.example", AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	// The second in_progress (after the retry) fails once: its callback is retried.
	rc := &receiver{}
	inProgress := 0
	rc.fail = func(_ int, status string) bool {
		if status == string(dsr.StatusInProgress) {
			inProgress++
			return inProgress == 2
		}
		return false
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	now := env.Now().UTC()
	in := dsr.Request{
		ControllerID: "acme", RequestID: "9f1c2d3e-4b5a-4c6d-8e7f-00112233aaaa",
		Type: dsr.TypeErasure, Regulation: dsr.RegulationGDPR,
		Identities:   []dsr.Identity{{Type: "controller_customer_id", Format: "raw", Value: "cust-1"}},
		CallbackURLs: []string{srv.URL + "/cb?token=secret"},
		ReceivedTime: now, ForwardAt: now, RetryWindow: 30 * 24 * time.Hour,
	}
	env.RegisterActivity(&activities.Activities{Ledger: store, Profiles: profiles, Keys: keys, Callbacks: sender})
	env.OnActivity(a.ResolveIdentities, mock.Anything, mock.Anything).Return(dsr.ResolveIdentitiesResult{
		Plans: []dsr.Plan{{Destination: "mixpanel", DistinctIDs: []string{"cust-1"}}}, Enqueued: true}, nil)
	env.OnActivity(a.Enqueue, mock.Anything, mock.Anything).Return(nil)

	// The first task is revoked (a failure an operator can retry); after the
	// retry, the second one succeeds.
	task := func(after time.Duration, id, status string) {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(dsr.SignalForwarded, dsr.Forwarded{Destination: "mixpanel", TaskIDs: []string{id}})
		}, after)
		env.RegisterDelayedCallback(func() {
			res := dsr.TaskResult{Destination: "mixpanel", TaskID: id, TaskStatus: dsr.TaskStatus(status), Succeeded: status == "SUCCESS"}
			if !res.Succeeded {
				res.Reason, res.Retryable = "ended "+status, true
			}
			env.SignalWorkflow(dsr.SignalTaskResult, res)
		}, after+time.Hour)
	}
	task(time.Minute, "task-1", "REVOKED")
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(dsr.UpdateRetry, "retry-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("retry rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		})
	}, 24*time.Hour)
	task(25*time.Hour, "task-2", "SUCCESS")

	env.ExecuteWorkflow(workflows.DSR, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if got := fmt.Sprint(rc.accepted); got != "[pending in_progress failed pending in_progress completed]" {
		t.Errorf("the controller heard %s, want [pending in_progress failed pending in_progress completed]", got)
	}
	if got := fmt.Sprint(rc.received); got != "[pending in_progress failed pending in_progress in_progress completed]" {
		t.Errorf("the receiver was sent %s, want every change in order and the refused one again", got)
	}

	attempts, err := store.CallbackAttempts(ctx, ledger.Key{ControllerID: in.ControllerID, RequestID: in.RequestID})
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != len(rc.received) {
		t.Fatalf("%d attempt rows for %d attempts: %+v", len(attempts), len(rc.received), attempts)
	}
	type row struct {
		Seq       int
		Status    dsr.Status
		Attempt   int
		Delivered bool
	}
	want := []row{
		{1, dsr.StatusPending, 1, true}, {2, dsr.StatusInProgress, 1, true}, {3, dsr.StatusFailed, 1, true},
		{4, dsr.StatusPending, 1, true}, {5, dsr.StatusInProgress, 1, false}, {5, dsr.StatusInProgress, 2, true},
		{6, dsr.StatusCompleted, 1, true},
	}
	for i, at := range attempts {
		got := row{at.Seq, at.RequestStatus, at.Attempt, at.Delivered}
		if got != want[i] {
			t.Errorf("attempt row %d = %+v, want %+v", i, got, want[i])
		}
		if !ledger.Matches(keys, ledger.PurposeCallbackURL, ledger.HashHex(in.CallbackURLs[0]), at.URLHash) {
			t.Errorf("attempt row %d: URL hash is not the keyed hash of the URL", i)
		}
	}
}
