package sqldb_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

func TestRebind(t *testing.T) {
	pg := &sqldb.DB{Dialect: sqldb.Postgres}
	lite := &sqldb.DB{Dialect: sqldb.SQLite}
	cases := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`a = ? AND b = ?`, `a = $1 AND b = $2`},
		{`x = '?' AND y = ?`, `x = '?' AND y = $1`},
		{`x = 'it''s ?' AND y = ?`, `x = 'it''s ?' AND y = $1`},
		{`"we?ird" = ?`, `"we?ird" = $1`},
		{"a = ? -- what?\nAND b = ?", "a = $1 -- what?\nAND b = $2"},
		{`a = ? /* ? */ AND b = ?`, `a = $1 /* ? */ AND b = $2`},
		{`VALUES (?,?,?)`, `VALUES ($1,$2,$3)`},
		{`x = 'unterminated ?`, `x = 'unterminated ?`},
	}
	for _, c := range cases {
		if got := pg.Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := lite.Rebind(c.in); got != c.in {
			t.Errorf("SQLite Rebind(%q) = %q, want it unchanged", c.in, got)
		}
	}
}

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://u:s3cret@db:5432/x?sslmode=disable", "postgres://u:xxxxx@db:5432/x?sslmode=disable"},
		{"postgresql://u@db/x", "postgresql://u@db/x"},
		{"postgres://db/x?password=s3cret&sslmode=disable", "postgres://db/x?password=xxxxx&sslmode=disable"},
		{"postgres://u:s3cret@db:notaport/x", "postgres://(URL that does not parse, not shown)"},
		{".data/dsrflow.db", ".data/dsrflow.db"},
	}
	for _, c := range cases {
		if got := sqldb.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestOpenErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://dsr:s3cr%3Ft@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", // nothing listens on port 1
		"postgres://dsr:s3cr%3Ft@127.0.0.1:notaport/x",
		"postgres://dsr@127.0.0.1:1/x?password=s3cr%3Ft&sslmode=disable&connect_timeout=2",
		"postgres://dsr:s3cr%3Ft@127.0.0.1:1/x?sslmode=bogus",
	} {
		db, err := sqldb.Open(ctx, dsn)
		if err == nil {
			db.Close()
			t.Fatalf("Open(%s) succeeded", sqldb.Redact(dsn))
		}
		for e := err; e != nil; e = errors.Unwrap(e) {
			msg := e.Error()
			if strings.Contains(msg, "s3cr") {
				t.Errorf("error reveals the password: %q", msg)
			}
		}
		t.Logf("%v", err)
	}
}

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "ledger.db")
	db, err := sqldb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect != sqldb.SQLite {
		t.Fatalf("dialect %q", db.Dialect)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (n INTEGER)`); err != nil { // creates the -wal and -shm files
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", p, got, want)
		}
	}

	// Every pooled connection has the pragmas, not just the first one.
	var conns []*sql.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 4 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "1", // NORMAL
			"foreign_keys": "1",
			"busy_timeout": "10000",
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if strings.ToLower(got) != want {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, pragma, got, want)
			}
		}
	}
}

func TestOpenSQLiteRejects(t *testing.T) {
	for _, dsn := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if db, err := sqldb.Open(context.Background(), dsn); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

func TestTimeRoundTrip(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		timeType := map[sqldb.Dialect]string{sqldb.SQLite: "INTEGER", sqldb.Postgres: "TIMESTAMPTZ"}[db.Dialect]
		if _, err := db.ExecContext(ctx, `CREATE TABLE times (id INTEGER PRIMARY KEY, at `+timeType+`)`); err != nil {
			t.Fatal(err)
		}
		paris, _ := time.LoadLocation("Europe/Paris")
		in := []time.Time{
			{},
			time.Date(2025, 3, 30, 1, 59, 59, 123456789, paris),
			time.Date(2038, 1, 19, 3, 14, 8, 999, time.UTC),
		}
		for i, at := range in {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO times (id, at) VALUES (?, ?)`), i, db.TimeArg(at)); err != nil {
				t.Fatal(err)
			}
		}
		for i, at := range in {
			var got sqldb.Time
			if err := db.QueryRowContext(ctx, db.Rebind(`SELECT at FROM times WHERE id = ?`), i).Scan(&got); err != nil {
				t.Fatal(err)
			}
			want := at.UTC().Truncate(time.Microsecond)
			if at.IsZero() {
				want = time.Time{}
			}
			if !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("time %d: got %v, want %v", i, got.Time, want)
			}
		}
		var n int
		if err := db.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM times WHERE at < ?`),
			db.TimeArg(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%d times before 2030, want 1", n)
		}
	})
}

func TestWithTxRollsBack(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE t (n INTEGER)`); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err := db.WithTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (n) VALUES (1)`); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("WithTx returned %v", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d rows after rollback (err %v)", n, err)
		}
	})
}

// writeCounter makes one read-modify-write transaction: the kind that fails
// with "database is locked" under deferred transactions when another
// connection commits between the read and the write.
func writeCounter(ctx context.Context, db *sqldb.DB, writer string) error {
	return db.WithTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO writes (writer, seen) VALUES (?, ?)`, writer, n); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE counter SET n = ?`, n+1)
		return err
	})
}

func setupCounter(t *testing.T, db *sqldb.DB) {
	t.Helper()
	for _, stmt := range []string{
		`CREATE TABLE counter (n INTEGER NOT NULL)`,
		`INSERT INTO counter (n) VALUES (0)`,
		`CREATE TABLE writes (id INTEGER PRIMARY KEY, writer TEXT NOT NULL, seen INTEGER NOT NULL UNIQUE)`,
	} {
		if _, err := db.ExecContext(context.Background(), stmt); err != nil {
			t.Fatal(err)
		}
	}
}

func checkCounter(t *testing.T, db *sqldb.DB, want int) {
	t.Helper()
	var n, rows int
	if err := db.QueryRowContext(context.Background(), `SELECT n, (SELECT COUNT(*) FROM writes) FROM counter`).Scan(&n, &rows); err != nil {
		t.Fatal(err)
	}
	if n != want || rows != want {
		t.Fatalf("counter %d, %d rows written, want %d", n, rows, want)
	}
}

// Two handles on one SQLite file (as the worker and the API have) make 2 x 200
// concurrent read-modify-write transactions: none may fail, none may be lost.
func TestSQLiteConcurrentHandles(t *testing.T) {
	ctx := context.Background()
	path := sqldbtest.SQLiteDSN(t)
	a, b := sqldbtest.OpenDSN(t, path), sqldbtest.OpenDSN(t, path)
	setupCounter(t, a)

	const perHandle = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*perHandle)
	for _, h := range []struct {
		name string
		db   *sqldb.DB
	}{{"a", a}, {"b", b}} {
		for range perHandle {
			wg.Go(func() {
				if err := writeCounter(ctx, h.db, h.name); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkCounter(t, a, 2*perHandle)
}

const childEnv = "DSRFLOW_SQLDB_TEST_CHILD"

// The same from two processes: this test re-runs itself as the second one.
func TestSQLiteTwoProcesses(t *testing.T) {
	ctx := context.Background()
	const perProcess = 200
	if path := os.Getenv(childEnv); path != "" {
		db := sqldbtest.OpenDSN(t, path)
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		concurrentWrites(t, ctx, db, "child", perProcess)
		return
	}

	path := sqldbtest.SQLiteDSN(t)
	db := sqldbtest.OpenDSN(t, path)
	setupCounter(t, db)

	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteTwoProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child said %q (%v); stderr: %s", line, err, stderr.String())
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	concurrentWrites(t, ctx, db, "parent", perProcess)
	rest, _ := bufio.NewReader(out).ReadString(0)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child process: %v\n%s%s", err, rest, stderr.String())
	}
	checkCounter(t, db, 2*perProcess)
}

func concurrentWrites(t *testing.T, ctx context.Context, db *sqldb.DB, writer string, n int) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if err := writeCounter(ctx, db, writer); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("%s: %v", writer, err)
	}
}
