package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/mixpanel/emulator"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// requestsPerScenario is small in `make test` and larger in `make chaos` (DSR_CHAOS_N).
func requestsPerScenario() int {
	if n, err := strconv.Atoi(os.Getenv("DSR_CHAOS_N")); err == nil && n > 0 {
		return n
	}
	return 20
}

// scenario is one stack with faults to inject, and what the test saw.
type scenario struct {
	t     *testing.T
	stack *devstack.Stack
	dir   string
	ids   []string
}

func newScenario(t *testing.T, env map[string]string, em emulator.Options) *scenario {
	t.Helper()
	dir := t.TempDir()
	base := map[string]string{"DSR_BATCH_MAX_WAIT": "2s", "MIXPANEL_POLL_INTERVAL": "1s"}
	for k, v := range env {
		base[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stack, err := devstack.StartStack(ctx, devstack.StackOptions{Dir: dir, Env: base, Emulator: em})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	s := &scenario{t: t, stack: stack, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(stack.Logs())
		}
		stack.Stop()
	})
	return s
}

// submit sends n erasures (alternating regulations) and keeps the ids answered 201.
func (s *scenario) submit(n int) {
	s.t.Helper()
	for i := range n {
		id := devstack.NewRequestID()
		reg := []string{"gdpr", "ccpa"}[i%2]
		resp, err := s.stack.Call(http.MethodPost, "/v1/requests", devstack.Erasure(id, reg, fmt.Sprintf("subject-%s-%d", s.t.Name(), i)))
		if err != nil || resp.Code != http.StatusCreated {
			s.t.Fatalf("POST %d: %v %d %s", i, err, resp.Code, resp.Body)
		}
		s.ids = append(s.ids, id)
	}
}

func (s *scenario) status(id string) opendsr.StatusResponse {
	resp, err := s.stack.Call(http.MethodGet, "/v1/requests/"+id, nil)
	var st opendsr.StatusResponse
	if err == nil {
		_ = json.Unmarshal(resp.Body, &st)
	}
	return st
}

// waitAll waits until every id has the status, or fails after timeout.
func (s *scenario) waitAll(ids []string, want string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, id := range ids {
		for {
			st := s.status(id)
			if st.RequestStatus == want {
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("request %s is %q, want %q after %v", id, st.RequestStatus, want, timeout)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

func (s *scenario) waitFor(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertExactlyOnce checks every request completed once, and every subject's
// id is in exactly one Mixpanel task.
func (s *scenario) assertExactlyOnce(ids []string) {
	s.t.Helper()
	store, err := ledger.Open(context.Background(), devstack.EnvValue(s.stack.Env, "DSR_DB"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer store.Close()
	for _, id := range ids {
		trs, err := store.Transitions(context.Background(), ledger.Key{ControllerID: devstack.Controller, RequestID: id})
		if err != nil {
			s.t.Fatal(err)
		}
		completed := 0
		for _, tr := range trs {
			if tr.To == dsr.StatusCompleted {
				completed++
			}
		}
		if completed != 1 {
			s.t.Errorf("request %s completed %d times, want exactly once", id, completed)
		}
	}
	inTasks := map[string]int{}
	for _, task := range s.stack.Emulator.Tasks() {
		if task.Kind == "deletion" && task.Status != "REVOKED" {
			for _, d := range task.DistinctIDs {
				inTasks[d]++
			}
		}
	}
	for d, n := range inTasks {
		if n != 1 {
			s.t.Errorf("id %s is in %d Mixpanel tasks, want exactly one", d, n)
		}
	}
	if len(inTasks) != len(ids) {
		s.t.Errorf("%d ids reached Mixpanel, want %d", len(inTasks), len(ids))
	}
}

func (s *scenario) report(faults string) {
	calls := s.stack.Emulator.Calls()
	keys := make([]string, 0, len(calls))
	for k := range calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, calls[k]))
	}
	lost := 0
	for _, id := range s.ids {
		if s.status(id).RequestStatus != "completed" {
			lost++
		}
	}
	s.t.Logf("CHAOS %s | faults: %s | requests: %d | not completed: %d | Mixpanel: %s", s.t.Name(), faults, len(s.ids), lost, strings.Join(parts, " "))
}

func TestWorkerKilledWhileFlushingAndPolling(t *testing.T) {
	// Slow Mixpanel answers keep a create in flight when the worker dies. Tasks
	// take 60 s (real ones take days), longer than a lost call takes to be
	// retried, so a create whose answer died with the worker meets a 409.
	s := newScenario(t, nil, emulator.Options{Step: 20 * time.Second, Latency: 800 * time.Millisecond})
	s.submit(requestsPerScenario())

	s.waitFor("the first deletion task create", 60*time.Second, func() bool { return s.stack.Emulator.Calls()["deletion.create"] >= 1 })
	s.stack.Worker.Kill()
	if err := s.stack.StartWorker(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.waitFor("a task being polled", 3*time.Minute, func() bool { return s.stack.Emulator.Calls()["deletion.status"] >= 1 })
	s.stack.Worker.Kill()
	if err := s.stack.StartWorker(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.waitAll(s.ids, "completed", 5*time.Minute)
	s.assertExactlyOnce(s.ids)
	s.report("kill -9 of the worker during a flush and during polling")
}

func TestMixpanelAnswering429And500(t *testing.T) {
	s := newScenario(t, map[string]string{"MIXPANEL_RATE_LIMIT": "1"}, emulator.Options{Step: 500 * time.Millisecond})
	s.stack.Emulator.SetFaults(emulator.Faults{Rate429: 0.5, Rate500: 0.2})
	s.submit(requestsPerScenario())
	time.AfterFunc(20*time.Second, func() { s.stack.Emulator.SetFaults(emulator.Faults{}) })
	s.waitAll(s.ids, "completed", 4*time.Minute)
	s.assertExactlyOnce(s.ids)
	calls := s.stack.Emulator.Calls()
	if calls["status_429"]+calls["status_500"] == 0 {
		t.Error("no fault was injected: the test proves nothing")
	}
	if calls["rate_limited"] > 0 {
		t.Errorf("%d calls broke Mixpanel's 1 request/s limit", calls["rate_limited"])
	}
	s.report("50% 429 and 20% 500 for 20 s, Mixpanel's 1 req/s limit on")
}

func TestRejectedCredentialsFailThenRetry(t *testing.T) {
	s := newScenario(t, nil, emulator.Options{Step: 500 * time.Millisecond})
	s.stack.Emulator.SetFaults(emulator.Faults{Unauthorized: true})
	s.submit(requestsPerScenario())
	s.waitAll(s.ids, "failed", 2*time.Minute)
	var ext opendsr.StatusExtension
	_ = json.Unmarshal(s.status(s.ids[0]).Extensions["localhost"], &ext)
	if !strings.Contains(ext.StatusReason, "credentials") {
		t.Errorf("failure reason %q does not say the credentials were rejected", ext.StatusReason)
	}
	s.stack.Emulator.SetFaults(emulator.Faults{}) // the operator fixes the token
	for _, id := range s.ids {
		if resp, err := s.stack.CallAsOperator(http.MethodPost, "/v1/requests/"+id+"/retry", nil); err != nil || resp.Code != http.StatusAccepted {
			t.Fatalf("retry %s: %v %d %s", id, err, resp.Code, resp.Body)
		}
	}
	s.waitAll(s.ids, "completed", 3*time.Minute)
	s.assertExactlyOnce(s.ids)
	s.report("every Mixpanel call answered 401, then fixed and retried")
}

func TestAPIKilledDuringIntake(t *testing.T) {
	s := newScenario(t, nil, emulator.Options{Step: 500 * time.Millisecond})
	n := requestsPerScenario() * 2
	var mu sync.Mutex
	var accepted []string
	var answered sync.WaitGroup
	var wg sync.WaitGroup
	answered.Add(n / 4)
	// Four clients submit; the API dies (SIGKILL) once a quarter were answered.
	next := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				id := devstack.NewRequestID()
				resp, err := s.stack.Call(http.MethodPost, "/v1/requests", devstack.Erasure(id, "gdpr", fmt.Sprintf("intake-%d", i)))
				if err == nil && resp.Code == http.StatusCreated {
					mu.Lock()
					accepted = append(accepted, id)
					if len(accepted) <= n/4 {
						answered.Done()
					}
					mu.Unlock()
				}
			}
		}()
	}
	killed := make(chan struct{})
	api := s.stack.API
	go func() {
		answered.Wait()
		api.Kill()
		close(killed)
	}()
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(accepted) < n/4 {
		t.Fatalf("only %d submissions were answered before the kill", len(accepted))
	}
	<-killed
	if err := s.stack.StartAPI(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.ids = accepted
	s.waitAll(accepted, "completed", 3*time.Minute)
	// Nothing half-created: every ledger row, answered or not, reaches an end.
	store, err := ledger.Open(context.Background(), devstack.EnvValue(s.stack.Env, "DSR_DB"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s.waitFor("every recorded request to finish", 2*time.Minute, func() bool {
		stats, err := store.Stats(context.Background())
		return err == nil && stats[dsr.StatusPending]+stats[dsr.StatusInProgress] == 0
	})
	t.Logf("%d of %d submissions got 201 before/after the kill", len(accepted), n)
	s.report("kill -9 of the API during intake")
}
