package opendsr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

const testDomain = "dsr.example.com"

var testNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// Distinctive values that must never appear in an error object.
const (
	secretEmail   = "jane.subject.secret@example.org"
	secretCustID  = "cust-SECRET-4711"
	secretIDFA    = "EA7583CD-A667-48BC-B806-42ECB2B48606"
	secretSHA256  = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	secretBadHash = "deadbeefSECRETHASH"
	secretToken   = "cbTOKEN0secret"
)

func validRequest() opendsr.Request {
	return opendsr.Request{
		SubjectRequestID:   "a7551968-d5d6-44b2-9831-815ac9017798",
		SubjectRequestType: dsr.TypeErasure,
		SubmittedTime:      "2026-03-10T09:00:00Z",
		Regulation:         dsr.RegulationGDPR,
		APIVersion:         "1.0",
		SubjectIdentities: []opendsr.Identity{
			{IdentityType: "email", IdentityValue: secretEmail, IdentityFormat: "raw"},
			{IdentityType: "controller_customer_id", IdentityValue: secretCustID},
		},
		StatusCallbackURLs: []string{"https://controller.example.com/cb?token=" + secretToken},
	}
}

func validOpts() opendsr.ValidateOptions {
	return opendsr.ValidateOptions{ProcessorDomain: testDomain, Now: testNow}
}

func ext(raw string) map[string]json.RawMessage {
	return map[string]json.RawMessage{testDomain: json.RawMessage(raw)}
}

func setIdentity(id opendsr.Identity) func(*opendsr.Request) {
	return func(r *opendsr.Request) { r.SubjectIdentities = []opendsr.Identity{id} }
}

func TestValidateRejects(t *testing.T) {
	tooManyIDs := make([]opendsr.Identity, opendsr.MaxIdentities+1)
	for i := range tooManyIDs {
		tooManyIDs[i] = opendsr.Identity{IdentityType: "controller_customer_id", IdentityValue: fmt.Sprintf("%s-%d", secretCustID, i)}
	}
	tooManyURLs := make([]string, opendsr.MaxCallbackURLs+1)
	for i := range tooManyURLs {
		tooManyURLs[i] = "https://controller.example.com/cb?token=" + secretToken
	}

	tests := []struct {
		name     string
		mutate   func(*opendsr.Request)
		opts     func(*opendsr.ValidateOptions)
		location string
		reason   string
		message  string // exact message, when set
	}{
		{name: "missing subject_request_id", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "" },
			location: "subject_request_id", reason: "required"},
		{name: "uppercase subject_request_id", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "A7551968-D5D6-44B2-9831-815AC9017798" },
			location: "subject_request_id", reason: "invalid"},
		{name: "uuid v1 subject_request_id", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "a7551968-d5d6-14b2-9831-815ac9017798" },
			location: "subject_request_id", reason: "invalid"},
		{name: "bad variant subject_request_id", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "a7551968-d5d6-44b2-c831-815ac9017798" },
			location: "subject_request_id", reason: "invalid"},
		{name: "not a uuid subject_request_id", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "request-SECRET-1" },
			location: "subject_request_id", reason: "invalid"},
		{name: "uuid without dashes", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "a7551968d5d644b29831815ac9017798" },
			location: "subject_request_id", reason: "invalid"},
		{name: "uuid in braces", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "{a7551968-d5d6-44b2-9831-815ac9017798}" },
			location: "subject_request_id", reason: "invalid"},
		{name: "uuid urn", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "urn:uuid:a7551968-d5d6-44b2-9831-815ac9017798" },
			location: "subject_request_id", reason: "invalid"},
		{name: "uuid v5 subject_request_id from a controller", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "a7551968-d5d6-54b2-9831-815ac9017798" },
			location: "subject_request_id", reason: "invalid"},
		{name: "uuid v3 even when v5 is allowed", mutate: func(r *opendsr.Request) { r.SubjectRequestID = "a7551968-d5d6-34b2-9831-815ac9017798" },
			opts: func(o *opendsr.ValidateOptions) { o.AllowUUIDv5 = true }, location: "subject_request_id", reason: "invalid"},
		{name: "raw ios_advertising_id as a urn", mutate: setIdentity(opendsr.Identity{IdentityType: "ios_advertising_id", IdentityValue: "urn:uuid:a7551968-d5d6-44b2-9831-815ac9017798"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "missing subject_request_type", mutate: func(r *opendsr.Request) { r.SubjectRequestType = "" },
			location: "subject_request_type", reason: "required"},
		{name: "unknown subject_request_type", mutate: func(r *opendsr.Request) { r.SubjectRequestType = "rectification" },
			location: "subject_request_type", reason: "unsupported"},
		{name: "missing submitted_time", mutate: func(r *opendsr.Request) { r.SubmittedTime = "" },
			location: "submitted_time", reason: "required"},
		{name: "submitted_time not RFC 3339", mutate: func(r *opendsr.Request) { r.SubmittedTime = "10/03/2026 09:00" },
			location: "submitted_time", reason: "invalid"},
		{name: "submitted_time without zone", mutate: func(r *opendsr.Request) { r.SubmittedTime = "2026-03-10T09:00:00" },
			location: "submitted_time", reason: "invalid"},
		{name: "submitted_time over 24h ahead", mutate: func(r *opendsr.Request) { r.SubmittedTime = "2026-03-11T12:00:01Z" },
			location: "submitted_time", reason: "invalid"},
		{name: "missing regulation", mutate: func(r *opendsr.Request) { r.Regulation = "" },
			location: "regulation", reason: "required"},
		{name: "unknown regulation", mutate: func(r *opendsr.Request) { r.Regulation = "lgpd" },
			location: "regulation", reason: "unsupported"},
		{name: "uppercase regulation", mutate: func(r *opendsr.Request) { r.Regulation = "GDPR" },
			location: "regulation", reason: "unsupported"},
		{name: "unknown api_version", mutate: func(r *opendsr.Request) { r.APIVersion = "3.0" },
			location: "api_version", reason: "unsupported"},
		{name: "missing subject_identities", mutate: func(r *opendsr.Request) { r.SubjectIdentities = nil },
			location: "subject_identities", reason: "required"},
		{name: "empty subject_identities", mutate: func(r *opendsr.Request) { r.SubjectIdentities = []opendsr.Identity{} },
			location: "subject_identities", reason: "required"},
		{name: "too many identities", mutate: func(r *opendsr.Request) { r.SubjectIdentities = tooManyIDs },
			location: "subject_identities", reason: "too_many"},
		{name: "missing identity_type", mutate: setIdentity(opendsr.Identity{IdentityValue: secretCustID}),
			location: "subject_identities[0].identity_type", reason: "required"},
		{name: "unknown identity_type", mutate: setIdentity(opendsr.Identity{IdentityType: "phone_number", IdentityValue: secretCustID}),
			location: "subject_identities[0].identity_type", reason: "unsupported"},
		{name: "unknown identity_format", mutate: setIdentity(opendsr.Identity{IdentityType: "email", IdentityValue: secretEmail, IdentityFormat: "sha512"}),
			location: "subject_identities[0].identity_format", reason: "unsupported"},
		{name: "duplicate identity_type", mutate: func(r *opendsr.Request) {
			r.SubjectIdentities = append(r.SubjectIdentities, opendsr.Identity{IdentityType: "email", IdentityValue: "second." + secretEmail})
		}, location: "subject_identities[2].identity_type", reason: "duplicate_identity_type",
			message: "Only one identity of each identity type is allowed per request"},
		{name: "duplicate identity_type across formats", mutate: func(r *opendsr.Request) {
			r.SubjectIdentities = append(r.SubjectIdentities, opendsr.Identity{IdentityType: "email", IdentityValue: secretSHA256, IdentityFormat: "sha256"})
		}, location: "subject_identities[2].identity_type", reason: "duplicate_identity_type",
			message: "Only one identity of each identity type is allowed per request"},
		{name: "empty identity_value", mutate: setIdentity(opendsr.Identity{IdentityType: "email"}),
			location: "subject_identities[0].identity_value", reason: "required"},
		{name: "blank identity_value", mutate: setIdentity(opendsr.Identity{IdentityType: "controller_customer_id", IdentityValue: "   "}),
			location: "subject_identities[0].identity_value", reason: "required"},
		{name: "identity_value over 255 characters", mutate: setIdentity(opendsr.Identity{IdentityType: "controller_customer_id", IdentityValue: secretCustID + strings.Repeat("é", 250)}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "sha256 wrong length", mutate: setIdentity(opendsr.Identity{IdentityType: "email", IdentityValue: secretBadHash, IdentityFormat: "sha256"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "sha256 not hex", mutate: setIdentity(opendsr.Identity{IdentityType: "email", IdentityValue: strings.Repeat("z", 64), IdentityFormat: "sha256"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "sha1 wrong length", mutate: setIdentity(opendsr.Identity{IdentityType: "email", IdentityValue: secretSHA256, IdentityFormat: "sha1"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "md5 wrong length", mutate: setIdentity(opendsr.Identity{IdentityType: "email", IdentityValue: secretSHA256, IdentityFormat: "md5"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "email without at", mutate: setIdentity(opendsr.Identity{IdentityType: "email", IdentityValue: "jane.subject.secret.example.org"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "email with two at", mutate: setIdentity(opendsr.Identity{IdentityType: "email", IdentityValue: "jane@subject@secret.example.org"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "email empty local part", mutate: setIdentity(opendsr.Identity{IdentityType: "email", IdentityValue: "@secret.example.org"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "email empty domain", mutate: setIdentity(opendsr.Identity{IdentityType: "email", IdentityValue: "jane.subject.secret@"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "raw ios_advertising_id not a uuid", mutate: setIdentity(opendsr.Identity{IdentityType: "ios_advertising_id", IdentityValue: "idfa-SECRET-1234"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "raw android_advertising_id not a uuid", mutate: setIdentity(opendsr.Identity{IdentityType: "android_advertising_id", IdentityValue: "gaid-SECRET-1234"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "raw fire_advertising_id not a uuid", mutate: setIdentity(opendsr.Identity{IdentityType: "fire_advertising_id", IdentityValue: "fire-SECRET-1234"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "raw microsoft_advertising_id not a uuid", mutate: setIdentity(opendsr.Identity{IdentityType: "microsoft_advertising_id", IdentityValue: "msai-SECRET-1234"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "raw roku_advertising_id not a uuid", mutate: setIdentity(opendsr.Identity{IdentityType: "roku_advertising_id", IdentityValue: "roku-SECRET-1234"}),
			location: "subject_identities[0].identity_value", reason: "invalid"},
		{name: "error in second identity names its index", mutate: func(r *opendsr.Request) {
			r.SubjectIdentities[1] = opendsr.Identity{IdentityType: "ios_advertising_id", IdentityValue: "idfa-SECRET-1234"}
		}, location: "subject_identities[1].identity_value", reason: "invalid"},
		{name: "too many callback urls", mutate: func(r *opendsr.Request) { r.StatusCallbackURLs = tooManyURLs },
			location: "status_callback_urls", reason: "too_many"},
		{name: "http callback url", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"http://controller.example.com/cb?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "ftp callback url even with http allowed", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"ftp://controller.example.com/cb?token=" + secretToken}
		}, opts: func(o *opendsr.ValidateOptions) { o.AllowHTTPCallbacks = true },
			location: "status_callback_urls[0]", reason: "invalid"},
		{name: "relative callback url", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"/cb?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "callback url without host", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https:///cb?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "callback url with userinfo", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://user:" + secretToken + "@controller.example.com/cb"}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "empty callback url", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://controller.example.com/ok", ""}
		}, location: "status_callback_urls[1]", reason: "invalid"},
		{name: "unparseable callback url", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://controller.example.com/%zz?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "identity value not UTF-8", mutate: setIdentity(opendsr.Identity{IdentityType: "controller_customer_id", IdentityValue: "cust-SECRET-\xff"}),
			location: "subject_identities[0].identity_value", reason: "malformed"},
		{name: "callback url not UTF-8", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://controller.example.com/cb?token=" + secretToken + "\xc3"}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "callback to a loopback address", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://127.0.0.1/cb?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "callback to an IPv6 loopback address", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://[::1]:8443/cb?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "callback to localhost", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://controller.example.com/ok", "https://LocalHost./cb?token=" + secretToken}
		}, location: "status_callback_urls[1]", reason: "invalid"},
		{name: "callback to a private address", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://10.1.2.3/cb?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "callback to a link-local address", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://[fe80::1]/cb?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "callback to the metadata service", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://169.254.169.254/latest/meta-data?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "callback to an IPv4-mapped private address", mutate: func(r *opendsr.Request) {
			r.StatusCallbackURLs = []string{"https://[::ffff:192.168.1.1]/cb?token=" + secretToken}
		}, location: "status_callback_urls[0]", reason: "invalid"},
		{name: "another spelling of an extension field", mutate: func(r *opendsr.Request) { r.Extensions = ext(`{"Skip_Waiting_Period":true}`) },
			location: `extensions["dsr.example.com"].skip_waiting_period`, reason: "invalid"},
		{name: "processor extension not an object", mutate: func(r *opendsr.Request) { r.Extensions = ext(`"skip"`) },
			location: `extensions["dsr.example.com"]`, reason: "invalid"},
		{name: "processor extension is an array", mutate: func(r *opendsr.Request) { r.Extensions = ext(`[true]`) },
			location: `extensions["dsr.example.com"]`, reason: "invalid"},
		{name: "skip_waiting_period not a bool", mutate: func(r *opendsr.Request) { r.Extensions = ext(`{"skip_waiting_period":"yes"}`) },
			location: `extensions["dsr.example.com"].skip_waiting_period`, reason: "invalid"},
		{name: "disclosure_type unknown", mutate: func(r *opendsr.Request) {
			r.Regulation, r.SubjectRequestType = "ccpa", "access"
			r.Extensions = ext(`{"disclosure_type":"everything"}`)
		}, location: `extensions["dsr.example.com"].disclosure_type`, reason: "invalid"},
		{name: "disclosure_type not a string", mutate: func(r *opendsr.Request) {
			r.Regulation, r.SubjectRequestType = "ccpa", "access"
			r.Extensions = ext(`{"disclosure_type":1}`)
		}, location: `extensions["dsr.example.com"].disclosure_type`, reason: "invalid"},
		{name: "disclosure_type on gdpr access", mutate: func(r *opendsr.Request) {
			r.SubjectRequestType = "access"
			r.Extensions = ext(`{"disclosure_type":"data"}`)
		}, location: `extensions["dsr.example.com"].disclosure_type`, reason: "unsupported"},
		{name: "disclosure_type on ccpa erasure", mutate: func(r *opendsr.Request) {
			r.Regulation = "ccpa"
			r.Extensions = ext(`{"disclosure_type":"categories"}`)
		}, location: `extensions["dsr.example.com"].disclosure_type`, reason: "unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest()
			tt.mutate(&req)
			opts := validOpts()
			if tt.opts != nil {
				tt.opts(&opts)
			}
			e := opendsr.Validate(req, opts)
			if e == nil {
				t.Fatal("Validate accepted the request")
			}
			if e.Code != http.StatusBadRequest {
				t.Errorf("code = %d, want 400", e.Code)
			}
			if len(e.Errors) != 1 {
				t.Errorf("got %d items, want 1: %+v", len(e.Errors), e.Errors)
			}
			item := findItem(e, tt.location)
			if item == nil {
				t.Fatalf("no item for %s in %+v", tt.location, e.Errors)
			}
			if item.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", item.Reason, tt.reason)
			}
			if item.Domain != "opendsr" {
				t.Errorf("domain = %q", item.Domain)
			}
			if tt.message != "" {
				if item.Message != tt.message {
					t.Errorf("message = %q, want %q", item.Message, tt.message)
				}
			} else if !strings.Contains(item.Message, tt.location) {
				t.Errorf("message %q does not name %s", item.Message, tt.location)
			}
			assertNoSubmittedValues(t, e, req)
		})
	}
}

func findItem(e *opendsr.Error, location string) *opendsr.ErrorItem {
	for i := range e.Errors {
		if e.Errors[i].Location == location {
			return &e.Errors[i]
		}
	}
	return nil
}

// assertNoSubmittedValues checks that no identity value, request id or
// callback URL of req appears in the marshalled error or in Error().
func assertNoSubmittedValues(t *testing.T, e *opendsr.Error, req opendsr.Request) {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b) + e.Error()
	var values []string
	for _, id := range req.SubjectIdentities {
		if v := strings.TrimSpace(id.IdentityValue); len(v) >= 4 {
			values = append(values, v, strings.ToLower(v))
		}
	}
	values = append(values, req.StatusCallbackURLs...)
	values = append(values, secretToken, "SECRET", req.SubjectRequestID)
	for _, v := range values {
		if v != "" && strings.Contains(text, v) {
			t.Errorf("error object contains submitted value %q: %s", v, text)
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	var good []opendsr.Request
	for _, reg := range dsr.Regulations() {
		for _, typ := range dsr.Types() {
			r := validRequest()
			r.Regulation, r.SubjectRequestType = reg, typ
			good = append(good, r)
		}
	}
	withIDs := func(ids ...opendsr.Identity) opendsr.Request {
		r := validRequest()
		r.SubjectIdentities = ids
		return r
	}
	good = append(good,
		func() opendsr.Request { r := validRequest(); r.APIVersion = ""; return r }(),
		func() opendsr.Request { r := validRequest(); r.APIVersion = "2.0"; return r }(),
		func() opendsr.Request { r := validRequest(); r.StatusCallbackURLs = nil; return r }(),
		func() opendsr.Request { r := validRequest(); r.SubmittedTime = "2026-03-11T12:00:00Z"; return r }(),
		func() opendsr.Request {
			r := validRequest()
			r.SubmittedTime = "2026-03-10T10:00:00.123+01:00"
			return r
		}(),
		withIDs(
			opendsr.Identity{IdentityType: "email", IdentityValue: strings.ToUpper(secretSHA256), IdentityFormat: "sha256"},
			opendsr.Identity{IdentityType: "controller_customer_id", IdentityValue: strings.Repeat("ab", 20), IdentityFormat: "sha1"},
			opendsr.Identity{IdentityType: "android_id", IdentityValue: strings.Repeat("0f", 16), IdentityFormat: "md5"},
			opendsr.Identity{IdentityType: "ios_advertising_id", IdentityValue: secretIDFA},
			opendsr.Identity{IdentityType: "android_advertising_id", IdentityValue: "38400000-8cf0-11bd-b23e-10b96e40000d", IdentityFormat: "raw"},
			opendsr.Identity{IdentityType: "fire_advertising_id", IdentityValue: "df07c7dc-cea7-4a89-b328-810ff5acb15d"},
			opendsr.Identity{IdentityType: "microsoft_advertising_id", IdentityValue: "6f5f2e9a-1b2c-4d3e-8f40-5a6b7c8d9e0f"},
			opendsr.Identity{IdentityType: "roku_advertising_id", IdentityValue: "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"},
			opendsr.Identity{IdentityType: "ios_vendor_id", IdentityValue: "anything-goes"},
			opendsr.Identity{IdentityType: "microsoft_publisher_id", IdentityValue: "pub-1"},
			opendsr.Identity{IdentityType: "roku_publisher_id", IdentityValue: "pub-2"},
		),
		withIDs(opendsr.Identity{IdentityType: "email", IdentityValue: "  Jane@Example.org  "}),
		withIDs(opendsr.Identity{IdentityType: "controller_customer_id", IdentityValue: strings.Repeat("é", 255)}),
		func() opendsr.Request {
			r := validRequest()
			r.Extensions = ext(`{"skip_waiting_period":true,"due_time":"x","future":{"a":1}}`)
			r.Extensions["other.example.net"] = json.RawMessage(`"not an object, not ours"`)
			return r
		}(),
		func() opendsr.Request {
			r := validRequest()
			r.SubjectRequestType = "access" // skip_waiting_period is ignored, not refused
			r.Extensions = ext(`{"skip_waiting_period":true}`)
			return r
		}(),
		func() opendsr.Request { r := validRequest(); r.Extensions = ext(`null`); return r }(),
		func() opendsr.Request {
			r := validRequest()
			r.Extensions = ext(`{"skip_waiting_period":null}`)
			return r
		}(),
		func() opendsr.Request {
			r := validRequest()
			r.Regulation, r.SubjectRequestType = "ccpa", "portability"
			r.Extensions = ext(`{"disclosure_type":"sources"}`)
			return r
		}(),
	)
	for _, typ := range []string{"data", "categories", "sources"} {
		r := validRequest()
		r.Regulation, r.SubjectRequestType = "ccpa", "access"
		r.Extensions = ext(`{"disclosure_type":"` + typ + `"}`)
		good = append(good, r)
	}
	for i, r := range good {
		if e := opendsr.Validate(r, validOpts()); e != nil {
			t.Errorf("request %d (%s %s) rejected: %+v", i, r.Regulation, r.SubjectRequestType, e.Errors)
		}
	}

	// A name-based request id passes when allowed (the CLI's bulk ids).
	r0 := validRequest()
	r0.SubjectRequestID = "a7551968-d5d6-54b2-9831-815ac9017798"
	v5 := validOpts()
	v5.AllowUUIDv5 = true
	if e := opendsr.Validate(r0, v5); e != nil {
		t.Errorf("uuid v5 with AllowUUIDv5 rejected: %+v", e.Errors)
	}

	// http and private callbacks pass only when allowed.
	r := validRequest()
	r.StatusCallbackURLs = []string{"http://127.0.0.1:9000/cb", "https://localhost/cb"}
	opts := validOpts()
	opts.AllowHTTPCallbacks, opts.AllowPrivateCallbacks = true, true
	if e := opendsr.Validate(r, opts); e != nil {
		t.Errorf("local callbacks with AllowHTTPCallbacks and AllowPrivateCallbacks rejected: %+v", e.Errors)
	}

	// Without a processor domain, extensions are not examined.
	r = validRequest()
	r.Extensions = ext(`"garbage"`)
	if e := opendsr.Validate(r, opendsr.ValidateOptions{Now: testNow}); e != nil {
		t.Errorf("extensions examined without a processor domain: %+v", e.Errors)
	}
}

func TestValidateCollectsAllErrors(t *testing.T) {
	req := opendsr.Request{
		SubjectRequestID:   "nope",
		SubjectIdentities:  []opendsr.Identity{{IdentityType: "email", IdentityValue: "no-at-SECRET"}, {IdentityType: "email", IdentityValue: "x@y"}},
		StatusCallbackURLs: []string{"http://a.example/?token=" + secretToken},
		APIVersion:         "9",
	}
	e := opendsr.Validate(req, validOpts())
	if e == nil {
		t.Fatal("accepted")
	}
	want := []string{
		"subject_request_id", "subject_request_type", "submitted_time", "regulation", "api_version",
		"subject_identities[0].identity_value", "subject_identities[1].identity_type", "status_callback_urls[0]",
	}
	if len(e.Errors) != len(want) {
		t.Fatalf("got %d items, want %d: %+v", len(e.Errors), len(want), e.Errors)
	}
	for i, loc := range want {
		if e.Errors[i].Location != loc {
			t.Errorf("item %d location = %q, want %q", i, e.Errors[i].Location, loc)
		}
	}
	if e.Message != "The request has 8 invalid fields" {
		t.Errorf("message = %q", e.Message)
	}
	assertNoSubmittedValues(t, e, req)
}

func TestValidateZeroNowUsesClock(t *testing.T) {
	r := validRequest()
	r.SubmittedTime = opendsr.FormatTime(time.Now().Add(48 * time.Hour))
	if e := opendsr.Validate(r, opendsr.ValidateOptions{}); e == nil {
		t.Fatal("a submitted_time two days ahead of the clock was accepted")
	}
	r.SubmittedTime = opendsr.FormatTime(time.Now())
	if e := opendsr.Validate(r, opendsr.ValidateOptions{}); e != nil {
		t.Fatalf("rejected: %+v", e.Errors)
	}
}

func TestProcessorExtension(t *testing.T) {
	r := validRequest()
	got, err := r.ProcessorExtension(testDomain)
	if err != nil || got != (opendsr.ProcessorExtension{}) {
		t.Fatalf("absent extension: %+v, %v", got, err)
	}
	r.Extensions = ext(`{"skip_waiting_period":true,"disclosure_type":"categories","unknown":1}`)
	got, err = r.ProcessorExtension(testDomain)
	if err != nil || !got.SkipWaitingPeriod || got.DisclosureType != "categories" {
		t.Fatalf("got %+v, %v", got, err)
	}
	r.Extensions = ext(`{"skip_waiting_period":1}`)
	_, err = r.ProcessorExtension(testDomain)
	var oe *opendsr.Error
	if !errors.As(err, &oe) || oe.Code != 400 {
		t.Fatalf("want a 400 *Error, got %v", err)
	}
}

func TestWithDefaults(t *testing.T) {
	r := validRequest()
	r.APIVersion = ""
	r.SubjectIdentities[0].IdentityFormat = ""
	d := r.WithDefaults()
	if d.APIVersion != "1.0" || d.SubjectIdentities[0].IdentityFormat != "raw" || d.SubjectIdentities[1].IdentityFormat != "raw" {
		t.Fatalf("defaults not applied: %+v", d)
	}
	if r.SubjectIdentities[0].IdentityFormat != "" {
		t.Fatal("WithDefaults modified the original identities")
	}
}
