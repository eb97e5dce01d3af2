package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationLockKey is the PostgreSQL advisory lock that serialises Migrate
// across processes (the bytes of "dsrflow").
const migrationLockKey int64 = 0x647372666c6f77

// migration is one numbered schema change.
type migration struct {
	version int
	file    string // name in the fs
}

// Migrate brings component's schema up to date with the numbered SQL files at
// the root of migrations (use fs.Sub for a directory of an embed.FS).
//
// Files are named NNN_description.sql; a variant NNN_description.sqlite.sql
// or NNN_description.postgres.sql wins over the plain file on its dialect.
// Each file may hold several statements. Versions are applied in ascending
// order, each in its own transaction together with its row in
// schema_migrations(component, version, applied_at), so a failed migration
// leaves nothing behind. Versions already recorded are skipped, which makes
// Migrate idempotent, and concurrent callers in several processes are
// serialised: by a transaction-scoped advisory lock on PostgreSQL, by the
// write lock of the immediate transaction on SQLite.
func (db *DB) Migrate(ctx context.Context, component string, migrations fs.FS) error {
	if component == "" {
		return fmt.Errorf("migrate: empty component name")
	}
	plan, err := planMigrations(migrations, db.Dialect)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	if err := db.WithTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			component  TEXT    NOT NULL,
			version    INTEGER NOT NULL,
			applied_at `+db.timeType()+` NOT NULL,
			PRIMARY KEY (component, version)
		)`)
		return err
	}); err != nil {
		return fmt.Errorf("migrate %s: create schema_migrations: %w", component, err)
	}

	applied, err := db.appliedVersions(ctx, component)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	for _, m := range plan {
		if applied[m.version] {
			continue
		}
		if err := db.apply(ctx, component, migrations, m); err != nil {
			return fmt.Errorf("migrate %s: apply %s: %w", component, m.file, err)
		}
	}
	return nil
}

// apply runs one migration unless another process has applied it meanwhile.
func (db *DB) apply(ctx context.Context, component string, migrations fs.FS, m migration) error {
	body, err := fs.ReadFile(migrations, m.file)
	if err != nil {
		return err
	}
	return db.WithTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockMigrations(ctx, tx); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx,
			db.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE component = ? AND version = ?`),
			component, m.version).Scan(&n); err != nil {
			return fmt.Errorf("check schema_migrations: %w", err)
		}
		if n > 0 {
			return nil // applied by a concurrent caller
		}
		if strings.TrimSpace(string(body)) != "" {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx,
			db.Rebind(`INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)`),
			component, m.version, db.TimeArg(time.Now())); err != nil {
			return fmt.Errorf("record in schema_migrations: %w", err)
		}
		return nil
	})
}

// lockMigrations serialises migrating processes on PostgreSQL until tx ends.
// SQLite needs nothing: tx began with BEGIN IMMEDIATE.
func (db *DB) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	if db.Dialect != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	return nil
}

func (db *DB) appliedVersions(ctx context.Context, component string) (map[int]bool, error) {
	rows, err := db.QueryContext(ctx,
		db.Rebind(`SELECT version FROM schema_migrations WHERE component = ?`), component)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// timeType is the column type that holds what TimeArg returns.
func (db *DB) timeType() string {
	if db.Dialect == Postgres {
		return "TIMESTAMPTZ"
	}
	return "INTEGER"
}

// planMigrations lists the files of migrations to run on dialect, by version.
func planMigrations(migrations fs.FS, dialect Dialect) ([]migration, error) {
	entries, err := fs.ReadDir(migrations, ".")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	plain := map[int]string{}
	variant := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			continue
		}
		version, fileDialect, err := parseMigrationName(name)
		if err != nil {
			return nil, err
		}
		target := plain
		switch fileDialect {
		case "":
		case dialect:
			target = variant
		default:
			continue // another dialect's variant
		}
		if other, dup := target[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version", other, name)
		}
		target[version] = name
	}
	var plan []migration
	for v, name := range plain {
		if _, ok := variant[v]; !ok {
			plan = append(plan, migration{version: v, file: name})
		}
	}
	for v, name := range variant {
		plan = append(plan, migration{version: v, file: name})
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].version < plan[j].version })
	return plan, nil
}

// parseMigrationName splits "007_add_index.postgres.sql" into 7 and Postgres.
func parseMigrationName(name string) (int, Dialect, error) {
	base := strings.TrimSuffix(name, ".sql")
	var dialect Dialect
	for _, d := range []Dialect{SQLite, Postgres} {
		if b, ok := strings.CutSuffix(base, "."+string(d)); ok {
			base, dialect = b, d
			break
		}
	}
	num, desc, ok := strings.Cut(base, "_")
	version, err := strconv.Atoi(num)
	if !ok || desc == "" || strings.Contains(desc, ".") || err != nil || version < 1 || strings.TrimLeft(num, "0123456789") != "" {
		return 0, "", fmt.Errorf("migration %s: name it NNN_description.sql, NNN_description.sqlite.sql or NNN_description.postgres.sql", name)
	}
	return version, dialect, nil
}
