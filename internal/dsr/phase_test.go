package dsr

import "testing"

// TestPhaseNames: every phase has its own display name, and only the phases
// before anything was sent accept a cancel.
func TestPhaseNames(t *testing.T) {
	seen := map[string]Phase{}
	for p := PhaseWaiting; p <= PhaseDone; p++ {
		name := p.String()
		if name == "unknown" {
			t.Errorf("phase %d has no name", p)
		}
		if q, dup := seen[name]; dup {
			t.Errorf("phases %d and %d are both shown as %q", q, p, name)
		}
		seen[name] = p
	}
	if (PhaseDone + 1).String() != "unknown" {
		t.Errorf("an out-of-range phase is shown as %q", (PhaseDone + 1).String())
	}
	for p, want := range map[Phase]bool{PhaseWaiting: true, PhaseQueued: true, PhaseEnqueuing: true,
		PhaseForwarded: false, PhaseRetrieving: false, PhaseAwaitingRetry: false, PhaseDone: false} {
		if p.Cancellable() != want {
			t.Errorf("%s: Cancellable() = %v, want %v", p, p.Cancellable(), want)
		}
	}
}
