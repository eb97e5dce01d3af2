package requests

import (
	"reflect"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// TestTheRequestCarriesNoWorkerSettings: two intakes (say the API and a
// `dsr submit` from another terminal) whose environments disagree on every
// worker setting schedule the same request identically.
func TestTheRequestCarriesNoWorkerSettings(t *testing.T) {
	base, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	other := base
	other.BatchMaxWait, other.BatchMaxSize, other.MixpanelPollInterval = 5*time.Second, 3, time.Second
	other.MixpanelMaxTaskAge, other.ResultsTTL, other.MixpanelMaxIDs = time.Hour, time.Minute, 7
	req := opendsr.Request{
		SubjectRequestID: "9f1c2d3e-4b5a-4c6d-8e7f-001122334455", SubjectRequestType: "access", Regulation: "gdpr",
		SubmittedTime:     "2026-11-29T10:00:00Z",
		SubjectIdentities: []opendsr.Identity{{IdentityType: "email", IdentityFormat: "raw", IdentityValue: "a@example.com"}},
	}
	received := time.Date(2026, 11, 29, 10, 0, 1, 0, time.UTC)
	submitted, _ := req.Submitted()
	spec, err := keyring.Generate("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	a := (&Service{Settings: SettingsFrom(base), Keys: keys}).workflowInput("acme", req, opendsr.ProcessorExtension{}, submitted, received)
	b := (&Service{Settings: SettingsFrom(other), Keys: keys}).workflowInput("acme", req, opendsr.ProcessorExtension{}, submitted, received)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("the same request scheduled differently under different worker settings:\n%+v\n%+v", a, b)
	}
	if a.PollInterval != 0 || a.MaxTaskAge != 0 {
		t.Errorf("the request carries polling settings: %+v", a)
	}
	if want := ExpectedCompletionTime(received); !a.ExpectedCompletionTime.Equal(want) || !want.Equal(received.Add(48*time.Hour)) {
		t.Errorf("expected_completion_time = %v, want %v (forwarding + 48 h)", a.ExpectedCompletionTime, want)
	}
}
