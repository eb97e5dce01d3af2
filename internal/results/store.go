package results

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Errors of Store.
var (
	// ErrNotFound: no bundle is stored for the token (never was, deleted or
	// purged), or the token is malformed.
	ErrNotFound = errors.New("bundle not found")
	// ErrInvalidToken: the token given to Store.Write was not made by NewToken.
	ErrInvalidToken = errors.New("invalid bundle token")
)

const (
	tokenBytes = 32
	// tokenLen is the length of a token: 32 bytes in unpadded base64.
	tokenLen  = 43
	bundleExt = ".zip"
	tmpPrefix = ".tmp-"
)

var tokenEncoding = base64.RawURLEncoding.Strict()

// NewToken returns a new random download token: 32 random bytes (256 bits)
// in URL-safe base64 without padding, 43 characters.
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("results: new token: %w", err)
	}
	return tokenEncoding.EncodeToString(b), nil
}

// validToken reports whether token has the form NewToken gives.
func validToken(token string) bool {
	if len(token) != tokenLen {
		return false
	}
	b, err := tokenEncoding.DecodeString(token)
	return err == nil && len(b) == tokenBytes
}

// StoreOptions are the optional hooks of a Store. The zero value stores
// plain files.
type StoreOptions struct {
	// Wrap, if set, wraps the file writer of every bundle written, e.g. to
	// encrypt it at rest. Closing the returned writer must flush everything
	// to w; it must not close w.
	Wrap func(w io.Writer) (io.WriteCloser, error)
	// Unwrap, if set, undoes Wrap when a bundle is opened: it gets the stored
	// file and its size on disk, and returns the bundle's content and its
	// size. Serving supports HTTP range requests, so the result must be
	// seekable (for AES-GCM: fixed-size, independently sealed segments).
	Unwrap func(r io.ReadSeeker, size int64) (io.ReadSeeker, int64, error)
}

// Store keeps bundles on disk in one directory that only the service user
// can access. A bundle's file name is the hex SHA-256 of its token, so that a
// directory listing does not reveal download links.
type Store struct {
	dir  string
	opts StoreOptions
}

// OpenStore opens the store in dir, creating it if needed. The directory's
// mode is set to 0700 if it was anything else.
func OpenStore(dir string, opts StoreOptions) (*Store, error) {
	if dir == "" {
		return nil, errors.New("results: open store: no directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("results: open store: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("results: open store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("results: open store: %s is not a directory", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("results: open store: restrict directory mode: %w", err)
		}
	}
	return &Store{dir: dir, opts: opts}, nil
}

// path returns the file of token's bundle.
func (s *Store) path(token string) string {
	sum := sha256.Sum256([]byte(token))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:])+bundleExt)
}

// Write stores the bundle of token, whose content fill writes (e.g. with
// Build), and returns its size. The bundle appears atomically: it is written
// to a temporary file (mode 0600) that is renamed into place only after fill
// succeeded and the data is synced. If fill fails or ctx is done, nothing is
// left behind and fill's error (or ctx's) is returned. Writing a token again
// replaces its bundle.
func (s *Store) Write(ctx context.Context, token string, fill func(w io.Writer) error) (size int64, err error) {
	if !validToken(token) {
		return 0, fmt.Errorf("results: write bundle: %w", ErrInvalidToken)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("results: write bundle: %w", err)
	}
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return 0, fmt.Errorf("results: write bundle: %w", err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			_ = f.Close() // may be closed already
			_ = os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriterSize(f, 64<<10)
	var dst io.Writer = bw
	var wrapped io.WriteCloser
	if s.opts.Wrap != nil {
		if wrapped, err = s.opts.Wrap(bw); err != nil {
			return 0, fmt.Errorf("results: write bundle: wrap: %w", err)
		}
		dst = wrapped
	}
	cw := &countWriter{w: dst}
	if err = fill(cw); err != nil {
		return 0, err
	}
	if wrapped != nil {
		if err = wrapped.Close(); err != nil {
			return 0, fmt.Errorf("results: write bundle: wrap: %w", err)
		}
	}
	if err = bw.Flush(); err != nil {
		return 0, fmt.Errorf("results: write bundle: %w", err)
	}
	if err = f.Sync(); err != nil {
		return 0, fmt.Errorf("results: write bundle: %w", err)
	}
	if err = f.Close(); err != nil {
		return 0, fmt.Errorf("results: write bundle: %w", err)
	}
	if err = ctx.Err(); err != nil {
		return 0, fmt.Errorf("results: write bundle: %w", err)
	}
	if err = os.Rename(tmp, s.path(token)); err != nil {
		return 0, fmt.Errorf("results: write bundle: %w", err)
	}
	renamed = true
	// The bundle is in place even if the directory sync fails: report the
	// failure, but do not remove anything.
	if serr := syncDir(s.dir); serr != nil {
		return cw.n, fmt.Errorf("results: write bundle: sync directory: %w", serr)
	}
	return cw.n, nil
}

// Open opens the bundle of token for reading, and returns it and its size.
// It fails with ErrNotFound if there is none. The caller must Close it.
func (s *Store) Open(token string) (io.ReadSeekCloser, int64, error) {
	if !validToken(token) {
		return nil, 0, fmt.Errorf("results: open bundle: %w", ErrNotFound)
	}
	f, err := os.Open(s.path(token))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("results: open bundle: %w", ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("results: open bundle: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("results: open bundle: %w", err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, 0, fmt.Errorf("results: open bundle: %w", ErrNotFound)
	}
	if s.opts.Unwrap == nil {
		return f, fi.Size(), nil
	}
	r, size, err := s.opts.Unwrap(f, fi.Size())
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("results: open bundle: unwrap: %w", err)
	}
	return readSeekCloser{ReadSeeker: r, Closer: f}, size, nil
}

// Delete removes the bundle of token. Deleting a bundle that does not exist
// is not an error.
func (s *Store) Delete(token string) error {
	err := os.Remove(s.path(token))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("results: delete bundle: %w", err)
	}
	return nil
}

// PurgeOlderThan removes the bundles last modified before cutoff, and
// returns how many it removed. It also removes temporary files older than
// cutoff, left by interrupted writes (not counted). It is a safety net
// behind the deletion of each bundle at its expiry.
func (s *Store) PurgeOlderThan(cutoff time.Time) (int, error) {
	n, err := s.removeOlder(cutoff, func(e os.DirEntry) (remove, count bool) {
		bundle := isBundleName(e.Name())
		return (bundle || strings.HasPrefix(e.Name(), tmpPrefix)) && e.Type().IsRegular(), bundle
	})
	if err != nil {
		return n, fmt.Errorf("results: purge bundles: %w", err)
	}
	return n, nil
}

// removeOlder removes the entries of the store's directory last modified
// before cutoff that match says to remove (directories with what they hold),
// and returns how many of those match says to count.
func (s *Store) removeOlder(cutoff time.Time, match func(os.DirEntry) (remove, count bool)) (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, e := range entries {
		remove, count := match(e)
		if !remove {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue // gone meanwhile, or recent
		}
		path := filepath.Join(s.dir, e.Name())
		if e.IsDir() {
			err = os.RemoveAll(path)
		} else {
			err = os.Remove(path)
		}
		switch {
		case err == nil:
			if count {
				removed++
			}
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// isBundleName reports whether name is the file name of a bundle.
func isBundleName(name string) bool {
	h, ok := strings.CutSuffix(name, bundleExt)
	if !ok || len(h) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// readSeekCloser reads and seeks one value and closes another.
type readSeekCloser struct {
	io.ReadSeeker
	io.Closer
}
