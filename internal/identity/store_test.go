package identity_test

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/config"
	"github.com/dsrflow/dsrflow/internal/identity"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// each runs fn once per backend with a Store on a fresh database.
func each(t *testing.T, fn func(t *testing.T, s *identity.Store, db *sqldb.DB)) {
	t.Helper()
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s, err := identity.New(context.Background(), db, identity.WithKeys(testRing(t)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		fn(t, s, db)
	})
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func mustUpsert(t *testing.T, s *identity.Store, ps ...identity.Profile) {
	t.Helper()
	if _, err := s.Upsert(context.Background(), owner, ps); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, s *identity.Store, id string) identity.Profile {
	t.Helper()
	p, err := s.Get(context.Background(), owner, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// found returns, for each match, "profile:inputs".
func found(t *testing.T, s *identity.Store, qs ...identity.Query) []string {
	t.Helper()
	ms, err := s.Find(context.Background(), owner, qs)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		b, _ := json.Marshal(m.Inputs)
		out = append(out, m.Profile.ID+":"+string(b))
	}
	return out
}

func count(t *testing.T, s *identity.Store) int {
	t.Helper()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUpsertGetReplace(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		ctx := context.Background()
		ann := identity.Profile{
			ID:         "p1",
			Identities: ids("email", " Ann@Example.COM ", "controller_customer_id", "Cust-1", "ios_vendor_id", "v1", "ios_vendor_id", "v2", "email", "ann@example.com"),
			Attributes: map[string]any{"plan": "pro", "seats": json.Number("3"), "tags": []any{"a", "b"}},
		}
		for range 2 { // idempotent
			mustUpsert(t, s, ann)
		}
		if n := count(t, s); n != 1 {
			t.Fatalf("count %d", n)
		}
		got := mustGet(t, s, "p1")
		want := identity.Profile{
			ID: "p1",
			// Trimmed, as given; the second email is the first one normalised: kept once.
			Identities: ids("email", "Ann@Example.COM", "controller_customer_id", "Cust-1", "ios_vendor_id", "v1", "ios_vendor_id", "v2"),
			Attributes: map[string]any{"plan": "pro", "seats": json.Number("3"), "tags": []any{"a", "b"}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v\nwant %#v", got, want)
		}

		// Replacing: the old identities no longer match, the attributes are new.
		mustUpsert(t, s, identity.Profile{ID: "p1", Identities: ids("controller_customer_id", "Cust-2")})
		got = mustGet(t, s, "p1")
		if !reflect.DeepEqual(got, identity.Profile{ID: "p1", Identities: ids("controller_customer_id", "Cust-2")}) {
			t.Fatalf("after replace: %#v", got)
		}
		if f := found(t, s, identity.Query{Type: "email", Value: "ann@example.com"}, identity.Query{Type: "ios_vendor_id", Value: "v1"}); f != nil {
			t.Fatalf("old identities still match: %v", f)
		}

		// Several profiles at once; the last of one id wins.
		mustUpsert(t, s,
			identity.Profile{ID: "p2", Identities: ids("email", "b@x.com")},
			identity.Profile{ID: "p3", Identities: ids("email", "c@x.com")},
			identity.Profile{ID: "p2", Identities: ids("email", "b2@x.com")},
		)
		if n := count(t, s); n != 3 {
			t.Fatalf("count %d", n)
		}
		if got := mustGet(t, s, "p2"); !reflect.DeepEqual(got.Identities, ids("email", "b2@x.com")) {
			t.Fatalf("p2: %#v", got)
		}

		if _, err := s.Get(ctx, owner, "nobody"); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("Get unknown: %v", err)
		}
	})
}

func TestUpsertInvalidWritesNothing(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		bad := []struct {
			p       identity.Profile
			problem string
		}{
			{identity.Profile{ID: "", Identities: ids("email", "VAL@x.com")}, "missing profile_id"},
			{identity.Profile{ID: "p", Identities: ids("phone", "VAL-555")}, "unknown identity type"},
			{identity.Profile{ID: "p", Identities: ids("email", "VAL-not-an-email")}, "email: not an email address"},
			{identity.Profile{ID: "p", Identities: ids("controller_customer_id", "  ")}, "controller_customer_id: empty value"},
			{identity.Profile{ID: "p", Identities: ids("controller_customer_id", "VAL"+strings.Repeat("x", 300))}, "longer than 255"},
			{identity.Profile{ID: "p", Identities: ids("controller_customer_id", "VAL\x00")}, "NUL"},
		}
		for _, b := range bad {
			good := identity.Profile{ID: "good", Identities: ids("email", "good@x.com")}
			_, err := s.Upsert(context.Background(), owner, []identity.Profile{good, b.p})
			if !errors.Is(err, identity.ErrInvalid) || !strings.Contains(err.Error(), "profile 1") || !strings.Contains(err.Error(), b.problem) {
				t.Errorf("got %v, want ErrInvalid naming profile 1 and %q", err, b.problem)
			}
			if err != nil && strings.Contains(err.Error(), "VAL") {
				t.Errorf("error holds a value: %v", err)
			}
		}
		if n := count(t, s); n != 0 {
			t.Fatalf("%d profiles written by failed upserts", n)
		}
	})
}

func TestFindRawAndHashed(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		mustUpsert(t, s,
			identity.Profile{ID: "p1", Identities: ids("email", " Ann@Example.COM ", "controller_customer_id", "Cust-1", "ios_vendor_id", "v1")},
			identity.Profile{ID: "p2", Identities: ids("ios_vendor_id", "v1", "android_id", "a-1")},
			// Same value as p1's customer id, but an email... of another type.
			identity.Profile{ID: "p3", Identities: ids("controller_customer_id", "ann@example.com")},
		)
		norm := "ann@example.com"
		tests := []struct {
			name string
			q    identity.Query
			want []string
		}{
			{"raw, normalised", identity.Query{Type: "email", Value: "ann@example.com"}, []string{"p1:[0]"}},
			{"raw, as sent", identity.Query{Type: "email", Format: "raw", Value: "  ANN@example.com"}, []string{"p1:[0]"}},
			{"sha256 of the normalised email", identity.Query{Type: "email", Format: "sha256", Value: sha256Hex(norm)}, []string{"p1:[0]"}},
			{"sha256 in upper case", identity.Query{Type: "email", Format: "sha256", Value: strings.ToUpper(sha256Hex(norm))}, []string{"p1:[0]"}},
			{"sha1", identity.Query{Type: "email", Format: "sha1", Value: sha1Hex(norm)}, []string{"p1:[0]"}},
			{"md5", identity.Query{Type: "email", Format: "md5", Value: md5Hex(norm)}, []string{"p1:[0]"}},
			{"sha256 of the unnormalised email", identity.Query{Type: "email", Format: "sha256", Value: sha256Hex(" Ann@Example.COM ")}, nil},
			{"customer ids are case-sensitive", identity.Query{Type: "controller_customer_id", Value: "cust-1"}, nil},
			{"customer id, trimmed", identity.Query{Type: "controller_customer_id", Value: " Cust-1 "}, []string{"p1:[0]"}},
			{"customer id hashed", identity.Query{Type: "controller_customer_id", Format: "md5", Value: md5Hex("Cust-1")}, []string{"p1:[0]"}},
			{"type matters", identity.Query{Type: "controller_customer_id", Value: "ann@example.com"}, []string{"p3:[0]"}},
			{"shared device", identity.Query{Type: "ios_vendor_id", Value: "v1"}, []string{"p1:[0]", "p2:[0]"}},
			{"unknown", identity.Query{Type: "email", Value: "bob@example.com"}, nil},
		}
		for _, tt := range tests {
			if got := found(t, s, tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			}
		}

		// Several queries: each match says which ones found it, and carries
		// the whole profile.
		ms, err := s.Find(context.Background(), owner, []identity.Query{
			{Type: "email", Format: "sha256", Value: sha256Hex(norm)},
			{Type: "android_id", Value: "a-1"},
			{Type: "controller_customer_id", Value: "Cust-1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 || ms[0].Profile.ID != "p1" || !reflect.DeepEqual(ms[0].Inputs, []int{0, 2}) ||
			ms[1].Profile.ID != "p2" || !reflect.DeepEqual(ms[1].Inputs, []int{1}) {
			t.Fatalf("matches %+v", ms)
		}
		if !reflect.DeepEqual(ms[0].Profile, mustGet(t, s, "p1")) {
			t.Errorf("match holds %#v, not the whole profile", ms[0].Profile)
		}
	})
}

func TestFindInvalidQuery(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		for _, q := range []identity.Query{
			{Type: "email", Format: "sha256", Value: "VALnothex"},
			{Type: "email", Format: "sha256", Value: sha1Hex("VAL")},
			{Type: "email", Format: "sha512", Value: "VAL"},
			{Type: "phone", Value: "VAL"},
			{Type: "email", Value: " "},
		} {
			_, err := s.Find(context.Background(), owner, []identity.Query{{Type: "email", Value: "ok@x.com"}, q})
			if !errors.Is(err, identity.ErrInvalid) || !strings.Contains(err.Error(), "identity 1") {
				t.Errorf("%s: got %v, want ErrInvalid naming identity 1", q, err)
			}
			if err != nil && strings.Contains(err.Error(), "VAL") {
				t.Errorf("error holds the value: %v", err)
			}
		}
	})
}

func TestDelete(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		ctx := context.Background()
		mustUpsert(t, s,
			identity.Profile{ID: "p1", Identities: ids("email", "a@x.com")},
			identity.Profile{ID: "p2", Identities: ids("email", "b@x.com")},
		)
		for range 2 { // deleting an unknown profile is fine
			if err := s.Delete(ctx, owner, "p1"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Get(ctx, owner, "p1"); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("Get after Delete: %v", err)
		}
		if f := found(t, s, identity.Query{Type: "email", Value: "a@x.com"}); f != nil {
			t.Fatalf("deleted profile found: %v", f)
		}
		if got := found(t, s, identity.Query{Type: "email", Value: "b@x.com"}); !reflect.DeepEqual(got, []string{"p2:[0]"}) {
			t.Fatalf("other profile: %v", got)
		}
		if n := count(t, s); n != 1 {
			t.Fatalf("count %d", n)
		}
	})
}

// indexes lists the digest indexes present on identity_values.
func indexes(t *testing.T, db *sqldb.DB) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'identity_values' AND name LIKE 'identity_values_%' ORDER BY name`
	if db.Dialect == sqldb.Postgres {
		q = `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'identity_values'
			AND indexname LIKE 'identity_values_%' AND indexname <> 'identity_values_pkey' ORDER BY indexname`
	}
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

var allIndexes = []string{"identity_values_md5", "identity_values_profile", "identity_values_sha1", "identity_values_sha256"}

// A bulk import that died before rebuilding the digest indexes leaves them
// missing; the next New creates them, unless a bulk import is alive.
func TestNewRestoresMissingIndexes(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, db *sqldb.DB) {
		ctx := context.Background()
		if got := indexes(t, db); !reflect.DeepEqual(got, allIndexes) {
			t.Fatalf("indexes %v", got)
		}
		if _, err := db.ExecContext(ctx, `DROP INDEX identity_values_sha1`); err != nil {
			t.Fatal(err)
		}
		withoutSHA1 := []string{"identity_values_md5", "identity_values_profile", "identity_values_sha256"}

		// A live bulk import heartbeats: its dropped indexes are left alone.
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO identity_bulk_imports (import_id, heartbeat) VALUES (?, ?)`),
			"live", db.TimeArg(time.Now().Add(-time.Minute))); err != nil {
			t.Fatal(err)
		}
		if _, err := identity.New(ctx, db, identity.WithKeys(testRing(t))); err != nil {
			t.Fatal(err)
		}
		if got := indexes(t, db); !reflect.DeepEqual(got, withoutSHA1) {
			t.Fatalf("indexes with a live bulk import %v", got)
		}

		// It died: its indexes are built again.
		if _, err := db.ExecContext(ctx, db.Rebind(`UPDATE identity_bulk_imports SET heartbeat = ?`),
			db.TimeArg(time.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		if _, err := identity.New(ctx, db, identity.WithKeys(testRing(t))); err != nil {
			t.Fatal(err)
		}
		if got := indexes(t, db); !reflect.DeepEqual(got, allIndexes) {
			t.Fatalf("indexes after New %v", got)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM identity_bulk_imports`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d bulk imports left (%v)", n, err)
		}
	})
}

// The store's rules, end to end: import, find, resolve.
func TestFindThenResolve(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		mustUpsert(t, s,
			identity.Profile{ID: "p1", Identities: ids("email", "Ann@Example.com", "controller_customer_id", "c-1", "ios_vendor_id", "v1")},
			identity.Profile{ID: "p2", Identities: ids("ios_vendor_id", "v1", "ios_advertising_id", "idfa-1")},
		)
		dests := []config.Destination{simplified}
		qs := []identity.Query{{Type: "email", Format: "sha256", Value: sha256Hex("ann@example.com")}}
		ms, err := s.Find(context.Background(), owner, qs)
		if err != nil {
			t.Fatal(err)
		}
		res := identity.Resolve(identity.Input{Identities: qs, Matches: ms, Destinations: dests})
		if res.Rule != identity.RuleSingleProfile || !reflect.DeepEqual(res.Plans[0].DistinctIDs, []string{"c-1"}) {
			t.Fatalf("hashed email: %+v", res)
		}

		// The shared device alone reaches only the anonymous profile.
		qs = []identity.Query{{Type: "ios_vendor_id", Value: "v1"}}
		if ms, err = s.Find(context.Background(), owner, qs); err != nil {
			t.Fatal(err)
		}
		res = identity.Resolve(identity.Input{Identities: qs, Matches: ms, Destinations: dests})
		if res.Rule != identity.RuleSingleProfile || !reflect.DeepEqual(res.Profiles, []string{"p2"}) ||
			!reflect.DeepEqual(res.Plans[0].DistinctIDs, []string{"$device:idfa-1", "$device:v1"}) {
			t.Fatalf("device only: %+v", res)
		}
	})
}

// Concurrent writers, more than the pool has connections, each with full
// chunks of rows, neither deadlock nor lose anything.
func TestConcurrentUpserts(t *testing.T) {
	each(t, func(t *testing.T, s *identity.Store, _ *sqldb.DB) {
		const writers, perWriter = 8, 300 // each SQLite writer waits for all before it: at most 10 s (busy timeout), even under -race on a loaded machine
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				ps := make([]identity.Profile, perWriter)
				for i := range ps {
					// Half the ids are shared between writers: the last write wins.
					id := fmt.Sprintf("w%d-p%d", w, i)
					if i%2 == 0 {
						id = fmt.Sprintf("shared-p%d", i)
					}
					ps[i] = identity.Profile{ID: id, Identities: ids("controller_customer_id", id, "email", id+"@x.com")}
				}
				_, err := s.Upsert(context.Background(), owner, ps)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, s); n != writers*perWriter/2+perWriter/2 {
			t.Fatalf("count %d", n)
		}
		if got := found(t, s, identity.Query{Type: "controller_customer_id", Value: "shared-p10"}); !reflect.DeepEqual(got, []string{"shared-p10:[0]"}) {
			t.Fatalf("shared profile: %v", got)
		}
		if p := mustGet(t, s, "shared-p10"); len(p.Identities) != 2 {
			t.Fatalf("shared profile has %d identities: one writer's set, not a mix", len(p.Identities))
		}
	})
}
