package results_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/keyring"
	"github.com/dsrflow/dsrflow/internal/results"
)

// encryptingStore opens a store that encrypts with a new key ring, as the
// worker's does.
func encryptingStore(t *testing.T) (*results.Store, string) {
	t.Helper()
	spec, err := keyring.Generate("k1")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return openStore(t, results.StoreOptions{Wrap: ring.WrapWriter, Unwrap: ring.UnwrapReader})
}

// dirHolds reports whether any file under dir holds needle.
func dirHolds(t *testing.T, dir, needle string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = found || bytes.Contains(b, []byte(needle))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// storedZip returns an export of 3000 events and a person in stored
// (uncompressed) entries, about 600 KB: a clear copy on disk would show secret.
func storedZip(t *testing.T) []byte {
	t.Helper()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, e := range []entry{{name: "events.jsonl", body: jsonl(events("mixpanel", 0, 3000))}, {name: "people.jsonl", body: person("p-1") + "\n"}} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zb.Bytes()
}

// TestSpoolEncryptsOnTheWayToDisk: an export written to a spool of an
// encrypting store is never on disk in clear, neither while it downloads nor
// while the bundle is built from it, and the bundle holds all of it.
func TestSpoolEncryptsOnTheWayToDisk(t *testing.T) {
	s, dir := encryptingStore(t)
	export := storedZip(t)
	if !bytes.Contains(export, []byte(secret)) {
		t.Fatal("the test export does not hold the secret in clear")
	}
	sp, err := s.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Remove()
	names := files(t, dir)
	if len(names) != 1 || !strings.HasPrefix(names[0], ".download-") {
		t.Fatalf("directory holds %v, want one .download- file", names)
	}
	if fi, err := os.Stat(filepath.Join(dir, names[0])); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool mode %v, %v; want 0600", fi.Mode(), err)
	}
	// Half the download, as a worker killed mid-download would leave it.
	half := len(export) / 2
	if _, err := sp.Write(export[:half]); err != nil {
		t.Fatal(err)
	}
	if dirHolds(t, dir, secret) {
		t.Fatal("a half-downloaded export is on disk in clear")
	}
	if _, err := io.Copy(sp, bytes.NewReader(export[half:])); err != nil {
		t.Fatal(err)
	}
	r, err := sp.Export()
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(export)) {
		t.Fatalf("spool size %d, want %d", r.Size(), len(export))
	}
	if dirHolds(t, dir, secret) {
		t.Fatal("a downloaded export is on disk in clear")
	}
	st, b := build(t, results.BundleInput{Exports: []results.ExportReader{r}, Destinations: []string{"mixpanel"}})
	if st.Records != 3001 {
		t.Fatalf("Records = %d, want 3001", st.Records)
	}
	checkLines(t, b, "mixpanel-events-0001.jsonl", events("mixpanel", 0, 3000))
	if err := sp.Remove(); err != nil {
		t.Fatal(err)
	}
	if names := files(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v after Remove", names)
	}
}

// TestSpoolTampered: a spool changed on disk while the bundle is built from
// it fails to read instead of feeding the bundle.
func TestSpoolTampered(t *testing.T) {
	s, dir := encryptingStore(t)
	sp, err := s.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Remove()
	if _, err := sp.Write(storedZip(t)); err != nil {
		t.Fatal(err)
	}
	r, err := sp.Export()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, files(t, dir)[0])
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = results.Build(context.Background(), io.Discard, results.BundleInput{Exports: []results.ExportReader{r}, Destinations: []string{"m"}})
	if !errors.Is(err, keyring.ErrCorrupt) {
		t.Fatalf("building from a tampered spool: %v, want keyring.ErrCorrupt", err)
	}
}

// TestPurgeTemporary: leftovers of interrupted downloads and writes older
// than the cutoff go, whatever their kind; recent ones, bundles and other
// files stay.
func TestPurgeTemporary(t *testing.T) {
	s, dir := encryptingStore(t)
	now := time.Now()
	old, recent := now.Add(-4*time.Hour), now.Add(-time.Minute)
	touch := func(name string, at time.Time) {
		if err := os.Chtimes(filepath.Join(dir, name), at, at); err != nil {
			t.Fatal(err)
		}
	}
	killed, err := s.NewSpool() // a worker killed mid-download never removes it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := killed.Write([]byte("PK partial export")); err != nil {
		t.Fatal(err)
	}
	killedName := files(t, dir)[0]
	touch(killedName, old)
	live, err := s.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	var liveName string
	for _, name := range files(t, dir) {
		if name != killedName {
			liveName = name
		}
	}
	touch(liveName, recent)
	// A download directory of an older version, with its plaintext export.
	if err := os.Mkdir(filepath.Join(dir, ".download-123"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".download-123", "export-0.zip"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	touch(".download-123", old)
	for name, at := range map[string]time.Time{".tmp-1": old, ".tmp-2": recent, "notes.txt": old} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		touch(name, at)
	}
	tok := newToken(t)
	write(t, s, tok, "bundle")

	n, err := s.PurgeTemporary(now.Add(-3 * time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("PurgeTemporary = %d, %v; want 3 (the killed spool, the old directory, the old .tmp-)", n, err)
	}
	left := map[string]bool{}
	for _, name := range files(t, dir) {
		left[name] = true
	}
	for _, gone := range []string{killedName, ".download-123", ".tmp-1"} {
		if left[gone] {
			t.Errorf("%s left: %v", gone, left)
		}
	}
	for _, kept := range []string{liveName, ".tmp-2", "notes.txt"} {
		if !left[kept] {
			t.Errorf("%s purged: %v", kept, left)
		}
	}
	if read(t, s, tok) != "bundle" {
		t.Error("the bundle was purged")
	}
	if dirHolds(t, dir, secret) {
		t.Error("a plaintext export is left")
	}
}
