// Package dsr is the contract between dsrflow's workflows, activities, API and
// CLI: workflow IDs, signal/update/query names, and the payloads they carry.
// It holds no I/O so that deterministic workflow code can import it.
package dsr

import (
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Status is a request's OpenDSR request_status (plus "failed").
type Status string

// Request statuses.
const (
	StatusPending    Status = "pending"
	StatusInProgress Status = "in_progress"
	StatusCompleted  Status = "completed"
	StatusCancelled  Status = "cancelled"
	StatusFailed     Status = "failed"
)

// Statuses lists every Status in lifecycle order.
func Statuses() []Status {
	return []Status{StatusPending, StatusInProgress, StatusCompleted, StatusCancelled, StatusFailed}
}

// StatusNames lists every status as a string, in lifecycle order (for
// flags, queries and tables).
func StatusNames() []string {
	var out []string
	for _, s := range Statuses() {
		out = append(out, string(s))
	}
	return out
}

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusInProgress, StatusCompleted, StatusCancelled, StatusFailed:
		return true
	}
	return false
}

// ForwardingStatus is the state of a request at one destination.
type ForwardingStatus string

// Forwarding statuses, as mParticle reports them per destination.
const (
	// ForwardingPending: not yet sent to the destination.
	ForwardingPending ForwardingStatus = "pending"
	// ForwardingSkipped: nothing to send (no identity the destination knows).
	ForwardingSkipped ForwardingStatus = "skipped"
	// ForwardingSent: part of a task the destination accepted.
	ForwardingSent ForwardingStatus = "sent"
	// ForwardingFailed: the destination refused the request or its task failed.
	ForwardingFailed ForwardingStatus = "failed"
)

// Valid reports whether s is one of the forwarding statuses above.
func (s ForwardingStatus) Valid() bool {
	switch s {
	case ForwardingPending, ForwardingSkipped, ForwardingSent, ForwardingFailed:
		return true
	}
	return false
}

// Request types and regulations (OpenDSR values).
const (
	TypeErasure     = "erasure"
	TypeAccess      = "access"
	TypePortability = "portability"
	RegulationGDPR  = "gdpr"
	RegulationCCPA  = "ccpa"
)

// Types returns every supported request type (OpenDSR subject_request_type).
func Types() []string { return []string{TypeErasure, TypeAccess, TypePortability} }

// Regulations returns every supported regulation.
func Regulations() []string { return []string{RegulationGDPR, RegulationCCPA} }

// Message names.
const (
	// SignalEnqueue adds a Member to a Batch workflow.
	SignalEnqueue = "enqueue"
	// UpdateRemove takes a Member out of a Batch workflow's buffer if it was not yet sent.
	UpdateRemove = "remove"
	// SignalAddMembers adds Members to a MixpanelTask workflow.
	SignalAddMembers = "add-members"
	// SignalForwarded tells a DSR workflow its Mixpanel task exists.
	SignalForwarded = "forwarded"
	// SignalTaskResult tells a DSR workflow how its Mixpanel task ended.
	SignalTaskResult = "task-result"
	// UpdateCancel and SignalCancel cancel a request while it is cancellable.
	UpdateCancel = "cancel"
	SignalCancel = "cancel"
	// UpdateRetry and SignalRetry resume a failed request (after a credential fix).
	UpdateRetry = "retry"
	SignalRetry = "retry"
	// SignalRequeue asks a queued request to join its batches again (the
	// sweep sends it to requests that waited far longer than a batch takes).
	SignalRequeue = "requeue"
	// UpdateResolve settles an ambiguous identity resolution with a ResolveChoice.
	UpdateResolve = "resolve"
	// QueryStatus returns a DSR workflow's StatusView.
	QueryStatus = "status"
)

// Identity is one subject identity as the controller sent it.
type Identity struct {
	Type   string `json:"type"`
	Format string `json:"format"`
	Value  string `json:"value"`
}

// Request is the DSR workflow's input: everything the intake accepted.
// It carries identity values and is protected in Temporal by the payload codec.
type Request struct {
	ControllerID  string     `json:"controller_id"`
	RequestID     string     `json:"request_id"`
	Type          string     `json:"type"`
	Regulation    string     `json:"regulation"`
	Identities    []Identity `json:"identities"`
	CallbackURLs  []string   `json:"callback_urls,omitempty"`
	APIVersion    string     `json:"api_version"`
	SubmittedTime time.Time  `json:"submitted_time"`
	ReceivedTime  time.Time  `json:"received_time"`
	// ForwardAt is when the waiting period ends (ReceivedTime when skipped or not an erasure).
	ForwardAt              time.Time `json:"forward_at"`
	ExpectedCompletionTime time.Time `json:"expected_completion_time"`
	DueTime                time.Time `json:"due_time"`
	DisclosureType         string    `json:"disclosure_type,omitempty"`
	SkipWaitingPeriod      bool      `json:"skip_waiting_period,omitempty"`
	// BodyHash identifies the submitted content (a resubmission with other
	// content is refused): the keyed hash (ledger.PurposeBody) of its digest.
	BodyHash string `json:"body_hash"`
	// RetryWindow is how long a failed request stays open for an operator's retry.
	RetryWindow time.Duration `json:"retry_window"`
	// EndedReason is set only on a run the hourly sweep starts after the
	// request's workflow ended without an outcome (terminated): that run
	// records the request failed with this reason (ledger, search attribute,
	// callback); an operator's retry meanwhile continues it as the request.
	EndedReason string `json:"ended_reason,omitempty"`
	// PollInterval and MaxTaskAge were stamped at intake by earlier releases;
	// requests started since carry none (the worker's settings apply). Read
	// only for a retrieval created by a worker that did not report them.
	PollInterval time.Duration `json:"poll_interval,omitempty"`
	MaxTaskAge   time.Duration `json:"max_task_age,omitempty"`
}

// WorkflowID is the request's DSR workflow ID.
func (r Request) WorkflowID() string { return WorkflowID(r.ControllerID, r.RequestID) }

// WorkflowID is the ID of a request's DSR workflow. Request ids are UUIDs and
// controller ids are restricted to [A-Za-z0-9_-], so no identity can appear.
func WorkflowID(controllerID, requestID string) string {
	return "dsr/" + controllerID + "/" + requestID
}

// ParseWorkflowID splits a DSR workflow ID into controller and request id.
func ParseWorkflowID(id string) (controllerID, requestID string, ok bool) {
	rest, found := strings.CutPrefix(id, "dsr/")
	if !found {
		return "", "", false
	}
	controllerID, requestID, ok = strings.Cut(rest, "/")
	return controllerID, requestID, ok && controllerID != "" && requestID != ""
}

// BatchWorkflowID is the ID of the batch for one destination and regulation.
func BatchWorkflowID(destination, regulation string) string {
	return "batch/mixpanel/" + destination + "/" + regulation
}

// TaskWorkflowID is the ID of the workflow that follows one Mixpanel task.
func TaskWorkflowID(destination, taskID string) string {
	return "mptask/" + destination + "/" + taskID
}

// Plan is what one destination receives for a request (identity.Resolve
// makes it, the DSR workflow forwards it).
type Plan struct {
	// Destination is the destination's name.
	Destination string `json:"destination"`
	// DistinctIDs are the ids to delete, sorted and unique. They are identity
	// values: keep them where identity values may be kept.
	DistinctIDs []string `json:"distinct_ids,omitempty"`
	// Skipped is true when there is nothing suitable to forward.
	Skipped bool `json:"skipped,omitempty"`
	// Reason says where the ids come from, or why the destination is
	// skipped, without identity values.
	Reason string `json:"reason,omitempty"`
}

// Member is one request's place in a batch or a Mixpanel task.
type Member struct {
	ControllerID string   `json:"controller_id"`
	RequestID    string   `json:"request_id"`
	DistinctIDs  []string `json:"distinct_ids"`
	// EnqueuedAt is when the batch received the member.
	EnqueuedAt time.Time `json:"enqueued_at,omitzero"`
	// TaskIDs are every Mixpanel task that holds one of the member's ids.
	TaskIDs []string `json:"task_ids,omitempty"`
}

// WorkflowID is the member's DSR workflow ID.
func (m Member) WorkflowID() string { return WorkflowID(m.ControllerID, m.RequestID) }

// BatchSettings are the flush rules a Batch workflow runs with.
type BatchSettings struct {
	MaxSize int           `json:"max_size"`
	MaxWait time.Duration `json:"max_wait"`
	MaxIDs  int           `json:"max_ids"`
	// MaxSignalsPerRun bounds signals received before continue-as-new (Temporal caps a run at 10,000).
	MaxSignalsPerRun int `json:"max_signals_per_run"`
}

// BatchInput starts (or continues) a Batch workflow.
type BatchInput struct {
	Destination string        `json:"destination"`
	Regulation  string        `json:"regulation"`
	Settings    BatchSettings `json:"settings"`
	// Buffer carries members across continue-as-new.
	Buffer []Member `json:"buffer,omitempty"`
}

// RemoveResult answers UpdateRemove.
type RemoveResult struct {
	Removed bool `json:"removed"`
}

// TaskInput starts a MixpanelTask workflow.
type TaskInput struct {
	Destination string    `json:"destination"`
	TaskID      string    `json:"task_id"`
	CreatedAt   time.Time `json:"created_at"`
	// PollInterval, MaxTaskAge and MaxIDs are the worker's settings, filled in
	// by the activity that starts the workflow.
	PollInterval time.Duration `json:"poll_interval"`
	MaxTaskAge   time.Duration `json:"max_task_age"`
	MaxIDs       int           `json:"max_ids,omitempty"`
	Members      []Member      `json:"members"`
	// Regulation is the compliance type the task was created with, for
	// creating its replacements (empty in tasks of earlier releases: never replaced).
	Regulation string `json:"regulation,omitempty"`
	// Chain lists the tasks this one replaces, oldest first: a task that
	// ended FAILURE is split, one revoked in Mixpanel is created again.
	Chain []string `json:"chain,omitempty"`
	// Resubmitted is true for the replacement of a revoked task (not replaced again).
	Resubmitted bool `json:"resubmitted,omitempty"`
}

// Forwarded is the SignalForwarded payload.
type Forwarded struct {
	Destination string   `json:"destination"`
	TaskIDs     []string `json:"task_ids"`
}

// TaskResult is the SignalTaskResult payload: how one task ended for one destination.
type TaskResult struct {
	Destination string `json:"destination"`
	TaskID      string `json:"task_id,omitempty"`
	// TaskStatus is Mixpanel's status (SUCCESS, FAILURE, REVOKED) or empty when no task was made.
	TaskStatus TaskStatus `json:"task_status,omitempty"`
	Succeeded  bool       `json:"succeeded"`
	// Reason says why it failed; never holds identity values.
	Reason string `json:"reason,omitempty"`
	// Retryable is true when an operator's retry can help (credentials rejected).
	Retryable bool `json:"retryable,omitempty"`
	// ResultURL is a finished retrieval's download link (access and portability).
	ResultURL string `json:"result_url,omitempty"`
	// Superseded is true when the task ended but the request's ids were sent
	// again in NextTaskIDs (a failed task split to isolate the ids Mixpanel
	// cannot process, or a revoked task created again): the request waits for those.
	Superseded  bool     `json:"superseded,omitempty"`
	NextTaskIDs []string `json:"next_task_ids,omitempty"`
}

// ResolveChoice is an operator's answer to an ambiguous resolution.
type ResolveChoice struct {
	ProfileID string `json:"profile_id"`
	// By names who chose ("operator alice"), for the ledger; never a token.
	By string `json:"by,omitempty"`
}

// RetryRequest is UpdateRetry's argument (clients before it existed send none).
type RetryRequest struct {
	// By names who retried ("operator alice"), for the ledger; never a token.
	By string `json:"by,omitempty"`
}

// CancelResult answers UpdateCancel.
type CancelResult struct {
	Cancelled bool `json:"cancelled"`
}

// DestinationView is one destination's forwarding state in a StatusView.
type DestinationView struct {
	Destination   string           `json:"destination"`
	Status        ForwardingStatus `json:"status"`
	StatusMessage string           `json:"status_message,omitempty"`
	TaskIDs       []string         `json:"task_ids,omitempty"`
	TaskStatus    TaskStatus       `json:"task_status,omitempty"`
}

// StatusView answers QueryStatus.
type StatusView struct {
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	Phase  string `json:"phase"`
	// Candidates are the profiles an operator chooses from while the request is held.
	Candidates   []string          `json:"candidates,omitempty"`
	Destinations []DestinationView `json:"destinations,omitempty"`
}

// ErrTooLate is the message of a refused cancel.
const ErrTooLate = "too late to cancel: the request was already sent to a destination"

// MixpanelTaskQueue is the task queue of every Mixpanel call for one destination;
// its workers set TaskQueueActivitiesPerSecond to the destination's rate limit.
func MixpanelTaskQueue(taskQueue, destination string) string {
	return taskQueue + "-mixpanel-" + destination
}

// Workflow type names, as registered by the worker.
const (
	WorkflowDSR          = "DSR"
	WorkflowBatch        = "Batch"
	WorkflowMixpanelTask = "MixpanelTask"
	WorkflowRetention    = "Retention"
)

// ReasonTerminated is the status reason of a request whose workflow was
// terminated (the Web UI's Terminate, `temporal workflow terminate`).
const ReasonTerminated = "workflow terminated by an operator"

// EndedReason says in words how a request's workflow run ended, for a
// request the ledger still holds open ("" while the workflow runs).
func EndedReason(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return ""
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return ReasonTerminated
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "workflow timed out"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "workflow cancelled in Temporal before it recorded an outcome"
	default:
		return "workflow ended without recording an outcome"
	}
}

// TaskStatus is the state of a Mixpanel task, upper case as Mixpanel's GDPR
// API reports it.
type TaskStatus string

// Task states. PENDING and STAGING can still be cancelled; STARTED cannot.
const (
	TaskPending  TaskStatus = "PENDING"
	TaskStaging  TaskStatus = "STAGING"
	TaskStarted  TaskStatus = "STARTED"
	TaskSuccess  TaskStatus = "SUCCESS"
	TaskFailure  TaskStatus = "FAILURE"
	TaskRevoked  TaskStatus = "REVOKED"
	TaskNotFound TaskStatus = "NOT_FOUND"
	// TaskUnknown means Mixpanel could not locate the task for now; poll again.
	TaskUnknown TaskStatus = "UNKNOWN"
)

// Terminal reports whether the task will not change any more: SUCCESS,
// FAILURE (inputs were wrong: create a new task) or REVOKED (cancelled).
func (s TaskStatus) Terminal() bool {
	return s == TaskSuccess || s == TaskFailure || s == TaskRevoked
}

// Cancellable reports whether a cancel can still succeed (PENDING, STAGING).
func (s TaskStatus) Cancellable() bool { return s == TaskPending || s == TaskStaging }

// Search attributes of DSR workflows (values never hold identities); package
// workflows registers and upserts them, the intake and the sweep set them at start.
var (
	SearchStatus          = temporal.NewSearchAttributeKeyKeyword("DsrStatus")
	SearchType            = temporal.NewSearchAttributeKeyKeyword("DsrType")
	SearchRegulation      = temporal.NewSearchAttributeKeyKeyword("DsrRegulation")
	SearchController      = temporal.NewSearchAttributeKeyKeyword("DsrController")
	SearchDestinationTask = temporal.NewSearchAttributeKeyKeyword("DsrDestinationTask")
	SearchDueTime         = temporal.NewSearchAttributeKeyTime("DsrDueTime")
)

// StartAttributes are the search attributes a request's workflow run starts
// with: an erasure in its waiting period says so, for the Web UI's "in waiting
// period" query.
func StartAttributes(in Request) temporal.SearchAttributes {
	status := string(StatusPending)
	if in.ForwardAt.After(in.ReceivedTime) && in.EndedReason == "" {
		status = StatusWithNote(status, NoteWaitingPeriod)
	}
	return temporal.NewSearchAttributes(
		SearchStatus.ValueSet(status),
		SearchType.ValueSet(in.Type),
		SearchRegulation.ValueSet(in.Regulation),
		SearchController.ValueSet(in.ControllerID),
		SearchDueTime.ValueSet(in.DueTime),
	)
}

// Notes DsrStatus carries after the status, e.g. "pending (waiting period)":
// the Web UI's list shows them and saved queries select on them.
const (
	// NoteCallbacksPending marks a request whose outcome is final while its callbacks are still being delivered.
	NoteCallbacksPending = "callbacks pending"
	// NoteResultsAvailable marks a completed access or portability request whose results can still be downloaded.
	NoteResultsAvailable = "results available"
	// NoteWaitingPeriod marks an erasure in its cancellable waiting period.
	NoteWaitingPeriod = "waiting period"
	// NoteHeld marks a request held for an operator (an ambiguous identity).
	NoteHeld = "held for an operator"
)

// SearchStatusValues are the DsrStatus values of requests whose status is
// status: the plain value and the value with each note it can carry.
func SearchStatusValues(status string) []string {
	out := []string{status}
	var notes []string
	switch Status(status) {
	case StatusPending:
		notes = []string{NoteWaitingPeriod, NoteHeld}
	case StatusCompleted:
		notes = []string{NoteCallbacksPending, NoteResultsAvailable}
	case StatusCancelled, StatusFailed:
		notes = []string{NoteCallbacksPending}
	}
	for _, note := range notes {
		out = append(out, StatusWithNote(status, note))
	}
	return out
}

// StatusWithNote is the DsrStatus value of a status with a note ("" for none).
func StatusWithNote(status, note string) string {
	if note == "" {
		return status
	}
	return status + " (" + note + ")"
}
