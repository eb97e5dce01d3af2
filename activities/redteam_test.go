package activities_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/dsr"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/ledger"
)

// TestCompleteErasureForgetsTheProfileIDInTheLedger: an erasure held as
// ambiguous names its candidate profiles in its ledger reasons, and the
// operator's choice names the chosen one; once the erasure completes, the
// erased profile's id is left in no reason of the controller's records (an
// earlier access request's included), only its keyed hash. The other
// candidate, who was not erased, keeps its name. The sealed resolution trace
// the controller reads back is rewritten the same way.
func TestCompleteErasureForgetsTheProfileIDInTheLedger(t *testing.T) {
	f := newTenancyFixture(t, config.Config{PublicURL: "https://dsr.example"})
	ctx := context.Background()
	f.upsert(t, "acme",
		identity.Profile{ID: "cust-8812", Identities: []identity.Identity{{Type: "email", Value: "kim@example.com"}}},
		identity.Profile{ID: "cust-8813", Identities: []identity.Identity{{Type: "email", Value: "kim@example.com"}}})

	access := f.request(t, "acme", "access-1", "access")
	erasure := f.request(t, "acme", "erase-1", "erasure")
	for _, st := range []struct {
		k      ledger.Key
		reason string
	}{
		{access, "identity settled by operator olga: profile cust-8812"},
		{erasure, "ambiguous identity: 2 profiles match (cust-8812, cust-8813); choose one with dsr resolve"},
		{erasure, "identity settled by operator olga: profile cust-8812"},
	} {
		if err := f.ledger.SetStatus(ctx, st.k, dsr.StatusPending, st.reason, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	trace, err := f.ring.Seal(`{"rule":"operator_choice","profiles":["cust-8812"],"candidates":["cust-8812","cust-8813"],"reason":"an operator chose profile cust-8812 among cust-8812, cust-8813"}`)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(trace)
	if err := f.ledger.SetResolution(ctx, erasure, doc); err != nil {
		t.Fatal(err)
	}
	in := dsr.CompleteErasureInput{
		Status:     dsr.RecordStatusInput{ControllerID: "acme", RequestID: erasure.RequestID, To: dsr.StatusCompleted, Reason: "all destinations done", At: time.Now().UTC()},
		Profiles:   []string{"cust-8812"},
		Identities: []dsr.Identity{{Type: "email", Format: "raw", Value: "kim@example.com"}},
	}
	if _, err := f.env.ExecuteActivity(f.acts.CompleteErasure, in); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, k := range []ledger.Key{access, erasure} {
		trs, err := f.ledger.Transitions(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trs {
			reasons = append(reasons, tr.Reason)
		}
		rec, err := f.ledger.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		reasons = append(reasons, rec.StatusReason)
	}
	rec, err := f.ledger.Get(ctx, erasure)
	if err != nil {
		t.Fatal(err)
	}
	var sealed string
	if err := json.Unmarshal(rec.Resolution, &sealed); err != nil {
		t.Fatal(err)
	}
	opened, err := f.ring.Open(sealed)
	if err != nil {
		t.Fatal(err)
	}
	reasons = append(reasons, opened)
	all := strings.Join(reasons, "\n")
	if strings.Contains(all, "cust-8812") {
		t.Errorf("the erased profile id is still in the ledger:\n%s", all)
	}
	hash := "[erased " + f.ring.Hash(ledger.PurposeProfile, "cust-8812") + "]"
	if !strings.Contains(all, `"profiles":["`+hash+`"]`) {
		t.Errorf("the sealed trace does not name the keyed hash:\n%s", all)
	}
	if !strings.Contains(all, "profiles match ("+hash+", cust-8813)") {
		t.Errorf("the hold's reason does not name the keyed hash and the other candidate:\n%s", all)
	}
}
