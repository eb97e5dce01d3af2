package mixpanel

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mixpanel answers in more than one shape (see the package tests for
// fixtures), and ids may be JSON strings or numbers. Every id is kept as
// opaque text: a 19-digit id would lose digits as a float64.

type envelope struct {
	Status  json.RawMessage `json:"status"`
	Results json.RawMessage `json:"results"`
	Error   json.RawMessage `json:"error"`
}

// rawTask is one task object: a create answer or a status answer.
type rawTask struct {
	TaskID         json.RawMessage `json:"task_id"`
	TrackingID     json.RawMessage `json:"tracking_id"`
	Status         json.RawMessage `json:"status"`
	Result         json.RawMessage `json:"result"`
	Results        json.RawMessage `json:"results"`
	DistinctIDs    json.RawMessage `json:"distinct_ids"`
	ComplianceType json.RawMessage `json:"compliance_type"`
	DisclosureType json.RawMessage `json:"disclosure_type"`
	ProjectID      json.RawMessage `json:"project_id"`
	DateRequested  json.RawMessage `json:"date_requested"`
	RequestingUser json.RawMessage `json:"requesting_user"`
}

// parseCreate returns the task id of a create answer, either
// {"status":"ok","results":{"task_id":ID}} or
// {"status":"ok","results":[{"tracking_id":ID,...}]}.
func parseCreate(body []byte) (string, error) {
	t, err := resultTask(body)
	if err != nil {
		return "", err
	}
	raw := t.TaskID
	if isNull(raw) {
		raw = t.TrackingID
	}
	id, err := text(raw)
	if err != nil {
		return "", fmt.Errorf("task id: %w", err)
	}
	if id == "" {
		return "", errors.New("no task_id or tracking_id in results")
	}
	return id, nil
}

// parseStatus reads a status answer, either
// {"status":"ok","results":{"status":S,"tracking_id":...,"distinct_ids":[...],...}} or
// {"results":{"status":S,"result":"","distinct_ids":["1"]}}. ID is left empty.
// A retrieval's link is "results" in Mixpanel's OpenAPI document and "result"
// in its prose reference: either is read.
func parseStatus(body []byte) (Task, error) {
	t, err := resultTask(body)
	if err != nil {
		return Task{}, err
	}
	s, err := text(t.Status)
	if err != nil || s == "" {
		return Task{}, errors.New("no status in results")
	}
	task := Task{
		Status:         normalizeStatus(s),
		DistinctIDs:    textList(t.DistinctIDs),
		Result:         cmp.Or(loose(t.Results), loose(t.Result)),
		ComplianceType: loose(t.ComplianceType),
		DisclosureType: loose(t.DisclosureType),
		ProjectID:      loose(t.ProjectID),
		DateRequested:  loose(t.DateRequested),
		RequestingUser: loose(t.RequestingUser),
	}
	return task, nil
}

// resultTask returns the task object in "results": the object itself or the
// first element of a list.
func resultTask(body []byte) (rawTask, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return rawTask{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if s, _ := text(env.Status); strings.EqualFold(s, "error") {
		return rawTask{}, errors.New(`"status":"error" in a 2xx answer`)
	}
	raw := bytes.TrimSpace(env.Results)
	if isNull(raw) {
		return rawTask{}, errors.New("no results")
	}
	var t rawTask
	if raw[0] == '[' {
		var list []rawTask
		if err := json.Unmarshal(raw, &list); err != nil {
			return rawTask{}, fmt.Errorf("results: %w", err)
		}
		if len(list) == 0 {
			return rawTask{}, errors.New("empty results list")
		}
		return list[0], nil
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return rawTask{}, fmt.Errorf("results: %w", err)
	}
	return t, nil
}

// parseConflict returns the conflicting distinct ids and task ids of a 409
// body {"status":"error","error":{"conflicting_distinct_ids":[...],
// "conflicting_task_ids":[...],"error":"..."}} (also accepted at the top level).
func parseConflict(body []byte) (distinctIDs, taskIDs []string) {
	type conflict struct {
		DistinctIDs json.RawMessage `json:"conflicting_distinct_ids"`
		TaskIDs     json.RawMessage `json:"conflicting_task_ids"`
	}
	var env struct {
		conflict
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil {
		return nil, nil
	}
	c := env.conflict
	var inner conflict
	if bytes.HasPrefix(bytes.TrimSpace(env.Error), []byte("{")) && json.Unmarshal(env.Error, &inner) == nil {
		if !isNull(inner.DistinctIDs) || !isNull(inner.TaskIDs) {
			c = inner
		}
	}
	return textList(c.DistinctIDs), textList(c.TaskIDs)
}

// errorMessage extracts Mixpanel's explanation from an error body:
// {"error":"..."}, {"error":{"error":"..."}}, or a short plain-text body.
func errorMessage(body []byte) string {
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(body, &env); err == nil {
		if s, err := text(env.Error); err == nil && s != "" {
			return s
		}
		var inner struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(env.Error, &inner) == nil {
			if s, err := text(inner.Error); err == nil && s != "" {
				return s
			}
		}
		return loose(env.Message)
	}
	s := strings.TrimSpace(string(body))
	if !utf8.ValidString(s) || strings.HasPrefix(s, "<") || strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") {
		return "" // HTML error pages and broken JSON say nothing useful
	}
	return s
}

// text returns a JSON string's value or a JSON number's literal text; "" for
// null or absent.
func text(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return "", nil
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case c == '-' || c >= '0' && c <= '9':
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", err
		}
		return n.String(), nil
	}
	return "", errors.New("want a string or a number")
}

// loose is text for fields the client only passes along: anything else is "".
func loose(raw json.RawMessage) string {
	s, _ := text(raw)
	return s
}

// textList reads a list of strings or numbers, skipping anything else.
func textList(raw json.RawMessage) []string {
	var items []json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, err := text(it); err == nil && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}
