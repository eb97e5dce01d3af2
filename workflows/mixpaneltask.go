package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/dsr"
)

// minPollWindow is the least time a task is polled, even when it was adopted late.
const minPollWindow = time.Hour

// MixpanelTask follows one Mixpanel deletion task: it tells its member requests
// that the task exists, polls it once per task (not once per request) until it
// is terminal, and tells every member how it ended. Members adopted later (a
// 409 answer in another flush) arrive by signal and are told too.
func MixpanelTask(ctx workflow.Context, in dsr.TaskInput) error {
	t := &taskRun{in: in}
	t.addMembers(in.Members)
	added := workflow.GetSignalChannel(ctx, dsr.SignalAddMembers)
	state := fmt.Sprintf("polled every %s until it ends", in.PollInterval)
	t.showDetails(ctx, state)
	receiveAll(ctx, added, func(ms []dsr.Member) { t.addMembers(ms); t.showDetails(ctx, state) })
	workflow.Go(ctx, t.announce)

	result := t.poll(ctx)
	state = "ended " + result.TaskStatus
	if !result.Succeeded {
		state = "not done: " + result.Reason
	}
	t.showDetails(ctx, state)
	for {
		// Every member hears "forwarded" before the result.
		if err := workflow.Await(ctx, func() bool { return !t.announcing && t.announced == len(t.members) }); err != nil {
			return err
		}
		if t.told < len(t.members) {
			batch := t.members[t.told:]
			if err := workflow.ExecuteActivity(withNotifyOptions(ctx, "tell requests the task ended "+result.TaskStatus), a.NotifyMembers, activities.NotifyInput{
				Destination: in.Destination, Members: batch, Result: &result,
			}).Get(ctx, nil); err != nil {
				return err
			}
			t.told += len(batch)
		}
		// Members that arrived while finishing: drain without yielding, then go round again.
		drain(added, t.addMembers)
		if t.told == len(t.members) {
			return nil
		}
	}
}

// taskRun is the state of one MixpanelTask workflow.
type taskRun struct {
	in      dsr.TaskInput
	members []dsr.Member
	seen    map[string]bool
	// announced members were told "forwarded"; told members were told the result.
	announced, told int
	announcing      bool
}

func (t *taskRun) addMembers(ms []dsr.Member) {
	if t.seen == nil {
		t.seen = map[string]bool{}
	}
	for _, m := range ms {
		if key := m.WorkflowID(); !t.seen[key] {
			t.seen[key] = true
			t.members = append(t.members, m)
		}
	}
}

// announce tells new members, as they arrive, that their task exists.
func (t *taskRun) announce(ctx workflow.Context) {
	for {
		if err := workflow.Await(ctx, func() bool { return t.announced < len(t.members) }); err != nil {
			return
		}
		t.announcing = true
		batch := t.members[t.announced:]
		if err := workflow.ExecuteActivity(withNotifyOptions(ctx, "tell requests the task was created"), a.NotifyMembers, activities.NotifyInput{
			Destination: t.in.Destination, Members: batch,
		}).Get(ctx, nil); err == nil {
			t.announced += len(batch)
		}
		t.announcing = false
	}
}

// poll waits for the task's terminal status.
func (t *taskRun) poll(ctx workflow.Context) dsr.TaskResult {
	return pollTask(ctx, activities.TaskRef{
		Destination: t.in.Destination, TaskID: t.in.TaskID, Kind: activities.KindDeletion, CreatedAt: t.in.CreatedAt,
	}, t.in.PollInterval, t.in.MaxTaskAge)
}

// pollTask waits for a Mixpanel task's terminal status with one retry-driven
// activity (a few history events however long the task takes), bounded by
// maxAge since the task was created, and says how it ended.
func pollTask(ctx workflow.Context, ref activities.TaskRef, interval, maxAge time.Duration) dsr.TaskResult {
	res := dsr.TaskResult{Destination: ref.Destination, TaskID: ref.TaskID}
	window := max(maxAge-workflow.Now(ctx).Sub(ref.CreatedAt), minPollWindow)
	opts := workflow.ActivityOptions{
		Summary:                "wait for Mixpanel task " + ref.TaskID,
		TaskQueue:              dsr.MixpanelTaskQueue(workflow.GetInfo(ctx).TaskQueueName, ref.Destination),
		StartToCloseTimeout:    mixpanelCallTimeout,
		ScheduleToCloseTimeout: window,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: interval, BackoffCoefficient: 1, MaximumInterval: interval,
			NonRetryableErrorTypes: []string{activities.ErrTypeUnauthorized, activities.ErrTypeTaskNotFound},
		},
	}
	var out activities.TaskOutcome
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.PollTask, ref).Get(ctx, &out)
	switch {
	case err != nil && isErrorType(err, activities.ErrTypeUnauthorized):
		res.Reason, res.Retryable = "Mixpanel rejected the credentials while checking the task: fix them, then retry the request", true
	case err != nil && isErrorType(err, activities.ErrTypeTaskNotFound):
		res.Reason, res.Retryable = "Mixpanel does not know the task", true
	case err != nil:
		res.Reason, res.Retryable = "the Mixpanel task did not finish in time: "+errorMessage(err), true
	default:
		res.TaskStatus, res.ResultURL = out.Status, out.ResultURL
		switch out.Status {
		case "SUCCESS":
			res.Succeeded = true
		case "REVOKED":
			res.Reason, res.Retryable = "the Mixpanel task was cancelled (REVOKED)", true
		default:
			res.Reason = "the Mixpanel task ended " + out.Status + ": Mixpanel could not process the ids"
		}
	}
	return res
}
