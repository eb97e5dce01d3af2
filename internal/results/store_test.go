package results_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/results"
)

func newToken(t *testing.T) string {
	t.Helper()
	tok, err := results.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func openStore(t *testing.T, opts results.StoreOptions) (*results.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundles")
	s, err := results.OpenStore(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func write(t *testing.T, s *results.Store, token, content string) {
	t.Helper()
	n, err := s.Write(context.Background(), token, func(w io.Writer) error {
		_, err := io.WriteString(w, content)
		return err
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if n != int64(len(content)) {
		t.Errorf("Write size = %d, want %d", n, len(content))
	}
}

func read(t *testing.T, s *results.Store, token string) string {
	t.Helper()
	rc, size, err := s.Open(token)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(b)) {
		t.Errorf("Open size = %d, content is %d bytes", size, len(b))
	}
	return string(b)
}

// files lists the names in dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestNewToken(t *testing.T) {
	form := regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 1000 {
		tok := newToken(t)
		if !form.MatchString(tok) {
			t.Fatalf("token %q is not 43 URL-safe base64 characters", tok)
		}
		if b, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(b) != 32 {
			t.Fatalf("token %q does not decode to 32 bytes: %v", tok, err)
		}
		if seen[tok] {
			t.Fatalf("token %q repeated", tok)
		}
		seen[tok] = true
	}
}

func TestOpenStoreModes(t *testing.T) {
	_, dir := openStore(t, results.StoreOptions{})
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("new store directory: %v, %v; want mode 0700", fi.Mode(), err)
	}

	// An existing directory open to others is restricted.
	loose := filepath.Join(t.TempDir(), "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := results.OpenStore(loose, results.StoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(loose); fi.Mode().Perm() != 0o700 {
		t.Errorf("existing directory mode = %v, want 0700", fi.Mode().Perm())
	}

	// A file is not a store.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := results.OpenStore(file, results.StoreOptions{}); err == nil {
		t.Error("OpenStore on a file succeeded")
	}
	if _, err := results.OpenStore("", results.StoreOptions{}); err == nil {
		t.Error("OpenStore without a directory succeeded")
	}
}

func TestStoreWriteOpenDelete(t *testing.T) {
	s, dir := openStore(t, results.StoreOptions{})
	tok := newToken(t)
	write(t, s, tok, "bundle one")

	names := files(t, dir)
	sum := sha256.Sum256([]byte(tok))
	want := hex.EncodeToString(sum[:]) + ".zip"
	if len(names) != 1 || names[0] != want {
		t.Fatalf("directory holds %v, want [%s]", names, want)
	}
	if strings.Contains(names[0], tok) {
		t.Error("the file name reveals the token")
	}
	fi, err := os.Stat(filepath.Join(dir, want))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("bundle mode = %v, want 0600", fi.Mode().Perm())
	}
	if got := read(t, s, tok); got != "bundle one" {
		t.Errorf("content = %q", got)
	}

	// Seekable, for HTTP range requests.
	rc, _, err := s.Open(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Seek(7, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "one" {
		t.Errorf("after Seek: %q", b)
	}
	rc.Close()

	// Writing the token again replaces the bundle.
	write(t, s, tok, "bundle two")
	if got := read(t, s, tok); got != "bundle two" {
		t.Errorf("content = %q", got)
	}

	for range 2 { // idempotent
		if err := s.Delete(tok); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if _, _, err := s.Open(tok); !errors.Is(err, results.ErrNotFound) {
		t.Errorf("Open after Delete: %v, want ErrNotFound", err)
	}
	if names := files(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v after Delete", names)
	}
}

func TestStoreOpenNotFound(t *testing.T) {
	s, _ := openStore(t, results.StoreOptions{})
	for _, tok := range []string{newToken(t), "", "short", "../../etc/passwd", strings.Repeat("A", 44)} {
		if _, _, err := s.Open(tok); !errors.Is(err, results.ErrNotFound) {
			t.Errorf("Open(%q) = %v, want ErrNotFound", tok, err)
		}
	}
}

func TestStoreWriteRejectsWeakTokens(t *testing.T) {
	s, dir := openStore(t, results.StoreOptions{})
	for _, tok := range []string{"", "abc", strings.Repeat("A", 42), strings.Repeat("A", 43) + "=", strings.Repeat("+", 43)} {
		_, err := s.Write(context.Background(), tok, func(w io.Writer) error { return nil })
		if !errors.Is(err, results.ErrInvalidToken) {
			t.Errorf("Write(%q) = %v, want ErrInvalidToken", tok, err)
		}
	}
	if names := files(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v", names)
	}
}

func TestStoreWriteIsAtomic(t *testing.T) {
	s, dir := openStore(t, results.StoreOptions{})
	tok := newToken(t)
	write(t, s, tok, "old bundle")

	// A failing fill leaves nothing behind and keeps the previous bundle.
	boom := errors.New("boom")
	_, err := s.Write(context.Background(), tok, func(w io.Writer) error {
		if _, err := io.WriteString(w, strings.Repeat("partial ", 100000)); err != nil {
			return err
		}
		// Meanwhile, the bundle is not visible yet.
		if got := read(t, s, tok); got != "old bundle" {
			t.Errorf("during Write, content = %q", got)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want fill's error", err)
	}
	if got := read(t, s, tok); got != "old bundle" {
		t.Errorf("after a failed Write, content = %q", got)
	}
	if names := files(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only the old bundle", names)
	}

	// So does a context ended during fill.
	tok2 := newToken(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, err = s.Write(ctx, tok2, func(w io.Writer) error {
		cancel()
		_, err := io.WriteString(w, "data")
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v, want context.Canceled", err)
	}
	if _, _, err := s.Open(tok2); !errors.Is(err, results.ErrNotFound) {
		t.Errorf("Open after a canceled Write: %v", err)
	}
	if names := files(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only the old bundle", names)
	}
}

func TestStorePurgeOlderThan(t *testing.T) {
	s, dir := openStore(t, results.StoreOptions{})
	now := time.Now()
	old, recent := newToken(t), newToken(t)
	write(t, s, old, "old")
	write(t, s, recent, "recent")
	age := func(name string, d time.Duration) {
		t.Helper()
		if err := os.Chtimes(name, now.Add(-d), now.Add(-d)); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte(old))
	age(filepath.Join(dir, hex.EncodeToString(sum[:])+".zip"), 8*24*time.Hour)
	// A stale temporary file of an interrupted write, and a foreign file.
	for _, name := range []string{".tmp-123", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		age(filepath.Join(dir, name), 8*24*time.Hour)
	}

	n, err := s.PurgeOlderThan(now.Add(-7 * 24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PurgeOlderThan = %d, %v; want 1, nil", n, err)
	}
	if _, _, err := s.Open(old); !errors.Is(err, results.ErrNotFound) {
		t.Errorf("old bundle: %v, want ErrNotFound", err)
	}
	if got := read(t, s, recent); got != "recent" {
		t.Errorf("recent bundle = %q", got)
	}
	if names := files(t, dir); len(names) != 2 || names[0] == ".tmp-123" || names[1] != "notes.txt" {
		t.Errorf("directory holds %v, want the recent bundle and notes.txt", names)
	}
	if n, err := s.PurgeOlderThan(now.Add(-7 * 24 * time.Hour)); err != nil || n != 0 {
		t.Errorf("second PurgeOlderThan = %d, %v; want 0, nil", n, err)
	}
}

// xorWriter is a stand-in for encryption at rest in tests: it is not crypto.
type xorWriter struct {
	w      io.Writer
	closed *bool
}

func (x xorWriter) Write(p []byte) (int, error) {
	q := bytes.Clone(p)
	for i := range q {
		q[i] ^= 0x5a
	}
	return x.w.Write(q)
}

func (x xorWriter) Close() error { *x.closed = true; return nil }

type xorReader struct{ r io.ReadSeeker }

func (x xorReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	for i := range n {
		p[i] ^= 0x5a
	}
	return n, err
}

func (x xorReader) Seek(off int64, whence int) (int64, error) { return x.r.Seek(off, whence) }

func TestStoreWrapHooks(t *testing.T) {
	closed := false
	s, dir := openStore(t, results.StoreOptions{
		Wrap: func(w io.Writer) (io.WriteCloser, error) { return xorWriter{w: w, closed: &closed}, nil },
		Unwrap: func(r io.ReadSeeker, size int64) (io.ReadSeeker, int64, error) {
			return xorReader{r: r}, size, nil
		},
	})
	tok := newToken(t)
	write(t, s, tok, "plain bundle")
	if !closed {
		t.Error("the wrapping writer was not closed")
	}
	names := files(t, dir)
	onDisk, err := os.ReadFile(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(onDisk, []byte("plain")) {
		t.Errorf("stored bytes %q are not wrapped", onDisk)
	}
	if got := read(t, s, tok); got != "plain bundle" {
		t.Errorf("content = %q", got)
	}

	// A failing Unwrap (e.g. unknown key) is an error, not a bundle.
	s2, err := results.OpenStore(dir, results.StoreOptions{
		Unwrap: func(io.ReadSeeker, int64) (io.ReadSeeker, int64, error) { return nil, 0, errors.New("no key") },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.Open(tok); err == nil || errors.Is(err, results.ErrNotFound) {
		t.Errorf("Open with a failing Unwrap = %v", err)
	}
}

// TestStoreBuild: Build into a Store, the way the activity will use them.
func TestStoreBuild(t *testing.T) {
	s, dir := openStore(t, results.StoreOptions{})
	exp := writeZip(t, t.TempDir(), entry{name: "events.jsonl", body: jsonl(events("mixpanel", 0, 5))})
	tok := newToken(t)
	var st results.BundleStats
	size, err := s.Write(context.Background(), tok, func(w io.Writer) error {
		var err error
		st, err = results.Build(context.Background(), w, results.BundleInput{Exports: readers(t, exp), Destinations: []string{"mixpanel"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 5 {
		t.Errorf("Records = %d", st.Records)
	}
	b := readBundle(t, []byte(read(t, s, tok)))
	checkLines(t, b, "mixpanel-events-0001.jsonl", events("mixpanel", 0, 5))
	if fi, _ := os.Stat(filepath.Join(dir, files(t, dir)[0])); fi.Size() != size {
		t.Errorf("size on disk %d, Write said %d", fi.Size(), size)
	}

	// A failing Build leaves nothing.
	bad := writeZip(t, t.TempDir(), entry{name: "events.jsonl", body: "{\n"})
	_, err = s.Write(context.Background(), newToken(t), func(w io.Writer) error {
		_, err := results.Build(context.Background(), w, results.BundleInput{Exports: readers(t, bad), Destinations: []string{"mixpanel"}})
		return err
	})
	if !errors.Is(err, results.ErrInvalidLine) {
		t.Fatalf("err = %v, want ErrInvalidLine", err)
	}
	if names := files(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v", names)
	}
}
