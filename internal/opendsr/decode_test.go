package opendsr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dsrflow/dsrflow/internal/opendsr"
)

const goodBody = `{
  "subject_request_id": "a7551968-d5d6-44b2-9831-815ac9017798",
  "subject_request_type": "erasure",
  "submitted_time": "2026-03-10T09:00:00Z",
  "subject_identities": [
    {"identity_type": "email", "identity_value": "jane.subject.secret@example.org", "identity_format": "raw"}
  ],
  "api_version": "1.0",
  "regulation": "gdpr",
  "status_callback_urls": ["https://controller.example.com/cb"],
  "extensions": {"dsr.example.com": {"skip_waiting_period": true}, "other.example": 42},
  "property_id": "a-future-field"
}`

func TestDecodeRequestGood(t *testing.T) {
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"} {
		req, raw, e := opendsr.DecodeRequest(ct, strings.NewReader(goodBody))
		if e != nil {
			t.Fatalf("%q: %v", ct, e)
		}
		if string(raw) != goodBody {
			t.Errorf("raw body not returned as sent")
		}
		if req.SubjectRequestID != "a7551968-d5d6-44b2-9831-815ac9017798" || len(req.SubjectIdentities) != 1 ||
			req.SubjectIdentities[0].IdentityValue != "jane.subject.secret@example.org" || len(req.Extensions) != 2 {
			t.Errorf("decoded %+v", req)
		}
		if e := opendsr.Validate(req, validOpts()); e != nil {
			t.Errorf("decoded request invalid: %+v", e.Errors)
		}
		ext, err := req.ProcessorExtension(testDomain)
		if err != nil || !ext.SkipWaitingPeriod {
			t.Errorf("extension %+v, %v", ext, err)
		}
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	tests := []struct {
		name     string
		ct       string
		body     string
		code     int
		location string
	}{
		{"no content type", "", goodBody, http.StatusBadRequest, ""},
		{"text/plain", "text/plain", goodBody, http.StatusBadRequest, ""},
		{"form", "application/x-www-form-urlencoded", goodBody, http.StatusBadRequest, ""},
		{"latin1 charset", "application/json; charset=iso-8859-1", goodBody, http.StatusBadRequest, ""},
		{"bad media type", "application/json; =", goodBody, http.StatusBadRequest, ""},
		{"empty body", "application/json", "", http.StatusBadRequest, "body"},
		{"blank body", "application/json", "  \n", http.StatusBadRequest, "body"},
		{"malformed", "application/json", `{"subject_request_id": "SECRET-ID",`, http.StatusBadRequest, "body"},
		{"array", "application/json", `[{"regulation":"gdpr"}]`, http.StatusBadRequest, "body"},
		{"null", "application/json", `null`, http.StatusBadRequest, "body"},
		{"trailing data", "application/json", `{} {"SECRET":1}`, http.StatusBadRequest, "body"},
		{"number identity value", "application/json",
			`{"subject_identities":[{"identity_type":"controller_customer_id","identity_value":5551234567}]}`,
			http.StatusBadRequest, "subject_identities.identity_value"},
		{"identities not an array", "application/json", `{"subject_identities":{"SECRET":"x"}}`, http.StatusBadRequest, "subject_identities"},
		{"extensions not an object", "application/json", `{"extensions":"SECRET"}`, http.StatusBadRequest, "extensions"},
		{"regulation a bool", "application/json", `{"regulation":true}`, http.StatusBadRequest, "regulation"},
		{"too large", "application/json", `{"x":"` + strings.Repeat("a", opendsr.MaxBodyBytes) + `"}`, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, raw, e := opendsr.DecodeRequest(tt.ct, strings.NewReader(tt.body))
			if e == nil {
				t.Fatal("accepted")
			}
			if raw != nil {
				t.Error("raw body returned with an error")
			}
			if e.Code != tt.code {
				t.Errorf("code = %d, want %d (%v)", e.Code, tt.code, e)
			}
			if len(e.Errors) == 0 {
				t.Fatal("no items")
			}
			if tt.location != "" && findItem(e, tt.location) == nil {
				t.Errorf("no item at %s: %+v", tt.location, e.Errors)
			}
			b, _ := json.Marshal(e)
			for _, secret := range []string{"SECRET", "5551234567"} {
				if bytes.Contains(b, []byte(secret)) || strings.Contains(e.Error(), secret) {
					t.Errorf("error echoes a submitted value: %s", b)
				}
			}
		})
	}
}

func TestDecodeRequestSizeLimit(t *testing.T) {
	// A body of exactly MaxBodyBytes is accepted.
	body := goodBody + strings.Repeat(" ", opendsr.MaxBodyBytes-len(goodBody))
	if _, _, e := opendsr.DecodeRequest("application/json", strings.NewReader(body)); e != nil {
		t.Fatalf("body of exactly MaxBodyBytes rejected: %v", e)
	}
	_, _, e := opendsr.DecodeRequest("application/json", strings.NewReader(body+" "))
	if e == nil || e.Code != http.StatusBadRequest || e.Errors[0].Reason != opendsr.ReasonTooLarge {
		t.Fatalf("one byte over: %v", e)
	}
}

func TestDecodeRequestReadError(t *testing.T) {
	_, _, e := opendsr.DecodeRequest("application/json", iotest.ErrReader(errors.New("connection reset")))
	if e == nil || e.Code != http.StatusBadRequest {
		t.Fatalf("got %v", e)
	}
	_, _, e = opendsr.DecodeRequest("application/json", nil)
	if e == nil || e.Code != http.StatusBadRequest {
		t.Fatalf("nil body: %v", e)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add("application/json", []byte(goodBody))
	f.Add("application/json; charset=utf-8", []byte(`{"subject_identities":[{"identity_type":"email","identity_value":"a@b","identity_format":"sha256"},{"identity_type":"email"}]}`))
	f.Add("application/json", []byte(`{"extensions":{"localhost":{"skip_waiting_period":"x","disclosure_type":[1]}},"regulation":"ccpa","subject_request_type":"erasure"}`))
	f.Add("application/json", []byte(`{"status_callback_urls":["https://u:p@h/?q=1","http://[::1]:80/","%zz",""],"submitted_time":"9999-12-31T23:59:59Z"}`))
	f.Add("application/json", []byte(`{"subject_identities":[{"identity_type":"ios_advertising_id","identity_value":"\u00e9\u00e9"}],"subject_request_id":"A7551968-D5D6-44B2-9831-815AC9017798"}`))
	f.Add("application/json", []byte(`{"subject_identities":null,"extensions":{"localhost":null},"api_version":2}`))
	f.Add("text/plain", []byte(`{}`))
	f.Add("application/json", []byte("\xff\xfe{"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req, raw, e := opendsr.DecodeRequest(contentType, bytes.NewReader(body))
		if e != nil {
			switch e.Code {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("unexpected code %d", e.Code)
			}
			if _, err := json.Marshal(e); err != nil {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(raw, body) {
			t.Fatal("raw body differs from input")
		}
		for _, domain := range []string{"localhost", ""} {
			if ve := opendsr.Validate(req, opendsr.ValidateOptions{ProcessorDomain: domain, Now: testNow}); ve != nil {
				if ve.Code != http.StatusBadRequest || len(ve.Errors) == 0 {
					t.Fatalf("bad validation error %+v", ve)
				}
				if _, err := json.Marshal(ve); err != nil {
					t.Fatal(err)
				}
			}
		}
		_, _ = req.ProcessorExtension("localhost")
		_ = req.WithDefaults()
	})
}

// strictBody is goodBody with its first identity's value, or another part, replaced.
func strictBody(old, new string) string { return strings.Replace(goodBody, old, new, 1) }

// TestDecodeRequestStrict: what encoding/json would take silently is a 400
// naming the field, never echoing the value or an unknown key.
func TestDecodeRequestStrict(t *testing.T) {
	const value = `"jane.subject.secret@example.org"`
	tests := []struct {
		name, body, location, reason string
	}{
		{"invalid UTF-8 in an identity value", strictBody(value, "\"SECRET\xff\xfe@example.org\""),
			"subject_identities[0].identity_value", opendsr.ReasonMalformed},
		{"invalid UTF-8 in an unknown field", strictBody(`"a-future-field"`, "\"SECRET\xc3\""), "body", opendsr.ReasonMalformed},
		{"invalid UTF-8 in a key", strictBody(`"property_id"`, "\"SECRET\xe2\x82\""), "body", opendsr.ReasonMalformed},
		{"invalid UTF-8 in another processor's extension", strictBody(`"other.example": 42`, "\"other.example\": {\"k\": \"SECRET\xc0\xaf\"}"),
			`extensions["other.example"]`, opendsr.ReasonMalformed},
		{"unpaired high surrogate escape", strictBody(value, `"SECRET\ud800@example.org"`),
			"subject_identities[0].identity_value", opendsr.ReasonMalformed},
		{"unpaired low surrogate escape", strictBody(value, `"SECRET\udc00@example.org"`),
			"subject_identities[0].identity_value", opendsr.ReasonMalformed},
		{"surrogates in the wrong order", strictBody(value, `"SECRET\udc00\ud800@example.org"`),
			"subject_identities[0].identity_value", opendsr.ReasonMalformed},
		{"high surrogate before an escaped backslash", strictBody(value, `"SECRET\ud800\\ufffd@example.org"`),
			"subject_identities[0].identity_value", opendsr.ReasonMalformed},
		{"duplicate key", strictBody(`"regulation": "gdpr"`, `"regulation": "gdpr", "regulation": "ccpa"`),
			"regulation", opendsr.ReasonDuplicateKey},
		{"case-variant key beside the field", strictBody(`"api_version"`, `"SUBJECT_IDENTITIES": [{"identity_type":"email","identity_value":"SECRET@example.org"}], "api_version"`),
			"subject_identities", opendsr.ReasonDuplicateKey},
		{"duplicate key in an identity", strictBody(value, value+`, "identity_value": "SECRET@example.org"`),
			"subject_identities[0].identity_value", opendsr.ReasonDuplicateKey},
		{"case-variant key in an identity", strictBody(value, value+`, "Identity_Value": "SECRET@example.org"`),
			"subject_identities[0].identity_value", opendsr.ReasonDuplicateKey},
		{"duplicate key deep in another processor's extension", strictBody(`"other.example": 42`, `"other.example": {"a": [{"SECRET": 1, "secret": 2}]}`),
			`extensions["other.example"][0]`, opendsr.ReasonDuplicateKey},
		{"duplicate extension domain", strictBody(`"other.example": 42`, `"other.example": 42, "OTHER.example": 43`),
			`extensions["OTHER.example"]`, opendsr.ReasonDuplicateKey},
		{"Kelvin sign beside k", strictBody(`"dsr.example.com": {"skip_waiting_period": true}`, `"dsr.example.com": {"skip_waiting_period": true, "s\u212aip_waiting_period": false}`),
			`extensions["dsr.example.com"].skip_waiting_period`, opendsr.ReasonDuplicateKey},
		{"case-variant field alone", strictBody(`"regulation"`, `"Regulation"`), "regulation", opendsr.ReasonInvalid},
		{"long s variant alone", strictBody(`"subject_request_type"`, `"ſubject_request_type"`), "subject_request_type", opendsr.ReasonInvalid},
		{"nested too deeply", strictBody(`"a-future-field"`, strings.Repeat("[", 40)+`"SECRET"`+strings.Repeat("]", 40)), "body", opendsr.ReasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, e := opendsr.DecodeRequest("application/json", strings.NewReader(tt.body))
			if e == nil {
				t.Fatal("accepted")
			}
			if e.Code != http.StatusBadRequest || len(e.Errors) != 1 || e.Errors[0].Location != tt.location || e.Errors[0].Reason != tt.reason {
				t.Fatalf("got %d %+v, want 400 %s at %s", e.Code, e.Errors, tt.reason, tt.location)
			}
			b, _ := json.Marshal(e)
			if bytes.Contains(bytes.ToLower(b), []byte("secret")) || strings.Contains(strings.ToLower(e.Error()), "secret") {
				t.Errorf("error echoes a submitted value or key: %s", b)
			}
		})
	}
}

// TestDecodeRequestStrictAccepts: what is well-formed stays accepted.
func TestDecodeRequestStrictAccepts(t *testing.T) {
	for name, body := range map[string]string{
		"surrogate pair escape":            strictBody(`"jane.subject`, `"\ud83d\ude00jane.subject`),
		"escaped replacement character":    strictBody(`"jane.subject`, `"\ufffdjane.subject`),
		"literal replacement character":    strictBody(`"jane.subject`, "\"\uFFFDjane.subject"),
		"escaped backslash before u":       strictBody(`"a-future-field"`, `"\\ud800"`),
		"same key in different objects":    strictBody(`"other.example": 42`, `"other.example": {"regulation": 1, "x": {"regulation": 2}}`),
		"case variants in another's space": strictBody(`"other.example": 42`, `"other.example": {"Regulation": 1}`),
	} {
		if _, _, e := opendsr.DecodeRequest("application/json", strings.NewReader(body)); e != nil {
			t.Errorf("%s: rejected: %+v", name, e.Errors)
		}
	}
}
