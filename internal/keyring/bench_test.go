package keyring

import (
	"bytes"
	"io"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// BenchmarkCodec encodes and decodes one 2 KB JSON payload.
func BenchmarkCodec(b *testing.B) {
	c := newRing(b, "k1").Codec()
	p := &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
		Data:     plaintext(2048),
	}
	in := []*commonpb.Payload{p}
	b.SetBytes(int64(len(p.Data)))
	b.ReportAllocs()
	for b.Loop() {
		enc, err := c.Encode(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrapWriter encrypts an 8 MiB bundle in 32 KiB writes (as io.Copy
// does).
func BenchmarkWrapWriter(b *testing.B) {
	r := newRing(b, "k1")
	plain := plaintext(8 << 20)
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		w, err := r.WrapWriter(io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		for p := plain; len(p) > 0; p = p[min(len(p), 32<<10):] {
			if _, err := w.Write(p[:min(len(p), 32<<10)]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnwrapReader decrypts an 8 MiB bundle.
func BenchmarkUnwrapReader(b *testing.B) {
	r := newRing(b, "k1")
	ct := wrap(b, r, plaintext(8<<20))
	buf := make([]byte, 32<<10)
	b.SetBytes(8 << 20)
	b.ReportAllocs()
	for b.Loop() {
		rs, _, err := r.UnwrapReader(bytes.NewReader(ct), int64(len(ct)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rs}, buf); err != nil {
			b.Fatal(err)
		}
	}
}
