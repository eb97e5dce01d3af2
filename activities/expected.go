package activities

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// Kinds of expected retries, as the info summary names them.
const (
	retryTaskRunning   = "mixpanel_task_still_running"
	retryCallbackDown  = "callback_receiver_down"
	expectedRetryEvery = time.Minute
)

// stillRunning is the failure of an attempt that is expected to fail and be
// retried: a Mixpanel task still running (the retry-driven poll), a callback
// receiver that is down. It is an application error of the benign category,
// which the Temporal SDK logs at debug instead of error (and leaves out of
// its failure metrics); real errors stay errors.
func (a *Activities) stillRunning(ctx context.Context, kind, msg, errType string) error {
	a.expected.note(ctx, kind, a.now())
	return temporal.NewApplicationErrorWithOptions(msg, errType, temporal.ApplicationErrorOptions{
		Category: temporal.ApplicationErrorCategoryBenign,
	})
}

// expectedRetries counts expected retries and logs one info summary per
// interval, so an operator sees that polling goes on without an error line
// per poll.
type expectedRetries struct {
	mu     sync.Mutex
	counts map[string]int
	since  time.Time
}

// note counts one expected retry and, once the interval has passed since the
// last summary, logs the counts at info and starts again.
func (e *expectedRetries) note(ctx context.Context, kind string, now time.Time) {
	e.mu.Lock()
	if e.counts == nil {
		e.counts, e.since = map[string]int{}, now
	}
	e.counts[kind]++
	if now.Sub(e.since) < expectedRetryEvery {
		e.mu.Unlock()
		return
	}
	kv := []any{"over", now.Sub(e.since).Round(time.Second).String()}
	kinds := make([]string, 0, len(e.counts))
	for k := range e.counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		kv = append(kv, k, e.counts[k])
	}
	e.counts, e.since = map[string]int{}, now
	e.mu.Unlock()
	activity.GetLogger(ctx).Info("Expected retries (logged at debug one by one).", kv...)
}
