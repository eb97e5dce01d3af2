package mixpanel

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dsrflow/dsrflow/internal/config"
)

// FuzzParseResponse feeds arbitrary answers to every response parser and to
// the error classification: none may panic, a parsed create must yield an
// id, and no error may quote the tokens or the ids.
func FuzzParseResponse(f *testing.F) {
	for _, seed := range []struct {
		code int
		body string
	}{
		{200, `{"status":"ok","results":{"task_id":"35bd8477-f71f-4088-af55-c88a6fb4ad4a"}}`},
		{200, `{"status":"ok","results":[{"status":"PENDING","tracking_id":1583792934719392965,"project_id":1978118}]}`},
		{200, `{"status":"ok","results":{"status":"SUCCESS","result":"https://x/y.zip","distinct_ids":["1",2]}}`},
		{200, `{"results":{"status":"NOT_FOUND"}}`},
		{201, `{"status":"ok","results":{"status":"SUCCESS","results":"https://x/y.zip","distinct_ids":["1"]}}`},
		{200, `{"status":"ok","results":{"tracking_id":"t","status":"NOT_FOUND","requesting_user":"","compliance_type":"","project_id":1,"date_requested":"","distinct_ids":[]}}`},
		{403, `{"status":"error","error":"Forbidden"}`},
		{409, `{"status":"error","error":{"conflicting_distinct_ids":["a"],"conflicting_task_ids":[7],"error":"x"}}`},
		{401, `{"status":"error","error":"PTOKEN is wrong for fuzz-id"}`},
		{429, `Too Many Requests, this API is limited to 1 req/s`},
		{502, `<html>`},
		{200, `{"results":[]}`},
		{200, `{"results":{"task_id":-1e999}}`},
	} {
		f.Add(seed.code, []byte(seed.body))
	}
	c, err := New(Options{BaseURL: "https://mixpanel.com/api/app", ProjectToken: config.NewSecret("PTOKEN"), OAuthToken: config.NewSecret("OTOKEN")})
	if err != nil {
		f.Fatal(err)
	}
	ids := []string{"fuzz-id"}
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		if id, err := parseCreate(body); err == nil && id == "" {
			t.Fatal("parseCreate returned an empty id without an error")
		}
		if task, err := parseStatus(body); err == nil && task.Status == "" {
			t.Fatal("parseStatus returned an empty status without an error")
		}
		parseConflict(body)
		errorMessage(body)
		r := response{status: code, header: http.Header{"Retry-After": {string(body)}}, body: body}
		for _, e := range []error{c.statusError(r, ids), c.protocolError(r, errString(body))} {
			if _, conflict := e.(*ConflictError); conflict {
				continue // names Mixpanel's task ids verbatim
			}
			if s := e.Error(); strings.Contains(s, "PTOKEN") || strings.Contains(s, "OTOKEN") {
				t.Fatalf("error reveals a token: %s", s)
			}
		}
	})
}

type errString []byte

func (e errString) Error() string { return string(e) }
