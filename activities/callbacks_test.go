package activities_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// TestDeliverCallbacksKnowsChangesAcrossKeyRotation: a change delivered
// before a key rotation is not sent again after it (its attempt's URL hash
// was made with the old key), a repeated status with a new sequence number
// is, and every attempt is a row of its own.
func TestDeliverCallbacksKnowsChangesAcrossKeyRotation(t *testing.T) {
	ctx := context.Background()
	store, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { posts.Add(1) }))
	defer srv.Close()
	key := ledger.Key{ControllerID: "acme", RequestID: "9f1c2d3e-4b5a-4c6d-8e7f-0011223344cc"}
	if _, _, err := store.CreateRequest(ctx, ledger.Request{ControllerID: key.ControllerID, RequestID: key.RequestID, Type: "erasure", Regulation: "gdpr"}); err != nil {
		t.Fatal(err)
	}
	old := newRing(t, "k1")
	rotated, err := keyring.Parse(mustGenerate(t, "k2") + "," + specOf(t, old))
	if err != nil {
		t.Fatal(err)
	}
	sender := newSender(t)
	deliver := func(keys *keyring.Ring, seq int, status dsr.Status) {
		t.Helper()
		a := &activities.Activities{Ledger: store, Keys: keys, Callbacks: sender}
		var env testsuite.WorkflowTestSuite
		act := env.NewTestActivityEnvironment()
		act.RegisterActivity(a)
		if _, err := act.ExecuteActivity(a.DeliverCallbacks, dsr.DeliverCallbacksInput{
			ControllerID: key.ControllerID, RequestID: key.RequestID, Seq: seq, Status: status, URLs: []string{srv.URL + "/cb?t=1"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	deliver(old, 1, dsr.StatusPending)
	deliver(rotated, 1, dsr.StatusPending) // the same change again, after the rotation
	if n := posts.Load(); n != 1 {
		t.Fatalf("%d callbacks for one change delivered before and after a key rotation, want 1", n)
	}
	deliver(rotated, 4, dsr.StatusPending) // pending again, after a retry
	if n := posts.Load(); n != 2 {
		t.Fatalf("%d callbacks, want the repeated pending delivered", n)
	}
	attempts, err := store.CallbackAttempts(ctx, key)
	if err != nil || len(attempts) != 2 {
		t.Fatalf("attempts %+v, %v; want 2 rows", attempts, err)
	}
	if attempts[0].Seq != 1 || attempts[1].Seq != 4 || attempts[0].URLHash[:8] != "hmac:k1:" || attempts[1].URLHash[:8] != "hmac:k2:" {
		t.Errorf("attempts %+v: want seq 1 under k1, seq 4 under k2", attempts)
	}
}
