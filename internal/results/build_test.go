package results_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dsrflow/dsrflow/internal/results"
)

// secret is personal data planted in exports: no error message may show it.
const secret = "jane.doe@example.com"

// entry is one file of a synthetic export zip.
type entry struct {
	name   string
	body   string
	flags  uint16 // extra general purpose flags, e.g. 0x1 (encrypted)
	method uint16 // default Deflate
}

// writeZip writes a zip of entries to a new file in dir and returns its path.
func writeZip(t testing.TB, dir string, entries ...entry) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "export-*.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, e := range entries {
		method := e.method
		if method == 0 && !strings.HasSuffix(e.name, "/") {
			method = zip.Deflate
		}
		fh := &zip.FileHeader{Name: e.name, Method: method, Flags: e.flags}
		var w io.Writer
		var err error
		if method == zip.Store || method == zip.Deflate {
			w, err = zw.CreateHeader(fh)
		} else { // an unsupported method: write the body as is
			fh.CompressedSize64, fh.UncompressedSize64 = uint64(len(e.body)), uint64(len(e.body))
			w, err = zw.CreateRaw(fh)
		}
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
	return f.Name()
}

// readers opens export files for Build; they are closed when the test ends.
func readers(t testing.TB, paths ...string) []results.ExportReader {
	t.Helper()
	var out []results.ExportReader
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, io.NewSectionReader(f, 0, fi.Size()))
	}
	return out
}

// event returns the i-th synthetic event of a destination, in Mixpanel's
// export format, compact.
func event(dest string, i int) string {
	return fmt.Sprintf(`{"event":"Page View","properties":{"time":%d,"distinct_id":%q,"$insert_id":"%s-%07d","email":%q}}`,
		1704067200+i, "user-1", dest, i, secret)
}

// events returns n events of dest, one per line.
func events(dest string, from, n int) []string {
	var lines []string
	for i := from; i < from+n; i++ {
		lines = append(lines, event(dest, i))
	}
	return lines
}

func person(id string) string {
	return fmt.Sprintf(`{"$distinct_id":%q,"$properties":{"plan":"pro","$email":%q}}`, id, secret)
}

func jsonl(lines []string) string { return strings.Join(lines, "\n") + "\n" }

// bundle is a bundle read back: its files in order and their lines.
type bundle struct {
	names []string
	lines map[string][]string
}

func readBundle(t *testing.T, data []byte) bundle {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("bundle is not a zip: %v", err)
	}
	b := bundle{lines: map[string][]string{}}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		b.names = append(b.names, f.Name)
		if !strings.HasSuffix(f.Name, ".jsonl") {
			b.lines[f.Name] = []string{string(content)}
			continue
		}
		if len(content) == 0 || content[len(content)-1] != '\n' {
			t.Errorf("%s does not end with a newline", f.Name)
		}
		for _, l := range strings.SplitAfter(string(content), "\n") {
			if l == "" {
				continue
			}
			l = strings.TrimSuffix(l, "\n")
			if !json.Valid([]byte(l)) {
				t.Errorf("%s: invalid JSON line %q", f.Name, l)
			}
			b.lines[f.Name] = append(b.lines[f.Name], l)
		}
	}
	return b
}

func build(t *testing.T, in results.BundleInput) (results.BundleStats, bundle) {
	t.Helper()
	var buf bytes.Buffer
	st, err := results.Build(context.Background(), &buf, in)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return st, readBundle(t, buf.Bytes())
}

// checkLines compares the lines of a bundle file one by one.
func checkLines(t *testing.T, b bundle, name string, want []string) {
	t.Helper()
	got := b.lines[name]
	if len(got) != len(want) {
		t.Errorf("%s: %d lines, want %d", name, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s line %d = %s, want %s", name, i+1, got[i], want[i])
			return
		}
	}
}

func checkStats(t *testing.T, st results.BundleStats, b bundle, wantFiles []results.FileStat, wantEmpty bool) {
	t.Helper()
	if !slices.Equal(st.Files, wantFiles) {
		t.Errorf("Files = %v, want %v", st.Files, wantFiles)
	}
	records := 0
	for _, f := range wantFiles {
		records += f.Lines
		if got := len(b.lines[f.Name]); got != f.Lines {
			t.Errorf("%s holds %d lines, stats say %d", f.Name, got, f.Lines)
		}
	}
	if st.Records != records {
		t.Errorf("Records = %d, want %d", st.Records, records)
	}
	if st.Empty != wantEmpty {
		t.Errorf("Empty = %v, want %v", st.Empty, wantEmpty)
	}
	_, hasEmpty := b.lines[results.EmptyFile]
	if hasEmpty != wantEmpty {
		t.Errorf("empty.txt present = %v, want %v", hasEmpty, wantEmpty)
	}
	var names []string
	for _, f := range wantFiles {
		names = append(names, f.Name)
	}
	if wantEmpty {
		names = append(names, results.EmptyFile)
	}
	if !slices.Equal(b.names, names) {
		t.Errorf("bundle files = %v, want %v", b.names, names)
	}
}

func TestBuildSplitsEvents(t *testing.T) {
	dir := t.TempDir()
	evs := events("mixpanel", 0, 250)
	exp := writeZip(t, dir, entry{name: "events.jsonl", body: jsonl(evs)})
	profiles := []json.RawMessage{
		json.RawMessage(`{"identities": {"email": "a@example.com"},
			"attributes": {"plan": "pro"}}`),
		json.RawMessage(`{"identities":{"customer_id":"42"}}`),
	}
	st, b := build(t, results.BundleInput{
		Profiles:        profiles,
		Exports:         readers(t, exp),
		Destinations:    []string{"mixpanel"},
		MaxLinesPerFile: 100,
	})
	checkStats(t, st, b, []results.FileStat{
		{Name: "profile.jsonl", Lines: 2},
		{Name: "mixpanel-events-0001.jsonl", Lines: 100},
		{Name: "mixpanel-events-0002.jsonl", Lines: 100},
		{Name: "mixpanel-events-0003.jsonl", Lines: 50},
	}, false)
	if st.Records != 252 {
		t.Errorf("Records = %d, want 252", st.Records)
	}
	checkLines(t, b, "profile.jsonl", []string{
		`{"identities":{"email":"a@example.com"},"attributes":{"plan":"pro"}}`,
		`{"identities":{"customer_id":"42"}}`,
	})
	checkLines(t, b, "mixpanel-events-0001.jsonl", evs[:100])
	checkLines(t, b, "mixpanel-events-0002.jsonl", evs[100:200])
	checkLines(t, b, "mixpanel-events-0003.jsonl", evs[200:])
}

func TestBuildExactMultiple(t *testing.T) {
	evs := events("mixpanel", 0, 200)
	exp := writeZip(t, t.TempDir(), entry{name: "events.jsonl", body: jsonl(evs)})
	st, b := build(t, results.BundleInput{Exports: readers(t, exp), Destinations: []string{"mixpanel"}, MaxLinesPerFile: 100})
	checkStats(t, st, b, []results.FileStat{
		{Name: "mixpanel-events-0001.jsonl", Lines: 100},
		{Name: "mixpanel-events-0002.jsonl", Lines: 100},
	}, false)
}

// TestBuildEmulatorLayout: the layout of the emulator's result zip, one
// events.jsonl and one people.jsonl, as json.Encoder writes them.
func TestBuildEmulatorLayout(t *testing.T) {
	evs := events("mixpanel", 0, 10)
	people := []string{person("user-1"), person("user-2")}
	exp := writeZip(t, t.TempDir(),
		entry{name: "events.jsonl", body: jsonl(evs)},
		entry{name: "people.jsonl", body: jsonl(people)})
	st, b := build(t, results.BundleInput{
		Profiles:     []json.RawMessage{json.RawMessage(`{"id":1}`)},
		Exports:      readers(t, exp),
		Destinations: []string{"mixpanel"},
	})
	checkStats(t, st, b, []results.FileStat{
		{Name: "profile.jsonl", Lines: 1},
		{Name: "mixpanel-events-0001.jsonl", Lines: 10},
		{Name: "mixpanel-people-0001.jsonl", Lines: 2},
	}, false)
	checkLines(t, b, "mixpanel-events-0001.jsonl", evs)
	checkLines(t, b, "mixpanel-people-0001.jsonl", people)
}

// TestBuildNestedEntries: folders, several parts, people records by path,
// ignored entries, CRLF, blank lines, no final newline, pretty spacing.
func TestBuildNestedEntries(t *testing.T) {
	evs := events("mixpanel", 0, 7)
	exp := writeZip(t, t.TempDir(),
		entry{name: "export/"},
		entry{name: "export/2024/"},
		entry{name: "export/2024/part-0001.jsonl", body: evs[0] + "\r\n" + evs[1] + "\r\n\r\n" + evs[2] + "\n"},
		entry{name: "export/people/part-0001.json", body: person("a") + "\n  \n" + person("b")}, // no final newline
		entry{name: "export/2024/part-0002.JSON", body: `{ "event" : "Log In" ,` + "\t" + `"properties": { "n": [1, 2] } }` + "\n" + jsonl(evs[3:])},
		entry{name: "export/Profiles.jsonl", body: person("c") + "\n"},
		entry{name: "README.txt", body: "not data\n"},
		entry{name: "__MACOSX/export/._part-0001.jsonl", body: "\x00\x05\x16\x07binary"},
		entry{name: "export/._part-0003.jsonl", body: "\x00\x05\x16\x07binary"},
	)
	st, b := build(t, results.BundleInput{Exports: readers(t, exp), Destinations: []string{"mixpanel"}, MaxLinesPerFile: 5})
	checkStats(t, st, b, []results.FileStat{
		{Name: "mixpanel-events-0001.jsonl", Lines: 5},
		{Name: "mixpanel-events-0002.jsonl", Lines: 3},
		{Name: "mixpanel-people-0001.jsonl", Lines: 3},
	}, false)
	wantEvents := append(slices.Clone(evs[:3]), `{"event":"Log In","properties":{"n":[1,2]}}`)
	wantEvents = append(wantEvents, evs[3:]...)
	checkLines(t, b, "mixpanel-events-0001.jsonl", wantEvents[:5])
	checkLines(t, b, "mixpanel-events-0002.jsonl", wantEvents[5:])
	checkLines(t, b, "mixpanel-people-0001.jsonl", []string{person("a"), person("b"), person("c")})
}

func TestBuildTwoDestinations(t *testing.T) {
	dir := t.TempDir()
	a := events("mixpanel", 0, 3)
	b2 := events("mixpanel-eu", 0, 4)
	expA := writeZip(t, dir, entry{name: "events.jsonl", body: jsonl(a)})
	expB := writeZip(t, dir, entry{name: "data/events.jsonl", body: jsonl(b2)}, entry{name: "data/people.jsonl", body: person("x") + "\n"})
	st, b := build(t, results.BundleInput{
		Profiles:     []json.RawMessage{json.RawMessage(`{"id":1}`)},
		Exports:      readers(t, expA, expB),
		Destinations: []string{"mixpanel", "mixpanel-eu"},
	})
	checkStats(t, st, b, []results.FileStat{
		{Name: "profile.jsonl", Lines: 1},
		{Name: "mixpanel-events-0001.jsonl", Lines: 3},
		{Name: "mixpanel-eu-events-0001.jsonl", Lines: 4},
		{Name: "mixpanel-eu-people-0001.jsonl", Lines: 1},
	}, false)
	checkLines(t, b, "mixpanel-events-0001.jsonl", a)
	checkLines(t, b, "mixpanel-eu-events-0001.jsonl", b2)
}

func TestBuildEmpty(t *testing.T) {
	dir := t.TempDir()
	exports := []string{
		writeZip(t, dir, entry{name: "events.jsonl"}, entry{name: "people.jsonl", body: "\n\n"}),
		writeZip(t, dir), // no entries at all
		writeZip(t, dir, entry{name: "notes.txt", body: "no data"}),
	}
	st, b := build(t, results.BundleInput{
		Profiles:     []json.RawMessage{json.RawMessage(`{"id":1}`), json.RawMessage(`{"id":2}`)},
		Exports:      readers(t, exports...),
		Destinations: []string{"a", "b", "c"},
	})
	checkStats(t, st, b, []results.FileStat{{Name: "profile.jsonl", Lines: 2}}, true)
	if text := b.lines[results.EmptyFile][0]; !strings.HasSuffix(text, ".\n") || len(text) < 20 {
		t.Errorf("empty.txt = %q, want a sentence", text)
	}

	// No profiles, no exports: an empty bundle, for the caller to answer 404.
	st, b = build(t, results.BundleInput{})
	checkStats(t, st, b, nil, true)
}

func TestBuildOnlyPeopleIsNotEmpty(t *testing.T) {
	exp := writeZip(t, t.TempDir(), entry{name: "people.jsonl", body: person("a") + "\n"})
	st, b := build(t, results.BundleInput{Exports: readers(t, exp), Destinations: []string{"mixpanel"}})
	checkStats(t, st, b, []results.FileStat{{Name: "mixpanel-people-0001.jsonl", Lines: 1}}, false)
}

// corruptZip returns a path to a zip whose deflated data is damaged.
func corruptZip(t *testing.T, dir string) string {
	t.Helper()
	p := writeZip(t, dir, entry{name: "events.jsonl", body: jsonl(events("mixpanel", 0, 1000))})
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// The compressed data starts after the 30-byte local header and the name.
	for i := 30 + len("events.jsonl") + 10; i < 30+len("events.jsonl")+200; i++ {
		data[i] ^= 0xa5
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildExportErrors(t *testing.T) {
	dir := t.TempDir()
	good := jsonl(events("mixpanel", 0, 3))
	garbage := filepath.Join(dir, "garbage.zip")
	if err := os.WriteFile(garbage, []byte("PK\x03\x04 not really a zip "+secret), 0o600); err != nil {
		t.Fatal(err)
	}
	truncated := writeZip(t, dir, entry{name: "events.jsonl", body: good})
	if data, err := os.ReadFile(truncated); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(truncated, data[:len(data)-30], 0o600); err != nil {
		t.Fatal(err)
	}
	longLine := `{"email":"` + secret + `","pad":"` + strings.Repeat("x", 2000) + `"}`

	tests := []struct {
		name      string
		export    string
		limits    results.BundleInput
		want      error
		wantEntry int
		wantLine  int64
	}{
		{name: "encrypted entry", export: writeZip(t, dir,
			entry{name: "events.jsonl", body: good},
			entry{name: "people.jsonl", body: good, flags: 0x1}),
			want: results.ErrEncryptedExport, wantEntry: 2},
		{name: "AES entry", export: writeZip(t, dir, entry{name: "events.jsonl", body: good, method: 99}),
			want: results.ErrEncryptedExport, wantEntry: 1},
		{name: "not a zip", export: garbage, want: results.ErrCorruptExport},
		{name: "truncated zip", export: truncated, want: results.ErrCorruptExport},
		{name: "damaged data", export: corruptZip(t, dir), want: results.ErrCorruptExport, wantEntry: 1},
		{name: "unknown method", export: writeZip(t, dir, entry{name: "events.jsonl", body: good, method: 42}),
			want: results.ErrCorruptExport, wantEntry: 1},
		{name: "invalid JSON line", export: writeZip(t, dir,
			entry{name: "events.jsonl", body: good},
			entry{name: "more/events.jsonl", body: good + `{"email":"` + secret + `",}` + "\n" + good}),
			want: results.ErrInvalidLine, wantEntry: 2, wantLine: 4},
		{name: "two values on a line", export: writeZip(t, dir, entry{name: "events.jsonl", body: `{"a":1} {"email":"` + secret + `"}` + "\n"}),
			want: results.ErrInvalidLine, wantEntry: 1, wantLine: 1},
		{name: "invalid UTF-8", export: writeZip(t, dir, entry{name: "events.jsonl", body: "{\"a\":\"\xff" + secret + "\"}\n"}),
			want: results.ErrInvalidLine, wantEntry: 1, wantLine: 1},
		{name: "over-long line", export: writeZip(t, dir, entry{name: "events.jsonl", body: good + longLine + "\n"}),
			limits: results.BundleInput{MaxLineBytes: 1000}, want: results.ErrLineTooLong, wantEntry: 1, wantLine: 4},
		{name: "over-long line beyond the read buffer", export: writeZip(t, dir, entry{name: "events.jsonl", body: `{"email":"` + secret + `","pad":"` + strings.Repeat("x", 300<<10) + `"}`}),
			limits: results.BundleInput{MaxLineBytes: 200 << 10}, want: results.ErrLineTooLong, wantEntry: 1, wantLine: 1},
		// The limit is on all exports together: "fine" and entry 1 fit.
		{name: "size limit", export: writeZip(t, dir, entry{name: "events.jsonl", body: good}, entry{name: "people.jsonl", body: good}),
			limits: results.BundleInput{MaxExportBytes: 2*int64(len(good)) + 10}, want: results.ErrExportTooLarge, wantEntry: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.limits
			in.Profiles = []json.RawMessage{json.RawMessage(`{"email":"` + secret + `"}`)}
			in.Exports = readers(t, writeZip(t, dir, entry{name: "events.jsonl", body: good}), tt.export)
			in.Destinations = []string{"fine", "mixpanel"}
			st, err := results.Build(context.Background(), io.Discard, in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var ee *results.ExportError
			if !errors.As(err, &ee) {
				t.Fatalf("err %v is not an *ExportError", err)
			}
			if ee.Destination != "mixpanel" || ee.Entry != tt.wantEntry || ee.Line != tt.wantLine {
				t.Errorf("ExportError = {%q entry %d line %d}, want {mixpanel entry %d line %d}",
					ee.Destination, ee.Entry, ee.Line, tt.wantEntry, tt.wantLine)
			}
			msg := err.Error()
			if !strings.Contains(msg, `"mixpanel"`) || strings.Contains(msg, "jane") || strings.Contains(msg, "xxx") ||
				strings.Contains(msg, "events.jsonl") {
				t.Errorf("message %q must name the destination and hold no data", msg)
			}
			if st.Records != 0 || st.Files != nil {
				t.Errorf("stats on error = %+v, want zero", st)
			}
			t.Log(msg)
		})
	}
}

// TestBuildDeclaredSizeLies: an entry whose header understates its size
// cannot slip past the size limit (archive/zip stops at the declared size,
// Build counts what it reads).
func TestBuildDeclaredSizeLies(t *testing.T) {
	body := jsonl(events("mixpanel", 0, 100))
	p := filepath.Join(t.TempDir(), "lying.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "events.jsonl", Method: zip.Store,
		CompressedSize64: uint64(len(body)), UncompressedSize64: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, body); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = results.Build(context.Background(), io.Discard, results.BundleInput{
		Exports: readers(t, p), Destinations: []string{"mixpanel"}, MaxExportBytes: 100,
	})
	var ee *results.ExportError
	if !errors.As(err, &ee) || !errors.Is(err, results.ErrExportTooLarge) && !errors.Is(err, results.ErrCorruptExport) {
		t.Fatalf("err = %v, want ErrExportTooLarge or ErrCorruptExport", err)
	}
}

func TestBuildInputErrors(t *testing.T) {
	exp := writeZip(t, t.TempDir(), entry{name: "events.jsonl", body: jsonl(events("m", 0, 1))})
	tests := []struct {
		name string
		in   results.BundleInput
		want error
	}{
		{"missing destination", results.BundleInput{Exports: readers(t, exp)}, results.ErrInvalidInput},
		{"bad destination", results.BundleInput{Exports: readers(t, exp), Destinations: []string{"../x"}}, results.ErrInvalidInput},
		{"empty destination", results.BundleInput{Exports: readers(t, exp), Destinations: []string{""}}, results.ErrInvalidInput},
		{"duplicate destination", results.BundleInput{Exports: readers(t, exp, exp), Destinations: []string{"mp", "MP"}}, results.ErrInvalidInput},
		{"negative limit", results.BundleInput{MaxLinesPerFile: -1}, results.ErrInvalidInput},
		{"invalid profile", results.BundleInput{Profiles: []json.RawMessage{json.RawMessage(`{"email":"` + secret + `"`)}}, results.ErrInvalidProfile},
		{"empty profile", results.BundleInput{Profiles: []json.RawMessage{nil}}, results.ErrInvalidProfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := results.Build(context.Background(), io.Discard, tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "jane") {
				t.Errorf("message %q holds data", err)
			}
		})
	}
}

func TestBuildCanceled(t *testing.T) {
	exp := writeZip(t, t.TempDir(), entry{name: "events.jsonl", body: jsonl(events("m", 0, 10))})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := results.Build(ctx, io.Discard, results.BundleInput{Exports: readers(t, exp), Destinations: []string{"mp"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestBuildWriteError(t *testing.T) {
	exp := writeZip(t, t.TempDir(), entry{name: "events.jsonl", body: jsonl(events("m", 0, 20000))})
	_, err := results.Build(context.Background(), &failWriter{n: 4096}, results.BundleInput{Exports: readers(t, exp), Destinations: []string{"mp"}})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the write error", err)
	}
	var ee *results.ExportError
	if errors.As(err, &ee) {
		t.Errorf("a write error is reported as an export error: %v", err)
	}
}

// writeLargeExport writes a zip holding one events.jsonl of n events,
// streaming, and returns its path.
func writeLargeExport(tb testing.TB, dir string, n int) string {
	tb.Helper()
	p := filepath.Join(dir, fmt.Sprintf("export-%d.zip", n))
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	zw := zip.NewWriter(bw)
	w, err := zw.Create("events.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	ew := bufio.NewWriterSize(w, 64<<10)
	for i := range n {
		fmt.Fprintf(ew, `{"event":"Page View","properties":{"time":%d,"distinct_id":"user-%d","$insert_id":"%016x","$city":"Berlin","$browser":"Firefox","mp_lib":"web"}}`+"\n",
			1704067200+i, i%7, i)
	}
	if err := ew.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	return p
}
