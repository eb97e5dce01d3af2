package workflows

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// maxListedMembers caps the request ids a batch's or a task's Current
// Details list.
const maxListedMembers = 20

// changeWaitingStatus versions the DsrStatus upserts that say a request whose
// outcome is final still waits (for callbacks, or for its results to expire).
const changeWaitingStatus = "dsr-status-while-waiting"

// workflowLink is a markdown link to a workflow in the Temporal Web UI.
func workflowLink(ctx workflow.Context, text, workflowID string) string {
	return fmt.Sprintf("[%s](/namespaces/%s/workflows/%s)", text, url.PathEscape(workflow.GetInfo(ctx).Namespace), url.PathEscape(workflowID))
}

// statusWords says a status for people.
func statusWords(s dsr.Status) string {
	switch s {
	case dsr.StatusPending:
		return "Pending"
	case dsr.StatusInProgress:
		return "In progress"
	case dsr.StatusCompleted:
		return "Completed"
	case dsr.StatusCancelled:
		return "Cancelled"
	case dsr.StatusFailed:
		return "Failed"
	}
	return string(s)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// showDetails sets the DSR workflow's Current Details (markdown, shown by
// the Web UI): status in words, due time, the cancellation window while it
// is open, and links to the request's batches and Mixpanel task workflows.
// Current Details are kept by the SDK and read through a query: no command.
func (r *requestRun) showDetails(ctx workflow.Context) {
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**%s** — %s %s request", statusWords(r.status), strings.ToUpper(r.in.Regulation), r.in.Type))
	switch {
	case r.reason != "":
		b.WriteString(": " + r.reason)
	default:
		b.WriteString(": " + r.phase.String())
	}
	b.WriteString("\n\n")
	b.WriteString(fmt.Sprintf("- Statutory due: %s\n", stamp(r.in.DueTime)))
	if r.phase == dsr.PhaseWaiting && r.in.ForwardAt.After(workflow.Now(ctx)) && !r.cancelled {
		b.WriteString(fmt.Sprintf("- Waiting period ends %s; cancel until then: `dsr cancel %s --controller %s`\n",
			stamp(r.in.ForwardAt), r.in.RequestID, r.in.ControllerID))
	}
	if r.waiting != "" {
		b.WriteString(fmt.Sprintf("- Outcome final; the workflow stays open: %s\n", r.waiting))
	}
	for _, d := range r.dests {
		b.WriteString(fmt.Sprintf("- %s: %s", d.plan.Destination, d.status))
		if d.message != "" {
			b.WriteString(" — " + d.message)
		}
		if r.in.Type == dsr.TypeErasure && d.enqueued {
			b.WriteString("; batch " + workflowLink(ctx, r.in.Regulation, dsr.BatchWorkflowID(d.plan.Destination, r.in.Regulation)))
		}
		for _, id := range d.taskIDs {
			if r.in.Type == dsr.TypeErasure {
				b.WriteString("; task " + workflowLink(ctx, id, dsr.TaskWorkflowID(d.plan.Destination, id)))
			} else {
				b.WriteString("; retrieval task " + id)
			}
		}
		b.WriteString("\n")
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

// awaiting records that the request's outcome is final but its workflow
// still waits (what for, or "" when it no longer does): in Current Details
// and in DsrStatus.
func (r *requestRun) awaiting(ctx workflow.Context, what, note string) error {
	r.waiting = what
	r.showDetails(ctx)
	return r.noteStatus(ctx, note)
}

// noteStatus sets DsrStatus to the status with a note, for workflows that
// reach this code after it was added (an upsert is a command).
func (r *requestRun) noteStatus(ctx workflow.Context, note string) error {
	if workflow.GetVersion(ctx, changeWaitingStatus, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	return workflow.UpsertTypedSearchAttributes(ctx, dsr.SearchStatus.ValueSet(dsr.StatusWithNote(string(r.status), note)))
}

// memberLinks lists members' request ids as links to their workflows, capped.
func memberLinks(ctx workflow.Context, members []dsr.Member) string {
	var parts []string
	for i, m := range members {
		if i == maxListedMembers {
			parts = append(parts, fmt.Sprintf("and %d more", len(members)-maxListedMembers))
			break
		}
		parts = append(parts, workflowLink(ctx, m.RequestID, m.WorkflowID()))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// showBatchDetails sets a Batch workflow's Current Details: what it holds,
// when it flushes next, and its members' requests.
func (b *batchRun) showDetails(ctx workflow.Context) {
	var s strings.Builder
	s.WriteString(fmt.Sprintf("**Batch** of %s erasures for destination %s: %d queued", strings.ToUpper(b.in.Regulation), b.in.Destination, len(b.buffer)))
	if len(b.buffer) > 0 {
		s.WriteString(fmt.Sprintf(", flush at %d or at the latest %s", b.in.Settings.MaxSize, stamp(b.deadline())))
	}
	s.WriteString(fmt.Sprintf("\n\n- Queued requests: %s\n", memberLinks(ctx, b.buffer)))
	if b.lastFlush != "" {
		s.WriteString("- Last flush: " + b.lastFlush + "\n")
	}
	workflow.SetCurrentDetails(ctx, s.String())
}

// showTaskDetails sets a MixpanelTask workflow's Current Details: the task,
// its state and its members' requests.
func (t *taskRun) showDetails(ctx workflow.Context, state string) {
	var s strings.Builder
	s.WriteString(fmt.Sprintf("**Mixpanel deletion task** %s at destination %s, created %s: %s\n\n", t.in.TaskID, t.in.Destination, stamp(t.in.CreatedAt), state))
	s.WriteString(fmt.Sprintf("- Requests (%d): %s\n", len(t.members), memberLinks(ctx, t.members)))
	workflow.SetCurrentDetails(ctx, s.String())
}
