package results

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of the BundleInput limits.
const (
	// DefaultMaxLinesPerFile is the default number of lines per event or
	// people file of a bundle.
	DefaultMaxLinesPerFile = 100_000
	// DefaultMaxLineBytes is the default size limit of one JSON line of an export.
	DefaultMaxLineBytes = 10 << 20
	// DefaultMaxExportBytes is the default limit of the total uncompressed
	// size of the data entries of all exports of one bundle.
	DefaultMaxExportBytes = 20 << 30
)

// Names of the fixed files of a bundle.
const (
	// ProfileFile holds the live profiles, one JSON object per line.
	ProfileFile = "profile.jsonl"
	// EmptyFile is present when no export holds any record.
	EmptyFile = "empty.txt"
)

// emptyText is the content of EmptyFile, written for the data subject.
const emptyText = "Your request matched one or more profiles, but no further data about you " +
	"was found in any of our connected systems at the time of this request.\n"

// Errors of Build. Export errors come as an *ExportError wrapping one of
// ErrEncryptedExport, ErrCorruptExport, ErrInvalidLine, ErrLineTooLong or
// ErrExportTooLarge; use errors.Is to tell them apart.
var (
	// ErrInvalidInput: the BundleInput itself is wrong (lengths, names, limits).
	ErrInvalidInput = errors.New("invalid bundle input")
	// ErrInvalidProfile: a profile is not a valid JSON value.
	ErrInvalidProfile = errors.New("profile is not valid JSON")
	// ErrEncryptedExport: an entry of the export zip is encrypted and cannot be read.
	ErrEncryptedExport = errors.New("export zip is encrypted")
	// ErrCorruptExport: the export is not a readable zip archive, or an entry
	// fails to decompress or to match its checksum.
	ErrCorruptExport = errors.New("export is corrupt")
	// ErrInvalidLine: a line of the export is not a valid JSON value in UTF-8.
	ErrInvalidLine = errors.New("line is not valid JSON")
	// ErrLineTooLong: a line of the export is longer than MaxLineBytes.
	ErrLineTooLong = errors.New("line is too long")
	// ErrExportTooLarge: the exports hold more than MaxExportBytes uncompressed.
	ErrExportTooLarge = errors.New("exports exceed the size limit")
)

// ExportError reports a problem with the export of one destination. Its
// message names the destination and the position (entry and line numbers),
// never the content of the export nor the names of its entries, which might
// carry personal data.
type ExportError struct {
	// Destination is the name of the destination of the export.
	Destination string
	// Entry is the 1-based index of the zip entry in the archive's directory,
	// or 0 when the problem is not with one entry.
	Entry int
	// Line is the 1-based line number in the entry, or 0.
	Line int64
	// Err is one of the sentinel errors of Build, possibly joined with a
	// cause that holds no data (e.g. "flate: corrupt input before offset 80").
	Err error
}

// Error describes the problem without any data of the export.
func (e *ExportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "results: export of destination %q", e.Destination)
	if e.Entry > 0 {
		fmt.Fprintf(&b, ", entry %d", e.Entry)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ", line %d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns Err.
func (e *ExportError) Unwrap() error { return e.Err }

// BundleInput is what Build puts in a bundle.
type BundleInput struct {
	// Profiles are the live profiles from dsrflow's profile store
	// (identities and attributes), one JSON value each, written to
	// profile.jsonl. None: no profile.jsonl.
	Profiles []json.RawMessage
	// Exports are the downloaded result zips, one per destination (a
	// Spool's Export, or any random-access reader of a zip).
	Exports []ExportReader
	// Destinations holds the destination name of each export, the prefix of
	// its files (e.g. "mixpanel" -> mixpanel-events-0001.jsonl). Names are
	// unique, of letters, digits, '.', '_' and '-', starting with a letter or
	// a digit, at most 64 bytes.
	Destinations []string
	// MaxLinesPerFile is the most lines per event or people file (default
	// DefaultMaxLinesPerFile).
	MaxLinesPerFile int
	// MaxLineBytes is the most bytes of one line of an export (default
	// DefaultMaxLineBytes).
	MaxLineBytes int
	// MaxExportBytes is the most uncompressed bytes of the data entries of all
	// exports together, checked against the zip directory and again while
	// reading (default DefaultMaxExportBytes).
	MaxExportBytes int64
}

// ExportReader gives random access to one downloaded export zip, as
// zip.NewReader needs: an *io.SectionReader or *bytes.Reader, or what
// Spool.Export returns.
type ExportReader interface {
	io.ReaderAt
	Size() int64
}

// BundleStats describes a bundle written by Build.
type BundleStats struct {
	// Records is the number of JSON lines in the bundle (profiles, events
	// and people records): the request's results_count.
	Records int
	// Files lists the JSON Lines files of the bundle in the order written;
	// empty.txt is not listed.
	Files []FileStat
	// Empty reports that no export held any record, so the bundle holds
	// empty.txt. A bundle that is Empty and has no profiles matched nothing
	// at all: answer 404 rather than serve it.
	Empty bool
}

// FileStat is one file of a bundle.
type FileStat struct {
	// Name is the file name in the zip.
	Name string
	// Lines is its number of JSON lines.
	Lines int
}

// destinationName is the accepted form of BundleInput.Destinations.
var destinationName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Build writes a results bundle for in to w: a zip of JSON Lines files (see
// the package documentation). It streams: however large the exports, it
// holds at most a few lines of them in memory.
//
// Every line of an export is checked to be one JSON value and written
// compacted; blank lines are skipped. Export zip entries named *.json or
// *.jsonl, in any folder, are read as JSON Lines; those whose path contains
// "people" or "profile" (in any case) are people records, all others events.
// Other entries are ignored.
//
// Build does not close w. On error, what was written to w is not a valid
// bundle and must be discarded (Store.Write does so when its fill function
// fails).
func Build(ctx context.Context, w io.Writer, in BundleInput) (BundleStats, error) {
	if err := in.normalize(); err != nil {
		return BundleStats{}, err
	}
	b := &builder{
		ctx:      ctx,
		in:       in,
		zw:       zip.NewWriter(w),
		modified: time.Now(),
		budget:   in.MaxExportBytes,
	}
	if err := b.writeProfiles(); err != nil {
		return BundleStats{}, err
	}
	exportRecords := 0
	for i, p := range in.Exports {
		n, err := b.writeExport(in.Destinations[i], p)
		if err != nil {
			return BundleStats{}, err
		}
		exportRecords += n
	}
	if exportRecords == 0 {
		fw, err := b.create(EmptyFile)
		if err != nil {
			return BundleStats{}, err
		}
		if _, err := io.WriteString(fw, emptyText); err != nil {
			return BundleStats{}, fmt.Errorf("results: write %s: %w", EmptyFile, err)
		}
		b.stats.Empty = true
	}
	if err := b.zw.Close(); err != nil {
		return BundleStats{}, fmt.Errorf("results: finish bundle: %w", err)
	}
	return b.stats, nil
}

// normalize applies the defaults and checks the input.
func (in *BundleInput) normalize() error {
	if len(in.Destinations) != len(in.Exports) {
		return fmt.Errorf("results: %w: %d exports but %d destinations", ErrInvalidInput, len(in.Exports), len(in.Destinations))
	}
	seen := make(map[string]bool, len(in.Destinations))
	for _, d := range in.Destinations {
		if !destinationName.MatchString(d) {
			return fmt.Errorf("results: %w: destination name %q is not usable in a file name", ErrInvalidInput, d)
		}
		if seen[strings.ToLower(d)] {
			return fmt.Errorf("results: %w: destination %q appears twice", ErrInvalidInput, d)
		}
		seen[strings.ToLower(d)] = true
	}
	if in.MaxLinesPerFile < 0 || in.MaxLineBytes < 0 || in.MaxExportBytes < 0 {
		return fmt.Errorf("results: %w: negative limit", ErrInvalidInput)
	}
	if in.MaxLinesPerFile == 0 {
		in.MaxLinesPerFile = DefaultMaxLinesPerFile
	}
	if in.MaxLineBytes == 0 {
		in.MaxLineBytes = DefaultMaxLineBytes
	}
	if in.MaxExportBytes == 0 {
		in.MaxExportBytes = DefaultMaxExportBytes
	}
	return nil
}

// builder holds the state of one Build.
type builder struct {
	ctx      context.Context
	in       BundleInput
	zw       *zip.Writer
	modified time.Time
	budget   int64        // uncompressed export bytes still allowed
	stats    BundleStats  // what was written so far
	out      bytes.Buffer // the current compacted line
}

// create starts a new file in the bundle.
func (b *builder) create(name string) (io.Writer, error) {
	w, err := b.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: b.modified})
	if err != nil {
		return nil, fmt.Errorf("results: create %s: %w", name, err)
	}
	return w, nil
}

// writeProfiles writes profile.jsonl, if there are profiles.
func (b *builder) writeProfiles() error {
	if len(b.in.Profiles) == 0 {
		return nil
	}
	fw, err := b.create(ProfileFile)
	if err != nil {
		return err
	}
	for i, p := range b.in.Profiles {
		if !b.compact(p) {
			return fmt.Errorf("results: profile %d: %w", i+1, ErrInvalidProfile)
		}
		if _, err := fw.Write(b.out.Bytes()); err != nil {
			return fmt.Errorf("results: write %s: %w", ProfileFile, err)
		}
	}
	b.stats.Files = append(b.stats.Files, FileStat{Name: ProfileFile, Lines: len(b.in.Profiles)})
	b.stats.Records += len(b.in.Profiles)
	return nil
}

// compact puts the compacted JSON value v and a newline in b.out, and
// reports whether v is one valid JSON value in UTF-8.
func (b *builder) compact(v []byte) bool {
	b.out.Reset()
	if !utf8.Valid(v) || json.Compact(&b.out, v) != nil {
		return false
	}
	b.out.WriteByte('\n')
	return true
}

// Entry kinds of an export.
const (
	kindEvents = "events"
	kindPeople = "people"
)

// entryKind classifies an export zip entry: kindEvents, kindPeople, or ""
// for entries that hold no data (folders, other files, macOS metadata).
func entryKind(f *zip.File) string {
	name := strings.ToLower(f.Name)
	base := path.Base(name)
	switch {
	case f.FileInfo().IsDir(),
		!strings.HasSuffix(name, ".json") && !strings.HasSuffix(name, ".jsonl"),
		strings.HasPrefix(base, "._"), strings.HasPrefix(name, "__macosx/"), strings.Contains(name, "/__macosx/"):
		return ""
	case strings.Contains(name, "people"), strings.Contains(name, "profile"):
		return kindPeople
	}
	return kindEvents
}

// writeExport copies the export of one destination into the bundle: events
// first, then people records. It returns the number of records written.
func (b *builder) writeExport(dest string, export ExportReader) (int, error) {
	exportErr := func(entry int, line int64, err error) error {
		return &ExportError{Destination: dest, Entry: entry, Line: line, Err: err}
	}
	zr, err := zip.NewReader(export, export.Size())
	if errors.Is(err, zip.ErrInsecurePath) && zr != nil {
		err = nil // entry names like "../x": harmless, nothing is extracted
	}
	if err != nil {
		return 0, exportErr(0, 0, fmt.Errorf("%w: %w", ErrCorruptExport, err))
	}

	// Check the whole directory before writing anything of this export.
	for i, zf := range zr.File {
		// Bit 0 of the general purpose flags marks encryption; method 99 is AES.
		if zf.Flags&0x1 != 0 || zf.Method == 99 {
			return 0, exportErr(i+1, 0, ErrEncryptedExport)
		}
	}
	declared := b.budget
	for i, zf := range zr.File {
		if entryKind(zf) == "" {
			continue
		}
		if zf.UncompressedSize64 > uint64(declared) {
			return 0, exportErr(i+1, 0, ErrExportTooLarge)
		}
		declared -= int64(zf.UncompressedSize64)
	}

	records := 0
	for _, kind := range []string{kindEvents, kindPeople} {
		s := &splitter{b: b, prefix: dest + "-" + kind}
		for i, zf := range zr.File {
			if entryKind(zf) != kind {
				continue
			}
			if err := b.copyEntry(dest, i+1, zf, s); err != nil {
				return 0, err
			}
		}
		records += s.records
	}
	return records, nil
}

// errBudget is returned by budgetReader past the size limit.
var errBudget = errors.New("size limit reached")

// copyEntry copies the lines of zf, the entry-th entry of the export of
// dest, to s.
func (b *builder) copyEntry(dest string, entry int, zf *zip.File, s *splitter) error {
	exportErr := func(line int64, err error) error {
		return &ExportError{Destination: dest, Entry: entry, Line: line, Err: err}
	}
	if err := b.ctx.Err(); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	rc, err := zf.Open()
	if err != nil {
		return exportErr(0, fmt.Errorf("%w: %w", ErrCorruptExport, err))
	}
	defer rc.Close()
	lr := newLineReader(&budgetReader{r: rc, left: &b.budget}, b.in.MaxLineBytes)
	for n := int64(1); ; n++ {
		line, err := lr.next()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, errBudget):
			return exportErr(0, ErrExportTooLarge)
		case errors.Is(err, ErrLineTooLong):
			return exportErr(n, ErrLineTooLong)
		case err != nil:
			return exportErr(0, fmt.Errorf("%w: %w", ErrCorruptExport, err))
		}
		if n%4096 == 0 {
			if err := b.ctx.Err(); err != nil {
				return fmt.Errorf("results: %w", err)
			}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !b.compact(line) {
			return exportErr(n, ErrInvalidLine)
		}
		if err := s.write(b.out.Bytes()); err != nil {
			return err
		}
	}
}

// splitter writes lines to the numbered files <prefix>-0001.jsonl, ...,
// starting a new file every MaxLinesPerFile lines.
type splitter struct {
	b       *builder
	prefix  string
	w       io.Writer // the current file; nil before the first line
	file    int       // index of the current file in b.stats.Files
	lines   int       // lines in the current file
	count   int       // files started
	records int       // lines written in all files
}

// write writes one line, newline included.
func (s *splitter) write(line []byte) error {
	if s.w == nil || s.lines == s.b.in.MaxLinesPerFile {
		s.count++
		name := fmt.Sprintf("%s-%04d.jsonl", s.prefix, s.count)
		w, err := s.b.create(name)
		if err != nil {
			return err
		}
		s.w, s.lines, s.file = w, 0, len(s.b.stats.Files)
		s.b.stats.Files = append(s.b.stats.Files, FileStat{Name: name})
	}
	if _, err := s.w.Write(line); err != nil {
		return fmt.Errorf("results: write %s: %w", s.b.stats.Files[s.file].Name, err)
	}
	s.lines++
	s.records++
	s.b.stats.Files[s.file].Lines++
	s.b.stats.Records++
	return nil
}

// budgetReader fails with errBudget once more than *left bytes are read
// through it (in total, over all budgetReaders sharing left).
type budgetReader struct {
	r    io.Reader
	left *int64
}

func (r *budgetReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	*r.left -= int64(n)
	if *r.left < 0 {
		return n, errBudget
	}
	return n, err
}

// lineReader reads lines of at most max bytes, reusing one buffer.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its line ending, valid until the next
// call, or io.EOF after the last line. A last line without a newline counts.
func (l *lineReader) next() ([]byte, error) {
	l.buf = l.buf[:0]
	for {
		frag, err := l.br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			// Room for "\r\n" on top of max: the limit is on the content.
			if len(l.buf)+len(frag) > l.max+2 {
				return nil, ErrLineTooLong
			}
			l.buf = append(l.buf, frag...)
			continue
		case err == io.EOF && len(l.buf)+len(frag) == 0:
			return nil, io.EOF
		case err != nil && err != io.EOF:
			return nil, err
		}
		line := frag
		if len(l.buf) > 0 {
			l.buf = append(l.buf, frag...)
			line = l.buf
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > l.max {
			return nil, ErrLineTooLong
		}
		return line, nil
	}
}
