package sqldb_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

func file(body string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(body)} }

// testMigrations creates tables that fail if created twice, one version with
// per-dialect variants, and several statements in one file.
func testMigrations() fstest.MapFS {
	return fstest.MapFS{
		"001_init.sql": file(`CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
			CREATE INDEX things_name ON things (name);`),
		"002_flavour.sql":          file(`CREATE TABLE flavour (name TEXT); INSERT INTO flavour VALUES ('plain');`),
		"002_flavour.sqlite.sql":   file(`CREATE TABLE flavour (name TEXT); INSERT INTO flavour VALUES ('sqlite');`),
		"002_flavour.postgres.sql": file(`CREATE TABLE flavour (name TEXT); INSERT INTO flavour VALUES ('postgres');`),
		"010_more.sql":             file(`ALTER TABLE things ADD COLUMN extra TEXT; INSERT INTO things (id, name) VALUES (1, 'one');`),
		"README.md":                file(`not a migration`),
	}
}

func versions(t *testing.T, db *sqldb.DB, component string) []int {
	t.Helper()
	rows, err := db.QueryContext(context.Background(),
		db.Rebind(`SELECT version FROM schema_migrations WHERE component = ? ORDER BY version`), component)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func TestMigrate(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		for range 3 { // idempotent
			if err := db.Migrate(ctx, "test", testMigrations()); err != nil {
				t.Fatal(err)
			}
		}
		if got := versions(t, db, "test"); !slices.Equal(got, []int{1, 2, 10}) {
			t.Fatalf("applied versions %v", got)
		}
		var flavour string
		if err := db.QueryRowContext(ctx, `SELECT name FROM flavour`).Scan(&flavour); err != nil {
			t.Fatal(err)
		}
		if flavour != string(db.Dialect) {
			t.Errorf("version 2 ran the %q file on %s", flavour, db.Dialect)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM things WHERE extra IS NULL`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d rows in things (err %v)", n, err)
		}

		// A later version added to the files is applied on the next run.
		next := testMigrations()
		next["011_later.sql"] = file(`INSERT INTO things (id, name) VALUES (2, 'two')`)
		if err := db.Migrate(ctx, "test", next); err != nil {
			t.Fatal(err)
		}
		if got := versions(t, db, "test"); !slices.Equal(got, []int{1, 2, 10, 11}) {
			t.Fatalf("applied versions %v", got)
		}

		// Another component has versions of its own in the same table.
		other := fstest.MapFS{"001_init.sql": file(`CREATE TABLE other_things (id INTEGER)`)}
		if err := db.Migrate(ctx, "other", other); err != nil {
			t.Fatal(err)
		}
		if got := versions(t, db, "other"); !slices.Equal(got, []int{1}) {
			t.Fatalf("other component: applied versions %v", got)
		}
	})
}

func TestMigrateFailureRollsBack(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		bad := fstest.MapFS{
			"001_ok.sql":  file(`CREATE TABLE ok (id INTEGER)`),
			"002_bad.sql": file(`CREATE TABLE half (id INTEGER); THIS IS NOT SQL;`),
		}
		err := db.Migrate(ctx, "test", bad)
		if err == nil || !strings.Contains(err.Error(), "002_bad.sql") {
			t.Fatalf("Migrate returned %v, want an error naming 002_bad.sql", err)
		}
		if got := versions(t, db, "test"); !slices.Equal(got, []int{1}) {
			t.Fatalf("applied versions %v", got)
		}
		if _, err := db.ExecContext(ctx, `SELECT * FROM half`); err == nil {
			t.Error("table of the failed migration exists")
		}
		// Fixed, it applies.
		bad["002_bad.sql"] = file(`CREATE TABLE half (id INTEGER)`)
		if err := db.Migrate(ctx, "test", bad); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMigrateBadNames(t *testing.T) {
	db := &sqldb.DB{Dialect: sqldb.SQLite} // names are checked before the database is used
	for _, name := range []string{"init.sql", "001.sql", "x01_init.sql", "000_init.sql", "001_init.mysql.sql"} {
		err := db.Migrate(context.Background(), "test", fstest.MapFS{name: file(`SELECT 1`)})
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	dup := fstest.MapFS{"001_a.sql": file(`SELECT 1`), "001_b.sql": file(`SELECT 1`)}
	if err := db.Migrate(context.Background(), "test", dup); err == nil || !strings.Contains(err.Error(), "same version") {
		t.Errorf("duplicate versions: %v", err)
	}
}

// Processes starting at once migrate at once: each version runs exactly once
// and no caller fails.
func TestMigrateConcurrent(t *testing.T) {
	sqldbtest.EachDSN(t, func(t *testing.T, dsn string) {
		const callers = 4
		dbs := make([]*sqldb.DB, callers)
		for i := range dbs {
			dbs[i] = sqldbtest.OpenDSN(t, dsn)
		}
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		start := make(chan struct{})
		for _, db := range dbs {
			wg.Go(func() {
				<-start
				errs <- db.Migrate(context.Background(), "test", testMigrations())
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if got := versions(t, dbs[0], "test"); !slices.Equal(got, []int{1, 2, 10}) {
			t.Fatalf("applied versions %v", got)
		}
		var n int
		if err := dbs[0].QueryRowContext(context.Background(), `SELECT COUNT(*) FROM things`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d rows in things, want 1 (err %v)", n, err)
		}
	})
}
