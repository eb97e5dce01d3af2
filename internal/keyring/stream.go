package keyring

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The segmented format of results bundles at rest.
const (
	// SegmentSize is the number of plaintext bytes in each segment (the
	// last one may hold fewer).
	SegmentSize = 64 << 10

	streamMagic   = "DSRENC"
	streamVersion = 1
	// fixedHeaderLen: magic, version, segment size, nonce prefix, id length.
	fixedHeaderLen = len(streamMagic) + 1 + 4 + prefixLen + 1
	prefixLen      = 8
	tagLen         = 16
	// maxSegmentSize bounds the segment size a reader accepts from a header.
	maxSegmentSize = 16 << 20
)

// WrapWriter returns a writer that encrypts what is written to it with the
// active key into w, in the segmented format below. Close writes the last
// segment; it does not close w. The signature matches
// results.StoreOptions.Wrap.
//
// The format is a header followed by segments:
//
//	header:  "DSRENC" | version 1 (1 byte) | segment size (uint32 BE)
//	         | nonce prefix (8 random bytes) | key id length (1 byte) | key id
//	segment: AES-256-GCM(plaintext of SegmentSize bytes, or fewer for the
//	         last) || tag (16 bytes)
//
// Segment i (from 0) is sealed with the nonce prefix || uint32 BE i, and the
// additional data header || uint32 BE i || final flag (1 for the last
// segment, else 0). So a segment cannot be modified, moved, or swapped with
// another, the file cannot be truncated or extended, and the header cannot be
// changed, without failing authentication. The plaintext size is not stored:
// it follows from the file size, and the final flag authenticates it. An
// empty plaintext is one empty final segment.
func (r *Ring) WrapWriter(w io.Writer) (io.WriteCloser, error) {
	k := r.active()
	var prefix [prefixLen]byte
	if _, err := rand.Read(prefix[:]); err != nil {
		return nil, fmt.Errorf("keyring: wrap: %w", err)
	}
	hdr := streamHeader(SegmentSize, prefix, k.id)
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("keyring: wrap: write header: %w", err)
	}
	return &segmentWriter{
		w:    w,
		k:    k,
		seg:  newSegmentCrypto(hdr, prefix),
		buf:  make([]byte, 0, SegmentSize),
		out:  make([]byte, 0, SegmentSize+tagLen),
		size: SegmentSize,
	}, nil
}

// streamHeader encodes the header of the segmented format.
func streamHeader(segSize uint32, prefix [prefixLen]byte, id string) []byte {
	hdr := make([]byte, 0, fixedHeaderLen+len(id))
	hdr = append(hdr, streamMagic...)
	hdr = append(hdr, streamVersion)
	hdr = binary.BigEndian.AppendUint32(hdr, segSize)
	hdr = append(hdr, prefix[:]...)
	hdr = append(hdr, byte(len(id)))
	return append(hdr, id...)
}

// segmentCrypto builds the nonce and additional data of each segment.
type segmentCrypto struct {
	nonce [prefixLen + 4]byte
	ad    []byte // header || index || final flag
}

func newSegmentCrypto(hdr []byte, prefix [prefixLen]byte) *segmentCrypto {
	s := &segmentCrypto{ad: make([]byte, len(hdr)+5)}
	copy(s.nonce[:], prefix[:])
	copy(s.ad, hdr)
	return s
}

// set prepares the nonce and additional data of segment i.
func (s *segmentCrypto) set(i uint32, final bool) {
	binary.BigEndian.PutUint32(s.nonce[prefixLen:], i)
	n := len(s.ad)
	binary.BigEndian.PutUint32(s.ad[n-5:], i)
	s.ad[n-1] = 0
	if final {
		s.ad[n-1] = 1
	}
}

// segmentWriter encrypts a stream into segments.
type segmentWriter struct {
	w      io.Writer
	k      *key
	seg    *segmentCrypto
	buf    []byte // plaintext of the current segment
	out    []byte // ciphertext buffer
	size   int    // segment size
	idx    uint32 // index of the current segment
	err    error  // sticky error of w
	closed bool
}

var errClosed = errors.New("keyring: write to closed writer")

// Write implements io.Writer. A full segment is sealed only when more data
// follows it, so that the last one can be sealed as final by Close.
func (sw *segmentWriter) Write(p []byte) (int, error) {
	if sw.closed {
		return 0, errClosed
	}
	n := 0
	for len(p) > 0 {
		if sw.err != nil {
			return n, sw.err
		}
		if len(sw.buf) == sw.size {
			sw.flush(false)
			continue
		}
		m := copy(sw.buf[len(sw.buf):sw.size], p)
		sw.buf = sw.buf[:len(sw.buf)+m]
		p = p[m:]
		n += m
	}
	return n, sw.err
}

// Close seals and writes the last segment. It does not close the
// underlying writer.
func (sw *segmentWriter) Close() error {
	if sw.closed {
		return sw.err
	}
	sw.closed = true
	if sw.err == nil {
		sw.flush(true)
	}
	clear(sw.buf[:cap(sw.buf)])
	return sw.err
}

// flush seals the buffered plaintext as the current segment and writes it.
func (sw *segmentWriter) flush(final bool) {
	if !final && sw.idx == math.MaxUint32 {
		sw.err = errors.New("keyring: wrap: too many segments")
		return
	}
	sw.seg.set(sw.idx, final)
	sw.out = sw.k.gcm.Seal(sw.out[:0], sw.seg.nonce[:], sw.buf, sw.seg.ad)
	if _, err := sw.w.Write(sw.out); err != nil {
		sw.err = fmt.Errorf("keyring: wrap: %w", err)
		return
	}
	sw.buf = sw.buf[:0]
	sw.idx++
}

// UnwrapReader opens a file written by WrapWriter, of size bytes, with the
// key named in its header, and returns its plaintext as a ReadSeeker and the
// plaintext size. The signature matches results.StoreOptions.Unwrap.
//
// It reads the header and authenticates the last segment at once, so a
// truncated or extended file, an unknown key id (ErrUnknownKey) or a file in
// another format (ErrCorrupt) fail here. Other segments are decrypted and
// authenticated as they are read: a modified segment makes Read fail with
// ErrCorrupt. The reader is not safe for concurrent use, and it moves rs's
// offset.
func (r *Ring) UnwrapReader(rs io.ReadSeeker, size int64) (io.ReadSeeker, int64, error) {
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return nil, 0, fmt.Errorf("keyring: unwrap: %w", err)
	}
	fixed := make([]byte, fixedHeaderLen)
	if _, err := io.ReadFull(rs, fixed); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, fmt.Errorf("keyring: unwrap: header truncated: %w", ErrCorrupt)
		}
		return nil, 0, fmt.Errorf("keyring: unwrap: read header: %w", err)
	}
	if !bytes.HasPrefix(fixed, []byte(streamMagic)) {
		return nil, 0, fmt.Errorf("keyring: unwrap: not an encrypted file: %w", ErrCorrupt)
	}
	if v := fixed[len(streamMagic)]; v != streamVersion {
		return nil, 0, fmt.Errorf("keyring: unwrap: unsupported format version %d: %w", v, ErrCorrupt)
	}
	segSize := int64(binary.BigEndian.Uint32(fixed[len(streamMagic)+1:]))
	if segSize < 1 || segSize > maxSegmentSize {
		return nil, 0, fmt.Errorf("keyring: unwrap: bad segment size: %w", ErrCorrupt)
	}
	var prefix [prefixLen]byte
	copy(prefix[:], fixed[len(streamMagic)+5:])
	id := make([]byte, fixed[fixedHeaderLen-1])
	if _, err := io.ReadFull(rs, id); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, fmt.Errorf("keyring: unwrap: header truncated: %w", ErrCorrupt)
		}
		return nil, 0, fmt.Errorf("keyring: unwrap: read header: %w", err)
	}
	k, err := r.lookup(string(id))
	if err != nil {
		return nil, 0, fmt.Errorf("keyring: unwrap: %w", err)
	}

	hdrLen := int64(fixedHeaderLen + len(id))
	segCT := segSize + tagLen
	body := size - hdrLen
	if body < tagLen {
		return nil, 0, fmt.Errorf("keyring: unwrap: file truncated: %w", ErrCorrupt)
	}
	nseg := (body + segCT - 1) / segCT
	last := body - (nseg-1)*segCT
	if last < tagLen || (nseg > 1 && last == tagLen) || nseg > math.MaxUint32+1 {
		return nil, 0, fmt.Errorf("keyring: unwrap: bad file size: %w", ErrCorrupt)
	}
	sr := &segmentReader{
		rs:      rs,
		k:       k,
		seg:     newSegmentCrypto(append(fixed, id...), prefix),
		hdrLen:  hdrLen,
		segSize: segSize,
		nseg:    nseg,
		lastCT:  last,
		size:    body - nseg*tagLen,
		cur:     -1,
		ct:      make([]byte, segCT),
		plain:   make([]byte, 0, segSize),
	}
	if err := sr.load(nseg - 1); err != nil {
		return nil, 0, err
	}
	return sr, sr.size, nil
}

// segmentReader decrypts a segmented file one segment at a time.
type segmentReader struct {
	rs      io.ReadSeeker
	k       *key
	seg     *segmentCrypto
	hdrLen  int64
	segSize int64
	nseg    int64
	lastCT  int64 // ciphertext length of the last segment
	size    int64 // plaintext size
	pos     int64 // plaintext offset
	cur     int64 // index of the segment in plain, or -1
	ct      []byte
	plain   []byte
}

// load reads, authenticates and decrypts segment i into plain.
func (sr *segmentReader) load(i int64) error {
	sr.cur = -1
	n := sr.segSize + tagLen
	final := i == sr.nseg-1
	if final {
		n = sr.lastCT
	}
	if _, err := sr.rs.Seek(sr.hdrLen+i*(sr.segSize+tagLen), io.SeekStart); err != nil {
		return fmt.Errorf("keyring: read segment %d: %w", i, err)
	}
	if _, err := io.ReadFull(sr.rs, sr.ct[:n]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = ErrCorrupt // shorter than the size given
		}
		return fmt.Errorf("keyring: read segment %d: %w", i, err)
	}
	sr.seg.set(uint32(i), final)
	plain, err := sr.k.gcm.Open(sr.plain[:0], sr.seg.nonce[:], sr.ct[:n], sr.seg.ad)
	if err != nil {
		return fmt.Errorf("keyring: read segment %d: %w", i, ErrCorrupt)
	}
	sr.plain = plain
	sr.cur = i
	return nil
}

// Read implements io.Reader.
func (sr *segmentReader) Read(p []byte) (int, error) {
	if sr.pos >= sr.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	i := sr.pos / sr.segSize
	if i != sr.cur {
		if err := sr.load(i); err != nil {
			return 0, err
		}
	}
	n := copy(p, sr.plain[sr.pos-i*sr.segSize:])
	sr.pos += int64(n)
	return n, nil
}

// Seek implements io.Seeker over the plaintext. Seeking past the end is
// allowed; reading there returns io.EOF.
func (sr *segmentReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = sr.pos + offset
	case io.SeekEnd:
		abs = sr.size + offset
	default:
		return sr.pos, errors.New("keyring: seek: invalid whence")
	}
	if abs < 0 {
		return sr.pos, errors.New("keyring: seek: negative position")
	}
	sr.pos = abs
	return abs, nil
}
