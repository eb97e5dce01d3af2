package dsr

// Phase is where a DSR workflow is in its lifecycle: workflow state, never
// recorded in a history (the status query shows it with String).
type Phase int

// The phases of a DSR workflow, in order.
const (
	PhaseWaiting       Phase = iota // the erasure's waiting period
	PhaseResolving                  // resolving identities (access, portability)
	PhaseAmbiguous                  // several profiles matched: an operator chooses
	PhaseEnqueuing                  // resolving and joining the batches (erasure)
	PhaseQueued                     // in a batch, not yet sent
	PhaseForwarded                  // sent to every destination: waiting for the tasks
	PhaseRetrieving                 // access, portability: retrieving the data
	PhaseAwaitingRetry              // failed in a way an operator's retry can fix
	PhaseDone                       // final status recorded
)

// String is the phase as the status query (StatusView.Phase) shows it.
func (p Phase) String() string {
	switch p {
	case PhaseWaiting:
		return "waiting period"
	case PhaseResolving:
		return "resolving identities"
	case PhaseAmbiguous:
		return "ambiguous identity: waiting for an operator to choose a profile"
	case PhaseEnqueuing:
		return "joining batches"
	case PhaseQueued:
		return "queued for forwarding"
	case PhaseForwarded:
		return "forwarded"
	case PhaseRetrieving:
		return "retrieving data"
	case PhaseAwaitingRetry:
		return "failed, awaiting retry"
	case PhaseDone:
		return "done"
	}
	return "unknown"
}

// Cancellable reports whether a cancel is accepted in this phase (before
// anything was sent to a destination).
func (p Phase) Cancellable() bool {
	switch p {
	case PhaseWaiting, PhaseResolving, PhaseAmbiguous, PhaseEnqueuing, PhaseQueued:
		return true
	}
	return false
}
