package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/workflows"
)

// fakeMixpanel creates deletion tasks and ends each FAILURE when it holds a
// poisoned id, else SUCCESS (or REVOKED for the tasks listed in revoke). It
// runs each MixpanelTask workflow the tasks' TrackTask calls would start, in
// its own time-skipping environment, and records what every member was told.
type fakeMixpanel struct {
	t        *testing.T
	mu       sync.Mutex
	poisoned map[string]bool
	revoke   map[int]bool // task numbers (1-based creation order) that end REVOKED
	created  map[string][]string
	order    []string
	pending  []dsr.TaskInput
	// told holds each member's notices (results), in order.
	told map[string][]dsr.TaskResult
}

func newFakeMixpanel(t *testing.T, poisoned ...string) *fakeMixpanel {
	f := &fakeMixpanel{t: t, poisoned: map[string]bool{}, revoke: map[int]bool{}, created: map[string][]string{}, told: map[string][]dsr.TaskResult{}}
	for _, id := range poisoned {
		f.poisoned[id] = true
	}
	return f
}

func (f *fakeMixpanel) create(ids []string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("t%d", len(f.order)+1)
	f.order = append(f.order, id)
	f.created[id] = append([]string(nil), ids...)
	return id
}

func (f *fakeMixpanel) status(task string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.revoke[slices.Index(f.order, task)+1] {
		return "REVOKED"
	}
	for _, id := range f.created[task] {
		if f.poisoned[id] {
			return "FAILURE"
		}
	}
	return "SUCCESS"
}

// run follows the task and every task it leads to.
func (f *fakeMixpanel) run(first dsr.TaskInput) {
	f.pending = []dsr.TaskInput{first}
	for len(f.pending) > 0 {
		in := f.pending[0]
		f.pending = f.pending[1:]
		f.runTask(in)
	}
}

func (f *fakeMixpanel) runTask(in dsr.TaskInput) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.OnActivity(a.PollTask, mock.Anything, mock.Anything).Return(func(_ context.Context, ref dsr.PollTaskInput) (dsr.PollTaskResult, error) {
		return dsr.PollTaskResult{Status: dsr.TaskStatus(f.status(ref.TaskID))}, nil
	})
	env.OnActivity(a.CreateDeletionTask, mock.Anything, mock.Anything).Return(func(_ context.Context, c dsr.CreateDeletionTaskInput) (dsr.CreateTaskResult, error) {
		if c.Regulation != dsr.RegulationGDPR {
			f.t.Errorf("replacement task created as %q, want the original regulation", c.Regulation)
		}
		return dsr.CreateTaskResult{TaskID: f.create(c.DistinctIDs), CreatedAt: env.Now()}, nil
	})
	env.OnActivity(a.TrackTask, mock.Anything, mock.Anything).Return(func(_ context.Context, next dsr.TaskInput) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		next.PollInterval, next.MaxTaskAge, next.MaxIDs = time.Minute, 24*time.Hour, 1999
		f.pending = append(f.pending, next)
		return nil
	})
	env.OnActivity(a.NotifyMembers, mock.Anything, mock.Anything).Return(func(_ context.Context, n dsr.NotifyMembersInput) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if n.Result != nil {
			for _, m := range n.Members {
				f.told[m.RequestID] = append(f.told[m.RequestID], *n.Result)
			}
		}
		return nil
	})
	env.ExecuteWorkflow(workflows.MixpanelTask, in)
	if err := env.GetWorkflowError(); err != nil {
		f.t.Fatalf("task %s: %v", in.TaskID, err)
	}
}

// final is the last thing a member was told.
func (f *fakeMixpanel) final(requestID string) dsr.TaskResult {
	told := f.told[requestID]
	if len(told) == 0 {
		return dsr.TaskResult{}
	}
	return told[len(told)-1]
}

func splitMembers(n int) []dsr.Member {
	var ms []dsr.Member
	for i := range n {
		m := member(i)
		m.DistinctIDs = append(m.DistinctIDs, fmt.Sprintf("device-%05d", i)) // two ids per request, kept together
		ms = append(ms, m)
	}
	return ms
}

func rootTask(f *fakeMixpanel, members []dsr.Member) dsr.TaskInput {
	var ids []string
	for _, m := range members {
		ids = append(ids, m.DistinctIDs...)
	}
	return dsr.TaskInput{Destination: "mixpanel", Regulation: dsr.RegulationGDPR, TaskID: f.create(ids),
		PollInterval: time.Minute, MaxTaskAge: 24 * time.Hour, MaxIDs: 1999, Members: members}
}

func TestFailedTaskIsSplitUntilThePoisonedRequestIsIsolated(t *testing.T) {
	f := newFakeMixpanel(t, "device-00037")
	members := splitMembers(50)
	f.run(rootTask(f, members))

	for _, m := range members {
		res := f.final(m.RequestID)
		if m.RequestID == "req-00037" {
			if res.Succeeded || res.Superseded || res.TaskStatus != "FAILURE" {
				t.Fatalf("poisoned request ended %+v, want a FAILURE", res)
			}
			if !strings.Contains(res.Reason, "failed alone") || !strings.Contains(res.Reason, "task chain: t1 → ") {
				t.Errorf("poisoned request's reason %q names no isolation or task chain", res.Reason)
			}
			continue
		}
		if !res.Succeeded {
			t.Errorf("%s ended %+v, want SUCCESS in a replacement task", m.RequestID, res)
		}
	}
	// Each task holds whole requests: both ids of a request, or neither.
	for task, ids := range f.created {
		for _, m := range members {
			if in := slices.Contains(ids, m.DistinctIDs[0]); in != slices.Contains(ids, m.DistinctIDs[1]) {
				t.Errorf("task %s splits the ids of %s: %v", task, m.RequestID, ids)
			}
		}
	}
	// Halving 50 requests isolates one in 6 rounds of two tasks each.
	if got := len(f.created); got > 1+2*6 {
		t.Errorf("%d tasks created, want at most 13 (halves, 6 rounds)", got)
	}
	// Requests that were sent again heard that first (superseded), then their outcome.
	if told := f.told["req-00000"]; len(told) < 2 || !told[0].Superseded || len(told[0].NextTaskIDs) == 0 {
		t.Errorf("req-00000 was told %+v, want superseded with its next task first", told)
	}
}

func TestRevokedTaskIsCreatedOnceMoreThenLeftToRetry(t *testing.T) {
	f := newFakeMixpanel(t)
	f.revoke[1], f.revoke[2] = true, true
	members := splitMembers(3)
	f.run(rootTask(f, members))
	if len(f.created) != 2 {
		t.Fatalf("%d tasks, want 2 (the revoked one created once more, not again)", len(f.created))
	}
	if ids := f.created["t2"]; len(ids) != 6 {
		t.Errorf("the replacement holds %v, want every id of the revoked task", ids)
	}
	for _, m := range members {
		res := f.final(m.RequestID)
		if res.Succeeded || res.Superseded || res.TaskStatus != "REVOKED" || !res.Retryable {
			t.Errorf("%s ended %+v, want a retryable REVOKED failure", m.RequestID, res)
		}
	}
}

func TestRevokedOnceThenSucceeds(t *testing.T) {
	f := newFakeMixpanel(t)
	f.revoke[1] = true
	members := splitMembers(2)
	f.run(rootTask(f, members))
	for _, m := range members {
		if res := f.final(m.RequestID); !res.Succeeded || res.TaskID != "t2" {
			t.Errorf("%s ended %+v, want SUCCESS in t2", m.RequestID, res)
		}
	}
}

// TestRequestWaitsForItsReplacementTask: the DSR workflow treats a
// superseded result as "wait for the next task", in either arrival order.
func TestRequestWaitsForItsReplacementTask(t *testing.T) {
	for _, nextFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("replacement result first=", nextFirst), func(t *testing.T) {
			h := newDSRHarness(t, true)
			h.env.RegisterDelayedCallback(func() {
				h.env.SignalWorkflow(dsr.SignalForwarded, dsr.Forwarded{Destination: "mixpanel", TaskIDs: []string{"t1"}})
			}, time.Minute)
			superseded := func() {
				h.env.SignalWorkflow(dsr.SignalTaskResult, dsr.TaskResult{Destination: "mixpanel", TaskID: "t1", TaskStatus: "FAILURE",
					Superseded: true, NextTaskIDs: []string{"t2"}, Reason: "sent again"})
			}
			next := func() {
				h.env.SignalWorkflow(dsr.SignalTaskResult, dsr.TaskResult{Destination: "mixpanel", TaskID: "t2", TaskStatus: "SUCCESS", Succeeded: true})
			}
			if nextFirst {
				h.env.RegisterDelayedCallback(next, time.Hour)
				h.env.RegisterDelayedCallback(superseded, 2*time.Hour)
			} else {
				h.env.RegisterDelayedCallback(superseded, time.Hour)
				h.env.RegisterDelayedCallback(func() {
					v, err := h.env.QueryWorkflow(dsr.QueryStatus)
					if err != nil {
						t.Fatal(err)
					}
					var view dsr.StatusView
					_ = v.Get(&view)
					if view.Status != dsr.StatusInProgress || len(view.Destinations) != 1 || view.Destinations[0].Status != dsr.ForwardingPending {
						t.Errorf("between the tasks: %+v, want in progress, destination pending", view)
					}
				}, 90*time.Minute)
				h.env.RegisterDelayedCallback(next, 2*time.Hour)
			}
			h.run()
			h.assertStatuses(dsr.StatusInProgress, dsr.StatusCompleted)
		})
	}
}
