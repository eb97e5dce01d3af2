// Package sqldbtest gives tests a fresh, empty database on each backend
// sqldb supports: a SQLite file in a temporary directory and a schema of its
// own on a real PostgreSQL server.
//
// The server is the one DSR_TEST_POSTGRES names (a postgres:// URL of a
// database in which the tests may create schemas), by default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. When it cannot be
// reached the tests fail, saying so: CI must run them. DSR_TEST_POSTGRES=skip
// skips the PostgreSQL half instead.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// EnvPostgres is the variable naming the PostgreSQL server tests use.
const EnvPostgres = "DSR_TEST_POSTGRES"

// DefaultPostgres is the server used when EnvPostgres is unset.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Each runs fn as a subtest named after each backend, with a fresh empty
// database that is closed (and on PostgreSQL dropped) when the subtest ends.
func Each(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	EachDSN(t, func(t *testing.T, dsn string) { fn(t, OpenDSN(t, dsn)) })
}

// EachDSN is Each for tests that open the database themselves (or open it
// twice): fn gets the DSN of a fresh empty database.
func EachDSN(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) { fn(t, DSN(t, d)) })
	}
}

// Open returns a fresh empty database per backend, keyed by dialect; the
// PostgreSQL one is missing when EnvPostgres is "skip".
func Open(t testing.TB) map[sqldb.Dialect]*sqldb.DB {
	t.Helper()
	dbs := map[sqldb.Dialect]*sqldb.DB{sqldb.SQLite: OpenDSN(t, SQLiteDSN(t))}
	if os.Getenv(EnvPostgres) != "skip" {
		dbs[sqldb.Postgres] = OpenDSN(t, PostgresDSN(t))
	}
	return dbs
}

// DSN returns the DSN of a fresh empty database of dialect d.
func DSN(t testing.TB, d sqldb.Dialect) string {
	t.Helper()
	switch d {
	case sqldb.SQLite:
		return SQLiteDSN(t)
	case sqldb.Postgres:
		return PostgresDSN(t)
	}
	t.Fatalf("sqldbtest: unknown dialect %q", d)
	return ""
}

// OpenDSN opens dsn with sqldb.Open and closes it when the test ends.
func OpenDSN(t testing.TB, dsn string) *sqldb.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("sqldbtest: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// SQLiteDSN returns the path of a database file, not yet created, in a
// temporary directory removed when the test ends.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "db", "test.db")
}

// PostgresDSN creates an empty schema on the test server and returns a URL
// whose connections use it (search_path); the schema is dropped when the test
// ends, after the cleanups registered later (closing its pools) have run.
// It skips the test when EnvPostgres is "skip" and fails it when the server
// cannot be reached.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	switch base {
	case "skip":
		t.Skipf("PostgreSQL tests skipped: %s=skip", EnvPostgres)
	case "":
		base = DefaultPostgres
	}
	if !sqldb.IsPostgres(base) {
		t.Fatalf("sqldbtest: %s=%q is not a postgres:// URL (or \"skip\")", EnvPostgres, sqldb.Redact(base))
	}

	schema := "dsrflow_test_" + randomHex(t)
	if err := admin(base, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("sqldbtest: PostgreSQL at %s is not usable: %v\n"+
			"Start PostgreSQL there, or set %s to the postgres:// URL of a database in which "+
			"the tests may create schemas (%s=skip runs the SQLite tests only).",
			sqldb.Redact(base), err, EnvPostgres, EnvPostgres)
	}
	t.Cleanup(func() {
		if err := admin(base, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("sqldbtest: drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("sqldbtest: parse %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// admin runs one statement on the server base names, on a connection of its own.
func admin(base, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	db, err := sqldb.Open(ctx, base)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

func randomHex(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("sqldbtest: random name: %v", err)
	}
	return hex.EncodeToString(b)
}
