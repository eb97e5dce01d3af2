package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/identity"
)

const resolverToken = "Bearer SECRET-token-123"

func newFinder(t *testing.T, url string, opts identity.HTTPFinderOptions) *identity.HTTPFinder {
	t.Helper()
	f, err := identity.NewHTTPFinder(url, config.NewSecret("authorization: "+resolverToken), opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var resolverQueries = []identity.Query{
	{Type: "email", Value: " VAL-Ann@Example.com "},
	{Type: "controller_customer_id", Format: "sha256", Value: sha256Hex("VAL-c1")},
	{Type: "ios_vendor_id", Value: "VAL-v1"},
}

// assertClean fails when an error message holds an identity value, the
// header's value, or the URL's path.
func assertClean(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, secret := range []string{"VAL", "SECRET", sha256Hex("VAL-c1"), "/resolve"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q holds %q", msg, secret)
		}
	}
}

func TestHTTPFinderFind(t *testing.T) {
	var got struct {
		ControllerID string              `json:"controller_id"`
		Identities   []map[string]string `json:"identities"`
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/resolve" || r.Header.Get("Authorization") != resolverToken ||
			r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-DSR-Controller-Id") != owner {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, `{"profiles":[
			{"profile_id":"p2","identities":{"ios_vendor_id":["VAL-v1","VAL-v9"],"phone":"VAL-555"},"matched":[2]},
			{"profile_id":"p1","identities":{"email":"VAL-ann@example.com","controller_customer_id":"VAL-c1"},
			 "attributes":{"plan":"pro","seats":3},"matched":[1,0]}
		]}`)
	}))
	defer srv.Close()

	ms, err := newFinder(t, srv.URL+"/resolve", identity.HTTPFinderOptions{}).Find(context.Background(), owner, resolverQueries)
	if err != nil {
		t.Fatal(err)
	}
	if got.ControllerID != owner {
		t.Errorf("the call named controller %q, want %q", got.ControllerID, owner)
	}
	wantSent := []map[string]string{
		{"identity_type": "email", "identity_format": "raw", "identity_value": "VAL-Ann@Example.com"},
		{"identity_type": "controller_customer_id", "identity_format": "sha256", "identity_value": sha256Hex("VAL-c1")},
		{"identity_type": "ios_vendor_id", "identity_format": "raw", "identity_value": "VAL-v1"},
	}
	if !reflect.DeepEqual(got.Identities, wantSent) {
		t.Errorf("sent %v", got.Identities)
	}
	want := []identity.Match{
		{Profile: identity.Profile{ID: "p1", Identities: ids("controller_customer_id", "VAL-c1", "email", "VAL-ann@example.com"),
			Attributes: map[string]any{"plan": "pro", "seats": json.Number("3")}}, Inputs: []int{0, 1}},
		{Profile: identity.Profile{ID: "p2", Identities: ids("ios_vendor_id", "VAL-v1", "ios_vendor_id", "VAL-v9")}, Inputs: []int{2}},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Fatalf("matches %#v\nwant %#v", ms, want)
	}

	// What it returns resolves like the store's matches.
	res := identity.Resolve(identity.Input{Identities: resolverQueries, Matches: ms, Destinations: []config.Destination{mixpanel}, Policy: identity.PolicyAll})
	if res.Rule != identity.RuleAllProfiles || !reflect.DeepEqual(res.Plans[0].DistinctIDs, []string{"VAL-c1"}) {
		t.Fatalf("resolution %+v", res)
	}
}

func TestHTTPFinderErrors(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		transient bool
		status    int
		retry     time.Duration
		msg       string
	}{
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "VAL-ann@example.com broke us", http.StatusInternalServerError)
		}, true, 500, 0, "POST answered 500 Internal Server Error"},
		{"unavailable with retry-after", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		}, true, 503, 7 * time.Second, "503"},
		{"rate limited", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
		}, true, 429, 0, "429"},
		{"request timeout", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusRequestTimeout)
		}, true, 408, 0, "408"},
		{"unauthorized", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad token "+resolverToken, http.StatusUnauthorized)
		}, false, 401, 0, "POST answered 401 Unauthorized"},
		{"bad request", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "VAL", http.StatusBadRequest)
		}, false, 400, 0, "400"},
		{"not found", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
		}, false, 404, 0, "404"},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, false, 302, 0, "redirects are not followed"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "<html>VAL-ann@example.com</html>")
		}, false, 200, 0, "malformed response: not a JSON object with a profiles list"},
		{"matched out of range", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"profiles":[{"profile_id":"p1","identities":{"email":"VAL-a@x.com"},"matched":[3]}]}`)
		}, false, 200, 0, "profile p1: matched index 3 out of range (3 identities sent)"},
		{"matched missing", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"profiles":[{"profile_id":"p1","identities":{"email":"VAL-a@x.com"}}]}`)
		}, false, 200, 0, "profile p1: matched is empty"},
		{"identity of the wrong type", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"profiles":[{"profile_id":"p1","identities":{"email":{"VAL":1}},"matched":[0]}]}`)
		}, false, 200, 0, "identities.email: must be a string or a list of strings"},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(500 * time.Millisecond)
		}, true, 0, 0, "POST failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			f := newFinder(t, srv.URL+"/resolve?key=SECRET", identity.HTTPFinderOptions{Timeout: 200 * time.Millisecond})
			_, err := f.Find(context.Background(), owner, resolverQueries)
			var re *identity.ResolverError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a *ResolverError", err)
			}
			if re.Transient != tt.transient || identity.IsTransient(err) != tt.transient || re.StatusCode != tt.status || re.RetryAfter != tt.retry {
				t.Errorf("transient %v status %d retry %v, want %v %d %v", re.Transient, re.StatusCode, re.RetryAfter, tt.transient, tt.status, tt.retry)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to contain %q", err, tt.msg)
			}
			assertClean(t, err)
		})
	}
}

func TestHTTPFinderUnreachableAndTLS(t *testing.T) {
	// Nothing listens: transient.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := newFinder(t, url+"/resolve", identity.HTTPFinderOptions{}).Find(context.Background(), owner, resolverQueries)
	if !identity.IsTransient(err) {
		t.Errorf("unreachable: %v, want transient", err)
	}
	assertClean(t, err)

	// A certificate that does not verify needs a fix: permanent.
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	_, err = newFinder(t, tlsSrv.URL+"/resolve", identity.HTTPFinderOptions{}).Find(context.Background(), owner, resolverQueries)
	var re *identity.ResolverError
	if !errors.As(err, &re) || re.Transient {
		t.Errorf("untrusted certificate: %v, want permanent", err)
	}
	assertClean(t, err)

	// The caller cancelling is not the service's fault.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = newFinder(t, tlsSrv.URL+"/resolve", identity.HTTPFinderOptions{}).Find(ctx, owner, resolverQueries)
	if !errors.Is(err, context.Canceled) || errors.As(err, &re) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestHTTPFinderInvalidQueryNotSent(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	defer srv.Close()
	_, err := newFinder(t, srv.URL, identity.HTTPFinderOptions{}).Find(context.Background(), owner,
		[]identity.Query{{Type: "email", Format: "sha256", Value: "VAL-not-hex"}})
	if !errors.Is(err, identity.ErrInvalid) || calls != 0 {
		t.Fatalf("got %v after %d calls", err, calls)
	}
	assertClean(t, err)
}

func TestNewHTTPFinderConfig(t *testing.T) {
	for _, tt := range []struct {
		url, header string
		ok          bool
	}{
		{"https://ids.example/resolve", "Authorization: Bearer SECRET", true},
		{"https://ids.example/resolve", "X-Api-Key:SECRET", true},
		{"https://ids.example/resolve", "", true},
		{"https://ids.example/resolve", "Bearer SECRET", false},
		{"https://ids.example/resolve", "Bad Name: SECRET", false},
		{"https://ids.example/resolve", "Authorization:", false},
		{"ftp://ids.example/resolve", "", false},
		{"/resolve", "", false},
	} {
		f, err := identity.NewHTTPFinder(tt.url, config.NewSecret(tt.header), identity.HTTPFinderOptions{})
		if (err == nil) != tt.ok {
			t.Errorf("%q %q: %v", tt.url, tt.header, err)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error holds the header value: %v", err)
		}
		if f != nil {
			for _, s := range []string{f.String(), fmt.Sprintf("%v %+v %#v", f, *f, *f)} {
				if strings.Contains(s, "SECRET") {
					t.Errorf("printing the finder shows the secret: %s", s)
				}
			}
		}
	}
}
