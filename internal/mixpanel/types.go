package mixpanel

import (
	"fmt"
	"strings"

	"github.com/dsrflow/dsrflow/internal/dsr"
)

// ComplianceType is the regulation a task is made under. Pick it from the
// request's regulation, never from the project's data residency.
type ComplianceType string

// Compliance types Mixpanel accepts.
const (
	GDPR ComplianceType = "GDPR"
	CCPA ComplianceType = "CCPA"
)

func (ct ComplianceType) normalize() (ComplianceType, bool) {
	switch v := ComplianceType(strings.ToUpper(strings.TrimSpace(string(ct)))); v {
	case GDPR, CCPA:
		return v, true
	}
	return "", false
}

// DisclosureType selects what a CCPA retrieval discloses.
type DisclosureType string

// Disclosure types of a CCPA retrieval.
const (
	DisclosureData       DisclosureType = "Data"
	DisclosureCategories DisclosureType = "Categories"
	DisclosureSources    DisclosureType = "Sources"
)

// normalize maps any capitalisation to the documented spelling; empty means Data.
func (dt DisclosureType) normalize() (DisclosureType, bool) {
	for _, v := range []DisclosureType{DisclosureData, DisclosureCategories, DisclosureSources} {
		if strings.EqualFold(strings.TrimSpace(string(dt)), string(v)) {
			return v, true
		}
	}
	if strings.TrimSpace(string(dt)) == "" {
		return DisclosureData, true
	}
	return "", false
}

// normalizeStatus upper-cases a status and maps "NOT FOUND" to NOT_FOUND.
// Values Mixpanel may add later are kept as they are (not terminal).
func normalizeStatus(s string) dsr.TaskStatus {
	return dsr.TaskStatus(strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(s)), " ", "_"))
}

// Task is a deletion or retrieval task as Mixpanel reports it. Fields other
// than ID and Status are empty when Mixpanel's answer leaves them out.
type Task struct {
	// ID is the task id (tracking id) the status was asked for.
	ID string
	// Status is the task's state, upper case as Mixpanel documents it.
	Status dsr.TaskStatus
	// Result is the signed URL of a retrieval's result zip once SUCCESS. It
	// grants access to personal data: do not log it.
	Result string
	// DistinctIDs are the task's ids (personal data).
	DistinctIDs []string
	// ComplianceType as Mixpanel spells it, e.g. "gdpr".
	ComplianceType string
	// DisclosureType of a retrieval, e.g. "DATA".
	DisclosureType string
	// ProjectID is Mixpanel's numeric project id, as text.
	ProjectID string
	// DateRequested as Mixpanel writes it, e.g. 2020-03-09T22:28:55.078315 (UTC).
	DateRequested string
	// RequestingUser is the email of the OAuth token's owner.
	RequestingUser string
}

// String describes the task without personal data or the result URL, so that
// a Task is safe in log lines.
func (t Task) String() string {
	return fmt.Sprintf("task %s %s (%d distinct ids)", t.ID, t.Status, len(t.DistinctIDs))
}
