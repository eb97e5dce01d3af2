package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// Activity options of every workflow, in one place. Changing a timeout or
// a retry policy changes no command name, but keep summaries stable: the Web
// UI and the saved histories show them.

// callbackRetryFor is how long one status callback keeps being retried.
const callbackRetryFor = 72 * time.Hour

// withLedgerOptions runs a ledger write as a local activity (one marker event).
func withLedgerOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
}

// withShortActivityOptions runs a quick activity (batch membership, starting a task workflow, expiring results).
func withShortActivityOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
}

// withResolveOptions runs identity resolution, retried for a day (an identity service may be down).
func withResolveOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                "resolve identities",
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
			NonRetryableErrorTypes: []string{dsr.ErrTypeBadRequest},
		},
	})
}

// withMixpanelOptions runs an activity on the destination's rate-limited task
// queue, retrying transient errors and rate limits until retryFor has passed.
func withMixpanelOptions(ctx workflow.Context, destination, summary string, retryFor time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                summary,
		TaskQueue:              dsr.MixpanelTaskQueue(workflow.GetInfo(ctx).TaskQueueName, destination),
		StartToCloseTimeout:    mixpanelCallTimeout,
		ScheduleToCloseTimeout: retryFor,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
			NonRetryableErrorTypes: []string{dsr.ErrTypeUnauthorized, dsr.ErrTypeBadRequest},
		},
	})
}

// withNotifyOptions tells a task's member requests of its progress (heartbeated).
func withNotifyOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute},
	})
}

// withBuildOptions builds a results bundle (long, heartbeated).
func withBuildOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                "build the results bundle",
		StartToCloseTimeout:    2 * time.Hour,
		HeartbeatTimeout:       time.Minute,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute,
			NonRetryableErrorTypes: []string{dsr.ErrTypeResultsUnreadable, dsr.ErrTypeBadRequest},
		},
	})
}

// withCallbackOptions delivers one status callback, retried for callbackRetryFor.
func withCallbackOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                summary,
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: callbackRetryFor,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Hour,
		},
	})
}

// withPollOptions polls a Mixpanel task on its destination's rate-limited
// queue: the activity fails until the task is terminal and is retried every
// interval (coefficient 1) for window.
func withPollOptions(ctx workflow.Context, destination, summary string, interval, window time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:                summary,
		TaskQueue:              dsr.MixpanelTaskQueue(workflow.GetInfo(ctx).TaskQueueName, destination),
		StartToCloseTimeout:    mixpanelCallTimeout,
		ScheduleToCloseTimeout: window,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: interval, BackoffCoefficient: 1, MaximumInterval: interval,
			NonRetryableErrorTypes: []string{dsr.ErrTypeUnauthorized, dsr.ErrTypeTaskNotFound},
		},
	})
}

// withSweepOptions runs one step of the hourly Retention sweep.
func withSweepOptions(ctx workflow.Context, summary string, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
}
