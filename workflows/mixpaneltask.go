package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// minPollWindow is the least time a task is polled, even when it was adopted late.
const minPollWindow = time.Hour

// maxSplitRounds bounds how often a failed task's requests are split in
// halves: 2^11 is more than the requests one task can hold.
const maxSplitRounds = 11

// MixpanelTask follows one Mixpanel deletion task: it tells its member requests
// that the task exists, polls it once per task (not once per request) until it
// is terminal, and tells every member how it ended. Members adopted later (a
// 409 answer in another flush) arrive by signal and are told too.
//
// A task that ends FAILURE fails only the requests whose ids Mixpanel cannot
// process: its members are split in halves (each member's ids together), each
// half sent as a new task followed by its own MixpanelTask workflow, and so
// on; a request that fails alone in a task is isolated, and fails with the
// chain of tasks that led there. A task revoked in Mixpanel is created once
// more. Replaced members are told so (TaskResult.Superseded) and wait for
// their new task.
func MixpanelTask(ctx workflow.Context, in dsr.TaskInput) error {
	t := &taskRun{in: in}
	t.addMembers(in.Members)
	added := workflow.GetSignalChannel(ctx, dsr.SignalAddMembers)
	state := fmt.Sprintf("polled every %s until it ends", in.PollInterval)
	t.showDetails(ctx, state)
	receiveAll(ctx, added, func(ms []dsr.Member) { t.addMembers(ms); t.showDetails(ctx, state) })
	workflow.Go(ctx, t.announce)

	result := t.poll(ctx)
	resubmit := t.resubmits(ctx, result)
	state = "ended " + string(result.TaskStatus)
	if !result.Succeeded {
		state = "not done: " + result.Reason
	}
	if resubmit {
		state += "; its requests are sent again in new tasks"
	}
	t.showDetails(ctx, state)
	for {
		// Every member hears "forwarded" before the result.
		if err := workflow.Await(ctx, func() bool { return !t.announcing && t.announced == len(t.members) }); err != nil {
			return err
		}
		if t.told < len(t.members) {
			batch := t.members[t.told:]
			var err error
			if resubmit {
				err = t.resubmit(ctx, batch, result)
			} else {
				err = t.notify(ctx, batch, result)
			}
			if err != nil {
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

// notify tells members how the task ended.
func (t *taskRun) notify(ctx workflow.Context, members []dsr.Member, result dsr.TaskResult) error {
	return workflow.ExecuteActivity(withNotifyOptions(ctx, "tell requests the task ended "+string(result.TaskStatus)), a.NotifyMembers, dsr.NotifyMembersInput{
		Destination: t.in.Destination, Members: members, Result: &result,
	}).Get(ctx, nil)
}

// resubmits says whether the task's members are sent again rather than told
// the result: a FAILURE (split), or a first REVOKED. Tasks started by earlier
// releases (no regulation) and runs of earlier code never are.
func (t *taskRun) resubmits(ctx workflow.Context, result dsr.TaskResult) bool {
	if t.in.Regulation == "" {
		return false
	}
	switch {
	case result.TaskStatus == dsr.TaskFailure:
	case result.TaskStatus == dsr.TaskRevoked && !t.in.Resubmitted:
	default:
		return false
	}
	return workflow.GetVersion(ctx, changeLifecycle, workflow.DefaultVersion, lifecycleV1) >= lifecycleV1
}

// resubmit sends members of a failed or revoked task again. A FAILURE of a
// task that held one request only isolates it: it fails, with the task chain.
func (t *taskRun) resubmit(ctx workflow.Context, members []dsr.Member, result dsr.TaskResult) error {
	chain := append(append([]string(nil), t.in.Chain...), t.in.TaskID)
	words := strings.Join(chain, " → ")
	var groups [][]dsr.Member
	switch {
	case result.TaskStatus == dsr.TaskRevoked:
		groups = [][]dsr.Member{members}
	case len(t.members) == 1:
		result.Reason += "; this request failed alone in its task (task chain: " + words + ")"
		return t.notify(ctx, members, result)
	case len(chain) > maxSplitRounds:
		result.Reason += fmt.Sprintf("; not isolated after %d rounds of splitting (task chain: %s)", maxSplitRounds, words)
		return t.notify(ctx, members, result)
	case len(members) == 1:
		groups = [][]dsr.Member{members}
	default:
		half := (len(members) + 1) / 2
		groups = [][]dsr.Member{members[:half], members[half:]}
	}
	maxIDs := t.in.MaxIDs
	if maxIDs <= 0 {
		maxIDs = defaultMaxIDs
	}
	for _, group := range groups {
		sent, err := sendMembers(ctx, sendInput{
			Destination: t.in.Destination, Regulation: t.in.Regulation, MaxIDs: maxIDs, Members: group,
			Chain: chain, Resubmitted: result.TaskStatus == dsr.TaskRevoked || t.in.Resubmitted,
		})
		if err != nil {
			return err
		}
		// Members now wait for their new task(s): grouped by them, one notice each.
		byNext := map[string][]dsr.Member{}
		for _, m := range sent {
			key := strings.Join(m.TaskIDs, ",")
			byNext[key] = append(byNext[key], m)
		}
		for _, key := range sortedKeys(byNext) {
			next := byNext[key]
			notice := dsr.TaskResult{
				Destination: t.in.Destination, TaskID: t.in.TaskID, TaskStatus: result.TaskStatus,
				Superseded: true, NextTaskIDs: next[0].TaskIDs,
				Reason: "Mixpanel task " + t.in.TaskID + " ended " + string(result.TaskStatus) + "; sent again as " + strings.Join(next[0].TaskIDs, ", ") + " (task chain: " + words + ")",
			}
			if err := t.notify(ctx, next, notice); err != nil {
				return err
			}
		}
	}
	return nil
}

// defaultMaxIDs is MIXPANEL_MAX_IDS_PER_TASK's default, for tasks started without the setting.
const defaultMaxIDs = 1999

// announce tells new members, as they arrive, that their task exists.
func (t *taskRun) announce(ctx workflow.Context) {
	for {
		if err := workflow.Await(ctx, func() bool { return t.announced < len(t.members) }); err != nil {
			return
		}
		t.announcing = true
		batch := t.members[t.announced:]
		if err := workflow.ExecuteActivity(withNotifyOptions(ctx, "tell requests the task was created"), a.NotifyMembers, dsr.NotifyMembersInput{
			Destination: t.in.Destination, Members: batch,
		}).Get(ctx, nil); err == nil {
			t.announced += len(batch)
		}
		t.announcing = false
	}
}

// poll waits for the task's terminal status.
func (t *taskRun) poll(ctx workflow.Context) dsr.TaskResult {
	return pollTask(ctx, dsr.PollTaskInput{
		Destination: t.in.Destination, TaskID: t.in.TaskID, Kind: dsr.KindDeletion, CreatedAt: t.in.CreatedAt,
	}, t.in.PollInterval, t.in.MaxTaskAge)
}

// pollTask waits for a Mixpanel task's terminal status with one retry-driven
// activity (a few history events however long the task takes), bounded by
// maxAge since the task was created, and says how it ended.
func pollTask(ctx workflow.Context, ref dsr.PollTaskInput, interval, maxAge time.Duration) dsr.TaskResult {
	res := dsr.TaskResult{Destination: ref.Destination, TaskID: ref.TaskID}
	window := max(maxAge-workflow.Now(ctx).Sub(ref.CreatedAt), minPollWindow)
	var out dsr.PollTaskResult
	err := workflow.ExecuteActivity(withPollOptions(ctx, ref.Destination, "wait for Mixpanel task "+ref.TaskID, interval, window), a.PollTask, ref).Get(ctx, &out)
	switch {
	case err != nil && isErrorType(err, dsr.ErrTypeUnauthorized):
		res.Reason, res.Retryable = "Mixpanel rejected the credentials while checking the task: fix them, then retry the request", true
	case err != nil && isErrorType(err, dsr.ErrTypeTaskNotFound):
		res.Reason, res.Retryable = "Mixpanel does not know the task", true
	case err != nil:
		res.Reason, res.Retryable = "the Mixpanel task did not finish in time: "+errorMessage(err), true
	default:
		res.TaskStatus, res.ResultURL = out.Status, out.ResultURL
		switch out.Status {
		case dsr.TaskSuccess:
			res.Succeeded = true
		case dsr.TaskRevoked:
			res.Reason, res.Retryable = "the Mixpanel task was cancelled (REVOKED)", true
		default:
			res.Reason = "the Mixpanel task ended " + string(out.Status) + ": Mixpanel could not process the ids"
		}
	}
	return res
}
