package results_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/ledger"
	"github.com/dsrflow/dsrflow/internal/results"
	"github.com/dsrflow/dsrflow/internal/sqldb"
	"github.com/dsrflow/dsrflow/internal/sqldb/sqldbtest"
)

// dbStores returns two stores on one fresh PostgreSQL ledger database, as
// two API replicas (or a worker and an API on different hosts) have, with
// bundles encrypted by a key ring.
func dbStores(t *testing.T, legacy *results.Store) (*results.DBStore, *results.DBStore, *sqldb.DB) {
	t.Helper()
	dsn := sqldbtest.PostgresDSN(t)
	db := sqldbtest.OpenDSN(t, dsn)
	if _, err := ledger.New(context.Background(), db); err != nil { // applies migration 004
		t.Fatal(err)
	}
	ring, err := keyring.Parse("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	opts := results.StoreOptions{Wrap: ring.WrapWriter, Unwrap: ring.UnwrapReader}
	var stores [2]*results.DBStore
	for i := range stores {
		if stores[i], err = results.NewDBStore(sqldbtest.OpenDSN(t, dsn), opts, legacy); err != nil {
			t.Fatal(err)
		}
	}
	return stores[0], stores[1], db
}

func TestDBStoreServesAnyReplicaEncryptedAndSeekable(t *testing.T) {
	writer, reader, db := dbStores(t, nil)
	tok := newToken(t)
	// Three chunks and a bit, so reads cross chunk boundaries.
	content := make([]byte, 3*results.ChunkSize+12345)
	_, _ = rand.Read(content)
	marker := []byte("subject-email@example.com")
	copy(content[results.ChunkSize-10:], marker)
	size, err := writer.Write(context.Background(), tok, func(w io.Writer) error {
		_, err := w.Write(content)
		return err
	})
	if err != nil || size != int64(len(content)) {
		t.Fatalf("Write = %d, %v; want %d", size, err, len(content))
	}

	r, n, err := reader.Open(tok)
	if err != nil || n != int64(len(content)) {
		t.Fatalf("Open on another replica = %d, %v", n, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(content))
	}
	// A range request: seek into the second chunk and read across into the third.
	off := int64(2*results.ChunkSize - 100)
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 300)
	if _, err := io.ReadFull(r, part); err != nil || !bytes.Equal(part, content[off:off+300]) {
		t.Fatalf("ranged read across chunks: %v", err)
	}

	// Stored encrypted, under the token's hash, never the token.
	var stored int
	if err := db.QueryRow(`SELECT count(*) FROM results_chunks WHERE position($1::bytea in data) > 0`, marker).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Error("a chunk holds the plaintext")
	}
	var names int
	if err := db.QueryRow(`SELECT count(*) FROM results_bundles WHERE name = $1`, tok).Scan(&names); err != nil || names != 0 {
		t.Errorf("a bundle is named by its token (%v)", err)
	}

	if err := reader.Delete(tok); err != nil {
		t.Fatal(err)
	}
	if _, _, err := writer.Open(tok); !errors.Is(err, results.ErrNotFound) {
		t.Errorf("Open after Delete: %v, want ErrNotFound", err)
	}
	var chunks int
	if err := db.QueryRow(`SELECT count(*) FROM results_chunks`).Scan(&chunks); err != nil || chunks != 0 {
		t.Errorf("%d chunks left after Delete (%v)", chunks, err)
	}
}

func TestDBStoreWriteIsAtomicAndReplaces(t *testing.T) {
	s, _, db := dbStores(t, nil)
	tok := newToken(t)
	boom := errors.New("export failed")
	_, err := s.Write(context.Background(), tok, func(w io.Writer) error {
		_, _ = w.Write(make([]byte, 2*results.ChunkSize)) // chunks inserted, then the fill fails
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want fill's error", err)
	}
	var rows int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM results_bundles) + (SELECT count(*) FROM results_chunks)`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("a failed write left %d rows (%v)", rows, err)
	}
	for _, body := range []string{"first, longer version", "second"} {
		if _, err := s.Write(context.Background(), tok, func(w io.Writer) error {
			_, err := io.WriteString(w, body)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	r, _, err := s.Open(tok)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "second" {
		t.Errorf("after rewriting, read %q, want %q", got, "second")
	}
	if _, err := s.Write(context.Background(), "weak", func(io.Writer) error { return nil }); !errors.Is(err, results.ErrInvalidToken) {
		t.Errorf("weak token: %v, want ErrInvalidToken", err)
	}
	if _, _, err := s.Open("weak"); !errors.Is(err, results.ErrNotFound) {
		t.Errorf("Open of a malformed token: %v, want ErrNotFound", err)
	}
}

func TestDBStorePurgeAndLegacyDirectory(t *testing.T) {
	legacy, _ := openStore(t, results.StoreOptions{})
	old := newToken(t)
	write(t, legacy, old, "written to disk before the upgrade")
	s, _, db := dbStores(t, legacy)

	// A bundle still on disk is served, and deleted with the store.
	r, _, err := s.Open(old)
	if err != nil {
		t.Fatalf("legacy bundle: %v", err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !strings.Contains(string(got), "before the upgrade") {
		t.Errorf("legacy bundle read %q", got)
	}
	if err := s.Delete(old); err != nil {
		t.Fatal(err)
	}
	if _, _, err := legacy.Open(old); !errors.Is(err, results.ErrNotFound) {
		t.Errorf("legacy bundle after Delete: %v", err)
	}

	expired, fresh := newToken(t), newToken(t)
	for _, tok := range []string{expired, fresh} {
		if _, err := s.Write(context.Background(), tok, func(w io.Writer) error {
			_, err := io.WriteString(w, "bundle")
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`UPDATE results_bundles SET created_at = created_at - interval '10 days'
		WHERE name = encode(sha256(convert_to($1, 'UTF8')), 'hex')`, expired); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeOlderThan(time.Now().Add(-7 * 24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PurgeOlderThan = %d, %v; want 1", n, err)
	}
	if _, _, err := s.Open(expired); !errors.Is(err, results.ErrNotFound) {
		t.Errorf("purged bundle: %v, want ErrNotFound", err)
	}
	if r, _, err := s.Open(fresh); err != nil {
		t.Errorf("recent bundle purged: %v", err)
	} else {
		r.Close()
	}
}

func TestNewDBStoreNeedsPostgres(t *testing.T) {
	db := sqldbtest.OpenDSN(t, sqldbtest.SQLiteDSN(t))
	if _, err := results.NewDBStore(db, results.StoreOptions{}, nil); err == nil {
		t.Error("NewDBStore accepted a SQLite database")
	}
}
