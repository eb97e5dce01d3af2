package opendsr_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/opendsr"
)

func TestDueTime(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		regulation, submitted, want string
	}{
		{"gdpr", "2026-01-31T10:15:30Z", "2026-02-28T10:15:30Z"},
		{"gdpr", "2028-01-31T10:15:30Z", "2028-02-29T10:15:30Z"},
		{"gdpr", "2028-01-29T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"gdpr", "2026-03-31T23:59:59Z", "2026-04-30T23:59:59Z"},
		{"gdpr", "2026-12-15T08:00:00Z", "2027-01-15T08:00:00Z"},
		{"gdpr", "2026-12-31T08:00:00Z", "2027-01-31T08:00:00Z"},
		{"gdpr", "2026-02-28T08:00:00Z", "2026-03-28T08:00:00Z"},
		{"gdpr", "2026-01-31T23:30:00-02:00", "2026-03-01T01:30:00Z"}, // Feb 1 01:30 UTC -> Mar 1
		{"ccpa", "2026-01-31T10:15:30Z", "2026-03-17T10:15:30Z"},
		{"ccpa", "2026-12-15T08:00:00+01:00", "2027-01-29T07:00:00Z"},
		{"unknown", "2026-01-31T10:15:30Z", "2026-02-28T10:15:30Z"},
	}
	for _, tt := range tests {
		got := opendsr.DueTime(tt.regulation, at(tt.submitted))
		if !got.Equal(at(tt.want)) || got.Location() != time.UTC {
			t.Errorf("DueTime(%s, %s) = %s, want %s", tt.regulation, tt.submitted, got, tt.want)
		}
	}
}

func TestIdentityHashing(t *testing.T) {
	if got := opendsr.NormalizeIdentity("email", "  Jane@Example.ORG \n"); got != "jane@example.org" {
		t.Errorf("email normalized to %q", got)
	}
	if got := opendsr.NormalizeIdentity("controller_customer_id", " Cust-42 "); got != "Cust-42" {
		t.Errorf("customer id normalized to %q", got)
	}
	sum := sha256.Sum256([]byte("email:raw:jane@example.org"))
	want := hex.EncodeToString(sum[:])
	for _, v := range []string{"jane@example.org", " JANE@example.org "} {
		for _, f := range []string{"", "raw"} {
			if got := opendsr.HashIdentity("email", f, v); got != want {
				t.Errorf("HashIdentity(email, %q, %q) = %s, want %s", f, v, got, want)
			}
		}
	}
	if opendsr.HashIdentity("controller_customer_id", "raw", "Cust-42") == opendsr.HashIdentity("controller_customer_id", "raw", "cust-42") {
		t.Error("customer ids are case-sensitive")
	}
	if opendsr.HashIdentity("email", "raw", "a@b.c") == opendsr.HashIdentity("controller_customer_id", "raw", "a@b.c") {
		t.Error("type is not part of the key")
	}
	h := strings.Repeat("ab", 32)
	if opendsr.HashIdentity("email", "sha256", h) != opendsr.HashIdentity("email", "sha256", strings.ToUpper(h)) {
		t.Error("hex digest case changes the key")
	}
	if opendsr.HashIdentity("email", "sha256", h) == opendsr.HashIdentity("email", "raw", h) {
		t.Error("format is not part of the key")
	}
}

func TestErrorConstructors(t *testing.T) {
	tests := []struct {
		e    *opendsr.Error
		code int
	}{
		{opendsr.BadRequest("bad", opendsr.ErrorItem{Reason: "invalid", Message: "x is bad", Location: "x"}), 400},
		{opendsr.BadRequest("bad"), 400},
		{opendsr.Unauthorized(), 401},
		{opendsr.NotFound(), 404},
		{opendsr.Conflict("Subject request already exists"), 409},
		{opendsr.Gone(), 410},
		{opendsr.PayloadTooLarge(), 400},
		{opendsr.UnsupportedMediaType(), 400},
		{opendsr.TooManyRequests(), 429},
		{opendsr.Internal(), 500},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.e)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Errors  []struct {
					Domain, Reason, Message string
				} `json:"errors"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		if env.Error.Code != tt.code || tt.e.Code != tt.code || env.Error.Message == "" || len(env.Error.Errors) == 0 {
			t.Errorf("%s", b)
		}
		for _, it := range env.Error.Errors {
			if it.Domain != "opendsr" || it.Reason == "" || it.Message == "" {
				t.Errorf("item %+v in %s", it, b)
			}
		}
		if !strings.Contains(tt.e.Error(), http.StatusText(tt.code)) {
			t.Errorf("Error() = %q", tt.e.Error())
		}
		var back opendsr.Error
		if err := json.Unmarshal(b, &back); err != nil || back.Code != tt.code || back.Message != tt.e.Message {
			t.Errorf("round trip: %+v %v", back, err)
		}
	}
	if opendsr.Conflict("Subject request already exists").Message != "Subject request already exists" {
		t.Error("Conflict message lost")
	}
}

func TestWireTime(t *testing.T) {
	tm := time.Date(2026, 1, 31, 10, 15, 30, 999_000_000, time.FixedZone("x", 3600))
	resp := opendsr.CreatedResponse{
		ControllerID:           "acme",
		ExpectedCompletionTime: opendsr.NewTime(tm),
		EncodedRequest:         opendsr.EncodeRequest([]byte(`{}`)),
		SubjectRequestID:       "a7551968-d5d6-44b2-9831-815ac9017798",
	}
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"controller_id":"acme","expected_completion_time":"2026-01-31T09:15:30Z","encoded_request":"e30=","subject_request_id":"a7551968-d5d6-44b2-9831-815ac9017798"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back opendsr.CreatedResponse
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.ExpectedCompletionTime.Equal(tm.Truncate(time.Second)) || !back.ReceivedTime.IsZero() {
		t.Fatalf("round trip: %+v", back)
	}
	var bad opendsr.Time
	if err := json.Unmarshal([]byte(`"yesterday"`), &bad); err == nil {
		t.Fatal("non RFC 3339 time accepted")
	}
}

func TestIgnoredExtensions(t *testing.T) {
	r := opendsr.Request{Extensions: map[string]json.RawMessage{
		"zeta.example": json.RawMessage(`1`), "dsr.example.com": json.RawMessage(`{}`), "alpha.example": json.RawMessage(`null`),
	}}
	if got := r.IgnoredExtensions("dsr.example.com"); !slices.Equal(got, []string{"alpha.example", "zeta.example"}) {
		t.Errorf("ignored %q, want the other processors' domains, sorted", got)
	}
	if got := (opendsr.Request{}).IgnoredExtensions("dsr.example.com"); len(got) != 0 {
		t.Errorf("no extensions: %q", got)
	}
}
