package emulator

import "time"

// Task statuses, as Mixpanel spells them.
const (
	StatusPending  = "PENDING"
	StatusStaging  = "STAGING"
	StatusStarted  = "STARTED"
	StatusSuccess  = "SUCCESS"
	StatusFailure  = "FAILURE"
	StatusRevoked  = "REVOKED"
	StatusNotFound = "NOT_FOUND"
)

type task struct {
	id         string
	kind       string
	ids        []string // never changed after creation
	compliance string   // GDPR or CCPA
	disclosure string   // DATA, CATEGORIES, SOURCES; empty unless a CCPA retrieval
	created    time.Time
	seq        int
	fail       bool
	revoked    bool
	sig        string // signature of the result URL
}

// status derives the status from the time elapsed since creation: one step
// each for PENDING, STAGING and STARTED, then SUCCESS (or FAILURE).
func (t *task) status(now time.Time, step time.Duration) string {
	if t.revoked {
		return StatusRevoked
	}
	switch n := now.Sub(t.created) / step; {
	case n < 1:
		return StatusPending
	case n < 2:
		return StatusStaging
	case n < 3:
		return StatusStarted
	case t.fail:
		return StatusFailure
	}
	return StatusSuccess
}

func terminal(status string) bool {
	return status == StatusSuccess || status == StatusFailure || status == StatusRevoked
}
