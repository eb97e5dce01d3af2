package activities

import (
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// StatusChange records one request status transition in the ledger.
type StatusChange struct {
	ControllerID string     `json:"controller_id"`
	RequestID    string     `json:"request_id"`
	To           dsr.Status `json:"to"`
	Reason       string     `json:"reason,omitempty"`
	At           time.Time  `json:"at"`
}

// CallbackInput is one status change to deliver to every callback URL of a request.
type CallbackInput struct {
	ControllerID string `json:"controller_id"`
	RequestID    string `json:"request_id"`
	// Seq numbers the request's status changes from 1, in order (0 in inputs
	// queued before sequence numbers): each is delivered once per URL.
	Seq                    int        `json:"seq,omitempty"`
	Status                 dsr.Status `json:"status"`
	URLs                   []string   `json:"urls"`
	APIVersion             string     `json:"api_version"`
	ExpectedCompletionTime time.Time  `json:"expected_completion_time"`
	ResultsURL             string     `json:"results_url,omitempty"`
	ResultsCount           int        `json:"results_count,omitempty"`
}

// ResolveInput asks which distinct ids each destination should receive and,
// with Enqueue, joins the batch of every destination that gets some (one
// activity instead of two keeps an erasure's history short).
type ResolveInput struct {
	ControllerID string         `json:"controller_id"`
	RequestID    string         `json:"request_id"`
	Regulation   string         `json:"regulation"`
	Identities   []dsr.Identity `json:"identities"`
	Enqueue      bool           `json:"enqueue,omitempty"`
	// ChosenProfile settles an ambiguity: the profile an operator chose.
	ChosenProfile string `json:"chosen_profile,omitempty"`
}

// ResolveResult is the outcome of identity resolution for every active destination.
type ResolveResult struct {
	Plans []dsr.Plan `json:"plans"`
	// Enqueued is true when every plan that is not skipped joined its batch.
	Enqueued bool `json:"enqueued,omitempty"`
	// Profiles are the ids of the profiles the identities resolved to.
	Profiles []string `json:"profiles,omitempty"`
	// Hold is true when several profiles matched and an operator must choose
	// one of Candidates; nothing was forwarded.
	Hold       bool     `json:"hold,omitempty"`
	Candidates []string `json:"candidates,omitempty"`
	// Reason explains the resolution without identity values.
	Reason string `json:"reason,omitempty"`
}

// EnqueueInput adds a request to a destination's batch for its regulation.
type EnqueueInput struct {
	Destination string     `json:"destination"`
	Regulation  string     `json:"regulation"`
	Member      dsr.Member `json:"member"`
}

// RemoveInput takes a request out of a batch that has not sent it yet.
type RemoveInput struct {
	Destination  string `json:"destination"`
	Regulation   string `json:"regulation"`
	ControllerID string `json:"controller_id"`
	RequestID    string `json:"request_id"`
}

// CreateTaskInput creates one Mixpanel deletion task.
type CreateTaskInput struct {
	Destination string   `json:"destination"`
	Regulation  string   `json:"regulation"`
	DistinctIDs []string `json:"distinct_ids"`
}

// CreateTaskResult is a created task, or the conflict Mixpanel answered with (409).
type CreateTaskResult struct {
	TaskID    string    `json:"task_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// PollInterval and MaxTaskAge are the worker's settings for polling the
	// task (MIXPANEL_POLL_INTERVAL, MIXPANEL_MAX_TASK_AGE), read when it was created.
	PollInterval       time.Duration `json:"poll_interval,omitempty"`
	MaxTaskAge         time.Duration `json:"max_task_age,omitempty"`
	ConflictingIDs     []string      `json:"conflicting_ids,omitempty"`
	ConflictingTaskIDs []string      `json:"conflicting_task_ids,omitempty"`
}

// TaskRef names one Mixpanel task of a destination.
type TaskRef struct {
	Destination string `json:"destination"`
	TaskID      string `json:"task_id"`
	// Kind is "deletion" or "retrieval".
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
}

// Task kinds.
const (
	KindDeletion  = "deletion"
	KindRetrieval = "retrieval"
)

// TaskOutcome is a Mixpanel task's terminal status.
type TaskOutcome struct {
	Status dsr.TaskStatus `json:"status"`
	// ResultURL is the retrieval's download URL on SUCCESS.
	ResultURL string `json:"result_url,omitempty"`
}

// NotifyInput tells members of a task that it was created (Forwarded) or how it ended (Result).
type NotifyInput struct {
	Destination string       `json:"destination"`
	Members     []dsr.Member `json:"members"`
	// Result is nil for a "forwarded" notice.
	Result *dsr.TaskResult `json:"result,omitempty"`
}

// Error types the workflows and retry policies branch on.
const (
	ErrTypeUnauthorized    = "Unauthorized"
	ErrTypeBadRequest      = "BadRequest"
	ErrTypeTaskNotFinished = "TaskNotFinished"
	ErrTypeTaskNotFound    = "TaskNotFound"
	ErrTypeResolverFailed  = "ResolverFailed"
)
