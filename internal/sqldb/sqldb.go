// Package sqldb opens the database dsrflow keeps its records in, SQLite by
// default or PostgreSQL when given a postgres:// URL, and applies the embedded
// schema migrations of each package that stores something in it.
//
// Queries are written once with '?' placeholders and passed through
// [DB.Rebind]; the few places where the dialects differ pick a snippet by
// [DB.Dialect]. Times go in through [DB.TimeArg] and come out through [Time],
// so both backends store UTC to the microsecond: INTEGER Unix nanoseconds on
// SQLite, timestamptz on PostgreSQL, NULL for the zero time.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	// Database drivers: "pgx" for PostgreSQL and "sqlite" for SQLite.
	_ "github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL dialect of a database.
type Dialect string

// The dialects Open supports. Their values are the suffixes of per-dialect
// migration files (001_init.sqlite.sql, 001_init.postgres.sql).
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// SQLite settings applied to every pooled connection through the DSN.
const (
	// sqliteBusyTimeout is how long a writer waits for another one (in this or
	// another process) before giving up with "database is locked".
	sqliteBusyTimeout = 10 * time.Second
	// sqliteMaxConns bounds the connections of one process: one writer at a
	// time is all SQLite allows, and a few more serve concurrent readers.
	sqliteMaxConns = 8
	// postgresMaxConns bounds the connections of one process to PostgreSQL.
	postgresMaxConns = 10
)

// DB is a connection pool with the dialect it speaks.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// IsPostgres reports whether dsn is a PostgreSQL URL (postgres:// or
// postgresql://) rather than a SQLite file path.
func IsPostgres(dsn string) bool {
	lower := strings.ToLower(dsn)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// Open connects to the database dsn names and checks that it answers.
//
// A postgres:// or postgresql:// URL opens PostgreSQL through pgx. Anything
// else is the path of a SQLite file: missing parent directories are created
// with mode 0700 and a missing file with mode 0600. Every SQLite connection
// runs in WAL mode with synchronous=NORMAL, foreign keys on and a busy
// timeout, and begins its transactions with BEGIN IMMEDIATE, so that several
// processes (the worker and the API) can write to one file.
//
// Errors name the database with its password redacted.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if IsPostgres(dsn) {
		return openPostgres(ctx, dsn)
	}
	return openSQLite(ctx, dsn)
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	what := "open PostgreSQL database " + Redact(dsn)
	sqlDB, err := sql.Open("pgx", dsn)
	if err != nil {
		// A parse error may carry the whole connection string: keep its
		// (scrubbed) text but not the error itself.
		return nil, redactError(dsn, what, err, false)
	}
	sqlDB.SetMaxOpenConns(postgresMaxConns)
	sqlDB.SetMaxIdleConns(postgresMaxConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	sqlDB.SetConnMaxLifetime(time.Hour)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, redactError(dsn, what, err, true)
	}
	return &DB{DB: sqlDB, Dialect: Postgres}, nil
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	what := "open SQLite database " + path
	switch {
	case path == "":
		return nil, fmt.Errorf("%s: empty path", what)
	case strings.ContainsRune(path, '?'), strings.HasPrefix(path, "file:"), path == ":memory:":
		return nil, fmt.Errorf("%s: give a plain file path (no URI, query or in-memory database)", what)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}

	// busy_timeout comes first so that switching to WAL waits for a
	// concurrent opener instead of failing.
	params := fmt.Sprintf("?_pragma=busy_timeout(%d)"+
		"&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous(NORMAL)"+
		"&_pragma=foreign_keys(1)"+
		"&_txlock=immediate", sqliteBusyTimeout.Milliseconds())
	sqlDB, err := sql.Open("sqlite", path+params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	sqlDB.SetMaxOpenConns(sqliteMaxConns)
	sqlDB.SetMaxIdleConns(sqliteMaxConns)
	// Two processes opening a new file at once (the worker and the API) race
	// to switch it to WAL; SQLite answers the loser SQLITE_BUSY at once,
	// without its busy handler, so the first connection is retried here.
	for attempt := 0; ; attempt++ {
		err = sqlDB.PingContext(ctx)
		var busy *sqlite.Error
		if err == nil || !errors.As(err, &busy) || busy.Code()&0xff != sqlite3.SQLITE_BUSY || attempt == 50 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &DB{DB: sqlDB, Dialect: SQLite}, nil
}

// Rebind rewrites the '?' placeholders of query into the dialect's form:
// $1, $2, ... for PostgreSQL, unchanged for SQLite. Question marks inside
// string literals, quoted identifiers and comments are left alone.
func (db *DB) Rebind(query string) string {
	if db.Dialect != Postgres {
		return query
	}
	return rebindDollar(query)
}

func rebindDollar(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			// Copy the literal or identifier up to its closing quote; a
			// doubled quote inside reopens it on the next iteration.
			end := strings.IndexByte(query[i+1:], c)
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+2])
			i += end + 1
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+1])
			i += end
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+4])
			i += end + 3
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ForUpdate returns the clause that locks the rows a SELECT reads until the
// transaction ends: " FOR UPDATE" on PostgreSQL, nothing on SQLite, whose
// transactions (BEGIN IMMEDIATE) already hold the database's write lock.
func (db *DB) ForUpdate() string {
	if db.Dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// TimeArg converts t into the value stored in a time column: NULL for the zero
// time, otherwise t in UTC truncated to the microsecond (PostgreSQL's
// precision, applied on both backends so that they read back alike), as Unix
// nanoseconds on SQLite and as a timestamptz on PostgreSQL.
func (db *DB) TimeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if db.Dialect == SQLite {
		return t.UnixNano()
	}
	return t
}

// Time scans a time column written with [DB.TimeArg] on either backend. NULL
// scans as the zero time; other values come out in UTC.
type Time struct{ time.Time }

// Scan implements [sql.Scanner].
func (t *Time) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
	case time.Time:
		t.Time = v.UTC()
	case int64:
		t.Time = time.Unix(0, v).UTC()
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	default:
		return fmt.Errorf("sqldb: cannot scan %T into a time", src)
	}
	return nil
}

func (t *Time) parse(s string) error {
	parsed, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("sqldb: scan time: %w", err)
	}
	t.Time = parsed.UTC()
	return nil
}

// WithTx runs fn in a transaction and commits it if fn returns nil, or rolls
// it back otherwise. On SQLite the transaction holds the write lock from its
// start, so read-then-write sequences inside it cannot be interleaved.
func (db *DB) WithTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
