package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/results"
)

const seg = SegmentSize

// plaintext returns n recognizable bytes: numbered lines with an email.
func plaintext(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08d subject %s\n", i, email)
	}
	return b.Bytes()[:n]
}

// wrap encrypts plain with r, writing it in uneven chunks.
func wrap(t testing.TB, r *Ring, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := r.WrapWriter(&buf)
	if err != nil {
		t.Fatalf("WrapWriter: %v", err)
	}
	for p := plain; len(p) > 0; {
		n := min(len(p), 7777)
		if m, err := w.Write(p[:n]); err != nil || m != n {
			t.Fatalf("Write = %d, %v", m, err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// unwrapAll decrypts all of ct, returning the first error of UnwrapReader
// or of reading.
func unwrapAll(r *Ring, ct []byte) ([]byte, error) {
	rs, size, err := r.UnwrapReader(bytes.NewReader(ct), int64(len(ct)))
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(rs)
	if err != nil {
		return nil, err
	}
	if int64(len(got)) != size {
		return nil, fmt.Errorf("read %d bytes, size %d", len(got), size)
	}
	return got, nil
}

var testSizes = []int{0, 1, seg - 1, seg, seg + 1, 3*seg + seg/2}

func TestStreamRoundTrip(t *testing.T) {
	r := newRing(t, "k1")
	hdrLen := fixedHeaderLen + len("k1")
	for _, n := range testSizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			plain := plaintext(n)
			ct := wrap(t, r, plain)
			nseg := max(1, (n+seg-1)/seg)
			if want := hdrLen + n + nseg*tagLen; len(ct) != want {
				t.Errorf("ciphertext is %d bytes, want %d", len(ct), want)
			}
			if n >= 8 && bytes.Contains(ct, plain[:8]) || bytes.Contains(ct, []byte(email)) { // a shorter plaintext may appear by chance
				t.Error("ciphertext contains plaintext")
			}
			rs, size, err := r.UnwrapReader(bytes.NewReader(ct), int64(len(ct)))
			if err != nil {
				t.Fatalf("UnwrapReader: %v", err)
			}
			if size != int64(n) {
				t.Errorf("size = %d, want %d", size, n)
			}
			got, err := io.ReadAll(rs)
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if !bytes.Equal(got, plain) {
				t.Errorf("round trip differs (got %d bytes, want %d)", len(got), n)
			}
		})
	}
}

func TestStreamSingleWriteAndRandomPrefix(t *testing.T) {
	r := newRing(t, "k1")
	plain := plaintext(2*seg + 5)
	var buf bytes.Buffer
	w, err := r.WrapWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write(plain); err != nil || n != len(plain) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	got, err := unwrapAll(r, buf.Bytes())
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip: %v", err)
	}
	if bytes.Equal(buf.Bytes(), wrap(t, r, plain)) {
		t.Error("two encryptions of the same plaintext are equal")
	}
}

func TestStreamSeek(t *testing.T) {
	r := newRing(t, "k1")
	plain := plaintext(3*seg + seg/2)
	n := int64(len(plain))
	ct := wrap(t, r, plain)
	rs, _, err := r.UnwrapReader(bytes.NewReader(ct), int64(len(ct)))
	if err != nil {
		t.Fatal(err)
	}
	readAt := func(pos int64, k int) {
		t.Helper()
		buf := make([]byte, k)
		m, err := io.ReadFull(rs, buf)
		want := plain[min(pos, n):min(pos+int64(k), n)]
		if m != len(want) || !bytes.Equal(buf[:m], want) {
			t.Fatalf("read %d at %d: got %d bytes (%v), want %d", k, pos, m, err, len(want))
		}
		if m < k && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Fatalf("short read at %d: %v", pos, err)
		}
	}
	seek := func(off int64, whence int, want int64) {
		t.Helper()
		got, err := rs.Seek(off, whence)
		if err != nil || got != want {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, got, err, want)
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	pos := int64(0)
	for range 300 {
		k := rng.IntN(2*seg + 1)
		switch rng.IntN(3) {
		case 0:
			pos = rng.Int64N(n + 10)
			seek(pos, io.SeekStart, pos)
		case 1:
			off := rng.Int64N(n+1) - pos
			pos += off
			seek(off, io.SeekCurrent, pos)
		case 2:
			off := -rng.Int64N(n + 1)
			pos = n + off
			seek(off, io.SeekEnd, pos)
		}
		readAt(pos, k)
		pos = min(pos+int64(k), max(n, pos))
	}

	// Boundaries of segments.
	for _, p := range []int64{0, seg - 1, seg, seg + 1, 2*seg - 1, 3 * seg, n - 1} {
		seek(p, io.SeekStart, p)
		readAt(p, 3)
	}
	seek(0, io.SeekEnd, n)
	if m, err := rs.Read(make([]byte, 10)); m != 0 || err != io.EOF {
		t.Errorf("Read at end = %d, %v; want 0, EOF", m, err)
	}
	seek(n+100, io.SeekStart, n+100)
	if m, err := rs.Read(make([]byte, 10)); m != 0 || err != io.EOF {
		t.Errorf("Read past end = %d, %v; want 0, EOF", m, err)
	}
	if _, err := rs.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to -1 succeeded")
	}
	if _, err := rs.Seek(-n-1, io.SeekEnd); err == nil {
		t.Error("Seek before start from end succeeded")
	}
}

func TestStreamServeContentRange(t *testing.T) {
	r := newRing(t, "k1")
	plain := plaintext(3*seg + seg/2)
	ct := wrap(t, r, plain)
	n := len(plain)
	tests := []struct {
		rng        string
		start, end int // plain[start:end]
	}{
		{"bytes=0-0", 0, 1},
		{fmt.Sprintf("bytes=%d-%d", seg-10, 2*seg+10), seg - 10, 2*seg + 11},
		{fmt.Sprintf("bytes=%d-", 3*seg+7), 3*seg + 7, n},
		{"bytes=-100", n - 100, n},
		{"", 0, n},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			rs, _, err := r.UnwrapReader(bytes.NewReader(ct), int64(len(ct)))
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/results/x.zip", nil)
			if tt.rng != "" {
				req.Header.Set("Range", tt.rng)
			}
			rec := httptest.NewRecorder()
			http.ServeContent(rec, req, "x.zip", time.Time{}, rs)
			want := http.StatusPartialContent
			if tt.rng == "" {
				want = http.StatusOK
			}
			if rec.Code != want {
				t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body.Bytes()[:min(rec.Body.Len(), 200)])
			}
			if !bytes.Equal(rec.Body.Bytes(), plain[tt.start:tt.end]) {
				t.Errorf("body is %d bytes, want plain[%d:%d]", rec.Body.Len(), tt.start, tt.end)
			}
			if tt.rng != "" {
				if got, want := rec.Header().Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", tt.start, tt.end-1, n); got != want {
					t.Errorf("Content-Range = %q, want %q", got, want)
				}
			}
		})
	}
}

// mustFail checks that decrypting ct fails with ErrCorrupt or ErrUnknownKey.
func mustFail(t *testing.T, r *Ring, what string, ct []byte) {
	t.Helper()
	_, err := unwrapAll(r, ct)
	if err == nil {
		t.Errorf("%s: decrypted without error", what)
		return
	}
	if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownKey) {
		t.Errorf("%s: error %v is neither ErrCorrupt nor ErrUnknownKey", what, err)
	}
}

func TestStreamTamper(t *testing.T) {
	r := newRing(t, "k1")
	plain := plaintext(3*seg + seg/2)
	ct := wrap(t, r, plain)
	hdrLen := fixedHeaderLen + len("k1")
	segCT := seg + tagLen
	if _, err := unwrapAll(r, ct); err != nil {
		t.Fatalf("intact file: %v", err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(ct)) }

	// One flipped bit: every header byte, and bytes at the start, middle
	// and end (tag) of every segment.
	positions := []int{}
	for i := range hdrLen {
		positions = append(positions, i)
	}
	for s := 0; s < 4; s++ {
		start := hdrLen + s*segCT
		end := min(start+segCT, len(ct))
		positions = append(positions, start, start+1, (start+end)/2, end-tagLen-1, end-tagLen, end-1)
	}
	for _, p := range positions {
		mustFail(t, r, fmt.Sprintf("flip byte %d", p), edit(func(b []byte) []byte { b[p] ^= 0x40; return b }))
	}

	// Truncation, also at segment boundaries, and extension.
	for _, n := range []int{0, 5, hdrLen - 1, hdrLen, hdrLen + tagLen, hdrLen + segCT, hdrLen + segCT + tagLen,
		hdrLen + 3*segCT, hdrLen + 3*segCT + tagLen, len(ct) - tagLen, len(ct) - 1} {
		mustFail(t, r, fmt.Sprintf("truncate to %d", n), ct[:n])
	}
	mustFail(t, r, "append a byte", append(bytes.Clone(ct), 0))
	mustFail(t, r, "repeat a segment at the end", append(bytes.Clone(ct[:hdrLen+3*segCT]), ct[hdrLen+2*segCT:hdrLen+3*segCT]...))
	mustFail(t, r, "drop a middle segment", append(bytes.Clone(ct[:hdrLen+segCT]), ct[hdrLen+2*segCT:]...))

	// Swapped segments.
	mustFail(t, r, "swap segments 0 and 1", edit(func(b []byte) []byte {
		s0, s1 := b[hdrLen:hdrLen+segCT], b[hdrLen+segCT:hdrLen+2*segCT]
		tmp := bytes.Clone(s0)
		copy(s0, s1)
		copy(s1, tmp)
		return b
	}))

	// A segment at the same index from another file with the same key.
	other := wrap(t, r, plaintext(3*seg+seg/2))
	mustFail(t, r, "segment from another file", edit(func(b []byte) []byte {
		copy(b[hdrLen+segCT:hdrLen+2*segCT], other[hdrLen+segCT:])
		return b
	}))

	// Changed segment size in the header.
	mustFail(t, r, "header segment size", edit(func(b []byte) []byte {
		b[len(streamMagic)+3]++ // low bytes of the uint32
		return b
	}))

	// Read errors surface from Read, not only from ReadAll's first call.
	bad := edit(func(b []byte) []byte { b[hdrLen+2*segCT+100] ^= 1; return b })
	rs, _, err := r.UnwrapReader(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatalf("UnwrapReader verifies only the last segment eagerly, got %v", err)
	}
	got, err := io.ReadAll(rs)
	if !errors.Is(err, ErrCorrupt) || len(got) != 2*seg {
		t.Errorf("ReadAll of a file with segment 2 modified = %d bytes, %v", len(got), err)
	}
}

func TestStreamNotEncrypted(t *testing.T) {
	r := newRing(t, "k1")
	zip := []byte("PK\x03\x04 a plain zip file with " + email)
	if _, _, err := r.UnwrapReader(bytes.NewReader(zip), int64(len(zip))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("UnwrapReader(plain file) = %v, want ErrCorrupt", err)
	}
}

func TestStreamKeys(t *testing.T) {
	oldEntry, _ := genKey(t, "old")
	newEntry, _ := genKey(t, "new")
	oldRing, rotated := mustParse(t, oldEntry), mustParse(t, newEntry+","+oldEntry)
	plain := plaintext(seg + 3)
	ct := wrap(t, oldRing, plain)
	if got, err := unwrapAll(rotated, ct); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("rotated ring reading an old file: %v", err)
	}
	_, err := unwrapAll(mustParse(t, newEntry), ct)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"old"`) {
		t.Errorf("ring without the key: %v, want ErrUnknownKey naming old", err)
	}
	if ct := wrap(t, rotated, plain); !bytes.Contains(ct[:fixedHeaderLen+3], []byte("new")) {
		t.Error("rotated ring does not write with the new key")
	}
}

// failWriter fails every write after the first ok ones.
type failWriter struct{ ok int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.ok == 0 {
		return 0, errors.New("disk full")
	}
	f.ok--
	return len(p), nil
}

func TestStreamWriteErrors(t *testing.T) {
	r := newRing(t, "k1")
	if _, err := r.WrapWriter(&failWriter{}); err == nil {
		t.Error("WrapWriter with a failing writer: no error")
	}
	w, err := r.WrapWriter(&failWriter{ok: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plaintext(2*seg + 1)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Write = %v, want disk full", err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed write: no error")
	}
}

// TestResultsStore checks the functions as the results store uses them.
func TestResultsStore(t *testing.T) {
	r := newRing(t, "k1")
	dir := t.TempDir()
	st, err := results.OpenStore(dir, results.StoreOptions{Wrap: r.WrapWriter, Unwrap: r.UnwrapReader})
	if err != nil {
		t.Fatal(err)
	}
	token, err := results.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	plain := plaintext(2*seg + 123)
	if _, err := st.Write(context.Background(), token, func(w io.Writer) error {
		_, err := w.Write(plain)
		return err
	}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.zip"))
	if len(files) != 1 {
		t.Fatalf("files in store: %v", files)
	}
	onDisk, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(onDisk, []byte(email)) {
		t.Error("bundle on disk holds plaintext")
	}
	rc, size, err := st.Open(token)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || size != int64(len(plain)) || !bytes.Equal(got, plain) {
		t.Errorf("Open: size %d, %d bytes read, %v", size, len(got), err)
	}
}
