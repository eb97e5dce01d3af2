package dsr

import "time"

// UpdateExtend extends a request's statutory due time once (an Extension).
const UpdateExtend = "extend"

// Extension is an operator's extension of a request's due time, with the
// reason the controller is told.
type Extension struct {
	Reason string `json:"reason"`
	// Operator names who extended it (the operator token's name, or the CLI user).
	Operator string `json:"operator,omitempty"`
}

// ExtendResult answers UpdateExtend.
type ExtendResult struct {
	OriginalDueTime time.Time `json:"original_due_time"`
	DueTime         time.Time `json:"due_time"`
}

// CCPAExtension is the CCPA's further period (Cal. Civ. Code 1798.130(a)(2)).
const CCPAExtension = 45 * 24 * time.Hour

// ExtendedDueTime is the latest a due time may be extended to: GDPR Art.
// 12(3) allows two further months (the same day two months later, or that
// month's last day), the CCPA 45 further days. Any other regulation gets the
// GDPR rule.
func ExtendedDueTime(regulation string, due time.Time) time.Time {
	t := due.UTC()
	if regulation == RegulationCCPA {
		return t.Add(CCPAExtension)
	}
	y, m, d := t.Date()
	last := time.Date(y, m+3, 0, 0, 0, 0, 0, time.UTC).Day()
	return time.Date(y, m+2, min(d, last), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
