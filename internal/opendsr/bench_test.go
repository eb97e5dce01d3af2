package opendsr_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/dsrflow/dsrflow/internal/opendsr"
)

// BenchmarkDecodeAndValidate is the intake's per-request CPU before any I/O.
func BenchmarkDecodeAndValidate(b *testing.B) {
	body, err := json.Marshal(validRequest())
	if err != nil {
		b.Fatal(err)
	}
	opts := opendsr.ValidateOptions{ProcessorDomain: "dsr.example", Now: time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		req, _, derr := opendsr.DecodeRequest("application/json", bytes.NewReader(body))
		if derr != nil {
			b.Fatal(derr)
		}
		if verr := opendsr.Validate(req, opts); verr != nil {
			b.Fatal(verr)
		}
	}
}

// BenchmarkSign is the signature every response and callback carries (RSA 2048).
func BenchmarkSign(b *testing.B) {
	keyPEM, certPEM, err := opendsr.GenerateSelfSigned("bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	key, err := opendsr.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := opendsr.NewSigner(key, certPEM)
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte(`{"request_status":"completed"}`), 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signer.Sign(body); err != nil {
			b.Fatal(err)
		}
	}
}
