package results

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"
)

// downloadPrefix starts the name of a Spool's file.
const downloadPrefix = ".download-"

// Spool holds one download (a destination's export zip) in the store's
// directory while a bundle is built from it. What is written to it goes
// through the store's Wrap on its way to disk, so with an encrypting store
// no export is ever on disk in clear. Its file is named ".download-*", mode
// 0600; Remove deletes it, and PurgeTemporary removes what a killed process
// left behind.
type Spool struct {
	store   *Store
	f       *os.File
	bw      *bufio.Writer
	w       io.Writer      // bw, or wrapped
	wrapped io.WriteCloser // nil without Wrap
	done    bool
}

// NewSpool creates an empty spool. The caller must Remove it.
func (s *Store) NewSpool() (*Spool, error) {
	f, err := os.CreateTemp(s.dir, downloadPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("results: new spool: %w", err)
	}
	sp := &Spool{store: s, f: f, bw: bufio.NewWriterSize(f, 64<<10)}
	sp.w = sp.bw
	if s.opts.Wrap != nil {
		if sp.wrapped, err = s.opts.Wrap(sp.bw); err != nil {
			_ = sp.Remove()
			return nil, fmt.Errorf("results: new spool: wrap: %w", err)
		}
		sp.w = sp.wrapped
	}
	return sp, nil
}

// Write appends p to the spool.
func (sp *Spool) Write(p []byte) (int, error) {
	if sp.done {
		return 0, errors.New("results: spool: write after Export")
	}
	return sp.w.Write(p)
}

// Export finishes writing and returns the spool's content for Build. The
// reader is valid until Remove.
func (sp *Spool) Export() (ExportReader, error) {
	if !sp.done {
		sp.done = true
		if sp.wrapped != nil {
			if err := sp.wrapped.Close(); err != nil {
				return nil, fmt.Errorf("results: spool: wrap: %w", err)
			}
		}
		if err := sp.bw.Flush(); err != nil {
			return nil, fmt.Errorf("results: spool: %w", err)
		}
	}
	fi, err := sp.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("results: spool: %w", err)
	}
	if sp.store.opts.Unwrap == nil {
		return io.NewSectionReader(sp.f, 0, fi.Size()), nil
	}
	r, size, err := sp.store.opts.Unwrap(io.NewSectionReader(sp.f, 0, fi.Size()), fi.Size())
	if err != nil {
		return nil, fmt.Errorf("results: spool: unwrap: %w", err)
	}
	return &seekReaderAt{rs: r, size: size}, nil
}

// Remove closes and deletes the spool's file. Removing twice is harmless.
func (sp *Spool) Remove() error {
	_ = sp.f.Close()
	if err := os.Remove(sp.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("results: remove spool: %w", err)
	}
	return nil
}

// seekReaderAt gives random access to a ReadSeeker (an unwrapped spool),
// one read at a time.
type seekReaderAt struct {
	mu   sync.Mutex
	rs   io.ReadSeeker
	size int64
}

func (r *seekReaderAt) Size() int64 { return r.size }

func (r *seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("results: spool: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	want := min(int64(len(p)), r.size-off)
	n, err := io.ReadFull(r.rs, p[:want])
	if err == nil && int64(n) < int64(len(p)) {
		err = io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// PurgeTemporary removes what interrupted work left in the store's
// directory, last modified before cutoff: spools (".download-*", and the
// directories of that name older versions made) and unfinished bundle
// writes (".tmp-*"). It returns how many it removed. A spool still being
// written is newer than cutoff when cutoff is further back than the longest
// a download and build may take.
func (s *Store) PurgeTemporary(cutoff time.Time) (int, error) {
	n, err := s.removeOlder(cutoff, func(e os.DirEntry) (remove, count bool) {
		temporary := strings.HasPrefix(e.Name(), downloadPrefix) || strings.HasPrefix(e.Name(), tmpPrefix)
		ok := temporary && (e.IsDir() || e.Type().IsRegular())
		return ok, ok
	})
	if err != nil {
		return n, fmt.Errorf("results: purge temporary files: %w", err)
	}
	return n, nil
}
