package opendsr

import (
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// CCPAResponsePeriod is the CCPA deadline for answering a request.
const CCPAResponsePeriod = 45 * 24 * time.Hour

// DueTime returns the statutory deadline of a request submitted at
// submitted, in UTC.
//
// GDPR (Art. 12(3)): one calendar month, i.e. the same day and clock time
// in the next month, or the last day of the next month when that day does
// not exist (Jan 31 -> Feb 28, or Feb 29 in a leap year). CCPA: 45 days.
// Extensions of either are not applied. An unknown regulation gets the GDPR
// clock, the shorter of the two.
func DueTime(regulation string, submitted time.Time) time.Time {
	t := submitted.UTC()
	if regulation == dsr.RegulationCCPA {
		return t.Add(CCPAResponsePeriod)
	}
	y, m, d := t.Date()
	// Day 0 of the month after next is the last day of next month.
	last := time.Date(y, m+2, 0, 0, 0, 0, 0, time.UTC).Day()
	d = min(d, last)
	return time.Date(y, m+1, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
