package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/workflows"
)

// batchHarness runs the Batch workflow with Mixpanel and Temporal calls mocked.
type batchHarness struct {
	mu       sync.Mutex // mocked activities run concurrently
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	in       dsr.BatchInput
	creates  []dsr.CreateDeletionTaskInput
	flushed  []time.Time
	tracked  map[string][]dsr.Member
	failures []dsr.Member
	// conflictOnce answers the first create with a 409 for these ids held by task "running-1".
	conflictOnce []string
	// createErr fails every create.
	createErr error
	// worker, when set, is what the worker's configuration says now (else the batch's own settings).
	worker *dsr.BatchSettings
}

func newBatchHarness(t *testing.T, maxSize int, maxWait time.Duration) *batchHarness {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	h := &batchHarness{t: t, env: env, tracked: map[string][]dsr.Member{}, in: dsr.BatchInput{
		Destination: "mixpanel", Regulation: dsr.RegulationCCPA,
		Settings: dsr.BatchSettings{MaxSize: maxSize, MaxWait: maxWait, MaxIDs: 1999, MaxSignalsPerRun: 10000},
	}}
	env.OnActivity(a.ReadBatchSettings, mock.Anything).Return(func(context.Context) (dsr.BatchSettings, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.worker != nil {
			return *h.worker, nil
		}
		return h.in.Settings, nil
	})
	env.RegisterWorkflowWithOptions(workflows.Batch, workflow.RegisterOptions{Name: dsr.WorkflowBatch})
	env.OnActivity(a.CreateDeletionTask, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.CreateDeletionTaskInput) (dsr.CreateTaskResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.createErr != nil {
			return dsr.CreateTaskResult{}, h.createErr
		}
		h.creates = append(h.creates, in)
		if h.conflictOnce != nil {
			ids := h.conflictOnce
			h.conflictOnce = nil
			return dsr.CreateTaskResult{ConflictingIDs: ids, ConflictingTaskIDs: []string{"running-1"}}, nil
		}
		if len(h.flushed) == 0 || !h.flushed[len(h.flushed)-1].Equal(env.Now()) {
			h.flushed = append(h.flushed, env.Now())
		}
		return dsr.CreateTaskResult{TaskID: fmt.Sprintf("task-%d", len(h.creates)), CreatedAt: env.Now()}, nil
	})
	env.OnActivity(a.TrackTask, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.TaskInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.tracked[in.TaskID] = append(h.tracked[in.TaskID], in.Members...)
		return nil
	})
	env.OnActivity(a.NotifyMembers, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.NotifyMembersInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.failures = append(h.failures, in.Members...)
		return nil
	})
	return h
}

func member(i int) dsr.Member {
	return dsr.Member{ControllerID: "acme", RequestID: fmt.Sprintf("req-%05d", i), DistinctIDs: []string{fmt.Sprintf("id-%05d", i)}}
}

func (h *batchHarness) enqueueAt(after time.Duration, members ...dsr.Member) {
	h.env.RegisterDelayedCallback(func() {
		for _, m := range members {
			h.env.SignalWorkflow(dsr.SignalEnqueue, m)
		}
	}, after)
}

// run executes the batch until it has been idle for a day (the batch never ends on its own).
func (h *batchHarness) run(idleAfter time.Duration) {
	h.env.SetTestTimeout(time.Minute)
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, idleAfter)
	h.env.ExecuteWorkflow(workflows.Batch, h.in)
	if err := h.env.GetWorkflowError(); err != nil && !temporal.IsCanceledError(err) {
		var can *workflow.ContinueAsNewError
		if !errors.As(err, &can) {
			h.t.Fatalf("batch failed: %v", err)
		}
	}
}

func (h *batchHarness) trackedRequests() []string {
	var ids []string
	for _, ms := range h.tracked {
		for _, m := range ms {
			ids = append(ids, m.RequestID)
		}
	}
	sort.Strings(ids)
	return ids
}

func TestBatchFlushesBySize(t *testing.T) {
	h := newBatchHarness(t, 3, time.Hour)
	h.enqueueAt(time.Second, member(1), member(2), member(3))
	h.run(24 * time.Hour)
	if len(h.creates) != 1 || len(h.creates[0].DistinctIDs) != 3 {
		t.Fatalf("creates = %+v, want one task with 3 ids", h.creates)
	}
	if got := h.flushed[0].Sub(h.env.Now().Add(-24 * time.Hour)); got > time.Minute {
		t.Errorf("flushed %v after the members arrived, want at once (size reached)", got)
	}
	if h.creates[0].Regulation != dsr.RegulationCCPA {
		t.Errorf("regulation = %q, want ccpa", h.creates[0].Regulation)
	}
}

func TestBatchFlushesByTime(t *testing.T) {
	h := newBatchHarness(t, 1000, time.Hour)
	start := h.env.Now()
	h.enqueueAt(time.Minute, member(1))
	h.enqueueAt(30*time.Minute, member(2))
	h.run(24 * time.Hour)
	if len(h.creates) != 1 || len(h.creates[0].DistinctIDs) != 2 {
		t.Fatalf("creates = %+v, want one task with both ids", h.creates)
	}
	if got := h.flushed[0].Sub(start); got < time.Hour || got > time.Hour+2*time.Minute {
		t.Errorf("flushed %v after start, want an hour after the first member (at 1m)", got)
	}
}

func TestBatchSplits4500IdsIntoThreeTasks(t *testing.T) {
	h := newBatchHarness(t, 5000, time.Hour)
	for i := range 4500 {
		h.in.Buffer = append(h.in.Buffer, member(i))
	}
	h.in.Buffer[0].EnqueuedAt = h.env.Now().Add(-2 * time.Hour) // overdue: flush at once
	h.run(24 * time.Hour)
	if len(h.creates) != 3 {
		t.Fatalf("%d tasks, want 3", len(h.creates))
	}
	sizes := []int{len(h.creates[0].DistinctIDs), len(h.creates[1].DistinctIDs), len(h.creates[2].DistinctIDs)}
	if sizes[0] != 1999 || sizes[1] != 1999 || sizes[2] != 502 {
		t.Errorf("task sizes = %v, want [1999 1999 502]", sizes)
	}
	if got := len(h.trackedRequests()); got != 4500 {
		t.Errorf("%d requests tracked, want 4500", got)
	}
}

func TestBatchDedupesIDs(t *testing.T) {
	h := newBatchHarness(t, 2, time.Hour)
	m2 := member(2)
	m2.DistinctIDs = member(1).DistinctIDs // the same subject asked twice
	h.enqueueAt(time.Second, member(1), m2)
	h.run(24 * time.Hour)
	if len(h.creates) != 1 || len(h.creates[0].DistinctIDs) != 1 {
		t.Fatalf("creates = %+v, want one task with the id once", h.creates)
	}
	if got := h.trackedRequests(); len(got) != 2 {
		t.Errorf("tracked %v, want both requests in the task", got)
	}
}

func TestBatchAdoptsTheRunningTaskOnConflict(t *testing.T) {
	h := newBatchHarness(t, 3, time.Hour)
	h.conflictOnce = []string{"id-00002"}
	h.enqueueAt(time.Second, member(1), member(2), member(3))
	h.run(24 * time.Hour)
	if len(h.creates) != 2 {
		t.Fatalf("%d create calls, want 2 (conflict, then the rest)", len(h.creates))
	}
	if got := h.creates[1].DistinctIDs; len(got) != 2 || got[0] != "id-00001" || got[1] != "id-00003" {
		t.Errorf("resubmitted %v, want the ids without the conflicting one", got)
	}
	adopted := h.tracked["running-1"]
	if len(adopted) != 1 || adopted[0].RequestID != "req-00002" {
		t.Errorf("running task got %+v, want the conflicting request", adopted)
	}
	if got := len(h.tracked["task-2"]); got != 2 {
		t.Errorf("new task got %d requests, want 2", got)
	}
}

func TestBatchRemoveBeforeAndAfterFlush(t *testing.T) {
	h := newBatchHarness(t, 1000, time.Hour)
	h.enqueueAt(time.Second, member(1), member(2))
	var before, after dsr.RemoveResult
	remove := func(m dsr.Member, into *dsr.RemoveResult) func() {
		return func() {
			h.env.UpdateWorkflow(dsr.UpdateRemove, "rm-"+m.RequestID+fmt.Sprint(h.env.Now().Unix()), &testsuite.TestUpdateCallback{
				OnAccept: func() {}, OnReject: func(err error) { t.Errorf("remove rejected: %v", err) },
				OnComplete: func(v any, err error) {
					if err != nil {
						t.Errorf("remove: %v", err)
						return
					}
					*into = v.(dsr.RemoveResult)
				},
			}, dsr.Member{ControllerID: m.ControllerID, RequestID: m.RequestID})
		}
	}
	h.env.RegisterDelayedCallback(remove(member(1), &before), 10*time.Minute)
	h.env.RegisterDelayedCallback(remove(member(2), &after), 2*time.Hour)
	h.run(24 * time.Hour)
	if !before.Removed {
		t.Error("a buffered member was not removed")
	}
	if after.Removed {
		t.Error("a member already sent was reported removed")
	}
	if got := h.trackedRequests(); len(got) != 1 || got[0] != "req-00002" {
		t.Errorf("tracked %v, want only req-00002", got)
	}
}

func TestBatchContinuesAsNewCarryingTheBuffer(t *testing.T) {
	// Run 1 reaches its signal budget with 5 members buffered and continues as new.
	h := newBatchHarness(t, 1000, time.Hour)
	h.in.Settings.MaxSignalsPerRun = 5
	var first []dsr.Member
	for i := range 5 {
		first = append(first, member(i))
	}
	h.enqueueAt(time.Second, first...)
	h.run(24 * time.Hour)
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new", err)
	}
	var next dsr.BatchInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if len(next.Buffer) != 5 || len(h.creates) != 0 {
		t.Fatalf("carried %d members and flushed %d tasks, want all 5 carried and nothing sent yet", len(next.Buffer), len(h.creates))
	}
	if next.Settings != h.in.Settings {
		t.Errorf("settings not carried: %+v", next.Settings)
	}
	// Run 2 starts from the carried buffer; later signals reach it; one flush sends all 7.
	h2 := newBatchHarness(t, 1000, time.Hour)
	h2.in = next
	h2.in.Settings.MaxSignalsPerRun = 100
	h2.enqueueAt(time.Second, member(5), member(6))
	h2.run(24 * time.Hour)
	if got := h2.trackedRequests(); len(got) != 7 {
		t.Errorf("after continue-as-new %d requests were sent, want 7: %v", len(got), got)
	}
	if len(h2.creates) != 1 {
		t.Errorf("%d tasks, want one flush", len(h2.creates))
	}
}

func TestBatchFailsMembersWhenMixpanelRejectsTheCredentials(t *testing.T) {
	h := newBatchHarness(t, 2, time.Hour)
	h.createErr = temporalNonRetryable("Mixpanel rejected the credentials", dsr.ErrTypeUnauthorized)
	h.enqueueAt(time.Second, member(1), member(2))
	h.run(24 * time.Hour)
	if len(h.failures) != 2 {
		t.Fatalf("%d members told of the failure, want 2", len(h.failures))
	}
	if len(h.tracked) != 0 {
		t.Errorf("tracked %v, want nothing", h.tracked)
	}
}

// TestBatchReadsTheWorkersSettingsWhenItFills: a batch started with one
// DSR_BATCH_MAX_SIZE flushes by the worker's current value, read when
// members arrive, and carries it through continue-as-new.
func TestBatchReadsTheWorkersSettingsWhenItFills(t *testing.T) {
	h := newBatchHarness(t, 1000, 24*time.Hour)
	h.worker = &dsr.BatchSettings{MaxSize: 2, MaxWait: time.Hour, MaxIDs: 1, MaxSignalsPerRun: 3}
	start := h.env.Now()
	h.enqueueAt(time.Second, member(1), member(2))
	h.enqueueAt(time.Minute, member(3))
	h.run(24 * time.Hour)
	if len(h.creates) != 2 || len(h.creates[0].DistinctIDs) != 1 || len(h.creates[1].DistinctIDs) != 1 {
		t.Fatalf("creates = %+v, want the first two members flushed at once (size 2), one id per task (max ids 1)", h.creates)
	}
	if got := h.flushed[0].Sub(start); got > time.Minute {
		t.Errorf("flushed %v after start, want at once", got)
	}
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("ended with %v, want continue-as-new after 3 signals", err)
	}
	var next dsr.BatchInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Settings != *h.worker || len(next.Buffer) != 1 {
		t.Errorf("continued with settings %+v and %d buffered, want the worker's and member 3", next.Settings, len(next.Buffer))
	}
}
