package identity

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// TestMigrationLeavesOldProfilesUnowned: profiles stored before tenancy
// (migration 001 only) keep their keys and identities, belong to no
// controller, are matched by none, and a controller can import a profile
// with the same id beside them.
func TestMigrationLeavesOldProfilesUnowned(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		old := fstest.MapFS{}
		err := fs.WalkDir(migrationFiles, "migrations", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.Contains(path, "/001_") {
				return err
			}
			b, err := migrationFiles.ReadFile(path)
			old[strings.TrimPrefix(path, "migrations/")] = &fstest.MapFile{Data: b}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, "identity", old); err != nil {
			t.Fatal(err)
		}
		d := digestsOf("email", "old@example.com")
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO identity_profiles (profile_id, attributes, updated_at) VALUES (?, '{}', ?)`),
			"p1", db.TimeArg(time.Now())); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO identity_values (profile_key, type, value, sha256, sha1, md5)
			SELECT profile_key, 'email', 'old@example.com', ?, ?, ? FROM identity_profiles`), d.sha256, d.sha1, d.md5); err != nil {
			t.Fatal(err)
		}

		spec, _ := keyring.Generate("k1")
		ring, err := keyring.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(ctx, db, WithKeys(ring))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var owner string
		if err := db.QueryRowContext(ctx, `SELECT owner FROM identity_profiles`).Scan(&owner); err != nil || owner != "" {
			t.Fatalf("old profile owner %q (%v), want unowned", owner, err)
		}
		q := []Query{{Type: "email", Value: "old@example.com"}}
		if ms, err := s.Find(ctx, "dev", q); err != nil || len(ms) != 0 {
			t.Fatalf("an unowned profile matched: %v %v", ms, err)
		}
		if _, err := s.Upsert(ctx, "dev", []Profile{{ID: "p1", Identities: []Identity{{Type: "email", Value: "old@example.com"}}}}); err != nil {
			t.Fatal(err)
		}
		if ms, err := s.Find(ctx, "dev", q); err != nil || len(ms) != 1 {
			t.Fatalf("the re-imported profile: %v %v", ms, err)
		}
		if n, err := s.Count(ctx); err != nil || n != 2 {
			t.Fatalf("%d profiles, want the unowned one and dev's (%v)", n, err)
		}
	})
}
