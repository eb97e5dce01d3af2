package identity_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func ids(pairs ...string) []identity.Identity {
	out := make([]identity.Identity, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, identity.Identity{Type: pairs[i], Value: pairs[i+1]})
	}
	return out
}

func match(id string, inputs []int, identities ...string) identity.Match {
	return identity.Match{Profile: identity.Profile{ID: id, Identities: ids(identities...)}, Inputs: inputs}
}

var (
	mixpanel   = config.Destination{Name: "mixpanel", IdentityType: "controller_customer_id"}
	simplified = config.Destination{Name: "simplified", IdentityType: "controller_customer_id", DeviceIDPrefix: "$device:"}
	byEmail    = config.Destination{Name: "by-email", IdentityType: "email"}
)

// Identity values in these cases all contain "VAL" (or are hashes of such),
// so that a test can tell that no trace or reason holds one.
func TestResolveRules(t *testing.T) {
	hashedCustomer := sha256Hex("VAL-cust-1")
	tests := []struct {
		name string
		in   identity.Input

		rule       identity.Rule
		hold       bool
		profiles   []string
		candidates []string
		plans      []dsr.Plan // DistinctIDs and Skipped compared; Reason only when set here
		reasonHas  string     // in Resolution.Reason
		trace      []identity.InputMatch
	}{
		{
			name: "single profile enriched with all its ids of the destination's type",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "email", Value: "VAL-ann@example.com"}},
				Matches:      []identity.Match{match("p1", []int{0}, "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-2", "controller_customer_id", "VAL-cust-1", "ios_vendor_id", "VAL-idfv")},
				Destinations: []config.Destination{mixpanel, byEmail},
			},
			rule: identity.RuleSingleProfile, profiles: []string{"p1"},
			plans: []dsr.Plan{
				{Destination: "mixpanel", DistinctIDs: []string{"VAL-cust-1", "VAL-cust-2"}},
				{Destination: "by-email", DistinctIDs: []string{"VAL-ann@example.com"}},
			},
			trace: []identity.InputMatch{{Index: 0, Type: "email", Format: "raw", Profiles: []string{"p1"}}},
		},
		{
			name: "the request's own raw id is added when it differs from the profile's",
			in: identity.Input{
				Identities: []identity.Query{{Type: "email", Value: " VAL-Ann@Example.com "}, {Type: "controller_customer_id", Value: " VAL-cust-9 "}},
				// The profile's email differs only in case: not added twice.
				Matches:      []identity.Match{match("p1", []int{0}, "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-1")},
				Destinations: []config.Destination{mixpanel, byEmail},
			},
			rule: identity.RuleSingleProfile, profiles: []string{"p1"},
			plans: []dsr.Plan{
				{Destination: "mixpanel", DistinctIDs: []string{"VAL-cust-1", "VAL-cust-9"}},
				{Destination: "by-email", DistinctIDs: []string{"VAL-ann@example.com"}},
			},
		},
		{
			name: "hashed input matched: the profile's raw id is forwarded, never the hash",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "controller_customer_id", Format: "sha256", Value: hashedCustomer}},
				Matches:      []identity.Match{match("p1", []int{0}, "controller_customer_id", "VAL-cust-1", "email", "VAL-ann@example.com")},
				Destinations: []config.Destination{mixpanel},
			},
			rule: identity.RuleSingleProfile, profiles: []string{"p1"},
			plans: []dsr.Plan{{Destination: "mixpanel", DistinctIDs: []string{"VAL-cust-1"}}},
			trace: []identity.InputMatch{{Index: 0, Type: "controller_customer_id", Format: "sha256", Profiles: []string{"p1"}}},
		},
		{
			name: "hashed input without a match is never forwarded",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "controller_customer_id", Format: "sha256", Value: hashedCustomer}},
				Destinations: []config.Destination{mixpanel},
			},
			rule: identity.RuleNoMatch,
			plans: []dsr.Plan{{Destination: "mixpanel", Skipped: true,
				Reason: "the request's controller_customer_id identity is hashed (sha256) and no usable profile matches: hashed identities are never forwarded"}},
		},
		{
			name: "no match: the original raw id of the destination's type is forwarded",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "email", Value: "VAL-x@example.com"}, {Type: "controller_customer_id", Value: "VAL-cust-7"}},
				Destinations: []config.Destination{mixpanel},
			},
			rule:  identity.RuleNoMatch,
			plans: []dsr.Plan{{Destination: "mixpanel", DistinctIDs: []string{"VAL-cust-7"}}},
			trace: []identity.InputMatch{{Index: 0, Type: "email", Format: "raw"}, {Index: 1, Type: "controller_customer_id", Format: "raw"}},
		},
		{
			name: "no match and no id of the destination's type: skipped",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "email", Value: "VAL-x@example.com"}},
				Destinations: []config.Destination{mixpanel, simplified},
			},
			rule: identity.RuleNoMatch,
			plans: []dsr.Plan{
				{Destination: "mixpanel", Skipped: true, Reason: "no controller_customer_id identity in the request and no matching profile"},
				{Destination: "simplified", Skipped: true, Reason: "no controller_customer_id identity in the request and no matching profile"},
			},
		},
		{
			name: "several profiles, policy hold (default): nothing forwarded, candidates listed",
			in: identity.Input{
				Identities: []identity.Query{{Type: "email", Value: "VAL-ann@example.com"}, {Type: "ios_vendor_id", Value: "VAL-idfv"}},
				Matches: []identity.Match{
					match("p2", []int{1}, "ios_vendor_id", "VAL-idfv", "controller_customer_id", "VAL-cust-2"),
					match("p1", []int{0}, "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-1"),
				},
				Destinations: []config.Destination{mixpanel},
			},
			rule: identity.RuleAmbiguousHold, hold: true, candidates: []string{"p1", "p2"},
			reasonHas: "2 profiles match (p1, p2); policy hold",
			trace: []identity.InputMatch{
				{Index: 0, Type: "email", Format: "raw", Profiles: []string{"p1"}},
				{Index: 1, Type: "ios_vendor_id", Format: "raw", Profiles: []string{"p2"}},
			},
		},
		{
			name: "several profiles, policy all: every one forwarded",
			in: identity.Input{
				Identities: []identity.Query{{Type: "email", Value: "VAL-ann@example.com"}},
				Matches: []identity.Match{
					match("p1", []int{0}, "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-1"),
					match("p2", []int{0}, "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-2"),
				},
				Destinations: []config.Destination{mixpanel},
				Policy:       identity.PolicyAll,
			},
			rule: identity.RuleAllProfiles, profiles: []string{"p1", "p2"},
			plans: []dsr.Plan{{Destination: "mixpanel", DistinctIDs: []string{"VAL-cust-1", "VAL-cust-2"}}},
		},
		{
			name: "several profiles, an operator chose one",
			in: identity.Input{
				Identities: []identity.Query{{Type: "email", Value: "VAL-ann@example.com"}},
				Matches: []identity.Match{
					match("p1", []int{0}, "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-1"),
					match("p2", []int{0}, "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-2"),
				},
				Destinations:  []config.Destination{mixpanel},
				ChosenProfile: "p2",
			},
			rule: identity.RuleOperatorChoice, profiles: []string{"p2"},
			plans:     []dsr.Plan{{Destination: "mixpanel", DistinctIDs: []string{"VAL-cust-2"}}},
			reasonHas: "an operator chose profile p2 among p1, p2",
		},
		{
			name: "an operator's choice that is not a candidate is not accepted",
			in: identity.Input{
				Identities: []identity.Query{{Type: "email", Value: "VAL-ann@example.com"}},
				Matches: []identity.Match{
					match("p1", []int{0}, "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-1"),
					match("p2", []int{0}, "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-2"),
				},
				Destinations:  []config.Destination{mixpanel},
				Policy:        identity.PolicyAll, // does not override a refused choice
				ChosenProfile: "p9",
			},
			rule: identity.RuleAmbiguousHold, hold: true, candidates: []string{"p1", "p2"},
			reasonHas: "the chosen profile p9 is not accepted: it is not among the candidates (p1, p2)",
		},
		{
			name: "device-only request does not reach a profile protected by a login id",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "ios_vendor_id", Value: "VAL-idfv"}},
				Matches:      []identity.Match{match("p1", []int{0}, "ios_vendor_id", "VAL-idfv", "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-1")},
				Destinations: []config.Destination{mixpanel, simplified},
			},
			rule: identity.RuleDeviceOnlyProtected,
			plans: []dsr.Plan{
				{Destination: "mixpanel", Skipped: true, Reason: "no controller_customer_id identity in the request, and the matching profiles are protected by a login id"},
				{Destination: "simplified", Skipped: true},
			},
			trace: []identity.InputMatch{{Index: 0, Type: "ios_vendor_id", Format: "raw", Protected: []string{"p1"}}},
		},
		{
			name: "device-only request: protected profiles left out, the anonymous one resolved and mapped to $device:",
			in: identity.Input{
				Identities: []identity.Query{{Type: "ios_vendor_id", Value: "VAL-idfv"}},
				Matches: []identity.Match{
					match("p-known", []int{0}, "ios_vendor_id", "VAL-idfv", "email", "VAL-ann@example.com"),
					match("p-anon", []int{0}, "ios_vendor_id", "VAL-idfv", "ios_advertising_id", "VAL-idfa"),
				},
				Destinations: []config.Destination{mixpanel, simplified},
			},
			rule: identity.RuleSingleProfile, profiles: []string{"p-anon"},
			plans: []dsr.Plan{
				{Destination: "mixpanel", Skipped: true, Reason: "no controller_customer_id identity on profile p-anon nor in the request"},
				{Destination: "simplified", DistinctIDs: []string{"$device:VAL-idfa", "$device:VAL-idfv"}},
			},
			reasonHas: "(profile p-known left out: protected by a login id the request does not carry)",
			trace:     []identity.InputMatch{{Index: 0, Type: "ios_vendor_id", Format: "raw", Profiles: []string{"p-anon"}, Protected: []string{"p-known"}}},
		},
		{
			name: "$device: mapping only for a profile without a login id",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "email", Value: "VAL-ann@example.com"}},
				Matches:      []identity.Match{match("p1", []int{0}, "email", "VAL-ann@example.com", "android_id", "VAL-aid")},
				Destinations: []config.Destination{simplified},
			},
			rule: identity.RuleSingleProfile, profiles: []string{"p1"},
			plans: []dsr.Plan{{Destination: "simplified", Skipped: true,
				Reason: "no controller_customer_id identity on profile p1 nor in the request, and no device id of a device-only profile to map"}},
		},
		{
			name: "configured login types: a device id counts as a login id",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "android_id", Value: "VAL-aid"}},
				Matches:      []identity.Match{match("p1", []int{0}, "android_id", "VAL-aid", "email", "VAL-ann@example.com", "controller_customer_id", "VAL-cust-1")},
				LoginTypes:   []string{"controller_customer_id", "email", "android_id"},
				Destinations: []config.Destination{mixpanel},
			},
			rule: identity.RuleSingleProfile, profiles: []string{"p1"},
			plans: []dsr.Plan{{Destination: "mixpanel", DistinctIDs: []string{"VAL-cust-1"}}},
		},
		{
			name: "duplicate identity type rejected: nothing forwarded",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "controller_customer_id", Value: "VAL-cust-1"}, {Type: "controller_customer_id", Value: "VAL-cust-2"}},
				Destinations: []config.Destination{mixpanel},
			},
			rule: identity.RuleInvalidRequest, hold: true,
			reasonHas: "Only one identity of each identity type is allowed per request",
		},
		{
			name: "matches with out-of-range inputs are ignored",
			in: identity.Input{
				Identities:   []identity.Query{{Type: "controller_customer_id", Value: "VAL-cust-1"}},
				Matches:      []identity.Match{match("p1", []int{3}, "controller_customer_id", "VAL-cust-5")},
				Destinations: []config.Destination{mixpanel},
			},
			rule:  identity.RuleNoMatch,
			plans: []dsr.Plan{{Destination: "mixpanel", DistinctIDs: []string{"VAL-cust-1"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := identity.Resolve(tt.in)
			if res.Rule != tt.rule || res.Hold != tt.hold {
				t.Fatalf("rule %s hold %v, want %s hold %v (reason %q)", res.Rule, res.Hold, tt.rule, tt.hold, res.Reason)
			}
			if !reflect.DeepEqual(res.Profiles, tt.profiles) || !reflect.DeepEqual(res.Candidates, tt.candidates) {
				t.Errorf("profiles %v candidates %v, want %v and %v", res.Profiles, res.Candidates, tt.profiles, tt.candidates)
			}
			if !strings.Contains(res.Reason, tt.reasonHas) || res.Reason == "" {
				t.Errorf("reason %q, want it to contain %q", res.Reason, tt.reasonHas)
			}
			if tt.hold && len(res.Plans) != 0 {
				t.Errorf("held, yet plans %+v", res.Plans)
			}
			if len(res.Plans) != len(tt.plans) {
				t.Fatalf("%d plans, want %d: %+v", len(res.Plans), len(tt.plans), res.Plans)
			}
			for i, want := range tt.plans {
				got := res.Plans[i]
				if got.Destination != want.Destination || got.Skipped != want.Skipped || !reflect.DeepEqual(got.DistinctIDs, want.DistinctIDs) {
					t.Errorf("plan %d: %+v, want %+v", i, got, want)
				}
				if want.Reason != "" && got.Reason != want.Reason {
					t.Errorf("plan %d reason %q, want %q", i, got.Reason, want.Reason)
				}
				if got.Reason == "" {
					t.Errorf("plan %d has no reason", i)
				}
			}
			if tt.trace != nil && !reflect.DeepEqual(res.Matched, tt.trace) {
				t.Errorf("trace %+v, want %+v", res.Matched, tt.trace)
			}
			assertNoValues(t, res.Redacted(), hashedCustomer)
			if again := identity.Resolve(tt.in); !reflect.DeepEqual(again, res) {
				t.Errorf("not deterministic: %+v then %+v", res, again)
			}
		})
	}
}

// assertNoValues fails if the redacted resolution holds an identity value:
// every value in the cases contains "VAL".
func assertNoValues(t *testing.T, res identity.Resolution, extra ...string) {
	t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range append([]string{"VAL"}, extra...) {
		if strings.Contains(string(b), v) {
			t.Errorf("the redacted resolution holds an identity value: %s", b)
		}
	}
}

func TestValidateIdentities(t *testing.T) {
	ok := []identity.Query{{Type: "email", Value: "a@x"}, {Type: "controller_customer_id", Value: "c"}, {Type: "ios_vendor_id", Value: "v"}}
	if err := identity.ValidateIdentities(ok); err != nil {
		t.Fatal(err)
	}
	dup := append(ok, identity.Query{Type: "email", Format: "sha256", Value: sha256Hex("b@x")})
	err := identity.ValidateIdentities(dup)
	if !errors.Is(err, identity.ErrDuplicateIdentityType) || err.Error() != "Only one identity of each identity type is allowed per request" {
		t.Fatalf("got %v", err)
	}
}

func TestRedactedKeepsOriginal(t *testing.T) {
	res := identity.Resolve(identity.Input{
		Identities:   []identity.Query{{Type: "controller_customer_id", Value: "VAL-c"}},
		Destinations: []config.Destination{mixpanel},
	})
	red := res.Redacted()
	if red.Plans[0].DistinctIDs != nil || len(res.Plans[0].DistinctIDs) != 1 || red.Plans[0].Reason != res.Plans[0].Reason {
		t.Fatalf("redacted %+v from %+v", red, res)
	}
}

func TestQueryAndIdentityPrintWithoutValues(t *testing.T) {
	q := identity.Query{Type: "email", Format: "raw", Value: "VAL-ann@example.com"}
	p := identity.Profile{ID: "p1", Identities: []identity.Identity{{Type: "email", Value: "VAL-ann@example.com"}}}
	for _, s := range []string{q.String(), fmtV(q), fmtV([]identity.Query{q}), fmtV(p.Identities)} {
		if strings.Contains(s, "VAL") {
			t.Errorf("printed a value: %s", s)
		}
	}
}
