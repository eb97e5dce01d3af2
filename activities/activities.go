// Package activities holds every side effect of dsrflow's workflows: ledger
// writes, identity resolution, batch membership, Mixpanel calls, member
// notifications and status callbacks. Activities read secrets from their own
// configuration, never from their inputs.
package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/dsrflow/dsrflow/internal/callback"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
	"github.com/dsrflow/dsrflow/internal/results"
)

// Activities carries the dependencies of every activity. Workflows reference
// its methods through a nil pointer.
type Activities struct {
	Settings  Settings
	Ledger    *ledger.Store
	Temporal  client.Client
	Mixpanel  map[string]*mixpanel.Client
	Callbacks *callback.Sender
	Profiles  *identity.Store
	// Finder resolves identities: the profile store or a company's identity service.
	Finder  identity.Finder
	Results results.Bundles
	// Keys seal what the ledger keeps that must not be readable from a copy of it.
	Keys    *keyring.Ring
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	gates    sync.Map // destination -> *callGate
	expected expectedRetries
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now().UTC()
}

// mixpanelClient returns the destination's client once this process may make
// its next call, and a release to call as soon as that call has returned. The
// task queue's rate limit spreads calls across all workers; the gate also
// keeps one process's calls apart, which Mixpanel's strict limit needs (the
// queue limit allows small bursts).
func (a *Activities) mixpanelClient(ctx context.Context, destination string) (*mixpanel.Client, func(), error) {
	c, ok := a.Mixpanel[destination]
	if !ok {
		return nil, nil, temporal.NewNonRetryableApplicationError("destination "+destination+" is not configured on this worker", dsr.ErrTypeBadRequest, nil)
	}
	if a.Settings.MixpanelRateLimit <= 0 {
		return c, func() {}, nil
	}
	g, _ := a.gates.LoadOrStore(destination, newCallGate(time.Duration(float64(time.Second)/a.Settings.MixpanelRateLimit)))
	release, err := g.(*callGate).enter(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("waiting for the Mixpanel rate limit: %w", err)
	}
	return c, release, nil
}

// callGate lets one call through at a time, each at least interval after the
// previous one returned. Measured from the previous answer rather than its
// start, however late a request reached Mixpanel (a loaded machine, a slow
// network), the next one cannot arrive within interval of it.
type callGate struct {
	interval time.Duration
	turn     chan struct{} // holds a token while no call is in flight
	lastEnd  time.Time     // when the previous call returned; guarded by turn
}

func newCallGate(interval time.Duration) *callGate {
	g := &callGate{interval: interval, turn: make(chan struct{}, 1)}
	g.turn <- struct{}{}
	return g
}

// enter waits for the gate and returns its release.
func (g *callGate) enter(ctx context.Context) (func(), error) {
	select {
	case <-g.turn:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if wait := time.Until(g.lastEnd.Add(g.interval)); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			g.turn <- struct{}{}
			return nil, ctx.Err()
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			g.lastEnd = time.Now()
			g.turn <- struct{}{}
		})
	}, nil
}

// RecordRequest makes sure the request's ledger row exists (a local activity,
// the DSR workflow's first step): the intake writes it right after starting
// the workflow, and this covers an intake that died in between.
func (a *Activities) RecordRequest(ctx context.Context, in dsr.Request) error {
	rec, err := ledger.RecordOf(a.Keys, in)
	if err != nil {
		return err
	}
	if _, _, err := a.Ledger.CreateRequest(ctx, rec); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// RecordStatus writes one status transition to the ledger (a local activity).
func (a *Activities) RecordStatus(ctx context.Context, c dsr.RecordStatusInput) error {
	key := ledger.Key{ControllerID: c.ControllerID, RequestID: c.RequestID}
	if err := a.Ledger.SetStatus(ctx, key, dsr.Status(c.To), c.Reason, c.At); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	a.Metrics.statusChanged(string(c.To))
	return nil
}

// Enqueue adds a request to its destination's batch, starting the batch if needed.
func (a *Activities) Enqueue(ctx context.Context, in dsr.EnqueueInput) error {
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, dsr.BatchWorkflowID(in.Destination, in.Regulation), dsr.SignalEnqueue, in.Member,
		client.StartWorkflowOptions{
			ID:            dsr.BatchWorkflowID(in.Destination, in.Regulation),
			TaskQueue:     a.Settings.TaskQueue,
			StaticSummary: "Batch of " + in.Regulation + " erasures for " + in.Destination,
		},
		dsr.WorkflowBatch, dsr.BatchInput{Destination: in.Destination, Regulation: in.Regulation, Settings: a.batchSettings()})
	if err != nil {
		return fmt.Errorf("joining the batch: %w", err)
	}
	return nil
}

// batchSettings returns the flush rules from this worker's configuration
// (DSR_BATCH_MAX_SIZE, DSR_BATCH_MAX_WAIT, MIXPANEL_MAX_IDS_PER_TASK). A batch
// takes them when it starts, and reads them again (a local activity) each
// time its buffer starts to fill, so a changed setting applies to the next flush.
func (a *Activities) batchSettings() dsr.BatchSettings {
	return dsr.BatchSettings{
		MaxSize:          a.Settings.BatchMaxSize,
		MaxWait:          a.Settings.BatchMaxWait,
		MaxIDs:           a.Settings.MixpanelMaxIDs,
		MaxSignalsPerRun: maxSignalsPerRun,
	}
}

// ReadBatchSettings returns batchSettings (a local activity of the batch).
func (a *Activities) ReadBatchSettings(context.Context) (dsr.BatchSettings, error) {
	return a.batchSettings(), nil
}

// maxSignalsPerRun keeps a batch run far below Temporal's 10,000 signals per run.
const maxSignalsPerRun = 2000

// RemoveFromBatch takes a request out of its batch if the batch has not sent it.
func (a *Activities) RemoveFromBatch(ctx context.Context, in dsr.RemoveFromBatchInput) (dsr.RemoveResult, error) {
	h, err := a.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   dsr.BatchWorkflowID(in.Destination, in.Regulation),
		UpdateName:   dsr.UpdateRemove,
		Args:         []any{dsr.Member{ControllerID: in.ControllerID, RequestID: in.RequestID}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return dsr.RemoveResult{}, fmt.Errorf("asking the batch to drop the request: %w", err)
	}
	var res dsr.RemoveResult
	if err := h.Get(ctx, &res); err != nil {
		return dsr.RemoveResult{}, fmt.Errorf("asking the batch to drop the request: %w", err)
	}
	return res, nil
}

// TrackTask hands members to the workflow that follows a Mixpanel task,
// starting it if needed, with this worker's polling settings
// (MIXPANEL_POLL_INTERVAL, MIXPANEL_MAX_TASK_AGE, MIXPANEL_MAX_IDS_PER_TASK).
func (a *Activities) TrackTask(ctx context.Context, in dsr.TaskInput) error {
	members := in.Members
	in.Members = nil
	in.PollInterval, in.MaxTaskAge, in.MaxIDs = a.Settings.MixpanelPollInterval, a.Settings.MixpanelMaxTaskAge, a.Settings.MixpanelMaxIDs
	id := dsr.TaskWorkflowID(in.Destination, in.TaskID)
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, id, dsr.SignalAddMembers, members,
		client.StartWorkflowOptions{
			ID:            id,
			TaskQueue:     a.Settings.TaskQueue,
			StaticSummary: "Mixpanel deletion task " + in.TaskID + " at " + in.Destination,
		},
		dsr.WorkflowMixpanelTask, in)
	if err != nil {
		return fmt.Errorf("starting the task workflow: %w", err)
	}
	return nil
}

// notifyConcurrency bounds parallel signals from one NotifyMembers activity.
const notifyConcurrency = 16

// NotifyMembers records a task's news in the ledger for every member at once,
// then signals each member's DSR workflow. Progress is heartbeated, so a retry
// resumes where the last attempt stopped.
func (a *Activities) NotifyMembers(ctx context.Context, in dsr.NotifyMembersInput) error {
	if err := a.recordForwarding(ctx, in); err != nil {
		return err
	}
	start := 0
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &start)
	}
	for start < len(in.Members) {
		end := min(start+notifyConcurrency*4, len(in.Members))
		if err := a.signalMembers(ctx, in, in.Members[start:end]); err != nil {
			return err
		}
		start = end
		activity.RecordHeartbeat(ctx, start)
	}
	return nil
}

func (a *Activities) recordForwarding(ctx context.Context, in dsr.NotifyMembersInput) error {
	// Members of one notice share a row unless their task lists differ.
	groups := map[string][]ledger.Key{} // task ids, comma-joined -> members
	for _, m := range in.Members {
		taskIDs := strings.Join(m.TaskIDs, ",")
		if in.Result != nil && in.Result.TaskID != "" && taskIDs == "" {
			taskIDs = in.Result.TaskID
		}
		groups[taskIDs] = append(groups[taskIDs], ledger.Key{ControllerID: m.ControllerID, RequestID: m.RequestID})
	}
	for taskIDs, keys := range groups {
		f := ledger.Forwarding{Destination: in.Destination, Status: dsr.ForwardingSent, TaskID: taskIDs, TaskStatus: dsr.TaskPending, StatusMessage: "Mixpanel task created", UpdatedAt: a.now()}
		if r := in.Result; r != nil {
			f.TaskStatus = r.TaskStatus
			if r.Superseded {
				// Sent again: the row shows the new task(s), still running.
				f.TaskStatus, f.StatusMessage = dsr.TaskPending, r.Reason
			} else if r.Succeeded {
				f.StatusMessage = "Mixpanel task ended " + string(r.TaskStatus)
			} else {
				f.Status, f.StatusMessage = dsr.ForwardingFailed, r.Reason
			}
		}
		if err := a.Ledger.SetForwarding(ctx, keys, f); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		if in.Result != nil && !in.Result.Superseded {
			a.Metrics.forwarded(in.Destination, string(f.Status), len(keys))
		}
	}
	return nil
}

func (a *Activities) signalMembers(ctx context.Context, in dsr.NotifyMembersInput, members []dsr.Member) error {
	errs := make([]error, len(members))
	sem := make(chan struct{}, notifyConcurrency)
	done := make(chan struct{})
	for i, m := range members {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; done <- struct{}{} }()
			var err error
			if in.Result != nil {
				err = a.Temporal.SignalWorkflow(ctx, m.WorkflowID(), "", dsr.SignalTaskResult, *in.Result)
			} else {
				err = a.Temporal.SignalWorkflow(ctx, m.WorkflowID(), "", dsr.SignalForwarded, dsr.Forwarded{Destination: in.Destination, TaskIDs: m.TaskIDs})
			}
			var notFound *serviceerror.NotFound
			if errors.As(err, &notFound) {
				err = nil // the request's workflow is gone (terminated by an operator); the ledger has the news
			}
			errs[i] = err
		}()
	}
	for range members {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("signalling requests: %w", err)
	}
	return nil
}

// staleAfter is how long past DSR_BATCH_MAX_WAIT a queued request may wait
// before the sweep nudges it.
const staleAfter = time.Hour

// RequeueStale is the safety net for a lost batch signal: it asks requests
// that have waited in a batch far longer than a flush takes to join again
// (joining twice is harmless: the batch dedupes, and Mixpanel's 409 maps ids
// already sent to their task). It returns how many it nudged.
func (a *Activities) RequeueStale(ctx context.Context) (int, error) {
	keys, err := a.Ledger.StaleQueued(ctx, a.now().Add(-a.Settings.BatchMaxWait-staleAfter), 1000)
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	for i, k := range keys {
		err := a.Temporal.SignalWorkflow(ctx, dsr.WorkflowID(k.ControllerID, k.RequestID), "", dsr.SignalRequeue, nil)
		var notFound *serviceerror.NotFound
		if err != nil && !errors.As(err, &notFound) {
			return i, fmt.Errorf("signalling a stale request: %w", err)
		}
		activity.RecordHeartbeat(ctx, i)
	}
	if len(keys) > 0 {
		activity.GetLogger(ctx).Warn("nudged requests that waited too long in a batch", "count", len(keys))
	}
	return len(keys), nil
}

// PurgeExpired deletes ledger records past DSR_RECORD_RETENTION, any
// results bundle older than DSR_RESULTS_TTL that its request's workflow did
// not delete (it was terminated, say), and any download or bundle write
// left behind however its build ended. It also keys and seals the ledger
// rows written before keyed hashes (ledger.Store.UpgradeLegacy).
func (a *Activities) PurgeExpired(ctx context.Context) (int64, error) {
	n, err := a.Ledger.PurgeExpired(ctx, a.now())
	if err != nil {
		return n, fmt.Errorf("ledger: %w", err)
	}
	for {
		up, err := a.Ledger.UpgradeLegacy(ctx, a.Keys, upgradeChunk)
		if err != nil {
			return n, fmt.Errorf("ledger: %w", err)
		}
		activity.RecordHeartbeat(ctx)
		if up < upgradeChunk {
			break
		}
	}
	if _, err := a.Results.PurgeOlderThan(a.now().Add(-a.Settings.ResultsTTL - time.Hour)); err != nil {
		return n, fmt.Errorf("results store: %w", err)
	}
	if _, err := a.Results.PurgeTemporary(a.now().Add(-leftoverAfter)); err != nil {
		return n, fmt.Errorf("results store: %w", err)
	}
	return n, nil
}

// upgradeChunk is how many legacy ledger rows one transaction upgrades.
const upgradeChunk = 500

// leftoverAfter is the age past which a download spool or an unfinished
// bundle write can only be a leftover (of a killed worker, say): the
// BuildResults activity times out after 2 hours (workflows.withBuildOptions),
// and a spool being written is touched at every write.
const leftoverAfter = 3 * time.Hour
