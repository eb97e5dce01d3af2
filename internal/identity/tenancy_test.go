package identity_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// TestOwnerScoping: two controllers with the same profile id and the same
// identities never see each other's profiles, by raw or hashed lookup, Get
// or Delete.
func TestOwnerScoping(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		ctx := context.Background()
		ann := func(plan string) identity.Profile {
			return identity.Profile{ID: "p1", Identities: []identity.Identity{
				{Type: "email", Value: "VAL-ann@example.com"}, {Type: "controller_customer_id", Value: "VAL-c1"},
			}, Attributes: map[string]any{"plan": plan}}
		}
		if _, err := s.Upsert(ctx, "ctrl-a", []identity.Profile{ann("a-plan")}); err != nil {
			t.Fatal(err)
		}
		only := identity.Profile{ID: "p-a-only", Identities: []identity.Identity{{Type: "android_id", Value: "VAL-555"}}}
		if _, err := s.Upsert(ctx, "ctrl-a", []identity.Profile{only}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Upsert(ctx, "ctrl-b", []identity.Profile{ann("b-plan")}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s); n != 3 {
			t.Fatalf("%d profiles stored, want 3 (one p1 per controller, and p-a-only)", n)
		}
		queries := []identity.Query{
			{Type: "email", Value: "VAL-ann@example.com"},
			{Type: "email", Format: "sha256", Value: sha256Hex("val-ann@example.com")},
			{Type: "android_id", Format: "sha256", Value: sha256Hex("VAL-555")},
			{Type: "android_id", Value: "VAL-555"},
		}
		for _, c := range []struct {
			owner, plan string
			want        []string
		}{{"ctrl-a", "a-plan", []string{"p-a-only", "p1"}}, {"ctrl-b", "b-plan", []string{"p1"}}, {"ctrl-c", "", nil}} {
			ms, err := s.Find(ctx, c.owner, queries)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, m := range ms {
				ids = append(ids, m.Profile.ID)
				if m.Profile.ID == "p1" && m.Profile.Attributes["plan"] != c.plan {
					t.Errorf("%s found p1 with plan %v, want its own %q", c.owner, m.Profile.Attributes["plan"], c.plan)
				}
			}
			if !reflect.DeepEqual(ids, c.want) {
				t.Errorf("%s found %v, want %v", c.owner, ids, c.want)
			}
		}
		if _, err := s.Get(ctx, "ctrl-b", "p-a-only"); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("ctrl-b read ctrl-a's profile: %v", err)
		}
		if err := s.Delete(ctx, "ctrl-b", "p-a-only"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "ctrl-a", "p-a-only"); err != nil {
			t.Errorf("ctrl-b's delete removed ctrl-a's profile: %v", err)
		}
		// The empty owner (profiles from before tenancy) is never a valid scope.
		for _, bad := range []string{"", "a/b", "VAL-ann@example.com"} {
			if _, err := s.Find(ctx, bad, queries); !errors.Is(err, identity.ErrInvalid) {
				t.Errorf("Find with owner %q: %v, want ErrInvalid", bad, err)
			} else if strings.Contains(err.Error(), "VAL-") {
				t.Errorf("error echoes the owner: %v", err)
			}
		}
	})
}

// TestEraseAndSuppression: Erase removes the profiles and their identities,
// is idempotent per request, and leaves keyed hashes that make a later
// import or upsert of the same person be suppressed, for that controller
// only, also after the key ring rotates.
func TestEraseAndSuppression(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, db *sqldb.DB) {
		ctx := context.Background()
		file := `{"profile_id":"p1","identities":{"email":"VAL-Ann@Example.com","controller_customer_id":"VAL-c1"},"attributes":{"secret":"VAL-attr"}}
{"profile_id":"p2","identities":{"email":"VAL-bob@example.com"}}
`
		rep, err := s.Import(ctx, owner, strings.NewReader(file), identity.JSONL, identity.ImportOptions{})
		if err != nil || rep.Imported != 2 || rep.Suppressed != 0 {
			t.Fatalf("import: %+v, %v", rep, err)
		}
		// access-1's bundle holds p1; access-2's the data of p1's customer id (no profile matched then).
		if err := s.LinkBundle(ctx, owner, "access-1", []string{"p1"}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkBundle(ctx, owner, "access-2", nil, []identity.Identity{{Type: "controller_customer_id", Value: " VAL-c1 "}}); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkBundle(ctx, "other", "access-3", []string{"p1"}, nil); err != nil {
			t.Fatal(err)
		}
		bundles, err := s.BundleRequests(ctx, owner, []string{"p1", "p2"}, nil)
		if err != nil || !reflect.DeepEqual(bundles, []string{"access-1", "access-2"}) {
			t.Fatalf("bundle requests %v, %v", bundles, err)
		}
		if reqs, err := s.BundleRequests(ctx, owner, []string{"p2"}, []identity.Identity{{Type: "email", Value: "VAL-nobody@example.com"}}); err != nil || len(reqs) != 0 {
			t.Fatalf("bundle requests of p2: %v, %v", reqs, err)
		}
		var linked int
		if err := db.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM identity_bundles WHERE subject LIKE ?`), "%VAL-%").Scan(&linked); err != nil || linked != 0 {
			t.Fatalf("bundle links hold values: %d, %v", linked, err)
		}
		in := identity.EraseInput{Owner: owner, RequestID: "erase-1", ProfileIDs: []string{"p1", "p-unknown"},
			Identities: []identity.Identity{{Type: "android_id", Value: "VAL-777"}}, BundleRequests: bundles}
		res, err := s.Erase(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		// p1: 1 profile row and 2 identity rows; 3 hashes (2 identities and the request's phone).
		if res.Rows != 3 || res.Profiles != 1 || res.Suppressed != 3 || res.Repeated {
			t.Fatalf("erase: %+v", res)
		}
		if _, err := s.Get(ctx, owner, "p1"); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("p1 survived the erasure: %v", err)
		}
		if found(t, s, identity.Query{Type: "email", Value: "val-ann@example.com"}) != nil {
			t.Fatal("p1's email still resolves")
		}
		if reqs, _ := s.BundleRequests(ctx, owner, []string{"p1"}, []identity.Identity{{Type: "controller_customer_id", Value: "VAL-c1"}}); len(reqs) != 0 {
			t.Errorf("bundle links kept: %v", reqs)
		}
		if reqs, _ := s.BundleRequests(ctx, "other", []string{"p1"}, nil); len(reqs) != 1 {
			t.Errorf("another controller's bundle link went: %v", reqs)
		}
		if err := s.ForgetBundle(ctx, "other", "access-3"); err != nil {
			t.Fatal(err)
		}
		if reqs, _ := s.BundleRequests(ctx, "other", []string{"p1"}, nil); len(reqs) != 0 {
			t.Errorf("an expired bundle is still linked: %v", reqs)
		}
		// Retrying changes nothing and reports the same count.
		again, err := s.Erase(ctx, in)
		if err != nil || again.Rows != 3 || !again.Repeated {
			t.Fatalf("retry: %+v, %v", again, err)
		}
		if n := count(t, s); n != 1 {
			t.Fatalf("%d profiles left, want p2 only", n)
		}
		// Nothing in the database holds the erased values, or plain digests of them.
		var leaked int
		if err := db.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM identity_suppressions WHERE hash LIKE ? OR hash LIKE ?`),
			"%VAL-%", "%"+sha256Hex("val-ann@example.com")+"%").Scan(&leaked); err != nil || leaked != 0 {
			t.Fatalf("suppression list holds values: %d, %v", leaked, err)
		}

		// A re-sync of the same file: p1 is suppressed (by line, no value), p2 imported.
		// The email is sent in another case and with spaces: normalised before hashing.
		resync := strings.Replace(file, "VAL-Ann@Example.com", " VAL-ANN@example.com ", 1)
		rep, err = s.Import(ctx, owner, strings.NewReader(resync), identity.JSONL, identity.ImportOptions{})
		if err != nil || rep.Imported != 1 || rep.Suppressed != 1 || !reflect.DeepEqual(rep.SuppressedLines, []int{1}) {
			t.Fatalf("re-import: %+v, %v", rep, err)
		}
		if strings.Contains(fmtV(rep), "VAL-") {
			t.Errorf("report holds a value: %v", fmtV(rep))
		}
		// A profile under a new id that shares one identity (the request's phone) is suppressed too.
		sup, err := s.Upsert(ctx, owner, []identity.Profile{
			{ID: "p9", Identities: []identity.Identity{{Type: "android_id", Value: "VAL-777"}}},
			{ID: "p10", Identities: []identity.Identity{{Type: "android_id", Value: "VAL-778"}}},
		})
		if err != nil || !reflect.DeepEqual(sup, []int{0}) {
			t.Fatalf("upsert: suppressed %v, %v", sup, err)
		}
		// CSV imports are checked as well.
		rep, err = s.Import(ctx, owner, strings.NewReader("profile_id,controller_customer_id\nx1,VAL-c1\nx2,VAL-c2\n"), identity.CSV, identity.ImportOptions{})
		if err != nil || rep.Imported != 1 || !reflect.DeepEqual(rep.SuppressedLines, []int{2}) {
			t.Fatalf("csv: %+v, %v", rep, err)
		}
		// Another controller's import of the same person is its own business.
		rep, err = s.Import(ctx, "other", strings.NewReader(file), identity.JSONL, identity.ImportOptions{})
		if err != nil || rep.Imported != 2 || rep.Suppressed != 0 {
			t.Fatalf("other controller: %+v, %v", rep, err)
		}
	})
}

// testRingSpec is a fresh key ring's spec.
func testRingSpec(t *testing.T) string {
	t.Helper()
	spec, err := keyring.Generate("k2")
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestSuppressionSurvivesRotation: a store opened with a rotated ring (new
// active key, the old one kept) still suppresses what the old key hashed;
// without the old key it no longer can.
func TestSuppressionSurvivesRotation(t *testing.T) {
	each(t, func(t *testing.T, _ *identity.Store, db *sqldb.DB) {
		ctx := context.Background()
		oldSpec, err := keyring.Generate("old")
		if err != nil {
			t.Fatal(err)
		}
		newSpec := testRingSpec(t)
		open := func(spec string) *identity.Store {
			ring, err := keyring.Parse(spec)
			if err != nil {
				t.Fatal(err)
			}
			s, err := identity.New(ctx, db, identity.WithKeys(ring))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
		p := identity.Profile{ID: "p1", Identities: []identity.Identity{{Type: "email", Value: "VAL-ann@example.com"}}}
		before := open(oldSpec)
		if _, err := before.Upsert(ctx, owner, []identity.Profile{p}); err != nil {
			t.Fatal(err)
		}
		if _, err := before.Erase(ctx, identity.EraseInput{Owner: owner, RequestID: "r1", ProfileIDs: []string{"p1"}}); err != nil {
			t.Fatal(err)
		}
		rotated := open(newSpec + "," + oldSpec)
		if sup, err := rotated.Upsert(ctx, owner, []identity.Profile{p}); err != nil || len(sup) != 1 {
			t.Fatalf("after rotation: suppressed %v, %v", sup, err)
		}
		forgotten := open(newSpec)
		if sup, err := forgotten.Upsert(ctx, owner, []identity.Profile{p}); err != nil || len(sup) != 0 {
			t.Fatalf("without the old key: suppressed %v, %v", sup, err)
		}
	})
}

// TestNoKeysNoImport: without a key ring the store cannot check the
// suppression list, so it refuses to import or erase rather than resurrect.
func TestNoKeysNoImport(t *testing.T) {
	each(t, func(t *testing.T, _ *identity.Store, db *sqldb.DB) {
		ctx := context.Background()
		s, err := identity.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Import(ctx, owner, strings.NewReader(`{"profile_id":"p1"}`), identity.JSONL, identity.ImportOptions{}); !errors.Is(err, identity.ErrNoKeys) {
			t.Errorf("import: %v", err)
		}
		if _, err := s.Upsert(ctx, owner, []identity.Profile{{ID: "p1"}}); !errors.Is(err, identity.ErrNoKeys) {
			t.Errorf("upsert: %v", err)
		}
		if _, err := s.Erase(ctx, identity.EraseInput{Owner: owner, RequestID: "r"}); !errors.Is(err, identity.ErrNoKeys) {
			t.Errorf("erase: %v", err)
		}
	})
}

// TestEraseRacingAnImport: an import of a person running beside their
// erasure never leaves them in the store, whichever commits first.
func TestEraseRacingAnImport(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		ctx := context.Background()
		p := identity.Profile{ID: "p1", Identities: []identity.Identity{{Type: "email", Value: "VAL-race@example.com"}}}
		for i := range 20 {
			o := fmt.Sprintf("race-%d", i)
			if _, err := s.Upsert(ctx, o, []identity.Profile{p}); err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 2)
			go func() {
				_, err := s.Erase(ctx, identity.EraseInput{Owner: o, RequestID: "r", ProfileIDs: []string{"p1"}})
				errs <- err
			}()
			go func() {
				_, err := s.Upsert(ctx, o, []identity.Profile{p})
				errs <- err
			}()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Get(ctx, o, "p1"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("round %d: the erased person is back (%v)", i, err)
			}
		}
	})
}
