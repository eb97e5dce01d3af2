package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/dsrflow/dsrflow/activities"
	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/devstack"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/results"
)

// tenancyFixture is a ledger and a profile store on one SQLite file, as the
// worker has them, and the activities on them.
type tenancyFixture struct {
	ledger   *ledger.Store
	profiles *identity.Store
	bundles  *results.Store
	ring     *keyring.Ring
	acts     *activities.Activities
	env      *testsuite.TestActivityEnvironment
}

func newTenancyFixture(t *testing.T, cfg config.Config) *tenancyFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "dsrflow.db")
	store, err := ledger.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ring, err := keyring.Parse(devstack.TestEncryptionKeys)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := identity.Open(ctx, db, identity.WithKeys(ring))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = profiles.Close() })
	bundles, err := results.OpenStore(filepath.Join(dir, "results"), results.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &tenancyFixture{ledger: store, profiles: profiles, bundles: bundles, ring: ring}
	f.acts = &activities.Activities{Settings: activities.SettingsFrom(cfg), Ledger: store, Profiles: profiles, Finder: profiles, Results: bundles, Keys: ring}
	var suite testsuite.WorkflowTestSuite
	f.env = suite.NewTestActivityEnvironment()
	f.env.RegisterActivity(f.acts)
	return f
}

func (f *tenancyFixture) request(t *testing.T, controller, id, typ string) ledger.Key {
	t.Helper()
	if _, _, err := f.ledger.CreateRequest(context.Background(), ledger.Request{ControllerID: controller, RequestID: id,
		Type: typ, Regulation: "gdpr", ReceivedTime: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	return ledger.Key{ControllerID: controller, RequestID: id}
}

func (f *tenancyFixture) upsert(t *testing.T, controller string, ps ...identity.Profile) {
	t.Helper()
	if _, err := f.profiles.Upsert(context.Background(), controller, ps); err != nil {
		t.Fatal(err)
	}
}

// TestResolveScopesByControllerAndDestination: a controller's request
// resolves to its own profile only, never reaches a destination that does
// not list it (the forwarding row says skipped, with the reason), and the
// trace it reads back holds profile ids and rules, no identity value.
func TestResolveScopesByControllerAndDestination(t *testing.T) {
	cfg := config.Config{AmbiguityPolicy: "hold", Destinations: []config.Destination{
		{Name: "acme-only", IdentityType: "controller_customer_id", Active: true, Controllers: []string{"acme"}},
		{Name: "shared", IdentityType: "controller_customer_id", Active: true},
	}}
	f := newTenancyFixture(t, cfg)
	ctx := context.Background()
	f.upsert(t, "acme", identity.Profile{ID: "p-ann", Identities: []identity.Identity{
		{Type: "email", Value: "ann@example.com"}, {Type: "controller_customer_id", Value: "acme-cust-ann"}}})
	f.upsert(t, "globex", identity.Profile{ID: "g-ann", Identities: []identity.Identity{
		{Type: "email", Value: "ann@example.com"}, {Type: "controller_customer_id", Value: "globex-cust-ann"}}})

	resolve := func(controller string) (dsr.ResolveIdentitiesResult, ledger.Key) {
		key := f.request(t, controller, "req-"+controller, "erasure")
		v, err := f.env.ExecuteActivity(f.acts.ResolveIdentities, dsr.ResolveIdentitiesInput{ControllerID: controller, RequestID: key.RequestID,
			Regulation: "gdpr", Identities: []dsr.Identity{{Type: "email", Format: "raw", Value: "ann@example.com"}}})
		if err != nil {
			t.Fatal(err)
		}
		var res dsr.ResolveIdentitiesResult
		if err := v.Get(&res); err != nil {
			t.Fatal(err)
		}
		return res, key
	}

	res, key := resolve("globex")
	if len(res.Profiles) != 1 || res.Profiles[0] != "g-ann" {
		t.Fatalf("globex resolved to %v, want its own g-ann", res.Profiles)
	}
	plans := map[string]dsr.Plan{}
	for _, p := range res.Plans {
		plans[p.Destination] = p
	}
	if p := plans["acme-only"]; !p.Skipped || p.Reason != activities.ReasonDestinationNotAllowed || len(p.DistinctIDs) != 0 {
		t.Errorf("acme-only plan for globex: %+v, want skipped as not allowed", p)
	}
	if p := plans["shared"]; p.Skipped || len(p.DistinctIDs) != 1 || p.DistinctIDs[0] != "globex-cust-ann" {
		t.Errorf("shared plan for globex: %+v, want globex's own customer id", p)
	}
	rows, err := f.ledger.Forwardings(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Destination == "acme-only" && (string(r.Status) != string(dsr.ForwardingSkipped) || r.StatusMessage != activities.ReasonDestinationNotAllowed) {
			t.Errorf("acme-only forwarding row for globex: %+v", r)
		}
	}
	if len(rows) != 2 {
		t.Errorf("%d forwarding rows, want 2", len(rows))
	}
	rec, err := f.ledger.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var sealed string
	if err := json.Unmarshal(rec.Resolution, &sealed); err != nil {
		t.Fatal(err)
	}
	trace, err := f.ring.Open(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(trace, "cust-ann") || strings.Contains(trace, "ann@") || !strings.Contains(trace, "g-ann") {
		t.Errorf("trace shown to the controller: %s", trace)
	}

	res, _ = resolve("acme")
	if len(res.Profiles) != 1 || res.Profiles[0] != "p-ann" || len(res.Plans) != 2 {
		t.Fatalf("acme resolved to %+v", res)
	}
	for _, p := range res.Plans {
		if p.Skipped || len(p.DistinctIDs) != 1 || p.DistinctIDs[0] != "acme-cust-ann" {
			t.Errorf("acme plan %+v", p)
		}
	}
}

// TestCompleteErasure: the completion step removes the subject's earlier
// results bundle, the matched profile, leaves the suppression list, records
// completed with the count, and a retry records nothing twice.
func TestCompleteErasure(t *testing.T) {
	f := newTenancyFixture(t, config.Config{PublicURL: "https://dsr.example"})
	ctx := context.Background()
	f.upsert(t, "acme", identity.Profile{ID: "p-ann", Identities: []identity.Identity{
		{Type: "email", Value: "ann@example.com"}, {Type: "controller_customer_id", Value: "cust-ann"}}})
	f.upsert(t, "globex", identity.Profile{ID: "p-ann", Identities: []identity.Identity{{Type: "email", Value: "ann@example.com"}}})

	// Earlier access requests of acme left bundles: one holding p-ann, one
	// the Mixpanel data of p-ann's customer id (sent raw; no profile matched then).
	bundle := func(id string, profiles []string, ids []identity.Identity) (ledger.Key, string) {
		key := f.request(t, "acme", id, "access")
		token, err := results.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.bundles.Write(ctx, token, func(w io.Writer) error { _, err := w.Write([]byte("zip")); return err }); err != nil {
			t.Fatal(err)
		}
		link, _ := f.ring.Seal("https://dsr.example/v1/results/" + token)
		if err := f.ledger.SetResults(ctx, key, token, link, 1, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := f.profiles.LinkBundle(ctx, "acme", id, profiles, ids); err != nil {
			t.Fatal(err)
		}
		return key, token
	}
	access, token := bundle("access-1", []string{"p-ann"}, nil)
	byID, byIDToken := bundle("access-2", nil, []identity.Identity{{Type: "controller_customer_id", Value: "cust-ann"}})
	_, otherToken := bundle("access-3", nil, []identity.Identity{{Type: "controller_customer_id", Value: "cust-bob"}})

	erasure := f.request(t, "acme", "erase-1", "erasure")
	in := dsr.CompleteErasureInput{
		Status:     dsr.RecordStatusInput{ControllerID: "acme", RequestID: erasure.RequestID, To: dsr.StatusCompleted, Reason: "all destinations done", At: time.Now().UTC()},
		Profiles:   []string{"p-ann"},
		Identities: []dsr.Identity{{Type: "email", Format: "raw", Value: "ann@example.com"}},
	}
	run := func() dsr.CompleteErasureResult {
		v, err := f.env.ExecuteActivity(f.acts.CompleteErasure, in)
		if err != nil {
			t.Fatal(err)
		}
		var out dsr.CompleteErasureResult
		if err := v.Get(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := run()
	if out.RowsRemoved != 3 || out.BundlesRemoved != 2 || !strings.Contains(out.Reason, "local copy erased: 3 ") {
		t.Fatalf("result %+v", out)
	}
	for key, tok := range map[ledger.Key]string{access: token, byID: byIDToken} {
		if _, _, err := f.bundles.Open(tok); !errors.Is(err, results.ErrNotFound) {
			t.Errorf("the bundle of %s survived: %v", key, err)
		}
		if rec, _ := f.ledger.Get(ctx, key); rec.ResultsExpiresAt.After(time.Now()) {
			t.Errorf("the link of %s still works until %v", key, rec.ResultsExpiresAt)
		}
	}
	if _, _, err := f.bundles.Open(otherToken); err != nil {
		t.Errorf("another subject's bundle was removed: %v", err)
	}
	if _, err := f.profiles.Get(ctx, "acme", "p-ann"); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("acme's profile survived: %v", err)
	}
	if _, err := f.profiles.Get(ctx, "globex", "p-ann"); err != nil {
		t.Errorf("globex's profile of the same id was erased: %v", err)
	}
	rec, err := f.ledger.Get(ctx, erasure)
	if err != nil || rec.Status != dsr.StatusCompleted || rec.StatusReason != out.Reason {
		t.Fatalf("ledger: %+v %v", rec, err)
	}

	again := run()
	if again.Reason != out.Reason || again.RowsRemoved != 3 {
		t.Errorf("retry: %+v, want the same reason and count", again)
	}
	trs, err := f.ledger.Transitions(ctx, erasure)
	if err != nil || len(trs) != 2 {
		t.Errorf("transitions after a retry: %+v %v, want received and completed only", trs, err)
	}
}
