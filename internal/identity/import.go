package identity

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/dsrflow/dsrflow/internal/opendsr"
	"github.com/dsrflow/dsrflow/internal/sqldb"
)

// Format is the format of a profile file given to Import.
type Format string

// The formats Import reads.
const (
	// JSONL is one JSON object per line:
	//
	//	{"profile_id":"p-1","identities":{"email":"a@x.com","ios_vendor_id":["v1","v2"]},"attributes":{"plan":"pro"}}
	//
	// An identity is a string or a list of strings; attributes are optional.
	JSONL Format = "jsonl"
	// CSV has a header naming its columns: profile_id, identity types, and
	// attr:<name> for attributes. A cell may hold several identities of its
	// column's type separated by "|"; an empty cell holds none.
	CSV Format = "csv"
)

// Import limits.
const (
	// DefaultBatchSize is how many profiles one Import transaction writes
	// unless ImportOptions says otherwise.
	DefaultBatchSize = 1000
	// MaxImportErrors is how many LineErrors an ImportReport keeps; Failed
	// counts them all.
	MaxImportErrors = 1000
	// MaxLineSize is the longest JSONL line Import reads, in bytes.
	MaxLineSize = 1 << 20
)

// ImportOptions tune Import.
type ImportOptions struct {
	// BatchSize is how many profiles each transaction writes (DefaultBatchSize
	// when 0 or less).
	BatchSize int
	// Progress, when set, is called after each committed batch with the
	// number of records read so far (imported and failed), from the goroutine
	// that called Import.
	Progress func(done int)
	// Bulk loads the file without the digest indexes and rebuilds them at
	// the end, which is many times faster for a large file (see Import).
	// Import does so anyway when the store is empty.
	Bulk bool
}

// LineError is one record Import skipped.
type LineError struct {
	// Line is the record's line number in the file, from 1 (a CSV header is
	// line 1).
	Line int `json:"line"`
	// Problem says what is wrong, never with an identity value.
	Problem string `json:"problem"`
}

// String returns "line N: problem".
func (e LineError) String() string { return fmt.Sprintf("line %d: %s", e.Line, e.Problem) }

// ImportReport sums up an Import.
type ImportReport struct {
	// Imported counts the records written (a profile given twice counts twice).
	Imported int `json:"imported"`
	// Suppressed counts the valid records not written because they carry an
	// identity of an erased person (the suppression list).
	Suppressed int `json:"suppressed"`
	// SuppressedLines lists the line numbers of the first MaxImportErrors
	// suppressed records, in file order.
	SuppressedLines []int `json:"suppressed_lines,omitempty"`
	// Failed counts the records skipped.
	Failed int `json:"failed"`
	// Errors lists the first MaxImportErrors skipped records, in file order.
	Errors []LineError `json:"errors,omitempty"`
}

// importBatch is what the parser hands the writer: up to BatchSize valid
// profiles and the errors of the records skipped among them.
type importBatch struct {
	profiles []preparedProfile
	errors   []LineError
}

// Import reads profiles from r in format and upserts them as owner's (see
// Upsert), in transactions of opts.BatchSize profiles. A record carrying an
// identity on owner's suppression list (an erased person) is not written and
// is counted and listed by line number as suppressed. A record that is not valid
// (malformed, missing profile_id, unknown identity type, bad email, ...) is
// skipped and reported by line number; the valid records around it are
// written all the same. Importing the same file again changes nothing, and a
// later record of a profile replaces an earlier one.
//
// Parsing and hashing run on a goroutine of their own while the previous
// batch is written. Import stops at the first error that is not about a
// record (reading r, a CSV header it cannot use, the database, ctx) and
// returns it with the report of what was written before.
//
// Into an empty store, or with opts.Bulk, Import drops the indexes on the
// identities' digests, loads, and builds them again at the end, also after
// an error (see bulk.go): adding random keys to those indexes batch after
// batch is what limits a large import. Meanwhile Find still answers,
// correctly but by scanning the identities, which is slow on a large store.
// Should the process die before the rebuild, the next Open or Import does
// it.
func (s *Store) Import(ctx context.Context, owner string, r io.Reader, format Format, opts ImportOptions) (report ImportReport, err error) {
	if err := CheckOwner(owner); err != nil {
		return ImportReport{}, fmt.Errorf("identity: import: %w", err)
	}
	if s.keys == nil {
		return ImportReport{}, fmt.Errorf("identity: import: %w", ErrNoKeys)
	}
	size := opts.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	var parse func(context.Context, io.Reader, int, chan<- importBatch) error
	switch format {
	case JSONL:
		parse = parseJSONL
	case CSV:
		parse = parseCSV
	default:
		return ImportReport{}, fmt.Errorf("identity: import: unknown format %q (want jsonl or csv)", format)
	}

	bulk := opts.Bulk
	if !bulk {
		if bulk, err = s.empty(ctx); err != nil {
			return ImportReport{}, fmt.Errorf("identity: import: %w", err)
		}
	}
	var load *bulkLoad
	if !bulk {
		if err := s.repairIndexes(ctx); err != nil {
			return ImportReport{}, fmt.Errorf("identity: import: %w", err)
		}
	}
	if bulk {
		if load, err = s.beginBulk(ctx); err != nil {
			return ImportReport{}, fmt.Errorf("identity: import: %w", err)
		}
		defer func() {
			if eerr := load.end(ctx); eerr != nil {
				err = errors.Join(err, fmt.Errorf("identity: import: %w", eerr))
			}
		}()
	}

	conn, err := s.importConn(ctx)
	if err != nil {
		return ImportReport{}, err
	}
	defer conn.close(ctx)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan importBatch, 2)
	var parseErr error
	go func() {
		defer close(batches)
		parseErr = parse(ctx, r, size, batches)
	}()

	var writeErr error
	for b := range batches {
		if writeErr != nil {
			continue // drain, so that the parser can finish
		}
		written := 0
		var suppressed []preparedProfile
		if len(b.profiles) > 0 {
			writeErr = conn.withTx(ctx, func(tx *sql.Tx) error {
				if load != nil {
					if err := load.beat(ctx, tx); err != nil {
						return err
					}
				}
				var err error
				written, suppressed, err = s.writeUnsuppressed(ctx, tx, owner, b.profiles)
				return err
			})
			if writeErr != nil {
				cancel()
				continue
			}
		}
		report.Imported += written
		report.Suppressed += len(suppressed)
		for _, p := range suppressed {
			if len(report.SuppressedLines) < MaxImportErrors {
				report.SuppressedLines = append(report.SuppressedLines, p.line)
			}
		}
		report.Failed += len(b.errors)
		for _, e := range b.errors {
			if len(report.Errors) < MaxImportErrors {
				report.Errors = append(report.Errors, e)
			}
		}
		if opts.Progress != nil {
			opts.Progress(report.Imported + report.Suppressed + report.Failed)
		}
	}
	switch {
	case writeErr != nil:
		return report, fmt.Errorf("identity: import: write batch after %d records: %w", report.Imported+report.Suppressed+report.Failed, writeErr)
	case parseErr != nil:
		return report, fmt.Errorf("identity: import: %w", parseErr)
	}
	return report, nil
}

// batcher collects records into batches and sends each full one.
type batcher struct {
	ctx  context.Context
	size int
	out  chan<- importBatch
	cur  importBatch
}

func (b *batcher) add(p preparedProfile) error {
	b.cur.profiles = append(b.cur.profiles, p)
	if len(b.cur.profiles) >= b.size {
		return b.flush()
	}
	return nil
}

func (b *batcher) fail(line int, problem string) {
	b.cur.errors = append(b.cur.errors, LineError{Line: line, Problem: problem})
}

func (b *batcher) flush() error {
	if len(b.cur.profiles) == 0 && len(b.cur.errors) == 0 {
		return nil
	}
	select {
	case b.out <- b.cur:
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
	b.cur = importBatch{profiles: make([]preparedProfile, 0, b.size)}
	return nil
}

// parseJSONL reads JSONL records from r into batches.
func parseJSONL(ctx context.Context, r io.Reader, size int, out chan<- importBatch) error {
	b := &batcher{ctx: ctx, size: size, out: out, cur: importBatch{profiles: make([]preparedProfile, 0, size)}}
	br := bufio.NewReaderSize(r, 256<<10)
	for line := 1; ; line++ {
		text, tooLong, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", line, err)
		}
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\uFEFF"))
		}
		text = bytes.TrimSpace(text)
		switch {
		case tooLong:
			b.fail(line, fmt.Sprintf("line longer than %d bytes", MaxLineSize))
		case len(text) == 0:
		default:
			var pp preparedProfile
			p, attrs, problem := decodeJSONLine(text)
			if problem == "" {
				pp, problem = prepare(p, attrs)
			}
			pp.line = line
			if problem != "" {
				b.fail(line, problem)
			} else if err := b.add(pp); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return b.flush()
		}
	}
}

// readLine returns the next line of br without its newline. A line longer
// than MaxLineSize is consumed and reported with tooLong. At the end of the
// input it returns the last (possibly empty) line with io.EOF.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong {
				long = append(long, chunk...)
				if len(long) > MaxLineSize {
					tooLong, long = true, nil
				}
			}
			continue
		case err != nil && !errors.Is(err, io.EOF):
			return nil, false, err
		}
		chunk = bytes.TrimSuffix(chunk, []byte("\n"))
		if tooLong {
			return nil, true, err
		}
		if long != nil {
			chunk = append(long, chunk...)
		}
		if len(chunk) > MaxLineSize {
			return nil, true, err
		}
		return chunk, false, err
	}
}

// jsonLine is one JSONL record as written.
type jsonLine struct {
	ProfileID  json.RawMessage            `json:"profile_id"`
	Identities map[string]json.RawMessage `json:"identities"`
	Attributes json.RawMessage            `json:"attributes"`
}

// decodeJSONLine reads one JSONL record: the profile without attributes,
// and the attributes as written. The problem it returns never quotes the
// line.
func decodeJSONLine(text []byte) (Profile, []byte, string) {
	d := json.NewDecoder(bytes.NewReader(text))
	d.DisallowUnknownFields()
	var rec jsonLine
	if err := d.Decode(&rec); err != nil {
		return Profile{}, nil, jsonProblem(err)
	}
	if d.InputOffset() != int64(len(text)) { // text is trimmed
		return Profile{}, nil, "malformed JSON: data after the object"
	}

	var p Profile
	switch {
	case len(rec.ProfileID) == 0 || string(rec.ProfileID) == "null":
		return Profile{}, nil, "missing profile_id"
	case json.Unmarshal(rec.ProfileID, &p.ID) != nil:
		return Profile{}, nil, "profile_id must be a string"
	}
	p.ID = strings.TrimSpace(p.ID)
	var problem string
	if p.Identities, problem = decodeIdentities(rec.Identities, true); problem != "" {
		return Profile{}, nil, problem
	}
	if rec.Attributes == nil {
		rec.Attributes = json.RawMessage("null")
	}
	return p, rec.Attributes, ""
}

// decodeIdentities reads an "identities" object: identity type -> a string
// or a list of strings (null for none), by type in alphabetical order. An
// unknown type is a problem when strict, skipped otherwise. The problem
// never quotes a value.
func decodeIdentities(m map[string]json.RawMessage, strict bool) ([]Identity, string) {
	types := make([]string, 0, len(m))
	for t := range m {
		switch {
		case KnownType(t):
			types = append(types, t)
		case strict:
			return nil, "unknown identity type in identities (supported: " + strings.Join(opendsr.IdentityTypes(), ", ") + ")"
		}
	}
	sort.Strings(types)
	var ids []Identity
	for _, t := range types {
		raw := m[t]
		switch {
		case string(raw) == "null":
		case len(raw) > 1 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0:
			// Already validated by the decoder, and without escapes.
			ids = append(ids, Identity{Type: t, Value: string(raw[1 : len(raw)-1])})
		case len(raw) > 0 && raw[0] == '"':
			var v string
			if json.Unmarshal(raw, &v) != nil {
				return nil, "identities." + t + ": malformed string"
			}
			ids = append(ids, Identity{Type: t, Value: v})
		case len(raw) > 0 && raw[0] == '[':
			var vs []string
			if json.Unmarshal(raw, &vs) != nil {
				return nil, "identities." + t + ": must be a string or a list of strings"
			}
			for _, v := range vs {
				ids = append(ids, Identity{Type: t, Value: v})
			}
		default:
			return nil, "identities." + t + ": must be a string or a list of strings"
		}
	}
	return ids, ""
}

// jsonProblem describes a decoding error without quoting the input (the
// encoding/json messages may quote a character of it, or a field name).
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON (at byte %d)", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON (truncated)"
	case errors.As(err, &typ) && typ.Field == "":
		return "not a JSON object"
	case errors.As(err, &typ) && typ.Field == "identities":
		return "identities must be a JSON object"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "unknown field (a record holds profile_id, identities and attributes)"
	}
	return "malformed JSON"
}

// csvLayout is what the header of a CSV file says each column holds.
type csvLayout struct {
	profileID  int
	identities map[int]string // column -> identity type
	attributes map[int]string // column -> attribute name
}

// parseCSV reads CSV records from r into batches.
func parseCSV(ctx context.Context, r io.Reader, size int, out chan<- importBatch) error {
	b := &batcher{ctx: ctx, size: size, out: out, cur: importBatch{profiles: make([]preparedProfile, 0, size)}}
	cr := csv.NewReader(bufio.NewReaderSize(r, 256<<10))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // checked below, with a better message
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("CSV: empty file (want a header: profile_id, identity types, attr:<name>)")
		}
		return fmt.Errorf("CSV header: %s", csvProblem(err))
	}
	layout, err := readCSVHeader(header)
	if err != nil {
		return err
	}
	width := len(header)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return b.flush()
		}
		var parseErr *csv.ParseError
		if err != nil {
			if !errors.As(err, &parseErr) {
				return fmt.Errorf("read CSV: %w", err)
			}
			b.fail(parseErr.StartLine, csvProblem(err))
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != width {
			b.fail(line, fmt.Sprintf("%d fields, the header has %d", len(rec), width))
			continue
		}
		p, problem := prepare(layout.profile(rec), nil)
		if problem != "" {
			b.fail(line, problem)
			continue
		}
		p.line = line
		if err := b.add(p); err != nil {
			return err
		}
	}
}

// csvProblem describes a CSV error without quoting the input.
func csvProblem(err error) string {
	var parseErr *csv.ParseError
	if errors.As(err, &parseErr) {
		return fmt.Sprintf("malformed CSV (column %d): %v", parseErr.Column, parseErr.Err)
	}
	return "malformed CSV"
}

// readCSVHeader reads the layout from the header. Errors name columns by
// number: a file without a header would otherwise show its first record.
func readCSVHeader(header []string) (csvLayout, error) {
	l := csvLayout{profileID: -1, identities: map[int]string{}, attributes: map[int]string{}}
	attrs := map[string]bool{}
	for i, name := range header {
		if i == 0 {
			name = strings.TrimPrefix(name, "\uFEFF")
		}
		name = strings.TrimSpace(name)
		attr, isAttr := strings.CutPrefix(name, "attr:")
		switch {
		case name == "profile_id" && l.profileID < 0:
			l.profileID = i
		case name == "profile_id":
			return l, fmt.Errorf("CSV header: column %d repeats profile_id", i+1)
		case KnownType(name):
			l.identities[i] = name
		case isAttr && strings.TrimSpace(attr) != "" && !attrs[strings.TrimSpace(attr)]:
			attrs[strings.TrimSpace(attr)] = true
			l.attributes[i] = strings.TrimSpace(attr)
		case isAttr && strings.TrimSpace(attr) != "":
			return l, fmt.Errorf("CSV header: column %d repeats an attribute name", i+1)
		default:
			return l, fmt.Errorf("CSV header: column %d is not profile_id, an identity type (%s) or attr:<name>",
				i+1, strings.Join(opendsr.IdentityTypes(), ", "))
		}
	}
	if l.profileID < 0 {
		return l, errors.New("CSV header: no profile_id column")
	}
	return l, nil
}

// profile builds the profile of one record (not yet validated).
func (l csvLayout) profile(rec []string) Profile {
	p := Profile{ID: strings.TrimSpace(rec[l.profileID])}
	for i, cell := range rec {
		if t, ok := l.identities[i]; ok {
			for v := range strings.SplitSeq(cell, "|") {
				if strings.TrimSpace(v) != "" {
					p.Identities = append(p.Identities, Identity{Type: t, Value: v})
				}
			}
		} else if name, ok := l.attributes[i]; ok && cell != "" {
			if p.Attributes == nil {
				p.Attributes = map[string]any{}
			}
			p.Attributes[name] = cell
		}
	}
	return p
}

// importConn is the connection an import writes on. On SQLite it keeps its
// statement journals in memory and has a larger page cache while the import
// lasts: a multi-row upsert journals the pages it changes, and a file for
// that doubles the writes.
type importConn struct {
	*sql.Conn
	restore string
}

// Settings of the SQLite connection an import writes on.
const (
	importTempStore = 2      // MEMORY
	importCacheSize = -65536 // KiB: 64 MiB
	// importAutoCheckpoint (pages) lets the WAL grow to about 160 MiB
	// before a checkpoint copies it back, so that pages changed by many
	// batches are copied once; the import truncates the WAL when done.
	importAutoCheckpoint = 40000
)

func (s *Store) importConn(ctx context.Context) (*importConn, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity: import: %w", err)
	}
	c := &importConn{Conn: conn}
	if s.db.Dialect != sqldb.SQLite {
		return c, nil
	}
	var tempStore, cacheSize, autoCheckpoint int
	err = conn.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&tempStore)
	if err == nil {
		err = conn.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cacheSize)
	}
	if err == nil {
		err = conn.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&autoCheckpoint)
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA temp_store = %d; PRAGMA cache_size = %d; PRAGMA wal_autocheckpoint = %d`,
			importTempStore, importCacheSize, importAutoCheckpoint))
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("identity: import: set up the connection: %w", err)
	}
	c.restore = fmt.Sprintf(`PRAGMA temp_store = %d; PRAGMA cache_size = %d; PRAGMA wal_autocheckpoint = %d`,
		tempStore, cacheSize, autoCheckpoint)
	return c, nil
}

// close puts the connection back as it was, into the pool. On SQLite it
// first copies the WAL back and truncates it (best effort: readers may be
// in the way).
func (c *importConn) close(ctx context.Context) {
	if c.restore != "" {
		ctx := context.WithoutCancel(ctx)
		_, _ = c.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
		if _, err := c.ExecContext(ctx, c.restore); err != nil {
			// Do not pool a connection left with the import's settings.
			_ = c.Raw(func(any) error { return driver.ErrBadConn })
		}
	}
	_ = c.Close()
}

// withTx is sqldb.DB.WithTx on the import's connection.
func (c *importConn) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
