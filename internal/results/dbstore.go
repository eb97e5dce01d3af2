package results

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// Bundles is what keeps results bundles: Store (files in one directory, for
// one host) or DBStore (a PostgreSQL ledger's database, for any number).
type Bundles interface {
	// Write stores the bundle of token, whose content fill writes, and returns its size.
	Write(ctx context.Context, token string, fill func(w io.Writer) error) (int64, error)
	// Open returns the bundle of token and its size, or ErrNotFound.
	Open(token string) (io.ReadSeekCloser, int64, error)
	// Delete removes the bundle of token, if there is one.
	Delete(token string) error
	// PurgeOlderThan removes the bundles stored before cutoff and returns how many.
	PurgeOlderThan(cutoff time.Time) (int, error)
	// NewSpool creates a place for one download while a bundle is built from it.
	NewSpool() (*Spool, error)
	// PurgeTemporary removes what downloads and writes older than cutoff left behind.
	PurgeTemporary(cutoff time.Time) (int, error)
}

var (
	_ Bundles = (*Store)(nil)
	_ Bundles = (*DBStore)(nil)
)

// ChunkSize is the size of the pieces DBStore stores a bundle in.
const ChunkSize = 1 << 20

// dbTimeout bounds each database call of Open, Delete and PurgeOlderThan,
// whose callers give no context.
const dbTimeout = time.Minute

// DBStore keeps bundles in the results_bundles and results_chunks tables of a
// PostgreSQL ledger (migration 004, applied by the ledger), so that every API
// replica serves every bundle. Rows are named by the hex SHA-256 of the
// token; the content goes through StoreOptions.Wrap (the key ring encrypts
// it) before it is stored, in chunks of ChunkSize read one at a time.
type DBStore struct {
	db   *sqldb.DB
	opts StoreOptions
	// legacy, if set, is a directory store still read (and cleaned) for the
	// bundles written before the database held them, and where downloads
	// are spooled.
	legacy *Store
}

// NewDBStore returns a store on db, a PostgreSQL ledger's database. legacy
// may be nil; otherwise bundles not in the database are looked for there.
func NewDBStore(db *sqldb.DB, opts StoreOptions, legacy *Store) (*DBStore, error) {
	if db == nil || db.Dialect != sqldb.Postgres {
		return nil, errors.New("results: the database store needs a PostgreSQL database")
	}
	return &DBStore{db: db, opts: opts, legacy: legacy}, nil
}

func bundleName(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Write stores the bundle of token in one transaction: readers see the whole
// bundle or none of it. Writing a token again replaces its bundle.
func (s *DBStore) Write(ctx context.Context, token string, fill func(w io.Writer) error) (int64, error) {
	if !validToken(token) {
		return 0, fmt.Errorf("results: write bundle: %w", ErrInvalidToken)
	}
	name := bundleName(token)
	var size int64
	err := s.db.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM results_bundles WHERE name = $1`, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO results_bundles (name, size, chunk_size, created_at)
			VALUES ($1, 0, $2, $3)`, name, ChunkSize, time.Now().UTC()); err != nil {
			return err
		}
		cw := &chunkWriter{ctx: ctx, tx: tx, name: name, buf: make([]byte, 0, ChunkSize)}
		bw := bufio.NewWriterSize(cw, 64<<10)
		var dst io.Writer = bw
		var wrapped io.WriteCloser
		if s.opts.Wrap != nil {
			var err error
			if wrapped, err = s.opts.Wrap(bw); err != nil {
				return fmt.Errorf("wrap: %w", err)
			}
			dst = wrapped
		}
		count := &countWriter{w: dst}
		if err := fill(count); err != nil {
			return fillError{err}
		}
		if wrapped != nil {
			if err := wrapped.Close(); err != nil {
				return fmt.Errorf("wrap: %w", err)
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := cw.flush(); err != nil {
			return err
		}
		size = count.n
		_, err := tx.ExecContext(ctx, `UPDATE results_bundles SET size = $2 WHERE name = $1`, name, cw.stored)
		return err
	})
	var fe fillError
	if errors.As(err, &fe) {
		return 0, fe.err // fill's error as it is, as Store.Write returns it
	}
	if err != nil {
		return 0, fmt.Errorf("results: write bundle: %w", err)
	}
	return size, nil
}

// fillError marks the error of Write's fill function, returned unwrapped.
type fillError struct{ err error }

func (e fillError) Error() string { return e.err.Error() }

// chunkWriter inserts what it is given as chunks of exactly ChunkSize bytes
// (the last one shorter).
type chunkWriter struct {
	ctx    context.Context
	tx     *sql.Tx
	name   string
	buf    []byte
	seq    int
	stored int64
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), ChunkSize-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(w.buf) == ChunkSize {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.tx.ExecContext(w.ctx, `INSERT INTO results_chunks (name, seq, data) VALUES ($1, $2, $3)`,
		w.name, w.seq, w.buf); err != nil {
		return err
	}
	w.stored += int64(len(w.buf))
	w.seq++
	w.buf = w.buf[:0]
	return nil
}

// Open returns the bundle of token (decrypted through StoreOptions.Unwrap),
// reading its chunks as they are needed. It fails with ErrNotFound if there is none.
func (s *DBStore) Open(token string) (io.ReadSeekCloser, int64, error) {
	if !validToken(token) {
		return nil, 0, fmt.Errorf("results: open bundle: %w", ErrNotFound)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	r := &chunkReader{db: s.db, name: bundleName(token)}
	err := s.db.QueryRowContext(ctx, `SELECT size, chunk_size FROM results_bundles WHERE name = $1`, r.name).
		Scan(&r.size, &r.chunkSize)
	if errors.Is(err, sql.ErrNoRows) {
		if s.legacy != nil {
			return s.legacy.Open(token)
		}
		return nil, 0, fmt.Errorf("results: open bundle: %w", ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("results: open bundle: %w", err)
	}
	if r.chunkSize <= 0 {
		return nil, 0, fmt.Errorf("results: open bundle: stored with chunk size %d", r.chunkSize)
	}
	if s.opts.Unwrap == nil {
		return r, r.size, nil
	}
	plain, size, err := s.opts.Unwrap(r, r.size)
	if err != nil {
		return nil, 0, fmt.Errorf("results: open bundle: unwrap: %w", err)
	}
	return readSeekCloser{ReadSeeker: plain, Closer: r}, size, nil
}

// chunkReader reads a stored bundle, one chunk query at a time.
type chunkReader struct {
	db        *sqldb.DB
	name      string
	size      int64
	chunkSize int64
	pos       int64
	seq       int64 // the chunk in data, when loaded
	data      []byte
	loaded    bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	seq := r.pos / r.chunkSize
	if !r.loaded || r.seq != seq {
		ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
		defer cancel()
		var data []byte
		err := r.db.QueryRowContext(ctx, `SELECT data FROM results_chunks WHERE name = $1 AND seq = $2`, r.name, seq).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("results: bundle chunk %d is missing: %w", seq, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, fmt.Errorf("results: read bundle chunk %d: %w", seq, err)
		}
		r.seq, r.data, r.loaded = seq, data, true
	}
	off := r.pos - seq*r.chunkSize
	if off >= int64(len(r.data)) {
		return 0, fmt.Errorf("results: bundle chunk %d is short: %w", seq, io.ErrUnexpectedEOF)
	}
	n := copy(p, r.data[off:])
	r.pos += int64(n)
	return n, nil
}

func (r *chunkReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("results: seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("results: seek: negative position")
	}
	r.pos = offset
	return offset, nil
}

// Close releases the chunk in memory; the connections belong to the store.
func (r *chunkReader) Close() error {
	r.data, r.loaded = nil, false
	return nil
}

// Delete removes the bundle of token (and its legacy file). Deleting a bundle
// that does not exist is not an error.
func (s *DBStore) Delete(token string) error {
	if validToken(token) {
		ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
		defer cancel()
		if _, err := s.db.ExecContext(ctx, `DELETE FROM results_bundles WHERE name = $1`, bundleName(token)); err != nil {
			return fmt.Errorf("results: delete bundle: %w", err)
		}
	}
	if s.legacy != nil {
		return s.legacy.Delete(token)
	}
	return nil
}

// PurgeOlderThan removes the bundles stored before cutoff (and the legacy
// files last modified before it), and returns how many it removed.
func (s *DBStore) PurgeOlderThan(cutoff time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	res, err := s.db.ExecContext(ctx, `DELETE FROM results_bundles WHERE created_at < $1`, cutoff.UTC())
	if err != nil {
		return 0, fmt.Errorf("results: purge bundles: %w", err)
	}
	n, _ := res.RowsAffected()
	removed := int(n)
	if s.legacy != nil {
		m, err := s.legacy.PurgeOlderThan(cutoff)
		removed += m
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}
