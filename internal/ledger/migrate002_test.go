package ledger_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// schema001 is the ledger's first migration alone: the schema the released
// code created.
func schema001(t *testing.T) fstest.MapFS {
	t.Helper()
	files, err := filepath.Glob("migrations/001_*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migration 001: %v", err)
	}
	fsys := fstest.MapFS{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fsys[filepath.Base(f)] = &fstest.MapFile{Data: b}
	}
	return fsys
}

// legacyDigest is what the released code stored for a value: its hex SHA-256.
func legacyDigest(v string) string { return ledger.HashHex(v) }

// TestMigration002MarksLegacyRows: on a ledger the released code wrote, the
// migration marks every unkeyed hash ("sha256:" and hash_scheme 'sha256'),
// keeps reading clear callback URLs, and no row mixes forms; UpgradeLegacy
// then keys and seals them, leaving rows written since untouched.
func TestMigration002MarksLegacyRows(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "ledger", schema001(t)); err != nil {
			t.Fatal(err)
		}
		// Rows as the released code wrote them, including two attempts that
		// the old UNIQUE constraint allowed side by side.
		const clearURL = "https://controller.example/cb?token=legacy-secret"
		ids := `[{"type":"email","format":"raw","sha256":"` + legacyDigest("email:raw:ann@example.com") + `"},` +
			`{"type":"controller_customer_id","format":"raw","sha256":"` + legacyDigest("controller_customer_id:raw:c-1") + `"}]`
		now := db.TimeArg(base())
		later := db.TimeArg(base().Add(ledger.DefaultRetention))
		for _, id := range []string{"old-1", "old-2"} {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO requests (controller_id, request_id, type, regulation, status,
				received_time, body_hash, identities, callback_urls, updated_at, expires_at)
				VALUES ('acme', ?, 'erasure', 'gdpr', 'pending', ?, ?, ?, ?, ?, ?)`),
				id, now, legacyDigest("body of "+id), ids, `["`+clearURL+`"]`, now, later); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO requests (controller_id, request_id, type, regulation, status,
			received_time, updated_at, expires_at) VALUES ('acme', 'old-bare', 'access', 'ccpa', 'pending', ?, ?, ?)`), now, now, later); err != nil {
			t.Fatal(err)
		}
		for _, st := range []string{"pending", "in_progress"} {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO callback_attempts (controller_id, request_id, url_hash, host,
				request_status, attempt, at, delivered) VALUES ('acme', 'old-1', ?, 'controller.example', ?, 1, ?, ?)`),
				legacyDigest(clearURL), st, now, true); err != nil {
				t.Fatal(err)
			}
		}

		s, err := ledger.New(ctx, db) // applies 002
		if err != nil {
			t.Fatal(err)
		}
		fresh := mustCreate(t, s, newRequest("acme", "new-1", base()))

		// An older binary still running (a rolling upgrade) cannot add
		// unmarked unkeyed hashes or clear URLs next to the keyed ones.
		insert := func(id string, row [3]string) error {
			_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO requests (controller_id, request_id, type, regulation, status,
				received_time, body_hash, identities, callback_urls, updated_at, expires_at)
				VALUES ('acme', ?, 'erasure', 'gdpr', 'pending', ?, ?, ?, ?, ?, ?)`),
				id, now, row[0], row[1], row[2], now, later)
			return err
		}
		keyedIDs := `[{"type":"email","format":"raw","hash":"` + keyed(ledger.PurposeIdentity, "x") + `"}]`
		if err := insert("keyed-raw", [3]string{keyed(ledger.PurposeBody, "b"), keyedIDs, `["` + sealed(clearURL) + `"]`}); err != nil {
			t.Fatalf("a keyed row written directly: %v", err)
		}
		for name, row := range map[string][3]string{
			"unkeyed body hash":   {legacyDigest("body"), `[]`, `[]`},
			"unkeyed identities":  {"", ids, `[]`},
			"clear callback URLs": {"", `[]`, `["` + clearURL + `"]`},
		} {
			if err := insert("old-binary-"+strings.ReplaceAll(name, " ", "-"), row); err == nil {
				t.Errorf("the database took a new row with %s", name)
			}
		}
		if _, err := db.ExecContext(ctx, db.Rebind(`UPDATE requests SET body_hash = ? WHERE request_id = 'new-1'`), legacyDigest("body")); err == nil {
			t.Error("the database took an unkeyed body hash on a keyed row")
		}
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO callback_attempts (controller_id, request_id, url_hash, request_status, attempt, at)
			VALUES ('acme', 'new-1', ?, 'pending', 1, ?)`), legacyDigest(clearURL), now); err == nil {
			t.Error("the database took an unkeyed callback URL hash")
		}

		old, err := s.Get(ctx, ledger.Key{ControllerID: "acme", RequestID: "old-1"})
		if err != nil {
			t.Fatal(err)
		}
		wantIDs := []ledger.IdentityHash{
			{Type: "email", Format: "raw", Hash: "sha256:" + legacyDigest("email:raw:ann@example.com")},
			{Type: "controller_customer_id", Format: "raw", Hash: "sha256:" + legacyDigest("controller_customer_id:raw:c-1")},
		}
		if !reflect.DeepEqual(old.Identities, wantIDs) || old.BodyHash != "sha256:"+legacyDigest("body of old-1") {
			t.Fatalf("legacy row after 002: identities %+v, body %q; want them marked sha256:", old.Identities, old.BodyHash)
		}
		if !reflect.DeepEqual(old.CallbackURLs, []string{clearURL}) {
			t.Fatalf("legacy callback URLs %q", old.CallbackURLs)
		}
		if !ledger.Matches(testKeys, ledger.PurposeBody, legacyDigest("body of old-1"), old.BodyHash) ||
			ledger.Matches(testKeys, ledger.PurposeBody, legacyDigest("body of old-2"), old.BodyHash) {
			t.Error("a marked legacy hash does not match its value only")
		}
		attempts, err := s.CallbackAttempts(ctx, old.Key())
		if err != nil || len(attempts) != 2 {
			t.Fatalf("legacy attempts %+v, %v", attempts, err)
		}
		for _, a := range attempts {
			if a.URLHash != "sha256:"+legacyDigest(clearURL) || a.Seq != 0 {
				t.Errorf("legacy attempt %+v: want url_hash sha256:<hex>, seq 0", a)
			}
		}
		assertNotMixed(t, db)

		for i, want := range []int{2, 1} { // two at a time
			if n, err := s.UpgradeLegacy(ctx, testKeys, 2); err != nil || n != want {
				t.Fatalf("UpgradeLegacy call %d: %d, %v; want %d", i+1, n, err, want)
			}
		}
		up, err := s.Get(ctx, old.Key())
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range up.Identities {
			digest := strings.TrimPrefix(wantIDs[i].Hash, ledger.LegacyPrefix)
			if !strings.HasPrefix(id.Hash, "hmac:test1:") || !ledger.Matches(testKeys, ledger.PurposeIdentity, digest, id.Hash) {
				t.Errorf("upgraded identity %+v does not hold the keyed hash of its digest", id)
			}
		}
		if !strings.HasPrefix(up.BodyHash, "hmac:test1:") || !ledger.Matches(testKeys, ledger.PurposeBody, legacyDigest("body of old-1"), up.BodyHash) {
			t.Errorf("upgraded body hash %q", up.BodyHash)
		}
		if len(up.CallbackURLs) != 1 || up.CallbackURLs[0] == clearURL {
			t.Fatalf("callback URLs not sealed: %q", up.CallbackURLs)
		}
		if u, err := testKeys.Open(up.CallbackURLs[0]); err != nil || u != clearURL {
			t.Errorf("sealed callback URL opens to %q, %v", u, err)
		}
		attempts, _ = s.CallbackAttempts(ctx, old.Key())
		for _, a := range attempts {
			if !ledger.Matches(testKeys, ledger.PurposeCallbackURL, legacyDigest(clearURL), a.URLHash) || strings.HasPrefix(a.URLHash, "sha256:") {
				t.Errorf("upgraded attempt url_hash %q", a.URLHash)
			}
		}
		if again, err := s.Get(ctx, fresh.Key()); err != nil || !reflect.DeepEqual(again, fresh) {
			t.Errorf("a row written after 002 changed: %+v, %v", again, err)
		}
		assertNotMixed(t, db)
		for _, q := range []string{
			`SELECT COUNT(*) FROM requests WHERE hash_scheme <> 'hmac'`,
			`SELECT COUNT(*) FROM requests WHERE body_hash LIKE 'sha256:%' OR ` + textOf(db, "identities") + ` LIKE '%sha256:%' OR ` + textOf(db, "callback_urls") + ` LIKE '%https:%'`,
			`SELECT COUNT(*) FROM callback_attempts WHERE url_hash NOT LIKE 'hmac:%'`,
		} {
			var left int
			if err := db.QueryRowContext(ctx, q).Scan(&left); err != nil || left != 0 {
				t.Errorf("%s: %d (%v), want 0 after the upgrade", q, left, err)
			}
		}
		if n, err := s.UpgradeLegacy(ctx, testKeys, 2); err != nil || n != 0 {
			t.Errorf("second UpgradeLegacy: %d, %v; want nothing left", n, err)
		}
	})
}

// textOf is the SQL text of a JSON column on db's dialect.
func textOf(db *sqldb.DB, col string) string {
	if db.Dialect == sqldb.Postgres {
		return col + "::text"
	}
	return col
}

// assertNotMixed fails when a request row mixes hash forms: rows marked
// 'sha256' hold no keyed hash, rows marked 'hmac' no unkeyed one.
func assertNotMixed(t *testing.T, db *sqldb.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range []string{
		`SELECT COUNT(*) FROM requests WHERE hash_scheme = 'sha256' AND (body_hash LIKE 'hmac:%' OR ` + textOf(db, "identities") + ` LIKE '%hmac:%')`,
		`SELECT COUNT(*) FROM requests WHERE hash_scheme = 'hmac' AND (body_hash LIKE 'sha256:%' OR ` + textOf(db, "identities") + ` LIKE '%sha256:%' OR ` + textOf(db, "callback_urls") + ` LIKE '%https:%')`,
		`SELECT COUNT(*) FROM requests WHERE hash_scheme = 'sha256' AND body_hash <> '' AND body_hash NOT LIKE 'sha256:%'`,
	} {
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil || n != 0 {
			t.Errorf("mixed rows: %s: %d (%v)", q, n, err)
		}
	}
}
