package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// mixpanelCallTimeout bounds one Mixpanel call's activity (the client gives up
// after 30 s). It is also how soon a call lost with a dead worker is retried:
// a create whose answer was lost is then recognised by Mixpanel's 409, as long
// as the task has not finished within that time (Mixpanel tasks take days).
const mixpanelCallTimeout = 40 * time.Second

// maxConflictRounds bounds how often one chunk is resubmitted after 409 answers.
const maxConflictRounds = 5

// Batch collects erasures for one destination and regulation and sends them to
// Mixpanel as deletion tasks: at Settings.MaxSize members, or Settings.MaxWait
// after the oldest member arrived. It continues as new on its own signal count,
// carrying the buffer, so no member is lost at any volume.
func Batch(ctx workflow.Context, in dsr.BatchInput) error {
	b := &batchRun{in: in, buffer: in.Buffer}
	if err := workflow.SetUpdateHandler(ctx, dsr.UpdateRemove, b.remove); err != nil {
		return err
	}
	enqueued := workflow.GetSignalChannel(ctx, dsr.SignalEnqueue)
	receiveAll(ctx, enqueued, func(m dsr.Member) { b.add(ctx, m) })
	b.version = workflow.GetVersion(ctx, changeLifecycle, workflow.DefaultVersion, lifecycleV1)
	b.showDetails(ctx)
	for {
		if len(b.buffer) > 0 && !b.fresh {
			if err := b.readSettings(ctx); err != nil {
				return err
			}
		}
		var err error
		switch {
		case len(b.buffer) == 0:
			err = workflow.Await(ctx, func() bool { return len(b.buffer) > 0 || b.shouldContinueAsNew(ctx) })
		case !b.due(ctx):
			_, err = workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout:      b.deadline().Sub(workflow.Now(ctx)),
				TimerOptions: workflow.TimerOptions{Summary: "flush at the latest " + b.deadline().UTC().Format(time.RFC3339)},
			}, func() bool { return len(b.buffer) >= b.in.Settings.MaxSize || b.shouldContinueAsNew(ctx) })
		}
		if err != nil {
			return err
		}
		for b.due(ctx) {
			if err := b.flush(ctx); err != nil {
				return err
			}
			b.fresh = false
		}
		if b.shouldContinueAsNew(ctx) {
			return b.continueAsNew(ctx, enqueued)
		}
	}
}

// batchRun is the state of one Batch workflow run.
type batchRun struct {
	in     dsr.BatchInput
	buffer []dsr.Member
	// messages counts signals and updates received in this run.
	messages int
	version  workflow.Version
	// fresh is true once the settings were read for the members now buffered.
	fresh bool
	// lastFlush describes this run's latest flush, for Current Details.
	lastFlush string
}

// readSettings takes the worker's current batch settings (a local activity)
// when the buffer starts to fill, so a changed DSR_BATCH_MAX_SIZE,
// DSR_BATCH_MAX_WAIT or MIXPANEL_MAX_IDS_PER_TASK applies from the next
// flush on and is carried through continue-as-new. Runs started by an
// earlier release keep the settings they started with.
func (b *batchRun) readSettings(ctx workflow.Context) error {
	b.fresh = true
	if b.version < lifecycleV1 {
		return nil
	}
	var s dsr.BatchSettings
	if err := workflow.ExecuteLocalActivity(withLedgerOptions(ctx), a.ReadBatchSettings).Get(ctx, &s); err != nil {
		return err
	}
	if s.MaxSize > 0 && s.MaxIDs > 0 && s.MaxWait > 0 {
		b.in.Settings = s
	}
	return nil
}

func (b *batchRun) add(ctx workflow.Context, m dsr.Member) {
	b.messages++
	for _, have := range b.buffer {
		if have.ControllerID == m.ControllerID && have.RequestID == m.RequestID {
			return // a retried enqueue
		}
	}
	if m.EnqueuedAt.IsZero() {
		m.EnqueuedAt = workflow.Now(ctx)
	}
	b.buffer = append(b.buffer, m)
	b.showDetails(ctx)
}

// remove answers UpdateRemove: taken out if still buffered, too late once a flush took it.
func (b *batchRun) remove(ctx workflow.Context, m dsr.Member) (dsr.RemoveResult, error) {
	b.messages++
	for i, have := range b.buffer {
		if have.ControllerID == m.ControllerID && have.RequestID == m.RequestID {
			b.buffer = append(b.buffer[:i:i], b.buffer[i+1:]...)
			b.showDetails(ctx)
			return dsr.RemoveResult{Removed: true}, nil
		}
	}
	return dsr.RemoveResult{Removed: false}, nil
}

func (b *batchRun) deadline() time.Time {
	return b.buffer[0].EnqueuedAt.Add(b.in.Settings.MaxWait)
}

func (b *batchRun) due(ctx workflow.Context) bool {
	if len(b.buffer) == 0 {
		return false
	}
	return len(b.buffer) >= b.in.Settings.MaxSize || !workflow.Now(ctx).Before(b.deadline())
}

func (b *batchRun) shouldContinueAsNew(ctx workflow.Context) bool {
	return b.messages >= b.in.Settings.MaxSignalsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

func (b *batchRun) continueAsNew(ctx workflow.Context, enqueued workflow.ReceiveChannel) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	drain(enqueued, func(m dsr.Member) { b.add(ctx, m) })
	next := b.in
	next.Buffer = b.buffer
	return workflow.NewContinueAsNewError(ctx, Batch, next)
}

// flush sends up to MaxSize members to Mixpanel.
func (b *batchRun) flush(ctx workflow.Context) error {
	n := min(len(b.buffer), b.in.Settings.MaxSize)
	members := append([]dsr.Member(nil), b.buffer[:n]...)
	b.buffer = append([]dsr.Member(nil), b.buffer[n:]...)

	sent, err := sendMembers(ctx, sendInput{Destination: b.in.Destination, Regulation: b.in.Regulation, MaxIDs: b.in.Settings.MaxIDs, Members: members})
	if err != nil {
		return err
	}
	var tasks []string
	for _, m := range sent {
		tasks = mergeSorted(tasks, m.TaskIDs)
	}
	var links []string
	for _, task := range tasks {
		links = append(links, workflowLink(ctx, task, dsr.TaskWorkflowID(b.in.Destination, task)))
	}
	b.lastFlush = fmt.Sprintf("%s: %d requests (%s) to Mixpanel tasks %s", stamp(workflow.Now(ctx)), len(members), memberLinks(ctx, members), strings.Join(links, ", "))
	if unsent := len(members) - len(sent); unsent > 0 {
		b.lastFlush += fmt.Sprintf(" (%d requests could not be sent)", unsent)
	}
	b.showDetails(ctx)
	return nil
}

// receiveAll hands every message of ch to handle, in arrival order, from a
// coroutine that waits with Await on the channel's length and takes messages
// with ReceiveAsync. A coroutine blocked in Receive would instead hold a
// delivered message in its own variable until it next runs, where a final
// drain before continue-as-new or return cannot see it: that loses it.
func receiveAll[T any](ctx workflow.Context, ch workflow.ReceiveChannel, handle func(T)) {
	workflow.Go(ctx, func(ctx workflow.Context) {
		for workflow.Await(ctx, func() bool { return ch.Len() > 0 }) == nil {
			drain(ch, handle)
		}
	})
}

// drain hands every message waiting in ch to handle, without blocking.
func drain[T any](ch workflow.ReceiveChannel, handle func(T)) {
	for {
		var v T
		if !ch.ReceiveAsync(&v) {
			return
		}
		handle(v)
	}
}

// failedMembers are members that no task holds, for the same reason.
type failedMembers struct {
	result  dsr.TaskResult
	members []dsr.Member
}

func addFailed(groups []failedMembers, result dsr.TaskResult, m dsr.Member) []failedMembers {
	for i := range groups {
		if g := groups[i].result; g.Destination == result.Destination && g.Reason == result.Reason && g.Retryable == result.Retryable {
			groups[i].members = append(groups[i].members, m)
			return groups
		}
	}
	return append(groups, failedMembers{result: result, members: []dsr.Member{m}})
}

// taskIDs are the ids one task holds, and when it was created.
type taskIDs struct {
	ids       []string
	createdAt time.Time
}

// createTasks creates a deletion task for one chunk of ids. Ids that Mixpanel
// says already belong to a running task (409) are adopted into that task and
// the rest resubmitted. It returns the tasks, or why the rest could not be sent.
func createTasks(ctx workflow.Context, destination, regulation string, ids []string) (tasks map[string]taskIDs, reason string, retryable bool) {
	tasks = map[string]taskIDs{}
	remaining := ids
	for round := 0; len(remaining) > 0; round++ {
		if round == maxConflictRounds {
			return tasks, "Mixpanel kept answering 409 conflict", true
		}
		var res dsr.CreateTaskResult
		err := workflow.ExecuteActivity(withMixpanelOptions(ctx, destination, "create a deletion task", 72*time.Hour), a.CreateDeletionTask, dsr.CreateDeletionTaskInput{
			Destination: destination, Regulation: regulation, DistinctIDs: remaining,
		}).Get(ctx, &res)
		if err != nil {
			return tasks, "creating the Mixpanel deletion task failed: " + errorMessage(err), !isErrorType(err, dsr.ErrTypeBadRequest)
		}
		if res.TaskID != "" {
			t := tasks[res.TaskID]
			tasks[res.TaskID] = taskIDs{ids: append(t.ids, remaining...), createdAt: res.CreatedAt}
			return tasks, "", false
		}
		conflicting := intersect(remaining, res.ConflictingIDs)
		if len(conflicting) == 0 || len(res.ConflictingTaskIDs) == 0 {
			return tasks, "Mixpanel answered 409 conflict without naming the conflicting ids", true
		}
		owners, err := conflictOwners(ctx, destination, res.ConflictingTaskIDs, conflicting)
		if err != nil {
			return tasks, "looking up the conflicting Mixpanel tasks failed: " + errorMessage(err), true
		}
		now := workflow.Now(ctx)
		for _, task := range sortedKeys(owners) {
			t := tasks[task]
			if t.createdAt.IsZero() {
				t.createdAt = now
			}
			t.ids = append(t.ids, owners[task]...)
			tasks[task] = t
		}
		remaining = subtract(remaining, conflicting)
	}
	return tasks, "", false
}

// conflictOwners maps each conflicting id to the running task that holds it.
func conflictOwners(ctx workflow.Context, destination string, taskIDs, conflicting []string) (map[string][]string, error) {
	if len(taskIDs) == 1 {
		return map[string][]string{taskIDs[0]: conflicting}, nil
	}
	owners := map[string][]string{}
	left := conflicting
	for _, task := range taskIDs {
		var held []string
		if err := workflow.ExecuteActivity(withMixpanelOptions(ctx, destination, "look up task "+task, time.Hour), a.DeletionTaskIDs, dsr.PollTaskInput{
			Destination: destination, TaskID: task, Kind: dsr.KindDeletion,
		}).Get(ctx, &held); err != nil {
			return nil, err
		}
		if mine := intersect(left, held); len(mine) > 0 {
			owners[task] = mine
			left = subtract(left, mine)
		}
	}
	if len(left) > 0 {
		// Mixpanel named these ids but no listed task holds them now: the first task answers for them.
		owners[taskIDs[0]] = append(owners[taskIDs[0]], left...)
	}
	return owners, nil
}

// packIDs dedupes the members' ids and packs them into chunks of at most maxIDs,
// keeping each member's ids together where they fit.
func packIDs(members []dsr.Member, maxIDs int) [][]string {
	var chunks [][]string
	var cur []string
	seen := map[string]bool{}
	for _, m := range members {
		var fresh []string
		for _, id := range m.DistinctIDs {
			if !seen[id] {
				seen[id] = true
				fresh = append(fresh, id)
			}
		}
		if len(cur)+len(fresh) > maxIDs && len(cur) > 0 {
			chunks, cur = append(chunks, cur), nil
		}
		for len(fresh) > maxIDs {
			chunks, fresh = append(chunks, fresh[:maxIDs]), fresh[maxIDs:]
		}
		cur = append(cur, fresh...)
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

func intersect(ids, with []string) []string {
	set := map[string]bool{}
	for _, id := range with {
		set[id] = true
	}
	var out []string
	for _, id := range ids {
		if set[id] {
			out = append(out, id)
		}
	}
	return out
}

func subtract(ids, without []string) []string {
	set := map[string]bool{}
	for _, id := range without {
		set[id] = true
	}
	var out []string
	for _, id := range ids {
		if !set[id] {
			out = append(out, id)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	// The keys are sorted below, so map order does not matter.
	//workflowcheck:ignore
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isErrorType(err error, errType string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == errType
}
