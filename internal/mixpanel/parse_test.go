package mixpanel_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/mixpanel"
)

// Parsing tests: canned Mixpanel answers, each shape the sources show.

type canned struct {
	code   int
	body   string
	header map[string]string
}

// cannedClient returns a client whose every call gets the canned answer.
func cannedClient(t *testing.T, a canned) *mixpanel.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.code)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	c, err := mixpanel.New(mixpanel.Options{
		BaseURL:      srv.URL + "/api/app",
		ProjectToken: config.NewSecret(projectToken),
		OAuthToken:   config.NewSecret(oauthToken),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestParseCreate(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"object with task_id (what real clients see)",
			`{"status":"ok","results":{"task_id":"35bd8477-f71f-4088-af55-c88a6fb4ad4a"}}`, "35bd8477-f71f-4088-af55-c88a6fb4ad4a"},
		{"list with tracking_id (reference example)",
			`{"status":"ok","results":[{"status":"PENDING", "disclosure_type":"DATA", "date_requested":"2020-03-09T22:28:55.078315", "tracking_id":"1583792934719392965", "project_id":1978118, "compliance_type":"ccpa", "destination_url":null, "requesting_user":"admin@example.com", "distinct_id_count":1}]}`,
			"1583792934719392965"},
		{"list with a numeric 19-digit tracking_id",
			`{"status":"ok","results":[{"status":"PENDING","tracking_id":1583792934719392965,"project_id":1978118}]}`, "1583792934719392965"},
		{"object with a numeric task_id above 2^53",
			`{"status":"ok","results":{"task_id":9007199254740993}}`, "9007199254740993"},
		{"object with tracking_id", `{"status":"ok","results":{"tracking_id":"abc"}}`, "abc"},
		{"v2 shape without status", `{"results": {"task_id": "f5d3a418-a3d1-4177-8104-19bb5579af3a"}}`, "f5d3a418-a3d1-4177-8104-19bb5579af3a"},
		{"201 Created", `{"results":{"task_id":"x1"}}`, "x1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := 200
			if strings.HasPrefix(tc.name, "201") {
				code = 201
			}
			for _, create := range createCalls {
				got, err := create(cannedClient(t, canned{code: code, body: tc.body}))
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
			}
		})
	}
}

var createCalls = []func(*mixpanel.Client) (string, error){
	func(c *mixpanel.Client) (string, error) {
		return c.CreateDeletion(ctx, []string{"user-1"}, mixpanel.GDPR)
	},
	func(c *mixpanel.Client) (string, error) {
		return c.CreateRetrieval(ctx, []string{"user-1"}, mixpanel.CCPA, mixpanel.DisclosureData)
	},
}

func TestParseCreateUnusable(t *testing.T) {
	for _, body := range []string{
		``, `<html>502</html>`, `{"status":"ok"}`, `{"status":"ok","results":[]}`, `{"status":"ok","results":{}}`,
		`{"status":"ok","results":null}`, `{"status":"error","error":"oops"}`, `{"results":{"task_id":true}}`,
		`{"results":{"task_id":""}}`, `{"results":"x"}`, `[1,2]`, `{"results":{"task_id":"a"`,
		`{"results":` + strings.Repeat(" ", 1<<20) + `{"task_id":"a"}}`,
	} {
		_, err := createCalls[0](cannedClient(t, canned{code: 200, body: body}))
		var te *mixpanel.TransientError
		if !errors.As(err, &te) || !mixpanel.Retryable(err) {
			t.Errorf("2xx body %.40q: got %v, want a *TransientError", body, err)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       mixpanel.Task
	}{
		{"full shape",
			`{"status":"ok","results":{"status":"STARTED","tracking_id":"1583958896131033662","distinct_ids":["a","b"],"compliance_type":"gdpr","project_id":1978118,"date_requested":"2020-03-09T22:28:55.078315","requesting_user":"admin@example.com"}}`,
			mixpanel.Task{Status: dsr.TaskStarted, DistinctIDs: []string{"a", "b"}, ComplianceType: "gdpr", ProjectID: "1978118",
				DateRequested: "2020-03-09T22:28:55.078315", RequestingUser: "admin@example.com"}},
		{"older example",
			`{"status": "ok", "results": {"status": "PENDING", "result": "", "distinct_ids": ["1"]}}`,
			mixpanel.Task{Status: dsr.TaskPending, DistinctIDs: []string{"1"}}},
		{"without status envelope",
			`{"results":{"status":"PENDING","result":"","distinct_ids":["1"]}}`,
			mixpanel.Task{Status: dsr.TaskPending, DistinctIDs: []string{"1"}}},
		{"numeric ids",
			`{"results":{"status":"SUCCESS","distinct_ids":[1583792934719392965,"x",null,{}],"project_id":12345678901234567890}}`,
			mixpanel.Task{Status: dsr.TaskSuccess, DistinctIDs: []string{"1583792934719392965", "x"}, ProjectID: "12345678901234567890"}},
		{"OpenAPI document's retrieval success (link in results.results)",
			`{"status":"ok","results":{"status":"SUCCESS","results":"https://storage.googleapis.com/blob-path?sig=abc","distinct_ids":["1"]}}`,
			mixpanel.Task{Status: dsr.TaskSuccess, Result: "https://storage.googleapis.com/blob-path?sig=abc", DistinctIDs: []string{"1"}}},
		{"OpenAPI document's retrieval before SUCCESS",
			`{"status":"ok","results":{"status":"STARTED","results":"","distinct_ids":["1"]}}`,
			mixpanel.Task{Status: dsr.TaskStarted, DistinctIDs: []string{"1"}}},
		{"v2 retrieval success",
			`{"results": {"status": "SUCCESS", "result": "https://storage.googleapis.com/blob-path?sig=abc"}}`,
			mixpanel.Task{Status: dsr.TaskSuccess, Result: "https://storage.googleapis.com/blob-path?sig=abc"}},
		{"retrieval with disclosure type", `{"status":"ok","results":{"status":"REVOKED","disclosure_type":"DATA","result":null,"destination_url":null}}`,
			mixpanel.Task{Status: dsr.TaskRevoked, DisclosureType: "DATA"}},
		{"lower case status", `{"results":{"status":"failure"}}`, mixpanel.Task{Status: dsr.TaskFailure}},
		{"UNKNOWN", `{"results":{"status":"UNKNOWN"}}`, mixpanel.Task{Status: dsr.TaskUnknown}},
		{"a status Mixpanel may add", `{"results":{"status":"ARCHIVING"}}`, mixpanel.Task{Status: "ARCHIVING"}},
		{"results as a list", `{"status":"ok","results":[{"status":"STAGING","tracking_id":1}]}`, mixpanel.Task{Status: dsr.TaskStaging}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cannedClient(t, canned{code: 200, body: tc.body})
			got, err := c.DeletionStatus(ctx, "T1")
			if err != nil {
				t.Fatal(err)
			}
			tc.want.ID = "T1"
			if !slices.Equal(got.DistinctIDs, tc.want.DistinctIDs) {
				t.Errorf("ids %q, want %q", got.DistinctIDs, tc.want.DistinctIDs)
			}
			got.DistinctIDs, tc.want.DistinctIDs = nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestParseStatusNotFound(t *testing.T) {
	for _, a := range []canned{
		{code: 200, body: `{"status":"ok","results":{"status":"NOT_FOUND"}}`},
		{code: 200, body: `{"results":{"status":"NOT FOUND"}}`},
		{code: 404, body: `{"status":"error","error":"not found"}`},
		{code: 404, body: `<html>Not Found</html>`},
	} {
		task, err := cannedClient(t, a).RetrievalStatus(ctx, "T2")
		if !errors.Is(err, mixpanel.ErrTaskNotFound) || task.Status != dsr.TaskNotFound || task.ID != "T2" {
			t.Errorf("%d %s: got %+v, %v", a.code, a.body, task, err)
		}
	}
	var te *mixpanel.TransientError
	if _, err := cannedClient(t, canned{code: 200, body: `{"results":{"result":""}}`}).DeletionStatus(ctx, "T"); !errors.As(err, &te) {
		t.Errorf("status without status: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name  string
		a     canned
		check func(*testing.T, error)
	}{
		{"401", canned{code: 401, body: `{"status":"error","error":"Invalid OAuth token"}`}, func(t *testing.T, err error) {
			var e *mixpanel.UnauthorizedError
			if !errors.As(err, &e) || e.StatusCode != 401 || e.Message != "Invalid OAuth token" {
				t.Errorf("got %#v", err)
			}
		}},
		{"403", canned{code: 403, body: `{"error":"not an admin"}`}, func(t *testing.T, err error) {
			var e *mixpanel.UnauthorizedError
			if !errors.As(err, &e) || e.StatusCode != 403 || e.Message != "not an admin" {
				t.Errorf("got %#v", err)
			}
		}},
		{"429 with Retry-After seconds", canned{code: 429, body: `{"status":"error","error":"Too Many Requests, this API is limited to 1 req/s"}`, header: map[string]string{"Retry-After": "7"}},
			func(t *testing.T, err error) {
				var e *mixpanel.RateLimitedError
				if !errors.As(err, &e) || e.RetryAfter != 7*time.Second || e.Message != "Too Many Requests, this API is limited to 1 req/s" {
					t.Errorf("got %#v", err)
				}
			}},
		{"429 with Retry-After date", canned{code: 429, body: `Too Many Requests`, header: map[string]string{"Retry-After": httpDate}},
			func(t *testing.T, err error) {
				var e *mixpanel.RateLimitedError
				if !errors.As(err, &e) || e.RetryAfter < 80*time.Second || e.RetryAfter > 90*time.Second || e.Message != "Too Many Requests" {
					t.Errorf("got %#v", err)
				}
			}},
		{"429 without Retry-After", canned{code: 429, body: `{"error":"too many outstanding tasks"}`}, func(t *testing.T, err error) {
			var e *mixpanel.RateLimitedError
			if !errors.As(err, &e) || e.RetryAfter != 0 {
				t.Errorf("got %#v", err)
			}
		}},
		{"429 with a bad Retry-After", canned{code: 429, header: map[string]string{"Retry-After": "soon"}}, func(t *testing.T, err error) {
			var e *mixpanel.RateLimitedError
			if !errors.As(err, &e) || e.RetryAfter != 0 || e.Message != "Too Many Requests" {
				t.Errorf("got %#v", err)
			}
		}},
		{"409 with numeric ids", canned{code: 409, body: `{"status":"error","error":{"conflicting_distinct_ids":["u1",1583792934719392965],"conflicting_task_ids":[1583792934719392966,"35bd8477-f71f-4088-af55-c88a6fb4ad4a"],"error":"ids u1 are in a running task"}}`},
			func(t *testing.T, err error) {
				var e *mixpanel.ConflictError
				if !errors.As(err, &e) || !slices.Equal(e.DistinctIDs, []string{"u1", "1583792934719392965"}) ||
					!slices.Equal(e.TaskIDs, []string{"1583792934719392966", "35bd8477-f71f-4088-af55-c88a6fb4ad4a"}) {
					t.Errorf("got %#v", err)
				}
			}},
		{"409 without details", canned{code: 409, body: `{"status":"error","error":"conflict"}`}, func(t *testing.T, err error) {
			var e *mixpanel.ConflictError
			if !errors.As(err, &e) || len(e.DistinctIDs) != 0 || len(e.TaskIDs) != 0 {
				t.Errorf("got %#v", err)
			}
		}},
		{"400", canned{code: 400, body: `{"status":"error","error":"compliance_type must be GDPR or CCPA"}`}, func(t *testing.T, err error) {
			var e *mixpanel.BadRequestError
			if !errors.As(err, &e) || e.StatusCode != 400 || e.Message != "compliance_type must be GDPR or CCPA" || mixpanel.Retryable(err) {
				t.Errorf("got %#v", err)
			}
		}},
		{"404 on create", canned{code: 404, body: `<html>nope</html>`}, func(t *testing.T, err error) {
			var e *mixpanel.BadRequestError
			if !errors.As(err, &e) || e.StatusCode != 404 || e.Message != "Not Found" {
				t.Errorf("got %#v", err)
			}
		}},
		{"500", canned{code: 500, body: `{"status":"error","error":"internal"}`}, func(t *testing.T, err error) {
			var e *mixpanel.TransientError
			if !errors.As(err, &e) || e.StatusCode != 500 || e.Message != "internal" {
				t.Errorf("got %#v", err)
			}
		}},
		{"502 HTML", canned{code: 502, body: `<html><body>Bad Gateway</body></html>`}, func(t *testing.T, err error) {
			var e *mixpanel.TransientError
			if !errors.As(err, &e) || e.StatusCode != 502 || e.Message != "Bad Gateway" {
				t.Errorf("got %#v", err)
			}
		}},
		{"408", canned{code: 408}, func(t *testing.T, err error) {
			if !mixpanel.Retryable(err) {
				t.Errorf("got %#v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := createCalls[0](cannedClient(t, tc.a))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "mixpanel: create deletion task: ") {
				t.Errorf("message %q", err)
			}
			tc.check(t, err)
		})
	}
}

func TestCancelAnswers(t *testing.T) {
	for _, tc := range []struct {
		code int
		want error
	}{
		{204, nil},
		{200, nil},
		{405, mixpanel.ErrNotCancellable},
		{404, mixpanel.ErrTaskNotFound},
	} {
		c := cannedClient(t, canned{code: tc.code})
		if err := c.CancelDeletion(ctx, "T"); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("HTTP %d: got %v, want %v", tc.code, err, tc.want)
		}
	}
	var ue *mixpanel.UnauthorizedError
	if err := cannedClient(t, canned{code: 401}).CancelDeletion(ctx, "T"); !errors.As(err, &ue) {
		t.Errorf("HTTP 401: %v", err)
	}
}

func TestStatusTerminal(t *testing.T) {
	for s, want := range map[dsr.TaskStatus]bool{
		dsr.TaskPending: false, dsr.TaskStaging: false, dsr.TaskStarted: false,
		dsr.TaskSuccess: true, dsr.TaskFailure: true, dsr.TaskRevoked: true,
		dsr.TaskNotFound: false, dsr.TaskUnknown: false, "": false,
	} {
		if s.Terminal() != want {
			t.Errorf("%q.Terminal() = %v", s, !want)
		}
	}
}

func TestRedirectNeverChangesMethod(t *testing.T) {
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method)
		if !strings.HasSuffix(r.URL.Path, "/") {
			http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently) // as Django's APPEND_SLASH would
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c, err := mixpanel.New(mixpanel.Options{BaseURL: srv.URL, ProjectToken: config.NewSecret("p"), OAuthToken: config.NewSecret("o")})
	if err != nil {
		t.Fatal(err)
	}
	err = c.CancelDeletion(ctx, "T1")
	var te *mixpanel.TransientError
	if !errors.As(err, &te) || te.StatusCode != http.StatusMovedPermanently || !slices.Equal(methods, []string{"DELETE"}) {
		t.Fatalf("cancel answered 301: err %v, methods %v; want an error and no GET", err, methods)
	}
}
