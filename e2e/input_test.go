package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// postRaw submits body bytes exactly as given (json.Marshal would repair them).
func postRaw(t *testing.T, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, stack.APIURL+"/v1/requests", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+devstack.APIToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestStrictInputLeavesNothing: a body encoding/json would have repaired
// (invalid UTF-8, a case-variant key) is refused with the error object, and
// neither the ledger nor Temporal knows the request afterwards. A valid body
// with another processor's extension is accepted and the 201 says it was ignored.
func TestStrictInputLeavesNothing(t *testing.T) {
	tc, err := client.Dial(client.Options{HostPort: stack.Temporal.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	valid := func(id string) map[string]any {
		req := devstack.Erasure(id, "gdpr", "cust-strict")
		req["extensions"] = map[string]any{"localhost": map[string]any{"skip_waiting_period": true}, "other.example": map[string]any{"x": 1}}
		return req
	}
	for name, mangle := range map[string]func([]byte) []byte{
		"invalid UTF-8": func(b []byte) []byte { return bytes.Replace(b, []byte("cust-strict"), []byte("cust-\xffstrict"), 1) },
		"case-variant key": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"regulation":"gdpr"`), []byte(`"regulation":"gdpr","REGULATION":"ccpa"`), 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			id := newID()
			body, _ := json.Marshal(valid(id))
			mangled := mangle(body)
			if bytes.Equal(mangled, body) {
				t.Fatal("the body was not changed")
			}
			code, answer := postRaw(t, mangled)
			var e opendsr.Error
			if code != http.StatusBadRequest || json.Unmarshal(answer, &e) != nil || e.Code != 400 || len(e.Errors) == 0 || e.Errors[0].Location == "" {
				t.Fatalf("POST: %d %s, want 400 naming the field", code, answer)
			}
			if strings.Contains(string(answer), "strict") {
				t.Errorf("the answer echoes the identity value: %s", answer)
			}
			if resp := apiCall(t, http.MethodGet, "/v1/requests/"+id, nil); resp.Code != http.StatusNotFound {
				t.Errorf("GET after a refused POST: %d %s, want 404", resp.Code, resp.Body)
			}
			_, err := tc.DescribeWorkflowExecution(context.Background(), dsr.WorkflowID(devstack.Controller, id), "")
			var notFound *serviceerror.NotFound
			if !errors.As(err, &notFound) {
				t.Errorf("a workflow exists for a refused request: %v", err)
			}
		})
	}

	id := newID()
	resp := apiCall(t, http.MethodPost, "/v1/requests", valid(id))
	var created struct {
		Extensions map[string]opendsr.CreatedExtension `json:"extensions"`
	}
	if resp.Code != http.StatusCreated || json.Unmarshal(resp.Body, &created) != nil {
		t.Fatalf("POST: %d %s", resp.Code, resp.Body)
	}
	if got := created.Extensions["localhost"].IgnoredExtensions; len(got) != 1 || got[0] != "other.example" {
		t.Errorf("ignored_extensions %q, want [other.example]: %s", got, resp.Body)
	}
}
