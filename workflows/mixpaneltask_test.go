package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/workflows"
)

func temporalNonRetryable(msg, errType string) error {
	return temporal.NewNonRetryableApplicationError(msg, errType, nil)
}

// notice is one NotifyMembers call as the task workflow made it.
type notice struct {
	members []string
	result  *dsr.TaskResult
}

func runTask(t *testing.T, poll func(dsr.PollTaskInput) (dsr.PollTaskResult, error), late *dsr.Member) []notice {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var notices []notice
	var mu sync.Mutex // mocked activities run concurrently
	env.OnActivity(a.NotifyMembers, mock.Anything, mock.Anything).Return(func(_ context.Context, in dsr.NotifyMembersInput) error {
		mu.Lock()
		defer mu.Unlock()
		n := notice{result: in.Result}
		for _, m := range in.Members {
			n.members = append(n.members, m.RequestID)
		}
		notices = append(notices, n)
		return nil
	})
	polls := 0
	env.OnActivity(a.PollTask, mock.Anything, mock.Anything).Return(func(_ context.Context, ref dsr.PollTaskInput) (dsr.PollTaskResult, error) {
		polls++
		return poll(ref)
	})
	if late != nil {
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(dsr.SignalAddMembers, []dsr.Member{*late}) }, time.Minute)
	}
	env.ExecuteWorkflow(workflows.MixpanelTask, dsr.TaskInput{
		Destination: "mixpanel", TaskID: "task-1", CreatedAt: env.Now(), PollInterval: 10 * time.Minute, MaxTaskAge: 45 * 24 * time.Hour,
		Members: []dsr.Member{member(1), member(2)},
	})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("task workflow failed: %v", err)
	}
	return notices
}

func TestTaskWorkflowPollsOnceAndTellsEveryMember(t *testing.T) {
	notices := runTask(t, func(dsr.PollTaskInput) (dsr.PollTaskResult, error) {
		return dsr.PollTaskResult{Status: "SUCCESS"}, nil
	}, nil)
	if len(notices) != 2 {
		t.Fatalf("notices = %+v, want forwarded then result", notices)
	}
	if notices[0].result != nil || len(notices[0].members) != 2 {
		t.Errorf("first notice = %+v, want forwarded to both members", notices[0])
	}
	if r := notices[1].result; r == nil || !r.Succeeded || r.TaskStatus != "SUCCESS" || len(notices[1].members) != 2 {
		t.Errorf("second notice = %+v, want SUCCESS to both members", notices[1])
	}
}

func TestTaskWorkflowTellsLateMembersToo(t *testing.T) {
	late := member(3)
	notices := runTask(t, func(dsr.PollTaskInput) (dsr.PollTaskResult, error) {
		return dsr.PollTaskResult{}, temporal.NewApplicationError("task is PENDING", dsr.ErrTypeTaskNotFinished)
	}, &late)
	// The poll never ends SUCCESS here: the activity keeps failing until the 45-day bound.
	told := map[string]int{}
	for _, n := range notices {
		for _, m := range n.members {
			told[m]++
		}
	}
	for _, id := range []string{"req-00001", "req-00002", "req-00003"} {
		if told[id] != 2 {
			t.Errorf("%s was told %d times, want forwarded and the result", id, told[id])
		}
	}
	last := notices[len(notices)-1].result
	if last == nil || last.Succeeded || !last.Retryable {
		t.Errorf("result = %+v, want a retryable failure after the poll window", last)
	}
}

func TestTaskWorkflowFailsMembersOnRejectedCredentials(t *testing.T) {
	notices := runTask(t, func(dsr.PollTaskInput) (dsr.PollTaskResult, error) {
		return dsr.PollTaskResult{}, temporalNonRetryable("401", dsr.ErrTypeUnauthorized)
	}, nil)
	last := notices[len(notices)-1].result
	if last == nil || last.Succeeded || !last.Retryable {
		t.Fatalf("result = %+v, want a retryable failure", last)
	}
}
