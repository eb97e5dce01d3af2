package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
)

// notFoundGrace is how long after creation a task Mixpanel does not know yet is
// still polled (creation may not be visible at once).
const notFoundGrace = time.Hour

// CreateDeletionTask makes one Mixpanel call: create a deletion task for the ids.
// A 409 conflict is a result, not an error: the workflow adopts the running tasks.
func (a *Activities) CreateDeletionTask(ctx context.Context, in dsr.CreateDeletionTaskInput) (dsr.CreateTaskResult, error) {
	c, release, err := a.mixpanelClient(ctx, in.Destination)
	if err != nil {
		return dsr.CreateTaskResult{}, err
	}
	defer release()
	id, err := c.CreateDeletion(ctx, in.DistinctIDs, complianceType(in.Regulation))
	a.Metrics.mixpanelCall(in.Destination, "deletion.create", err)
	var conflict *mixpanel.ConflictError
	if errors.As(err, &conflict) {
		return dsr.CreateTaskResult{ConflictingIDs: conflict.DistinctIDs, ConflictingTaskIDs: conflict.TaskIDs}, nil
	}
	if err != nil {
		return dsr.CreateTaskResult{}, mixpanelError(err)
	}
	return dsr.CreateTaskResult{TaskID: id, CreatedAt: a.now()}, nil
}

// DeletionTaskIDs makes one Mixpanel call: the distinct ids a deletion task holds.
func (a *Activities) DeletionTaskIDs(ctx context.Context, ref dsr.PollTaskInput) ([]string, error) {
	c, release, err := a.mixpanelClient(ctx, ref.Destination)
	if err != nil {
		return nil, err
	}
	defer release()
	task, err := c.DeletionStatus(ctx, ref.TaskID)
	a.Metrics.mixpanelCall(ref.Destination, "deletion.status", err)
	if errors.Is(err, mixpanel.ErrTaskNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, mixpanelError(err)
	}
	return task.DistinctIDs, nil
}

// PollTask makes one Mixpanel call: the task's status. It fails (and Temporal
// retries it at the poll interval) until the task is terminal, so a task
// polled for weeks costs a few history events.
func (a *Activities) PollTask(ctx context.Context, ref dsr.PollTaskInput) (dsr.PollTaskResult, error) {
	c, release, err := a.mixpanelClient(ctx, ref.Destination)
	if err != nil {
		return dsr.PollTaskResult{}, err
	}
	defer release()
	var task mixpanel.Task
	if ref.Kind == dsr.KindRetrieval {
		task, err = c.RetrievalStatus(ctx, ref.TaskID)
		a.Metrics.mixpanelCall(ref.Destination, "retrieval.status", err)
	} else {
		task, err = c.DeletionStatus(ctx, ref.TaskID)
		a.Metrics.mixpanelCall(ref.Destination, "deletion.status", err)
	}
	switch {
	case errors.Is(err, mixpanel.ErrTaskNotFound):
		if a.now().Sub(ref.CreatedAt) > notFoundGrace {
			return dsr.PollTaskResult{}, temporal.NewNonRetryableApplicationError("Mixpanel does not know task "+ref.TaskID, dsr.ErrTypeTaskNotFound, nil)
		}
		return dsr.PollTaskResult{}, a.stillRunning(ctx, retryTaskRunning, "task "+ref.TaskID+" is not visible yet", dsr.ErrTypeTaskNotFinished)
	case err != nil:
		return dsr.PollTaskResult{}, mixpanelError(err)
	case !task.Status.Terminal():
		return dsr.PollTaskResult{}, a.stillRunning(ctx, retryTaskRunning, "task "+ref.TaskID+" is "+string(task.Status), dsr.ErrTypeTaskNotFinished)
	}
	return dsr.PollTaskResult{Status: task.Status, ResultURL: task.Result}, nil
}

// complianceType maps a request's regulation to Mixpanel's compliance_type:
// from the regulation, never from data residency.
func complianceType(regulation string) mixpanel.ComplianceType {
	if strings.EqualFold(regulation, "ccpa") {
		return mixpanel.CCPA
	}
	return mixpanel.GDPR
}

// mixpanelError turns a client error into the Temporal error its retry policy branches on.
func mixpanelError(err error) error {
	var unauthorized *mixpanel.UnauthorizedError
	var badRequest *mixpanel.BadRequestError
	var limited *mixpanel.RateLimitedError
	switch {
	case errors.As(err, &unauthorized):
		return temporal.NewNonRetryableApplicationError("Mixpanel rejected the credentials: "+err.Error(), dsr.ErrTypeUnauthorized, nil)
	case errors.As(err, &badRequest):
		return temporal.NewNonRetryableApplicationError("Mixpanel rejected the request: "+err.Error(), dsr.ErrTypeBadRequest, nil)
	case errors.As(err, &limited) && limited.RetryAfter > 0:
		return temporal.NewApplicationErrorWithOptions("Mixpanel rate limit: "+err.Error(), "RateLimited",
			temporal.ApplicationErrorOptions{NextRetryDelay: limited.RetryAfter})
	}
	return fmt.Errorf("mixpanel: %w", err)
}
