package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// deadlineWarning is how long before the statutory due time a request that
// waits for a person raises a warning.
const deadlineWarning = 7 * 24 * time.Hour

// What a request that waits for a person needs, as told to the controller.
const (
	needChoice = "an operator must choose one of the candidate profiles (dsr resolve) or extend the due time (dsr extend)"
	needRetry  = "an operator must fix the cause and retry (dsr retry) or extend the due time (dsr extend)"
)

// Version markers of the deadline features (replay of older histories keeps
// their commands).
const (
	versionDeadlineWarning = "deadline-warning"
	versionExtend          = "extend-due-time"
)

// registerExtend installs the extend update: an operator extends the due
// time once, within the regulation's limit.
func (r *requestRun) registerExtend(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, dsr.UpdateExtend,
		func(ctx workflow.Context, e dsr.Extension) (dsr.ExtendResult, error) { return r.extend(ctx, e) },
		workflow.UpdateHandlerOptions{Validator: func(e dsr.Extension) error { return r.validateExtend(e) }},
	)
}

func (r *requestRun) validateExtend(e dsr.Extension) error {
	switch {
	case strings.TrimSpace(e.Reason) == "":
		return temporal.NewApplicationError("an extension needs a reason", "NoReason")
	case r.extended:
		return temporal.NewApplicationError("the due time was already extended: the "+strings.ToUpper(r.in.Regulation)+" allows one extension", "AlreadyExtended")
	case r.phase == dsr.PhaseDone:
		return temporal.NewApplicationError("the request already reached its final status", "Final")
	case r.in.DueTime.IsZero():
		return temporal.NewApplicationError("the request has no due time", "NoDueTime")
	}
	return nil
}

// extend moves the due time to the regulation's limit, records it with its
// reason, updates DsrDueTime and tells the controller the new
// expected_completion_time in a callback.
func (r *requestRun) extend(ctx workflow.Context, e dsr.Extension) (dsr.ExtendResult, error) {
	workflow.GetVersion(ctx, versionExtend, workflow.DefaultVersion, 1)
	r.extended = true
	original := r.in.DueTime
	due := dsr.ExtendedDueTime(r.in.Regulation, original)
	if err := workflow.ExecuteLocalActivity(withLedgerOptions(ctx), a.RecordExtension, dsr.RecordExtensionInput{
		ControllerID: r.in.ControllerID, RequestID: r.in.RequestID, OriginalDueTime: original, DueTime: due,
		At: workflow.Now(ctx), Reason: e.Reason, Operator: e.Operator,
	}).Get(ctx, nil); err != nil {
		r.extended = false
		return dsr.ExtendResult{}, fmt.Errorf("recording the extension: %w", err)
	}
	r.in.DueTime, r.in.ExpectedCompletionTime = due, due
	if err := workflow.UpsertTypedSearchAttributes(ctx, dsr.SearchDueTime.ValueSet(due)); err != nil {
		return dsr.ExtendResult{}, err
	}
	workflow.GetLogger(ctx).Info("statutory due time extended", "request_id", r.in.RequestID, "due_time", due.Format(time.RFC3339))
	r.queueNotice(ctx, fmt.Sprintf("the %s due time was extended to %s: %s",
		strings.ToUpper(r.in.Regulation), due.Format(time.RFC3339), e.Reason))
	return dsr.ExtendResult{OriginalDueTime: original, DueTime: due}, nil
}

// queueNotice queues a callback that repeats the current status with news
// (reason): an extension, a deadline warning.
func (r *requestRun) queueNotice(ctx workflow.Context, reason string) {
	r.queueCallback(r.status)
	if n := len(r.callbacks); n > 0 {
		r.callbacks[n-1].StatusReason = reason
	}
}

// watchDeadline runs while the request waits for a person (waiting reports
// whether it still does): 7 days before the due time it logs a warning and
// tells the controller, in the status reason of a callback, what is needed.
// An extension re-arms it for the new due time.
func (r *requestRun) watchDeadline(ctx workflow.Context, need string, waiting func() bool) {
	if workflow.GetVersion(ctx, versionDeadlineWarning, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	base := r.reason
	workflow.Go(ctx, func(ctx workflow.Context) {
		for waiting() && !r.in.DueTime.IsZero() {
			due := r.in.DueTime
			moved := func() bool { return !waiting() || !r.in.DueTime.Equal(due) }
			if wait := due.Add(-deadlineWarning).Sub(workflow.Now(ctx)); wait > 0 {
				changed, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
					Timeout:      wait,
					TimerOptions: workflow.TimerOptions{Summary: "deadline warning: 7 days before the due time"},
				}, moved)
				if err != nil {
					return
				}
				if changed {
					continue
				}
			}
			if err := r.warnDeadline(ctx, due, base, need); err != nil {
				return
			}
			if err := workflow.Await(ctx, moved); err != nil {
				return
			}
		}
	})
}

// warnDeadline logs the warning and records and sends a status reason that
// says what is needed before the due time.
func (r *requestRun) warnDeadline(ctx workflow.Context, due time.Time, base, need string) error {
	days := int(due.Sub(workflow.Now(ctx)).Hours() / 24)
	workflow.GetLogger(ctx).Warn("request waits for an operator close to its statutory due time",
		"request_id", r.in.RequestID, "regulation", r.in.Regulation, "due_time", due.Format(time.RFC3339), "days_left", days, "needed", need)
	reason := fmt.Sprintf("%s; due %s (%d days left): %s", base, due.Format(time.RFC3339), days, need)
	if days < 0 {
		reason = fmt.Sprintf("%s; overdue since %s: %s", base, due.Format(time.RFC3339), need)
	}
	if err := r.setStatus(ctx, r.status, reason); err != nil {
		return err
	}
	r.queueNotice(ctx, reason)
	return nil
}
