package activities_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/callback"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// levelLogger records what the Temporal SDK logs, by level.
type levelLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *levelLogger) log(level, msg string, kv []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("%s %s %v", level, msg, kv))
}
func (l *levelLogger) Debug(msg string, kv ...any) { l.log("DEBUG", msg, kv) }
func (l *levelLogger) Info(msg string, kv ...any)  { l.log("INFO", msg, kv) }
func (l *levelLogger) Warn(msg string, kv ...any)  { l.log("WARN", msg, kv) }
func (l *levelLogger) Error(msg string, kv ...any) { l.log("ERROR", msg, kv) }

func (l *levelLogger) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

func isBenign(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Category() == temporal.ApplicationErrorCategoryBenign
}

// TestExpectedRetriesAreNotErrors: a poll that finds the Mixpanel task still
// running is logged by the SDK at debug, not error, with an info summary once
// a minute; a real failure (rejected credentials) is still logged as an error.
func TestExpectedRetriesAreNotErrors(t *testing.T) {
	em := emulator.New(emulator.Options{ProjectToken: "p", OAuthToken: "o", Step: time.Hour, RateLimit: emulator.NoRateLimit})
	srv := httptest.NewServer(em)
	defer srv.Close()
	good, err := mixpanel.New(mixpanel.Options{BaseURL: srv.URL, ProjectToken: config.NewSecret("p"), OAuthToken: config.NewSecret("o")})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := mixpanel.New(mixpanel.Options{BaseURL: srv.URL, ProjectToken: config.NewSecret("p"), OAuthToken: config.NewSecret("wrong")})
	if err != nil {
		t.Fatal(err)
	}
	task, err := good.CreateDeletion(context.Background(), []string{"user-1"}, mixpanel.GDPR)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	acts := &activities.Activities{Mixpanel: map[string]*mixpanel.Client{"mp": good, "bad": bad}, Now: func() time.Time { return now }}
	logs := &levelLogger{}
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(logs)
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)

	for range 3 {
		_, err = env.ExecuteActivity(acts.PollTask, dsr.PollTaskInput{Destination: "mp", TaskID: task, CreatedAt: now})
		if err == nil || !isBenign(err) || !strings.Contains(err.Error(), "PENDING") {
			t.Fatalf("poll of a running task: %v, want a benign TaskNotFinished error", err)
		}
	}
	if n := logs.count("ERROR"); n != 0 {
		t.Errorf("a running task was logged at error %d times: %v", n, logs.lines)
	}
	if n := logs.count("DEBUG Activity error."); n != 3 {
		t.Errorf("%d debug lines for 3 expected retries: %v", n, logs.lines)
	}
	if n := logs.count("INFO Expected retries"); n != 0 {
		t.Errorf("a summary before a minute passed: %v", logs.lines)
	}
	now = now.Add(61 * time.Second)
	if _, err := env.ExecuteActivity(acts.PollTask, dsr.PollTaskInput{Destination: "mp", TaskID: task, CreatedAt: now}); !isBenign(err) {
		t.Fatalf("poll: %v", err)
	}
	if n := logs.count("INFO Expected retries"); n != 1 || !strings.Contains(strings.Join(logs.lines, "\n"), "over 1m1s mixpanel_task_still_running 4]") {
		t.Errorf("want one summary of 4 polls after a minute: %v", logs.lines)
	}

	_, err = env.ExecuteActivity(acts.PollTask, dsr.PollTaskInput{Destination: "bad", TaskID: task, CreatedAt: now})
	if err == nil || isBenign(err) {
		t.Fatalf("rejected credentials: %v, want a real error", err)
	}
	if n := logs.count("ERROR Activity error."); n != 1 {
		t.Errorf("rejected credentials were not logged as an error: %v", logs.lines)
	}
}

// TestCallbackReceiverDownIsExpected: an unreachable callback receiver fails
// the attempt (it is retried) without an error log line.
func TestCallbackReceiverDownIsExpected(t *testing.T) {
	dir := t.TempDir()
	store, err := ledger.Open(context.Background(), filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keyPath, certPath, err := opendsr.WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := opendsr.LoadSigner(keyPath, certPath)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := callback.New(callback.Options{Signer: signer, ProcessorDomain: "localhost", AllowPrivate: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/cb"
	l.Close() // nobody listens there now
	if _, _, err := store.CreateRequest(context.Background(), ledger.Request{ControllerID: "acme", RequestID: "r1", Type: "erasure", Regulation: "gdpr",
		Status: dsr.StatusPending, ReceivedTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{Ledger: store, Keys: newRing(t, "k1"), Callbacks: sender, Metrics: activities.NewMetrics(prometheus.NewRegistry())}
	logs := &levelLogger{}
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(logs)
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	_, err = env.ExecuteActivity(acts.DeliverCallbacks, dsr.DeliverCallbacksInput{ControllerID: "acme", RequestID: "r1", Status: "pending", URLs: []string{down}})
	if err == nil || !isBenign(err) {
		t.Fatalf("receiver down: %v, want a benign error", err)
	}
	if n := logs.count("ERROR"); n != 0 {
		t.Errorf("a receiver that is down was logged at error: %v", logs.lines)
	}
}
