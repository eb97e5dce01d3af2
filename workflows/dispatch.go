package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// sendInput is what sendMembers sends to Mixpanel.
type sendInput struct {
	Destination, Regulation string
	MaxIDs                  int
	Members                 []dsr.Member
	// Chain and Resubmitted describe replacement tasks (see dsr.TaskInput).
	Chain       []string
	Resubmitted bool
}

// sendMembers creates deletion tasks for the members' ids (deduped, packed
// into chunks of MaxIDs keeping each member's ids together, a 409 adopting
// the running task), tells members no task could take that they failed, and
// hands each task's members to the MixpanelTask workflow that follows it. It
// returns the members now held by tasks, with their TaskIDs. The batch's
// flush and the split of a failed task share it.
func sendMembers(ctx workflow.Context, in sendInput) ([]dsr.Member, error) {
	taskOf := map[string][]string{} // distinct id -> task ids
	created := map[string]time.Time{}
	failed := map[string]dsr.TaskResult{} // distinct id -> why no task holds it
	for _, chunk := range packIDs(in.Members, in.MaxIDs) {
		tasks, reason, canRetry := createTasks(ctx, in.Destination, in.Regulation, chunk)
		for _, task := range sortedKeys(tasks) {
			if _, ok := created[task]; !ok {
				created[task] = tasks[task].createdAt
			}
			for _, id := range tasks[task].ids {
				taskOf[id] = append(taskOf[id], task)
			}
		}
		for _, id := range chunk {
			if len(taskOf[id]) == 0 {
				failed[id] = dsr.TaskResult{Destination: in.Destination, Reason: reason, Retryable: canRetry}
			}
		}
	}

	byTask := map[string][]dsr.Member{}
	var sent []dsr.Member
	var failures []failedMembers
	for _, m := range in.Members {
		m.TaskIDs = nil
		var failure *dsr.TaskResult
		for _, id := range m.DistinctIDs {
			m.TaskIDs = mergeSorted(m.TaskIDs, taskOf[id])
			if f, bad := failed[id]; bad && failure == nil {
				failure = &f
			}
		}
		if failure != nil {
			failures = addFailed(failures, *failure, m)
		} else if len(m.TaskIDs) > 0 {
			sent = append(sent, m)
		}
		for _, t := range m.TaskIDs {
			byTask[t] = append(byTask[t], m)
		}
	}
	for _, f := range failures {
		if err := workflow.ExecuteActivity(withNotifyOptions(ctx, "tell requests the task could not be created"), a.NotifyMembers, dsr.NotifyMembersInput{
			Destination: in.Destination, Members: f.members, Result: &f.result,
		}).Get(ctx, nil); err != nil {
			return nil, err
		}
	}
	var pending []workflow.Future
	for _, task := range sortedKeys(byTask) {
		// TrackTask fills in the worker's polling settings.
		pending = append(pending, workflow.ExecuteActivity(withShortActivityOptions(ctx, "follow Mixpanel task "+task), a.TrackTask, dsr.TaskInput{
			Destination: in.Destination, TaskID: task, CreatedAt: created[task],
			Members: byTask[task], Regulation: in.Regulation, Chain: in.Chain, Resubmitted: in.Resubmitted,
		}))
	}
	for _, f := range pending {
		if err := f.Get(ctx, nil); err != nil {
			return nil, err
		}
	}
	return sent, nil
}
