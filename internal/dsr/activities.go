package dsr

import "time"

// Activity inputs and results. Activity names are the method names of
// activities.Activities (registered as they are); the Go types here may be
// renamed, their JSON field names may not (running workflows and the saved
// histories carry them).

// RecordStatusInput records one request status transition in the ledger.
type RecordStatusInput struct {
	ControllerID string    `json:"controller_id"`
	RequestID    string    `json:"request_id"`
	To           Status    `json:"to"`
	Reason       string    `json:"reason,omitempty"`
	At           time.Time `json:"at"`
}

// DeliverCallbacksInput is one status change to deliver to every callback URL of a request.
type DeliverCallbacksInput struct {
	ControllerID string `json:"controller_id"`
	RequestID    string `json:"request_id"`
	// Seq numbers the request's status changes from 1, in order (0 in inputs
	// queued before sequence numbers): each is delivered once per URL.
	Seq                    int       `json:"seq,omitempty"`
	Status                 Status    `json:"status"`
	URLs                   []string  `json:"urls"`
	APIVersion             string    `json:"api_version"`
	ExpectedCompletionTime time.Time `json:"expected_completion_time"`
	ResultsURL             string    `json:"results_url,omitempty"`
	ResultsCount           int       `json:"results_count,omitempty"`
	// StatusReason and DueTime go in the callback's processor extension.
	StatusReason string    `json:"status_reason,omitempty"`
	DueTime      time.Time `json:"due_time,omitzero"`
}

// ResolveIdentitiesInput asks which distinct ids each destination should receive and,
// with Enqueue, joins the batch of every destination that gets some (one
// activity instead of two keeps an erasure's history short).
type ResolveIdentitiesInput struct {
	ControllerID string     `json:"controller_id"`
	RequestID    string     `json:"request_id"`
	Regulation   string     `json:"regulation"`
	Identities   []Identity `json:"identities"`
	Enqueue      bool       `json:"enqueue,omitempty"`
	// ChosenProfile settles an ambiguity: the profile an operator chose.
	ChosenProfile string `json:"chosen_profile,omitempty"`
}

// ResolveIdentitiesResult is the outcome of identity resolution for every active destination.
type ResolveIdentitiesResult struct {
	Plans []Plan `json:"plans"`
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
	Destination string `json:"destination"`
	Regulation  string `json:"regulation"`
	Member      Member `json:"member"`
}

// RemoveFromBatchInput takes a request out of a batch that has not sent it yet.
type RemoveFromBatchInput struct {
	Destination  string `json:"destination"`
	Regulation   string `json:"regulation"`
	ControllerID string `json:"controller_id"`
	RequestID    string `json:"request_id"`
}

// CreateDeletionTaskInput creates one Mixpanel deletion task.
type CreateDeletionTaskInput struct {
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

// PollTaskInput names one Mixpanel task of a destination.
type PollTaskInput struct {
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

// PollTaskResult is a Mixpanel task's terminal status.
type PollTaskResult struct {
	Status TaskStatus `json:"status"`
	// ResultURL is the retrieval's download URL on SUCCESS.
	ResultURL string `json:"result_url,omitempty"`
}

// NotifyMembersInput tells members of a task that it was created (Forwarded) or how it ended (Result).
type NotifyMembersInput struct {
	Destination string   `json:"destination"`
	Members     []Member `json:"members"`
	// Result is nil for a "forwarded" notice.
	Result *TaskResult `json:"result,omitempty"`
}

// Error types the workflows and retry policies branch on.
const (
	ErrTypeUnauthorized    = "Unauthorized"
	ErrTypeBadRequest      = "BadRequest"
	ErrTypeTaskNotFinished = "TaskNotFinished"
	ErrTypeTaskNotFound    = "TaskNotFound"
	ErrTypeResolverFailed  = "ResolverFailed"
	// ErrTypeCallbackUndelivered: a status callback could not be delivered yet (retried).
	ErrTypeCallbackUndelivered = "CallbackUndelivered"
)

// RecordExtensionInput records the extension of a request's due time in the ledger.
type RecordExtensionInput struct {
	ControllerID    string    `json:"controller_id"`
	RequestID       string    `json:"request_id"`
	OriginalDueTime time.Time `json:"original_due_time"`
	DueTime         time.Time `json:"due_time"`
	At              time.Time `json:"at"`
	Reason          string    `json:"reason"`
	Operator        string    `json:"operator,omitempty"`
}

// CreateRetrievalTaskInput creates one Mixpanel data-retrieval task for a request.
type CreateRetrievalTaskInput struct {
	Destination    string   `json:"destination"`
	Regulation     string   `json:"regulation"`
	DisclosureType string   `json:"disclosure_type,omitempty"`
	DistinctIDs    []string `json:"distinct_ids"`
}

// Export is one destination's finished retrieval.
type Export struct {
	Destination string `json:"destination"`
	ResultURL   string `json:"result_url"`
	// TaskID is the retrieval task that made the export (empty in histories before it was sent).
	TaskID string `json:"task_id,omitempty"`
}

// BuildResultsInput builds the subject's results bundle.
type BuildResultsInput struct {
	ControllerID string `json:"controller_id"`
	RequestID    string `json:"request_id"`
	// Profiles are the matched profile ids whose live profile goes into profile.jsonl.
	Profiles []string `json:"profiles,omitempty"`
	Exports  []Export `json:"exports,omitempty"`
	// Identities are the request's: the bundle is linked to the raw ones
	// (as keyed hashes), so that an erasure of the subject removes it.
	Identities []Identity `json:"identities,omitempty"`
}

// BuildResultsResult describes a built bundle.
type BuildResultsResult struct {
	// Token names the bundle in the results store and in its URL.
	Token string `json:"token"`
	URL   string `json:"url"`
	Count int    `json:"count"`
	// Matched is false when nothing matched the subject: the URL answers 404.
	Matched   bool      `json:"matched"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ExpireResultsInput removes a results bundle when its link expires.
type ExpireResultsInput struct {
	ControllerID string `json:"controller_id"`
	RequestID    string `json:"request_id"`
	Token        string `json:"token"`
}

// Error types of the results path.
const (
	ErrTypeResultsUnreadable = "ResultsUnreadable"
)

// CompleteErasureInput completes an erasure: the status change to record,
// and what dsrflow's own copy of the subject is.
type CompleteErasureInput struct {
	Status RecordStatusInput `json:"status"`
	// Profiles are the profile ids the request resolved to.
	Profiles []string `json:"profiles,omitempty"`
	// Identities are the request's identities; the raw ones go on the
	// suppression list too.
	Identities []Identity `json:"identities,omitempty"`
}

// CompleteErasureResult says what was erased locally.
type CompleteErasureResult struct {
	// Reason is the completion reason as recorded, with the count.
	Reason string `json:"reason"`
	// RowsRemoved counts the profile store rows deleted (profiles and their identities).
	RowsRemoved int `json:"rows_removed"`
	// BundlesRemoved counts the results bundles of the subject deleted.
	BundlesRemoved int `json:"bundles_removed"`
}
